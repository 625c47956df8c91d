"""Fan-out: train and evaluate the zoo as many jobs that share one results cache, through ``submitit``.

One job per model (and, with ``--evaluate``, one per IFIA evaluation of that model; with ``--leaderboard``, one per
evaluation of that model on the leaderboard chapter's protocol, which the chapter then loads). Jobs run
``sequential`` (in this process), ``local`` (``submitit.LocalExecutor``: subprocesses on this machine, at most
``workers`` at once, each with cores/``workers`` torch threads — two torch processes with default threads on
two cores run about 5× slower) or ``slurm`` (``submitit.AutoExecutor`` on a SLURM cluster, one job each, with
``afterok`` dependencies). A job that needs another one's model (a fine-tune its start model, teacher-aligned
training its PGD-AT teacher, an evaluation its model) starts after it; if it starts anyway (the model is
missing from the jobs given), the results cache's per-key lock makes it wait for whoever trains that model,
so every model is trained once.

    python -m rattrlib.fanout --scale cpu --datasets fashion_mnist --seeds 0 1 2 --executor local --workers 2
    python -m rattrlib.fanout --scale paper --datasets cifar10 --executor slurm --partition gpu --gpus 1 \\
        --timeout-min 2880 --evaluate
    python -m rattrlib.fanout --scale paper --datasets cifar10 --seeds 0 1 2 --leaderboard --executor slurm \
        --partition gpu --gpus 1        # then: make book SCALE=paper (07_leaderboard loads the cached rows)

Records are the same as a sequential build's bit for bit when the jobs run with the same number of torch
threads (floating-point reductions depend on it): pass ``threads`` to compare.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import torch
from tqdm import tqdm

from rattrlib import leaderboard
from rattrlib.chapters.leaderboard import NAMES, LeaderboardSettings
from rattrlib.config import SCALES, check_choice, check_int, rattr_home
from rattrlib.evaluation import evaluate_zoo_model, ifia_protocol
from rattrlib.settings import check_seeds
from rattrlib.zoo import ZOO_DATASETS, ZOO_METHODS, get_model, zoo_config

EXECUTORS = ("sequential", "local", "slurm")
JOB_KINDS = ("model", "evaluation", "leaderboard")


@dataclasses.dataclass(frozen=True)
class Job:
    """One zoo model to train (``kind="model"``), to evaluate with the IFIA protocol of its scale
    (``"evaluation"``) or with the leaderboard chapter's protocol of its scale (``"leaderboard"``: the default
    :class:`~rattrlib.chapters.leaderboard.LeaderboardSettings`, so the chapter finds the row in the cache)."""

    kind: str
    dataset: str
    method: str
    scale: str
    seed: int

    def __post_init__(self):
        check_choice("kind", self.kind, JOB_KINDS)
        zoo_config(self.dataset, self.method, self.scale, seed=self.seed)  # validates dataset, method, scale
        check_int("seed", self.seed, 0)

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.dataset}/{self.method}/{self.scale}/seed{self.seed}"

    def needs(self) -> list[Job]:
        """The model jobs whose results this one uses."""
        if self.kind in ("evaluation", "leaderboard"):
            return [dataclasses.replace(self, kind="model")]
        config = zoo_config(self.dataset, self.method, self.scale, seed=self.seed)
        start = [config.init["method"]] if config.init else []
        teacher = ["pgd_at"] if self.method == "teacher_aligned" else []
        return [dataclasses.replace(self, method=m) for m in start + teacher]

    def __call__(self, threads: Optional[int] = None) -> str:
        """Run the job (load what is cached, compute the rest) with ``threads`` torch threads; return its name."""
        previous = torch.get_num_threads()
        torch.set_num_threads(threads or previous)
        try:
            if self.kind == "model":
                get_model(self.dataset, self.method, self.scale, seed=self.seed, device="auto", progress=False)
            elif self.kind == "leaderboard":
                model, _ = get_model(self.dataset, self.method, self.scale, seed=self.seed, progress=False)
                leaderboard.evaluate(model, protocol=leaderboard_protocol(self.scale), name=NAMES[self.method],
                                     seed=self.seed)
            else:
                evaluate_zoo_model(self.dataset, self.method, ifia_protocol(self.dataset, self.scale),
                                   scale=self.scale, seed=self.seed, progress=False)
        finally:
            torch.set_num_threads(previous)
        return self.name


def leaderboard_protocol(scale: str) -> leaderboard.LeaderboardProtocol:
    """The protocol the leaderboard chapter runs at ``scale`` with its default settings."""
    return LeaderboardSettings.resolve(scale).protocol


def zoo_jobs(scale: str, datasets: Sequence[str] = ("fashion_mnist",), methods: Sequence[str] = ZOO_METHODS,
             seeds: Sequence[int] = (0,), evaluate: bool = False, leaderboard: bool = False) -> list[Job]:
    """The jobs of the zoo at ``scale`` (pairs without a preset skipped), each after the jobs it needs;
    leaderboard jobs only on the leaderboard protocol's data set."""
    check_choice("scale", scale, SCALES)
    for dataset in datasets:
        check_choice("datasets", dataset, sorted(ZOO_DATASETS))
    for method in methods:
        check_choice("methods", method, ZOO_METHODS)
    seeds = check_seeds("seeds", list(seeds))
    jobs = []
    for dataset in datasets:
        for method in methods:
            if not has_preset(dataset, method, scale):  # e.g. the SAT family on data without weak saliency
                continue
            for seed in seeds:
                jobs.append(Job("model", dataset, method, scale, seed))
                if evaluate:
                    jobs.append(Job("evaluation", dataset, method, scale, seed))
                if leaderboard and dataset == leaderboard_protocol(scale).dataset:
                    jobs.append(Job("leaderboard", dataset, method, scale, seed))
    return dependency_order(jobs)


def has_preset(dataset: str, method: str, scale: str) -> bool:
    """Whether the zoo has a preset for (dataset, method, scale); the names must be valid."""
    try:
        zoo_config(dataset, method, scale)
    except ValueError:
        return False
    return True


def dependency_order(jobs: Sequence[Job]) -> list[Job]:
    """``jobs`` with every job after those of ``jobs`` it needs (depth first, stable otherwise)."""
    given, ordered, seen = set(jobs), [], set()

    def visit(job: Job) -> None:
        if job in seen:
            return
        seen.add(job)
        for need in job.needs():
            if need in given:
                visit(need)
        ordered.append(job)

    for job in jobs:
        visit(job)
    return ordered


def run_jobs(jobs: Sequence[Job], executor: str = "local", *, workers: int = 2, threads: Optional[int] = None,
             folder: Optional[Path] = None, slurm: Optional[dict] = None, poll_seconds: float = 1.0,
             timeout_min: int = 7 * 24 * 60) -> list[str]:
    """Run ``jobs`` (see the module docstring) and return their names in order; raises the first failure.

    ``threads``: torch threads per job (default: this process's for ``sequential``, cores // ``workers`` for
    ``local``, 4 for ``slurm``); ``timeout_min``: a local job's time limit; ``folder``: submitit's logs (default
    ``$RATTR_HOME/jobs``); ``slurm``: ``AutoExecutor.update_parameters`` settings (e.g. ``slurm_partition``,
    ``gpus_per_node``, ``timeout_min``).
    """
    check_choice("executor", executor, EXECUTORS)
    workers = check_int("workers", workers, 1)
    default_threads = {"sequential": torch.get_num_threads(), "local": max(1, (os.cpu_count() or 1) // workers),
                       "slurm": 4}
    threads = check_int("threads", default_threads[executor] if threads is None else threads, 1)
    timeout_min = check_int("timeout_min", timeout_min, 1)
    jobs = dependency_order(jobs)
    if executor == "sequential":
        return [job(threads) for job in tqdm(jobs, desc="jobs", unit="job")]
    folder = Path(folder) if folder is not None else rattr_home() / "jobs"
    if executor == "slurm":
        return _run_slurm(jobs, folder, threads, slurm or {})
    return _run_local(jobs, local_executor(folder, workers, timeout_min), workers, threads, poll_seconds)


def local_executor(folder: Path, workers: int, timeout_min: int):
    """``submitit.LocalExecutor`` whose jobs may run ``timeout_min`` minutes (submitit's default is 2) and see
    this machine's GPUs, shared round-robin by the ``workers`` jobs (submitit hides them unless asked)."""
    import submitit

    executor = submitit.LocalExecutor(folder=folder)
    gpus = torch.cuda.device_count()
    executor.update_parameters(timeout_min=timeout_min, gpus_per_node=max(1, gpus // workers) if gpus else 0,
                               visible_gpus=tuple(range(gpus)))
    return executor


def _run_local(jobs: list[Job], executor, workers: int, threads: int, poll_seconds: float) -> list[str]:
    """At most ``workers`` jobs at once; a job starts when the jobs it needs have finished."""
    waiting, running, finished = list(jobs), {}, {}
    try:
        _schedule(jobs, executor, workers, threads, poll_seconds, waiting, running, finished)
    except BaseException:  # a failed job (or Ctrl-C): stop the others, which may hold cache locks
        for handle in running.values():
            handle.cancel(check=False)
        raise
    return [finished[job] for job in jobs]


def _schedule(jobs, executor, workers, threads, poll_seconds, waiting, running, finished) -> None:
    with tqdm(total=len(jobs), desc="jobs", unit="job") as bar:
        while waiting or running:
            for job in [j for j in waiting if all(n in finished or n not in jobs for n in j.needs())]:
                if len(running) >= workers:
                    break
                waiting.remove(job)
                running[job] = executor.submit(job, threads)
            time.sleep(poll_seconds if running else 0)
            for job, handle in list(running.items()):
                if handle.done():
                    finished[job] = handle.result()  # raises the job's exception, with its log's path
                    del running[job]
                    bar.update()
            if waiting and not running and not any(all(n in finished or n not in jobs for n in j.needs())
                                                   for j in waiting):
                raise RuntimeError(f"jobs {[j.name for j in waiting]} wait for jobs that never ran")


def _run_slurm(jobs: list[Job], folder: Path, threads: int, slurm: dict) -> list[str]:
    """One SLURM job per job, each after the jobs it needs (``afterok``); waits for all of them."""
    import submitit

    if shutil.which("sbatch") is None:
        raise RuntimeError("executor='slurm' needs SLURM's sbatch on PATH (run this on a cluster's login node); "
                           "use executor='local' on one machine")
    submitted = {}
    for job in jobs:
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        after = [submitted[n].job_id for n in job.needs() if n in submitted]
        extra = {"dependency": "afterok:" + ":".join(after), "kill-on-invalid-dep": "yes"} if after else {}
        executor.update_parameters(name=job.name, cpus_per_task=threads,
                                   slurm_additional_parameters=extra, **slurm)
        submitted[job] = executor.submit(job, threads)
    return [submitted[job].result() for job in tqdm(jobs, desc="jobs", unit="job")]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=SCALES, default="cpu")
    parser.add_argument("--datasets", nargs="+", default=["fashion_mnist"], choices=sorted(ZOO_DATASETS))
    parser.add_argument("--methods", nargs="+", default=list(ZOO_METHODS), choices=ZOO_METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--evaluate", action="store_true", help="also one IFIA evaluation job per model")
    parser.add_argument("--leaderboard", action="store_true",
                        help="also one leaderboard evaluation job per model (on the leaderboard's data set)")
    parser.add_argument("--executor", choices=EXECUTORS, default="local")
    parser.add_argument("--list", action="store_true", help="print the jobs in dependency order and stop")
    parser.add_argument("--workers", type=int, default=2, help="local jobs at once (each gets cores/workers threads)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per job")
    parser.add_argument("--folder", type=Path, default=None, help="submitit logs (default $RATTR_HOME/jobs)")
    parser.add_argument("--partition", default=None, help="SLURM partition")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs per SLURM job")
    parser.add_argument("--timeout-min", type=int, default=24 * 60, help="time limit per job (minutes)")
    args = parser.parse_args(argv)
    jobs = zoo_jobs(args.scale, args.datasets, args.methods, args.seeds, args.evaluate, args.leaderboard)
    if args.list:
        print("\n".join(job.name for job in jobs))
        return 0
    slurm = {"timeout_min": args.timeout_min, "gpus_per_node": args.gpus}
    if args.partition:
        slurm["slurm_partition"] = args.partition
    try:
        done = run_jobs(jobs, args.executor, workers=args.workers, threads=args.threads, folder=args.folder,
                        slurm=slurm, timeout_min=args.timeout_min)
    except RuntimeError as err:
        print(f"rattrlib.fanout: {err}", file=sys.stderr)
        return 1
    print(f"{len(done)} jobs done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
