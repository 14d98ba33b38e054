"""PyTorch peer for `deno task bench:engines`.

Times full float32 training steps (forward, cross-entropy, backward, SGD with
momentum) of an MLP 784-256-10 on fixed random data, batch 128, on the CPU,
for each requested thread count. Prints one JSON line on stdout with the
median samples/s over the repeats; progress goes to stderr. OpenBLAS gets
the same thread count as torch and OpenMP waits passively, so the two thread
pools do not fight over the cores.
"""

import argparse
import ctypes
import json
import os
import statistics
import sys
import time

BATCH = 128


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2", help="comma-separated list")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--model", default="mlp")
    args = p.parse_args()
    if args.model != "mlp":
        p.exit(2, f"torch_peer.py: unsupported --model {args.model!r} "
                  "(only 'mlp' is supported)\n")
    try:
        args.threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        p.exit(2, f"torch_peer.py: bad --threads {args.threads!r}\n")
    if min(args.threads) < 1 or args.steps < 1 or args.repeats < 1:
        p.exit(2, "torch_peer.py: threads, steps and repeats must be >= 1\n")
    return args


def blas_threads_setter():
    """OpenBLAS's pool ignores torch.set_num_threads; return its setter."""
    try:
        return ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads
    except (OSError, AttributeError):
        return None


def bench(torch, threads, args, set_blas_threads):
    torch.set_num_threads(threads)
    if set_blas_threads:
        set_blas_threads(threads)
    torch.manual_seed(0)
    x = torch.rand(BATCH, 784) - 0.5
    y = torch.randint(0, 10, (BATCH,))
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    rates = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        dt = time.perf_counter() - t0
        rates.append(args.steps * BATCH / dt)
        print(f"threads={threads} repeat={r + 1}: {rates[-1]:.0f} samples/s",
              file=sys.stderr)
    rate = statistics.median(rates)
    return {"threads": threads, "samples_per_s": round(rate, 1),
            "ms_per_step": round(1000 * BATCH / rate, 4)}


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
    set_blas = blas_threads_setter()
    if set_blas is None:
        print("warning: libopenblas not found; BLAS threads left as they are",
              file=sys.stderr)
    results = [bench(torch, t, args, set_blas) for t in args.threads]
    print(json.dumps({"available": True, "torch": torch.__version__,
                      "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
