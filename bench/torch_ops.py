#!/usr/bin/env python3
"""PyTorch's row-wise ops on bench_ops' shapes, in the same units (effective GB/s: every array
the maths reads or writes, once per pass; the same counts as bench_ops), beside a copy of the
same bytes into a preallocated tensor. Median of repeated runs after warm-up.

    python3 bench/torch_ops.py [--threads N] [--reps R]
"""
import argparse
import statistics
import time

import torch


def median_seconds(run, reps):
    for _ in range(3):
        run()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_rowwise(name, shape, op, forward_arrays, both_arrays, reps, leaves=()):
    x = torch.randn(*shape)
    leaf = x.clone().requires_grad_()
    dy = torch.randn_like(op(x))
    copy = torch.empty_like(x)
    array_bytes = x.numel() * 4
    copy_s = median_seconds(lambda: copy.copy_(x), reps)

    def forward():
        with torch.no_grad():
            op(x)

    def both():
        leaf.grad = None
        for other in leaves:
            other.grad = None
        op(leaf).backward(dy)

    for what, run, arrays in (("forward", forward, forward_arrays), ("forward+backward", both, both_arrays)):
        seconds = median_seconds(run, reps)
        ours, plain = arrays * array_bytes / seconds * 1e-9, 2 * array_bytes / copy_s * 1e-9
        shape_text = "[" + ",".join(str(d) for d in shape) + "]"
        print(f"{name + ' ' + what:<30} {shape_text:<26} torch {ours:7.1f} GB/s      {'copy':<22} {plain:7.1f} GB/s"
              f"      ratio {ours / plain:.2f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.reps} runs")
    bench_rowwise("softmax", (32, 8, 32, 32), lambda x: torch.softmax(x, -1), 2, 5, args.reps)
    bench_rowwise("softmax", (1024, 1000), lambda x: torch.softmax(x, -1), 2, 5, args.reps)
    weight = torch.ones(256, requires_grad=True)
    bias = torch.zeros(256, requires_grad=True)
    bench_rowwise("layer_norm", (1024, 256), lambda x: torch.nn.functional.layer_norm(x, (256,), weight, bias), 2, 5,
                  args.reps, (weight, bias))
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 1000, (1024,), generator=generator)
    bench_rowwise("cross_entropy", (1024, 1000), lambda x: torch.nn.functional.cross_entropy(x, targets), 1, 3,
                  args.reps)


if __name__ == "__main__":
    main()
