/**
 * The remote files of each downloadable dataset: mirrors in fallback order and
 * the checksum the publisher (or the widely used loaders, torchvision for the
 * IDX sets) lists. These machines cannot download the files, so the values
 * were looked up, not computed here.
 *
 * Mirror order puts the mirrors other tools rely on before hosts known to
 * refuse scripted downloads at times (the original MNIST host).
 *
 * @module
 */

import type { RemoteFile } from "./download.ts";
import { withSourceOverrides } from "./source_override.ts";

const IDX_FILES = [
  "train-images-idx3-ubyte.gz",
  "train-labels-idx1-ubyte.gz",
  "t10k-images-idx3-ubyte.gz",
  "t10k-labels-idx1-ubyte.gz",
] as const;

/** The four IDX files of a dataset under `folder`, one md5 per file, from `bases` in order. */
function idxFiles(folder: string, bases: readonly string[], md5: readonly string[]): RemoteFile[] {
  return IDX_FILES.map((f, i) => ({
    name: `${folder}/${f}`,
    urls: bases.map((b) => `${b}${f}`),
    checksum: { algorithm: "md5", hex: md5[i] },
  }));
}

/** MNIST (LeCun, Cortes, Burges): 60,000 train / 10,000 test, 28x28 grey. */
export const MNIST_FILES: readonly RemoteFile[] = idxFiles(
  "mnist",
  [
    "https://ossci-datasets.s3.amazonaws.com/mnist/", // torchvision's mirror
    "https://storage.googleapis.com/cvdf-datasets/mnist/", // TensorFlow's mirror
    "http://yann.lecun.com/exdb/mnist/", // the publisher
  ],
  [
    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "d53e105ee54ea40749a09fcbcd1e9432",
    "9fb629c4189551a2d022fa330f9573f3",
    "ec29112dd5afa0611ce80d1b7f02629c",
  ],
);

/** Fashion-MNIST (Zalando Research): 60,000 train / 10,000 test, 28x28 grey. */
export const FASHION_MNIST_FILES: readonly RemoteFile[] = idxFiles(
  "fashion-mnist",
  [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", // the publisher's bucket
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/", // the publisher's repo
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/", // Keras's mirror
  ],
  [
    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "25c81989df183df01b3e8a0aad5dffbe",
    "bef4ecab320f06d8554ea6380940ec79",
    "bb300cfdad3c16e7a12a480ee83cd310",
  ],
);

/** CIFAR-10 binary version (Krizhevsky): 50,000 train / 10,000 test, 32x32x3; md5 from the publisher's page. */
export const CIFAR10_FILES: readonly RemoteFile[] = [{
  name: "cifar10/cifar-10-binary.tar.gz",
  urls: [
    "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", // the publisher
    "https://cave.cs.toronto.edu/kriz/cifar-10-binary.tar.gz", // the publisher's second host
  ],
  checksum: { algorithm: "md5", hex: "c32a1d4ab5d03f1284b67883e8d87530" },
  size: 170052171,
}];

/**
 * Every host a download may contact (the data task's --allow-net list must cover these), with those of
 * `$F16REPRO_SOURCES` (source_override.ts) when it is set, so a reproduction's children may reach a mirror.
 */
export function downloadHosts(): string[] {
  const all = withSourceOverrides([...MNIST_FILES, ...FASHION_MNIST_FILES, ...CIFAR10_FILES]).flatMap((f) =>
    f.urls
  );
  return [...new Set(all.map((u) => new URL(u).host))].sort();
}
