#!/usr/bin/env python
"""Train (or load from the results cache) every zoo model and report its clean and PGD accuracy.

    python data_scripts/build_zoo.py --scale cpu --datasets fashion_mnist mnist10k [--methods pgd_at trades]

For each (dataset, method): the model of :func:`rattrlib.zoo.get_model` (trained on first use, then loaded),
its clean accuracy and its PGD accuracy on ``--n-eval`` stratified test images (default: 200 at smoke scale,
1000 at cpu, all at paper) under the evaluation PGD of :func:`rattrlib.zoo.eval_pgd` (RAR/GALI: MNIST ε = 0.3,
Fashion-MNIST ε = 0.1, α = 0.01, 40 steps, random start; colour data 8/255, localisation 2/255), with the
training seconds (sum of the epoch logs: the original training time, also for a cached model), the wall seconds
of this call to get the model, and the evaluation seconds. Prints one line per model and a table, and
writes/updates ``benchmarks/results/zoo_<scale>.json`` after every model (rows keyed by dataset, method, seed).
Set ``MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736`` before running on CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from rattrlib.attacks import PGD, pgd_accuracy
from rattrlib.config import SCALES, resolve_device
from rattrlib.data import load_dataset
from rattrlib.models import accuracy
from rattrlib.zoo import ZOO_DATASETS, ZOO_METHODS, eval_pgd, get_model, zoo_config

ROOT = Path(__file__).resolve().parents[1]
N_EVAL = {"smoke": 200, "cpu": 1000, "paper": None}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=SCALES, default="cpu")
    parser.add_argument("--datasets", nargs="+", default=["fashion_mnist", "mnist10k"], choices=sorted(ZOO_DATASETS))
    parser.add_argument("--methods", nargs="+", default=list(ZOO_METHODS), choices=ZOO_METHODS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-eval", type=int, default=None, help="test images (default: 200 smoke, 1000 cpu, all paper)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default benchmarks/results/zoo_<scale>.json)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def load_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        return list(json.loads(path.read_text()).get("rows", []))
    except (json.JSONDecodeError, AttributeError):
        print(f"warning: {path} is not valid JSON; starting a new file", file=sys.stderr)
        return []


def write_json(path: Path, scale: str, rows: list[dict], args: argparse.Namespace, device: torch.device) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: (r["dataset"], ZOO_METHODS.index(r["method"]), r["seed"]))
    blob = {"scale": scale, "device": str(device), "torch": torch.__version__, "python": platform.python_version(),
            "threads": args.threads, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "eval_pgd": {d: eval_pgd(d) for d in sorted({r["dataset"] for r in rows})}, "rows": rows}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(blob, indent=1))
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    device = resolve_device(args.device)
    out = args.out or ROOT / "benchmarks" / "results" / f"zoo_{args.scale}.json"
    n_eval = args.n_eval if args.n_eval is not None else N_EVAL[args.scale]
    rows = load_rows(out)
    done: list[dict] = []
    for dataset in args.datasets:
        test = load_dataset(dataset, "test").subset(n_eval, seed=args.seed)
        settings = eval_pgd(dataset)
        print(f"== {dataset}: {len(test)} test images; evaluation PGD eps={settings['eps']:.4g} "
              f"alpha={settings['alpha']:.4g} steps={settings['steps']} random start", flush=True)
        for method in args.methods:
            try:
                config = zoo_config(dataset, method, args.scale, seed=args.seed)
            except ValueError as err:
                print(f"   {method:<16} skipped: {err}", flush=True)
                continue
            start = time.perf_counter()
            model, logs = get_model(dataset, method, args.scale, seed=args.seed, device=str(device),
                                    progress=not args.quiet)
            wall = time.perf_counter() - start
            start = time.perf_counter()
            clean = accuracy(model, test.images, test.labels)
            attack = PGD(model, settings["eps"], settings["alpha"], settings["steps"],
                         random_start=settings["random_start"], generator=torch.Generator().manual_seed(args.seed))
            robust = pgd_accuracy(model, test.images, test.labels, attack)
            evaluation = time.perf_counter() - start
            row = {"dataset": dataset, "method": method, "seed": args.seed, "model": config.model,
                   "epochs": config.epochs, "n_train": config.n_train, "batch_size": config.batch_size,
                   "hyperparameters": {k: v for k, v in config.hyperparameters.items() if k != "teacher"},
                   "clean_accuracy": clean, "pgd_accuracy": robust, "n_eval": len(test),
                   "train_seconds": round(sum(log["seconds"] for log in logs), 2),
                   "seconds_per_epoch": round(sum(log["seconds"] for log in logs) / max(len(logs), 1), 2),
                   "get_model_seconds": round(wall, 2), "eval_seconds": round(evaluation, 2),
                   "final_log": {k: v for k, v in logs[-1].items() if isinstance(v, (int, float))}}
            rows = [r for r in rows if (r["dataset"], r["method"], r["seed"]) != (dataset, method, args.seed)]
            rows.append(row)
            done.append(row)
            write_json(out, args.scale, rows, args, device)
            print(f"   {method:<16} clean {100 * clean:6.2f}%  PGD {100 * robust:6.2f}%  train {row['train_seconds']:8.1f}s "
                  f"({row['seconds_per_epoch']:.1f}s/epoch)  this call {wall:7.1f}s  eval {evaluation:6.1f}s", flush=True)
    if done:
        print(f"\n{'dataset':<14} {'method':<16} {'model':<11} {'clean %':>8} {'PGD %':>7} {'train s':>9} {'eval s':>7}")
        for r in done:
            print(f"{r['dataset']:<14} {r['method']:<16} {r['model']:<11} {100 * r['clean_accuracy']:8.2f} "
                  f"{100 * r['pgd_accuracy']:7.2f} {r['train_seconds']:9.1f} {r['eval_seconds']:7.1f}")
        print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
