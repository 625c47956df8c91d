"""Batched IFIA top-k vs the same attack run one image at a time (the per-image loop is the oracle).

MNIST CNN (Madry et al.'s architecture, ``rattrlib.models.MnistCNN``), IG with m path points inside the attack,
k = 100, ε = 0.1, α = 0.01 (the Fashion-MNIST setting of RAR/GALI). Weights: a quick natural training on
Fashion-MNIST (offline data) when available, else random weights (``--weights random``). Both runs are timed
in this process, one after the other, so the ratio is the point, not the absolute seconds.

Agreement is checked image by image: same success flag and best step, x_adv within 1e-6. In float32 a sign
step can flip where a gradient entry is ~1e-7 and the batch size changes the round-off; such images are
counted and reported (``--dtype float64`` removes them, at a cost).

``--precision bf16`` runs the batched attack's gradient steps in bfloat16 (the cpu book's setting where the CPU
has bf16 units) against the fp32 loop: then agreement means the same success flags and mean top-k ∩ within the
0.5-point tolerance of ``bench_precision.py``, not identical iterates.

Machine load matters: with 2 threads on 2 cores that other jobs also use, OpenMP spin-waits slow the many small
forwards of the per-image loop far more than the batched run (measured 2026-11-22 at load average ~4–5: loop
46 s/img/100 steps with 2 threads vs 7 s with 1 thread; batched 6.3 vs 4.9), which inflates the ratio. The JSON
records the load average; compare ``--threads 1`` on a busy machine.

The speed-up batching can give is bounded by how far the CPU is from its arithmetic rate when the loop feeds it
one image (m path points) at a time. So the benchmark also counts the run's floating-point operations
(``_machine.FlopCounter``; the two runs do the same arithmetic) and measures a **saturation curve**: seconds per
image-step of the same attack on batches of 1, 2, 4, … images. The best GFLOP/s on that curve over the GFLOP/s at
one image is the largest speed-up any batching can reach on this machine at this precision.

    python benchmarks/bench_ifia_batched.py            # N = 32, 30 steps
    python benchmarks/bench_ifia_batched.py --quick    # N = 4, 3 steps: a fast check that it runs

Writes ``benchmarks/results/ifia_batched.json`` (``--out`` to change; ``--quick`` writes nothing by default).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from rattrlib.attacks import IFIA
from rattrlib.models import MnistCNN

from _machine import FlopCounter, machine_info

RESULTS = Path(__file__).resolve().parent / "results"


def quick_model(weights: str, train_images: int, seed: int):
    """MnistCNN with random weights, or after one quick epoch of natural training on Fashion-MNIST; returns
    (model, test images, test labels, what was used)."""
    torch.manual_seed(seed)
    model = MnistCNN()
    if weights == "quick":
        try:
            from rattrlib.data import load_dataset
            train, test = load_dataset("fashion_mnist", "train"), load_dataset("fashion_mnist", "test")
        except Exception as err:  # noqa: BLE001 - the benchmark still runs without the data
            print(f"Fashion-MNIST not available ({type(err).__name__}); using random weights and uniform images")
            weights = "random"
    if weights == "quick":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(train.images.shape[0], generator=g)[:train_images]
        model.train()
        for idx in order.split(64):
            opt.zero_grad()
            F.cross_entropy(model(train.images[idx]), train.labels[idx]).backward()
            opt.step()
        model.eval()
        return model, test.images, test.labels, f"1 pass of Adam over {train_images} Fashion-MNIST images"
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(512, 1, 28, 28, generator=g)
    return model.eval(), x, model(x).argmax(1).detach(), "random weights, uniform images"


def saturation_curve(make_attack, x, sizes, steps: int) -> dict:
    """Seconds and GFLOP/s per image-step of ``make_attack(steps)`` on the first n images, for n in ``sizes``
    (each after a warm-up on the same n)."""
    attack = make_attack(steps)
    with FlopCounter() as counter:
        attack.perturb(x[:1])
    flops_per_image_step = counter.flops / steps
    curve = {}
    for n in sizes:
        attack.perturb(x[:n])
        start = time.perf_counter()
        attack.perturb(x[:n])
        seconds = (time.perf_counter() - start) / (n * steps)
        curve[str(n)] = {"seconds_per_image_step": seconds, "gflops_per_second": flops_per_image_step / seconds / 1e9}
        print(f"  {n:4d} images per batch: {1e3 * seconds:7.1f} ms per image-step, "
              f"{curve[str(n)]['gflops_per_second']:6.1f} GFLOP/s", flush=True)
    best = max(c["gflops_per_second"] for c in curve.values())
    return {"steps": steps, "flops_per_image_step": flops_per_image_step, "images_per_batch": curve,
            "largest_batching_speedup": best / curve[str(sizes[0])]["gflops_per_second"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=32, help="images")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--m", type=int, default=10, help="IG path points inside the attack")
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--alpha", type=float, default=0.01)
    p.add_argument("--beta", type=float, default=10.0)
    p.add_argument("--weights", choices=["quick", "random"], default="quick")
    p.add_argument("--train-images", type=int, default=6000)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="gradient steps of the batched run (the per-image loop, the oracle, stays fp32)")
    p.add_argument("--sweep-steps", type=int, default=5, help="attack steps per point of the saturation curve")
    p.add_argument("--quick", action="store_true", help="N = 4, 3 steps, random weights")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON path (default results/ifia_batched.json; --quick writes nothing unless given)")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.steps, args.weights, args.sweep_steps = 4, 3, "random", 2
    elif args.out is None:
        args.out = RESULTS / "ifia_batched.json"
    torch.set_num_threads(args.threads)
    machine = machine_info()  # with the load average: other jobs on the cores slow the small-batch loop most
    dtype = getattr(torch, args.dtype)

    model, images, labels, weights = quick_model(args.weights, args.train_images, args.seed)
    with torch.no_grad():
        correct = torch.nonzero(model(images[:4 * args.n]).argmax(1) == labels[:4 * args.n]).flatten()
    x = images[correct[:args.n]] if correct.numel() >= args.n else images[:args.n]
    model, x = model.to(dtype), x.to(dtype)
    def ifia(precision, steps=args.steps):
        return IFIA(model, "integrated_gradients", {"n_steps": args.m}, objective="topk", eps=args.eps,
                    alpha=args.alpha, steps=steps, k=args.k, beta=args.beta,
                    internal_batch_size=max(args.m, min(500, args.n * args.m)), precision=precision)

    attack, fast = ifia("fp32"), ifia(args.precision)
    attack.perturb(x[:1])  # warm-up (allocator, kernels)
    fast.perturb(x[:2])

    with FlopCounter() as counter:
        t0 = time.perf_counter()
        batched = fast.perturb(x)
        t_batched = time.perf_counter() - t0
    flops_batched = counter.flops
    with FlopCounter() as counter:
        t0 = time.perf_counter()
        singles = [attack.perturb(x[i:i + 1]) for i in range(x.shape[0])]
        t_loop = time.perf_counter() - t0
    flops_loop = counter.flops
    sizes = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= x.shape[0]]
    print(f"saturation curve ({args.precision}, {args.sweep_steps} steps):")
    curve = saturation_curve(lambda steps: ifia(args.precision, steps), x, sizes, args.sweep_steps)

    n = x.shape[0]
    same = [bool(batched.success[i] == s.success[0]) and bool(batched.best_step[i] == s.best_step[0])
            and float((batched.x_adv[i] - s.x_adv[0]).abs().max()) <= 1e-6 for i, s in enumerate(singles)]
    loop_topk = torch.cat([s.topk_intersection for s in singles])
    result = {
        "benchmark": "IFIA top-k, batched vs one image at a time",
        **machine, "load_average_1min_end": os.getloadavg()[0], "dtype": args.dtype, "batched_precision": args.precision, "model": "MnistCNN", "weights": weights,
        "config": {"n_images": n, "steps": args.steps, "ig_n_steps": args.m, "k": args.k, "eps": args.eps,
                   "alpha": args.alpha, "beta": args.beta, "internal_batch_size": attack.internal_batch_size},
        "seconds": {"batched": t_batched, "per_image_loop": t_loop},
        "images_per_second": {"batched": n / t_batched, "per_image_loop": n / t_loop},
        "seconds_per_image_per_100_steps": {"batched": t_batched / n * 100 / args.steps,
                                            "per_image_loop": t_loop / n * 100 / args.steps},
        "speedup_batched_over_loop": t_loop / t_batched,
        # the same arithmetic in both runs (counted, not assumed), so the speed-up is a rate ratio
        "flops": {"batched": flops_batched, "per_image_loop": flops_loop},
        "gflops_per_second": {"batched": flops_batched / t_batched / 1e9, "per_image_loop": flops_loop / t_loop / 1e9},
        "saturation": curve,
        "agreement": {"images_identical": int(sum(same)), "n_images": n,
                      "success_flags_equal": bool(torch.equal(batched.success,
                                                              torch.cat([s.success for s in singles]))),
                      "max_abs_x_adv_diff": float((batched.x_adv - torch.cat([s.x_adv for s in singles])).abs().max()),
                      "mean_topk_batched": float(batched.topk_intersection.mean()),
                      "mean_topk_loop": float(loop_topk.mean()),
                      "mean_topk_difference_points": 100 * float(batched.topk_intersection.mean() - loop_topk.mean())},
        "success_rate": float(batched.success.float().mean()),
    }
    print(f"IFIA top-k, MnistCNN ({weights}), N={n}, {args.steps} steps, IG m={args.m}, k={args.k}, "
          f"{args.dtype}, batched in {args.precision}, {torch.get_num_threads()} threads")
    print(f"{'run':<16}{'seconds':>10}{'images/s':>11}{'s/img/100 steps':>17}")
    for name, key in (("batched", "batched"), ("per-image loop", "per_image_loop")):
        print(f"{name:<16}{result['seconds'][key]:>10.2f}{result['images_per_second'][key]:>11.2f}"
              f"{result['seconds_per_image_per_100_steps'][key]:>17.2f}")
    a = result["agreement"]
    print(f"speed-up batched / loop: {result['speedup_batched_over_loop']:.2f}x; identical images "
          f"{a['images_identical']}/{n}; mean top-k ∩ batched {a['mean_topk_batched']:.3f} vs loop "
          f"{a['mean_topk_loop']:.3f}; success rate {result['success_rate']:.2f}")
    print(f"GFLOP/s batched {result['gflops_per_second']['batched']:.1f}, loop "
          f"{result['gflops_per_second']['per_image_loop']:.1f}; the saturation curve allows at most "
          f"{curve['largest_batching_speedup']:.2f}x over one image per batch")
    if args.out is not None:
        write_json(result, args.out)
    return result


def write_json(result: dict, path: Path) -> None:
    """Atomic write (a temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
