"""bf16 vs fp32 on this CPU: speed of every training step and of the IFIA attack, and whether bf16 changes results.

Three parts, all in one process so the ratios are comparable:

1. **speed**: seconds per training batch of every zoo method (cpu presets, MNIST CNN, Fashion-MNIST, batch 128),
   fp32 vs ``torch.autocast`` bf16 (:mod:`rattrlib.precision`), and of an IFIA top-k batch (IG m = 5, 100 images);
2. **evaluation**: the same trained model and images attacked by IFIA in fp32 and in bf16 gradient steps — mean
   top-k ∩ and Kendall τ of each, their paired difference, and how many images changed success flag (the scores
   themselves are always computed in fp32);
3. **training**: for each trainer in ``--trainers``, the zoo's cpu model trained with ``--seeds`` in fp32 and in
   bf16 (fp32 ones are the book's own cached models), each evaluated (clean accuracy on the test set, PGD-40 on
   1000 images, IFIA top-k on ``--n-ifia`` images): is every bf16 mean within the fp32 seed-to-seed spread
   (range of the fp32 seeds, widened by nothing)?

    python benchmarks/bench_precision.py                          # all three parts (≈ 1 h on 2 cores)
    python benchmarks/bench_precision.py --parts speed evaluation # minutes
    python benchmarks/bench_precision.py --quick                  # a fast check that it runs; writes nothing
    python benchmarks/bench_precision.py --parts speed --tag "AVX512-BF16 without AMX"  # beside another CPU's

Writes ``benchmarks/results/precision.json``. The defaults rattr uses (``zoo``: ``TrainConfig.precision``,
``IFIAProtocol.precision``) are decided from this file and stated in the book's precision section.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from rattrlib.attacks import IFIA
from rattrlib.data import load_dataset
from rattrlib.evaluation import evaluate_model, ifia_protocol
from rattrlib.precision import cpu_has_bf16_units
from rattrlib.train import train_cached
from rattrlib.zoo import ZOO_METHODS, eval_pgd, get_model, zoo_config

from _machine import machine_info
from bench_train_methods import seconds_per_batch  # the same timed step, with a precision

RESULTS = Path(__file__).resolve().parent / "results"
PRECISIONS = ("fp32", "bf16")


def speed(args) -> dict:
    data = load_dataset("fashion_mnist", "train").subset((args.batches + 1) * 128, seed=0)
    out = {}
    for name in ZOO_METHODS:
        s = {p: seconds_per_batch(name, data, 128, args.batches, p) for p in PRECISIONS}
        out[name] = {**s, "speedup": s["fp32"] / s["bf16"]}
        print(f"train {name:16s} fp32 {s['fp32']:.3f} s  bf16 {s['bf16']:.3f} s  ×{out[name]['speedup']:.2f}",
              flush=True)
    model, _ = get_model("fashion_mnist", "natural", "cpu", seed=0, progress=False)
    test = load_dataset("fashion_mnist", "test").subset(args.n_ifia, seed=0)
    ifia = {}
    for p in PRECISIONS:
        attack = IFIA(model, "integrated_gradients", {"n_steps": 5}, eps=0.1, alpha=0.01, steps=args.ifia_steps,
                      k=100, beta=10.0, internal_batch_size=500, precision=p)
        start = time.perf_counter()
        attack.perturb(test.images)
        ifia[p] = time.perf_counter() - start
    out["ifia_topk"] = {**ifia, "speedup": ifia["fp32"] / ifia["bf16"], "images": args.n_ifia,
                        "steps": args.ifia_steps}
    print(f"IFIA top-k ({args.n_ifia} images, {args.ifia_steps} steps): fp32 {ifia['fp32']:.1f} s, "
          f"bf16 {ifia['bf16']:.1f} s", flush=True)
    return out


def evaluation(args) -> dict:
    """The same models and images under fp32 and bf16 attack steps: paired differences of the scores."""
    out = {}
    for method in args.trainers:
        model, _ = get_model("fashion_mnist", method, "cpu", seed=0, progress=False)
        test = load_dataset("fashion_mnist", "test")
        reports = {}
        for p in PRECISIONS:
            protocol = ifia_protocol("fashion_mnist", "cpu", n_eval=args.n_ifia, precision=p, n_pgd=32, n_clean=32)
            reports[p] = evaluate_model(model, test, eval_pgd("fashion_mnist"), protocol, progress=False).ifia
        a, b = (reports[p].per_image[reports[p].per_image["correct"]] for p in PRECISIONS)
        diff_topk = 100 * (b["topk_intersection"] - a["topk_intersection"])
        out[method] = {"images": int(len(a)),
                       "topk_fp32": 100 * float(a["topk_intersection"].mean()),
                       "topk_bf16": 100 * float(b["topk_intersection"].mean()),
                       "topk_mean_difference_points": float(diff_topk.mean()),
                       "topk_mean_abs_difference_points": float(diff_topk.abs().mean()),
                       "kendall_fp32": float(a["kendall_tau"].mean()), "kendall_bf16": float(b["kendall_tau"].mean()),
                       "success_flags_changed": int((a["success"] != b["success"]).sum())}
        print(f"eval {method:12s} top-k fp32 {out[method]['topk_fp32']:.1f} bf16 {out[method]['topk_bf16']:.1f} "
              f"(mean diff {out[method]['topk_mean_difference_points']:+.2f} points)", flush=True)
    return out


def training(args, save=lambda part: None) -> dict:
    """Models trained in fp32 and bf16 with the same seeds: is each bf16 mean inside the fp32 seed range?
    ``save(part)`` is called after each trainer, so a long run that is stopped keeps the trainers it finished."""
    test = load_dataset("fashion_mnist", "test")
    protocol = ifia_protocol("fashion_mnist", "cpu", n_eval=args.n_ifia)
    out = {}
    for method in args.trainers:
        scores = {p: [] for p in PRECISIONS}
        for p in PRECISIONS:
            for seed in args.seeds:
                config = dataclasses.replace(zoo_config("fashion_mnist", method, "cpu", seed=seed), precision=p)
                start = time.perf_counter()
                model, logs = train_cached(config, seed=seed, progress=False)
                ev = evaluate_model(model, test, eval_pgd("fashion_mnist"), protocol, seed=seed, progress=False)
                row = ev.row()
                scores[p].append({"clean": float(row["clean acc. (%)"]), "pgd": float(row["PGD acc. (%)"]),
                                  "topk": float(row["top-k ∩ (%)"]), "train_seconds": sum(l["seconds"] for l in logs),
                                  "wall_seconds": time.perf_counter() - start})
                print(f"train {method:12s} {p} seed {seed}: {scores[p][-1]}", flush=True)
        verdict = {}
        for key in ("clean", "pgd", "topk"):
            ref = [s[key] for s in scores["fp32"]]
            mean16 = float(np.mean([s[key] for s in scores["bf16"]]))
            verdict[key] = {"fp32_seeds": ref, "fp32_range": [min(ref), max(ref)], "bf16_mean": mean16,
                            "bf16_seeds": [s[key] for s in scores["bf16"]],
                            "within_fp32_seed_range": min(ref) <= mean16 <= max(ref)}
        # medians: one seed's time can be inflated by other work on the cores; fp32 models may come from the cache
        out[method] = {"machine": machine_info(), "seeds": list(args.seeds), "n_ifia": args.n_ifia,
                       "scores": scores, "verdict": verdict,
                       "train_seconds_ratio": float(np.median([s["train_seconds"] for s in scores["fp32"]])
                                                    / np.median([s["train_seconds"] for s in scores["bf16"]]))}
        save(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["speed", "evaluation", "training"],
                        choices=["speed", "evaluation", "training"])
    parser.add_argument("--trainers", nargs="+", default=["natural", "pgd_at", "art"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--n-ifia", type=int, default=100)
    parser.add_argument("--ifia-steps", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tag", default="", help="store the parts as '<part> (<tag>)', beside another machine's")
    args = parser.parse_args()
    if not cpu_has_bf16_units():
        raise SystemExit("this CPU has no bf16 units (amx_bf16 / avx512_bf16): nothing to compare")
    if args.quick:
        args.batches, args.n_ifia, args.ifia_steps, args.seeds = 1, 8, 2, [0]
    torch.set_num_threads(2)
    result = {"benchmark": "bf16 autocast vs fp32 on the CPU's matrix units", **machine_info(), "args": vars(args)}

    def save(part_name: str, part: dict) -> None:
        if args.quick:
            return
        key = f"{part_name} ({args.tag})" if args.tag else part_name
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / "precision.json"
        old = json.loads(path.read_text()) if path.exists() else {}
        if part_name == "training":  # trainers run separately accumulate too
            part = {**old.get(key, {}), **part}
        # parts run separately (on other machines) accumulate in one file, each with the machine it ran on; the
        # training part's trainers may come from several runs, so each trainer records its own machine
        old[key] = part
        if part_name != "training":
            old.setdefault("machine_of_part", {})[key] = {**result, "load_average_1min_end": os.getloadavg()[0]}
        path.write_text(json.dumps(old, indent=2) + "\n")
        print(f"wrote {path} ({part_name})", flush=True)

    for part in args.parts:
        if part == "training":
            save(part, training(args, save=lambda out: save("training", out)))
        else:
            save(part, {"speed": speed, "evaluation": evaluation}[part](args))


if __name__ == "__main__":
    main()
