"""The training cost of a method, measured: seconds per batch and per epoch on this machine.

SSR (Wang et al. 2020, §5.2) claims that its regulariser "is more efficient than existing output (Madry's
training) and attribution robustness (IG-NORM) approaches" and records "the per-epoch time with batch size of
32"; the SAT poster makes a similar claim against PGD training. The zoo's training logs hold each run's
seconds, but those runs may have shared the CPU with other jobs and used different subsets and batch sizes.
:func:`training_cost` times every method on the same batches, back to back, with the same batch size, so the
ratios between methods are comparable:

>>> rows = [training_cost(zoo_config("fashion_mnist", m, "cpu"), batches=4, batch_size=32, start=natural)
...         for m in ("natural", "ssr", "pgd_at", "ig_norm")]

Each timed batch is one optimiser step exactly as :func:`~rattrlib.train.loop.fit` takes it (the method's
loss, ``zero_grad``, ``backward``, ``step``), after ``warmup`` untimed batches (allocator and kernel warm-up).
The model is a fresh copy: the network ``config.model`` with the weights of ``start`` when given (the
zoo's cpu-scale methods fine-tune the natural model, and a trained network's cost can differ from a random
one's, e.g. by denormals), else the architecture's seeded initialisation; ``start`` itself is not modified.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import platform
import time
from typing import Optional

import torch
from torch import nn

from rattrlib.config import check_int, resolve_device, seed_everything
from rattrlib.data import ImageDataset, load_dataset
from rattrlib.models import build_model
from rattrlib.results import ResultsCache, data_fingerprint, model_fingerprint
from rattrlib.train.base import Batch, Progress
from rattrlib.train.cached import TrainConfig
from rattrlib.train.loop import make_optimiser
from rattrlib.train.registry import make_method

#: bump when the measurement changes, so cached costs are re-measured
COST_VERSION = 2


def machine_description(device: torch.device) -> dict:
    """Where the timing ran: host name, CPU / GPU model, core count, torch version and threads.

    Everything but the host name is part of the cache key: a measurement is reused on any machine of the same
    kind (a container's host name changes between sessions; its hardware does not)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"host": platform.node(), "cpu": cpu, "cpu_count": os.cpu_count(), "gpu": gpu,
            "torch": str(torch.__version__), "threads": torch.get_num_threads(), "device": device.type}


@contextlib.contextmanager
def _torch_threads(threads: Optional[int]):
    """torch intra-op threads set to ``threads`` inside the block (None: unchanged), restored on exit."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _measure(config, data: ImageDataset, start: Optional[nn.Module], batches: int, batch_size: int, warmup: int,
             seed: int, device: torch.device) -> dict:
    seed_everything(seed)
    model = build_model(config.model, data.shape, len(data.classes))
    if start is not None:
        model.load_state_dict(copy.deepcopy(start.state_dict()))
    model = model.to(device)
    method = make_method(config.method, **config.hyperparameters)
    method.prepare(model, data)
    optimiser = make_optimiser(config.optimiser, model, config.lr)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    times, cpu_times = [], []
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    model.train()
    for b in range(warmup + batches):
        index = order[b * batch_size:(b + 1) * batch_size]
        batch = Batch(data.images[index].to(device), data.labels[index].to(device), index)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        tick, cpu_tick = time.perf_counter(), time.process_time()
        loss, _ = method.loss(model, batch, Progress(0, 1, b, warmup + batches))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - tick)
        cpu_times.append(time.process_time() - cpu_tick)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    timed, cpu_timed = times[warmup:], cpu_times[warmup:]
    return {"seconds_per_batch": sum(timed) / len(timed), "batch_seconds": timed,
            "cpu_seconds_per_batch": sum(cpu_timed) / len(cpu_timed), "batch_cpu_seconds": cpu_timed,
            "load_average_start": load_start, "load_average_end": load_end,
            "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def training_cost(config, *, batches: int = 4, batch_size: Optional[int] = None, warmup: int = 1,
                  epoch_images: Optional[int] = None, start: Optional[nn.Module] = None,
                  data: Optional[ImageDataset] = None, seed: int = 0, device: str = "auto",
                  threads: Optional[int] = None, cache: Optional[ResultsCache] = None) -> dict:
    """Time ``batches`` training steps of ``config``'s method (a :class:`~rattrlib.train.TrainConfig`) after
    ``warmup`` untimed ones, and scale to one epoch.

    Args:
        config: the run to time: its network, method and hyperparameters, optimiser and learning rate.
        batches: timed optimiser steps (≥ 1). warmup: untimed steps before them (≥ 0).
        batch_size: images per step (default ``config.batch_size``); give one value to every method to compare
            them (SSR timed all methods at batch 32).
        epoch_images: images in one epoch (default: the whole training split of ``config.dataset``, the
            papers' "per-epoch time"; ``config.n_train`` is the zoo's cpu-scale subset, not an epoch).
        start: a model whose weights the timed copy starts from (not modified); None: seeded initialisation.
        data: the training images (default ``load_dataset(config.dataset, "train")``); the steps use a seeded
            random order of it, so it must hold ``(warmup + batches) · batch_size`` images.
        seed: seeds the initialisation, the batch order and the methods' random draws.
        device: "auto", "cpu" or "cuda".
        threads: torch intra-op threads during the measurement (restored afterwards); None keeps the current
            setting. On a CPU shared with other jobs, ``threads=1`` keeps the CPU seconds a measure of the work
            (several threads spin while they wait for a busy core, and their wall time swings with the load).
        cache: a :class:`~rattrlib.results.ResultsCache` to store the measurement under (config, start
            weights' fingerprint, batches, batch size, warm-up, seed, and this machine's hardware: CPU model and
            count, GPU, threads, torch) — a re-run on a machine of the same kind reuses it; None measures every
            call.

    Returns a dict: ``method``, ``batch_size``, ``batches``, ``seconds_per_batch`` (mean wall time of the timed
    steps), ``batch_seconds`` (each step), ``cpu_seconds_per_batch`` / ``batch_cpu_seconds`` (the process's CPU
    time, ``time.process_time``: on a CPU shared with other jobs the wall time includes waiting for a core, the
    CPU time much less so), ``images_per_second``, ``epoch_images``, ``seconds_per_epoch`` and
    ``cpu_seconds_per_epoch`` (= per batch · ⌈epoch_images / batch_size⌉), the 1-minute load average before
    and after (a contended CPU inflates the wall times), ``measured`` (UTC time) and ``machine`` (the description
    of the machine that measured it, host name included).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    batches = check_int("batches", batches, 1)
    warmup = check_int("warmup", warmup, 0)
    batch_size = check_int("batch_size", config.batch_size if batch_size is None else batch_size, 1)
    if threads is not None:
        threads = check_int("threads", threads, 1)
    target = resolve_device(device)
    if data is None:
        data = load_dataset(config.dataset, "train")
    need = (warmup + batches) * batch_size
    if len(data) < need:
        raise ValueError(f"{warmup} warm-up + {batches} timed batches of {batch_size} need {need} images; "
                         f"data has {len(data)}")
    epoch_images = check_int("epoch_images", len(data) if epoch_images is None else epoch_images, 1)
    with _torch_threads(threads):
        machine = machine_description(target)

    def compute() -> dict:
        with _torch_threads(threads):
            return {**_measure(config, data, start, batches, batch_size, warmup, seed, target), "machine": machine}

    if cache is None:
        measured = compute()
    else:
        key = {"kind": "training_cost", "version": COST_VERSION, "config": config, "batches": batches,
               "batch_size": batch_size, "warmup": warmup,
               "machine": {k: v for k, v in machine.items() if k != "host"},
               "start": None if start is None else model_fingerprint(start),
               "data": data_fingerprint(data.images, data.labels)}
        measured = cache.get_or_compute("training_cost", key, compute, seed=seed, dataset=config.dataset)
    per_batch, n_batches = measured["seconds_per_batch"], math.ceil(epoch_images / batch_size)
    return {"method": config.method, "batch_size": batch_size, "batches": batches, **measured,
            "images_per_second": batch_size / per_batch, "epoch_images": epoch_images,
            "seconds_per_epoch": per_batch * n_batches,
            "cpu_seconds_per_epoch": measured["cpu_seconds_per_batch"] * n_batches}


__all__ = ["COST_VERSION", "machine_description", "training_cost"]
