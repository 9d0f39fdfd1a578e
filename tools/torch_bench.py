#!/usr/bin/python3
"""PyTorch's CPU throughput for the NiN that `deno task bench` times, to state the toolkit's ratio to it.

Run it back to back with the bench, on a quiet machine, with the same size and batch:

    /usr/bin/python3 tools/torch_bench.py --resize 96 --batch-size 16
    deno task bench --resize 96 --batch-size 16

It builds the chapter's model with tests/fixtures/make_fixtures.py (the parity fixtures' model), times SGD
training steps (forward, loss, backward, update; dropout on) and eval-mode inference batches on random inputs,
with `torch.set_num_threads(2)` unless --threads says otherwise, and prints one JSON line.
"""

import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from make_fixtures import build_model  # noqa: E402


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def timed(step, warmup, min_seconds, min_steps):
    for _ in range(warmup):
        step()
    count, start = 0, time.perf_counter()
    while count < min_steps or time.perf_counter() - start < min_seconds:
        step()
        count += 1
    return count, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resize", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    net = build_model()
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr)
    x = torch.rand(args.batch_size, 1, args.resize, args.resize)
    y = torch.randint(0, 10, (args.batch_size,))

    def train_step():
        net.train()
        optimizer.zero_grad()
        F.cross_entropy(net(x), y).backward()
        optimizer.step()

    def infer_batch():
        net.eval()
        with torch.no_grad():
            net(x)

    train_steps, train_s = timed(train_step, args.warmup, args.seconds, args.steps)
    infer_steps, infer_s = timed(infer_batch, args.warmup, args.seconds, args.steps)
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "resize": args.resize,
        "batchSize": args.batch_size,
        "trainExamplesPerSec": train_steps * args.batch_size / train_s,
        "inferExamplesPerSec": infer_steps * args.batch_size / infer_s,
    }))


if __name__ == "__main__":
    main()
