"""Seconds per training batch of every method, relative to natural training, in one run on this machine.

Each method of the zoo's ``cpu`` presets (``rattrlib.zoo.zoo_config``) trains the MNIST CNN on the same
Fashion-MNIST batches (batch 128, Adam); after one warm-up batch, ``--batches`` batches are timed and the mean
seconds per batch is reported with its ratio to natural training, beside the ratio of floating-point operations
of one step (matrix products and convolutions, ``_machine.FlopCounter``): where the two ratios agree the method
runs at natural training's arithmetic rate, and only less or cheaper arithmetic can lower its time. The teacher-aligned method uses a fresh
(untrained) PGD-AT-architecture teacher here: its cost does not depend on the teacher's weights.

The papers' cost claims this checks: SAT costs about as much as natural training (Mangla et al.); SSR is
cheaper than PGD-AT and IG-NORM (Wang et al. 2020, §5.2).

    python benchmarks/bench_train_methods.py            # 8 timed batches per method
    python benchmarks/bench_train_methods.py --quick    # 2 timed batches, no JSON

It also adds up the arithmetic of training the zoo's cpu presets on 3 seeds (``zoo_training``): at natural
training's measured rate, the least time the cold book's model training can take on this machine.

Writes ``benchmarks/results/train_methods.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from rattrlib.data import load_dataset
from rattrlib.models import build_model
from rattrlib.precision import autocast
from rattrlib.train import make_method
from rattrlib.train.base import Batch, Progress
from rattrlib.train.loop import make_optimiser
from rattrlib.zoo import ZOO_METHODS, zoo_config

from _machine import FlopCounter, machine_info

RESULTS = Path(__file__).resolve().parent / "results"


def method_for_benchmark(name: str, data):
    """The zoo's cpu-preset method, with an in-memory teacher for teacher_aligned (no teacher training)."""
    hp = dict(zoo_config("fashion_mnist", name, "cpu").hyperparameters)
    if name == "teacher_aligned":
        hp["teacher"] = build_model("mnist_cnn", data.shape, len(data.classes))
        hp["start"] = None
    return make_method(name, **hp)


def _trainer(name: str, data):
    """A fresh MNIST CNN (seed 0), the zoo's cpu-preset method prepared for it, and its Adam optimiser."""
    torch.manual_seed(0)
    model = build_model("mnist_cnn", data.shape, len(data.classes))
    method = method_for_benchmark(name, data)
    method.prepare(model, data)
    return model, method, make_optimiser("adam", model, 1e-3)


def _step(model, method, optimiser, data, i: int, batch_size: int, precision: str) -> None:
    """One training step on the i-th batch of ``data``."""
    index = torch.arange(i * batch_size, (i + 1) * batch_size)
    batch = Batch(data.images[index], data.labels[index], index)
    model.train()
    with autocast(precision, "cpu"):
        loss, _ = method.loss(model, batch, Progress(0, 1))
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()


def seconds_per_batch(name: str, data, batch_size: int, batches: int, precision: str = "fp32") -> float:
    """Mean seconds of ``batches`` training steps of the zoo's cpu-preset method (after one warm-up), the loss
    in ``precision`` (:mod:`rattrlib.precision`)."""
    model, method, optimiser = _trainer(name, data)
    times = []
    for i in range(batches + 1):
        start = time.perf_counter()
        _step(model, method, optimiser, data, i, batch_size, precision)
        times.append(time.perf_counter() - start)
    return sum(times[1:]) / batches  # the first batch is a warm-up


def flops_per_batch(name: str, data, batch_size: int) -> int:
    """Floating-point operations of matrix products and convolutions in one training step (fp32)."""
    model, method, optimiser = _trainer(name, data)
    with FlopCounter() as counter:
        _step(model, method, optimiser, data, 0, batch_size, "fp32")
    return counter.flops


def zoo_training_flops(flops: dict, batch_size: int, seeds: int = 3) -> dict:
    """Images seen and matrix-product / convolution FLOPs of training the zoo's Fashion-MNIST cpu presets
    (``seeds`` seeds of every method), from the FLOPs of one step of each method: the arithmetic floor of the
    book's model training at any rate."""
    rows, full = {}, len(load_dataset("fashion_mnist", "train"))
    for name, step in flops.items():
        config = zoo_config("fashion_mnist", name, "cpu")
        images = config.epochs * (config.n_train or full)
        rows[name] = {"images_seen": images, "flops_per_seed": step / batch_size * images}
    return {"seeds": seeds, "methods": rows, "total_flops": seeds * sum(r["flops_per_seed"] for r in rows.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    batches = 2 if args.quick else args.batches
    torch.set_num_threads(2)
    data = load_dataset("fashion_mnist", "train").subset((batches + 1) * args.batch_size, seed=0)
    machine = machine_info()
    rows, flops = {}, {}
    for name in ZOO_METHODS:
        rows[name] = seconds_per_batch(name, data, args.batch_size, batches)
        flops[name] = flops_per_batch(name, data, args.batch_size)
        print(f"{name:16s} {rows[name]:7.3f} s/batch  {rows[name] / rows['natural']:6.1f}× natural  "
              f"FLOPs {flops[name] / flops['natural']:6.1f}× natural  {flops[name] / rows[name] / 1e9:5.0f} GFLOP/s",
              flush=True)
    result = {
        "benchmark": "seconds per training batch, zoo cpu presets, MNIST CNN on Fashion-MNIST",
        **machine, "load_average_1min_end": os.getloadavg()[0],
        "batch_size": args.batch_size, "timed_batches": batches,
        "seconds_per_batch": rows,
        "ratio_to_natural": {name: s / rows["natural"] for name, s in rows.items()},
        # matrix-product and convolution FLOPs of one step (FlopCounter): the ratio that the arithmetic fixes
        "flops_per_batch": flops,
        "flop_ratio_to_natural": {name: f / flops["natural"] for name, f in flops.items()},
        "gflops_per_second": {name: flops[name] / rows[name] / 1e9 for name in rows},
        # the arithmetic of training the zoo's cpu presets on 3 seeds, and its minutes at natural training's rate
        "zoo_training": zoo_training_flops(flops, args.batch_size),
    }
    natural_rate = flops["natural"] / rows["natural"]
    result["zoo_training"]["minutes_at_natural_rate"] = result["zoo_training"]["total_flops"] / natural_rate / 60
    print(f"training the zoo's cpu presets on 3 seeds: {result['zoo_training']['total_flops'] / 1e12:.0f} TFLOP, "
          f"{result['zoo_training']['minutes_at_natural_rate']:.0f} min at natural training's rate here")
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "train_methods.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {RESULTS / 'train_methods.json'}")


if __name__ == "__main__":
    main()
