"""PyTorch peer of `deno task bench:zoo` (tests/bench/zoo.ts).

Builds one of f16repro's Table 5 networks (lib/model/zoo_cnn.ts,
zoo_resnet_vit.ts, zoo_dense_xception.ts) layer for layer in PyTorch: the
same layer shapes, TensorFlow "same" padding (asymmetric where TensorFlow's
is), batch norm with the same epsilons (Keras momentum 0.99 is torch's
0.01), dropout, heads, 10 classes and 3x32x32 input, so its trainable
parameter count and the flops of its forward pass equal ours; the bench
compares both. Times float32 training steps (forward, cross-entropy,
backward, SGD with the momentum and conv-kernel weight decay the bench
passes) on random data, and prints one JSON line: the torch version, the
parameter count, the forward flops (null before torch 2.1), the
milliseconds of each timed step and the peak resident memory of the
process (getrusage's ru_maxrss, KiB). --probe prints the torch version only
(and whether CUDA is available).

--device cuda runs on the GPU (the GPU check, tests/bench/gpu_check/):
each timed step ends in torch.cuda.synchronize(), and the line adds the
GPU's name and its peak allocated memory. --mode picks the arithmetic:
fp32; autocast (fp16 autocast with a GradScaler, PyTorch's mixed
precision); half (the model and data cast with .half(): standalone fp16).
"mlp" is the quick profile's MLP widths on the zoo's input (3072-128-10),
zoo_step.ts's ZOO_MLP_HIDDEN.
"""

import argparse
import json
import os
import resource
import sys
import time

from torch_peer import blas_threads_setter

MODELS = ["mlp", "alexnet", "vgg16", "vgg19", "mobilenet", "resnet32", "resnet56",
          "resnet110", "vit8", "vit12", "densenet121", "densenet169",
          "xception"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--probe", action="store_true")
    p.add_argument("--model", choices=MODELS)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--decay", type=float, default=0.0,
                   help="weight decay of the conv kernels")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--mode", choices=["fp32", "autocast", "half"],
                   default="fp32")
    args = p.parse_args()
    if not args.probe and args.model is None:
        p.exit(2, "zoo_peer.py: --model is required\n")
    if min(args.batch, args.threads, args.steps) < 1 or args.warmup < 0:
        p.exit(2, "zoo_peer.py: batch, threads and steps must be >= 1, "
                  "warmup >= 0\n")
    return args


def build(torch, name):
    """The network `name` as an nn.Module taking [N, 3, 32, 32]."""
    nn, F = torch.nn, torch.nn.functional

    def same_pads(size, k, stride):
        # lib/graph/ops.ts padsFor: TensorFlow puts the odd pixel after.
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        return total // 2, total - total // 2

    def window(size, k, stride, padding):
        """(pads before, after, output size) of a square window."""
        if padding == "same":
            pb, pa = same_pads(size, k, stride)
        else:
            pb = pa = 0 if padding == "valid" else padding
        return pb, pa, (size + pb + pa - k) // stride + 1

    def conv(cin, cout, k, size, stride=1, padding="valid", bias=True,
             depthwise=False):
        """A zero-padded conv and its output size (layers.ts conv2d)."""
        pb, pa, out = window(size, k, stride, padding)
        groups = cin if depthwise else 1
        if pb == pa:
            return nn.Conv2d(cin, cout, k, stride, pb, groups=groups,
                             bias=bias), out
        return nn.Sequential(
            nn.ZeroPad2d((pb, pa, pb, pa)),
            nn.Conv2d(cin, cout, k, stride, 0, groups=groups, bias=bias)), out

    def maxpool(k, size, stride, padding="valid"):
        """Max pool whose padded taps take no part (layers.ts pool)."""
        pb, pa, out = window(size, k, stride, padding)
        if pb == pa:
            return nn.MaxPool2d(k, stride, pb), out
        return nn.Sequential(nn.ConstantPad2d((pb, pa, pb, pa), float("-inf")),
                             nn.MaxPool2d(k, stride)), out

    def bn(c, eps=1e-3, dims=2):
        cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        return cls(c, eps=eps, momentum=0.01)

    gap = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]

    def alexnet():
        c1, s = conv(3, 64, 3, 32, 2, "same")
        p1, s = maxpool(2, s, 2)
        c2, s = conv(64, 96, 3, s, 1, "same")
        p2, s = maxpool(3, s, 2)
        c3, s = conv(96, 256, 3, s, 1, "same")
        c4, s = conv(256, 256, 3, s, 1, "same")
        c5, s = conv(256, 512, 3, s, 1, "same")
        p3, s = maxpool(3, s, 2)
        return nn.Sequential(
            c1, nn.ReLU(), p1, c2, nn.ReLU(), p2, c3, nn.ReLU(), c4, nn.ReLU(),
            c5, nn.ReLU(), p3, nn.Flatten(),
            nn.Linear(512 * s * s, 4096), nn.Tanh(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.Tanh(), nn.Dropout(0.5),
            nn.Linear(4096, 10))

    def vgg(blocks):
        layers, c, s = [], 3, 32
        for i, widths in enumerate(blocks):
            for w in widths:
                m, s = conv(c, w, 3, s, 1, "same")
                layers += [m, nn.ReLU()]
                c = w
            m, s = maxpool(2, s, 2)
            layers.append(m)
            if i < len(blocks) - 1:
                layers.append(bn(c))
        return nn.Sequential(
            *layers, nn.Flatten(), bn(c * s * s, dims=1),
            nn.Linear(c * s * s, 4096), nn.ReLU(), nn.Linear(4096, 4096),
            nn.ReLU(), nn.Linear(4096, 10))

    def mobilenet():
        blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                  (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2),
                  (1024, 1)]
        m, s = conv(3, 32, 3, 32, 1, "same", bias=False)
        layers, c = [m, bn(32), nn.ReLU()], 32
        for filters, stride in blocks:
            d, s = conv(c, c, 3, s, stride, "same", bias=False, depthwise=True)
            p, s = conv(c, filters, 1, s, bias=False)
            layers += [d, bn(c), nn.ReLU(), p, bn(filters), nn.ReLU()]
            c = filters
        return nn.Sequential(*layers, *gap, nn.Linear(c, 10))

    class ResUnit(nn.Module):
        """zoo_resnet_vit.ts resUnit: pre-activation, option-A shortcut."""

        def __init__(self, cin, width, stride, from_preact, size):
            super().__init__()
            self.bn1, self.bn2 = bn(cin), bn(width)
            self.conv1, s = conv(cin, width, 3, size, stride, "same")
            self.conv2, self.size = conv(width, width, 3, s, 1, "same")
            self.from_preact = from_preact
            self.down = width != cin or stride != 1
            if self.down and same_pads(size, 2, 2) != (0, 0):
                raise ValueError(f"odd size {size} before a shortcut pool")
            before = (width - cin) // 2
            self.pad = (0, 0, 0, 0, before, width - cin - before)

        def forward(self, x):
            pre = F.relu(self.bn1(x))
            sc = pre if self.from_preact else x
            if self.down:
                sc = F.pad(F.avg_pool2d(sc, 2, 2), self.pad)
            return self.conv2(F.relu(self.bn2(self.conv1(pre)))) + sc

    def resnet(depth):
        units = (depth - 2) // 6
        stem, s = conv(3, 16, 3, 32, 1, "same")
        layers, c = [stem], 16
        for st, (width, stride) in enumerate([(16, 1), (32, 2), (64, 2)]):
            for i in range(units):
                u = ResUnit(c, width, stride if i == 0 else 1,
                            st == 0 and i == 0, s)
                layers.append(u)
                c, s = width, u.size
        return nn.Sequential(
            *layers, bn(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(c, 10, 1), nn.Flatten(), nn.Linear(10, 4096), nn.ReLU(),
            nn.Linear(4096, 10))

    class Block(nn.Module):
        """zoo_resnet_vit.ts vitBlock: post-LN, 4 heads of 64."""

        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = (nn.Linear(64, 256) for _ in range(3))
            self.o = nn.Linear(256, 64)
            self.ln1, self.ln2 = nn.LayerNorm(64, 1e-6), nn.LayerNorm(64, 1e-6)
            self.fc1, self.fc2 = nn.Linear(64, 512), nn.Linear(512, 64)
            self.drop = nn.Dropout(0.1)

        def forward(self, x):
            n, t, _ = x.shape

            def heads(y):
                return y.reshape(n, t, 4, 64).transpose(1, 2)

            q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
            p = torch.softmax(q @ k.transpose(-1, -2) / 8.0, dim=-1)
            ctx = (p @ v).transpose(1, 2).reshape(n, t, 256)
            h = self.ln1(x + self.drop(self.o(ctx)))
            mlp = self.drop(self.fc2(F.gelu(self.fc1(h))))
            return self.ln2(h + mlp)

    class ViT(nn.Module):
        def __init__(self, blocks):
            super().__init__()
            self.patch, s = conv(3, 64, 6, 32, 6)
            self.pos = nn.Parameter(torch.empty(s * s, 64).uniform_(-.05, .05))
            self.blocks = nn.Sequential(*(Block() for _ in range(blocks)))
            self.head = nn.Sequential(
                nn.LayerNorm(64, 1e-6), nn.Flatten(), nn.Dropout(0.5),
                nn.Linear(s * s * 64, 512), nn.GELU(), nn.Linear(512, 512),
                nn.GELU(), nn.Linear(512, 10))

        def forward(self, x):
            p = self.patch(x)
            h = p.flatten(2).transpose(1, 2) + self.pos
            return self.head(self.blocks(h))

    class DenseLayer(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.f = nn.Sequential(
                bn(c, 1.001e-5), nn.ReLU(), nn.Conv2d(c, 128, 1, bias=False),
                bn(128, 1.001e-5), nn.ReLU(),
                nn.Conv2d(128, 32, 3, padding=1, bias=False))

        def forward(self, x):
            return torch.cat([x, self.f(x)], 1)

    def densenet(blocks):
        stem, s = conv(3, 64, 7, 32, 2, 3, bias=False)
        pool, s = maxpool(3, s, 2, 1)
        layers, c = [stem, bn(64, 1.001e-5), nn.ReLU(), pool], 64
        for i, n in enumerate(blocks):
            for _ in range(n):
                layers.append(DenseLayer(c))
                c += 32
            if i < len(blocks) - 1:
                layers += [bn(c, 1.001e-5), nn.ReLU(),
                           nn.Conv2d(c, c // 2, 1, bias=False),
                           nn.AvgPool2d(2, 2)]
                c //= 2
        return nn.Sequential(*layers, bn(c, 1.001e-5), nn.ReLU(), *gap,
                             nn.Linear(c, 10))

    def sep(cin, cout, s):
        d, _ = conv(cin, cin, 3, s, 1, "same", bias=False, depthwise=True)
        return nn.Sequential(d, nn.Conv2d(cin, cout, 1, bias=False))

    class Down(nn.Module):
        """zoo_dense_xception.ts downBlock."""

        def __init__(self, cin, w1, w2, pre_relu, size):
            super().__init__()
            sc, _ = conv(cin, w2, 1, size, 2, "same", bias=False)
            self.shortcut = nn.Sequential(sc, bn(w2))
            self.pre_relu = pre_relu
            self.f = nn.Sequential(sep(cin, w1, size), bn(w1), nn.ReLU(),
                                   sep(w1, w2, size), bn(w2))
            self.pool, self.size = maxpool(3, size, 2, "same")

        def forward(self, x):
            h = self.f(F.relu(x) if self.pre_relu else x)
            return self.pool(h) + self.shortcut(x)

    class Middle(nn.Module):
        def __init__(self, c, s):
            super().__init__()
            self.f = nn.Sequential(*(m for _ in range(3) for m in (
                nn.ReLU(), sep(c, c, s), bn(c))))

        def forward(self, x):
            return self.f(x) + x

    def xception():
        c1, s = conv(3, 32, 3, 32, 2, bias=False)
        c2, s = conv(32, 64, 3, s, bias=False)
        layers, c = [c1, bn(32), nn.ReLU(), c2, bn(64), nn.ReLU()], 64
        for i, width in enumerate([128, 256, 728]):
            d = Down(c, width, width, i > 0, s)
            layers.append(d)
            c, s = width, d.size
        layers += [Middle(c, s) for _ in range(8)]
        d = Down(c, c, 1024, True, s)
        s = d.size
        layers += [d, sep(1024, 1536, s), bn(1536), nn.ReLU(),
                   sep(1536, 2048, s), bn(2048), nn.ReLU(), *gap,
                   nn.Linear(2048, 1024), nn.ReLU(), nn.Linear(1024, 10)]
        return nn.Sequential(*layers)

    builders = {
        "mlp": lambda: nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 128),
                                     nn.ReLU(), nn.Linear(128, 10)),
        "alexnet": alexnet,
        "vgg16": lambda: vgg([[64] * 2, [128] * 2, [256] * 3, [512] * 3,
                              [512] * 3]),
        "vgg19": lambda: vgg([[64] * 2, [128] * 2, [256] * 4, [512] * 4,
                              [512] * 4]),
        "mobilenet": mobilenet,
        "resnet32": lambda: resnet(32),
        "resnet56": lambda: resnet(56),
        "resnet110": lambda: resnet(110),
        "vit8": lambda: ViT(8),
        "vit12": lambda: ViT(12),
        "densenet121": lambda: densenet([6, 12, 24, 16]),
        "densenet169": lambda: densenet([6, 12, 32, 32]),
        "xception": xception,
    }
    return builders[name]()


def forward_flops(torch, model, x):
    """Flops of the convolutions and matmuls of one forward pass, counted
    by torch (FlopCounterMode, torch 2.1 and later), or None. Only the
    forward pass: torch 2.5's counter miscounts the backward of grouped
    convolutions as if they were dense."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


def measure(torch, args):
    torch.set_num_threads(args.threads)
    set_blas = blas_threads_setter()
    if set_blas:
        set_blas(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("zoo_peer.py: --device cuda, but torch.cuda is not "
                         "available")
    dev = torch.device(args.device)
    torch.manual_seed(0)
    model = build(torch, args.model)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    x = torch.rand(args.batch, 3, 32, 32) - 0.5
    y = torch.randint(0, 10, (args.batch,))
    model, x, y = model.to(dev), x.to(dev), y.to(dev)
    # Counted in float32 before any cast: the flops do not depend on the
    # mode.
    flops = forward_flops(torch, model, x)
    if args.mode == "half":
        model, x = model.half(), x.half()
    # The bench's optimizer: weight decay on the conv kernels only (the
    # ResNets' Keras L2), none elsewhere.
    conv_w = [m.weight for m in model.modules()
              if isinstance(m, torch.nn.Conv2d)]
    ids = {id(p) for p in conv_w}
    rest = [p for p in model.parameters() if id(p) not in ids]
    opt = torch.optim.SGD([{"params": conv_w, "weight_decay": args.decay},
                           {"params": rest}], lr=0.01, momentum=args.momentum)
    loss_fn = torch.nn.CrossEntropyLoss()
    scaler = (torch.amp.GradScaler(args.device)
              if args.mode == "autocast" else None)

    def step():
        opt.zero_grad()
        if scaler:
            with torch.autocast(args.device, dtype=torch.float16):
                loss = loss_fn(model(x), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss_fn(model(x), y).backward()
            opt.step()

    def sync():
        if args.device == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    sync()
    ms = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        sync()
        ms.append(1000 * (time.perf_counter() - t0))
    out = {"params": params, "forward_flops": flops, "ms": ms,
           "device": args.device, "mode": args.mode}
    if args.device == "cuda":
        out["gpu"] = torch.cuda.get_device_name()
        out["gpu_peak_bytes"] = torch.cuda.max_memory_allocated()
    return out


def main():
    args = parse_args()
    # Before libgomp loads: spinning OpenMP workers starve OpenBLAS's threads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install
        print(json.dumps({"available": False,
                          "reason": f"import torch failed: {e}"}))
        return 0
    out = {"available": True, "torch": torch.__version__,
           "cuda": torch.cuda.is_available()}
    if not args.probe:
        out.update(measure(torch, args))
        out["peak_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
