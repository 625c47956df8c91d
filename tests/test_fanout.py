"""rattrlib.fanout: jobs in dependency order, submitit's local executor writing the same records as a sequential
build, clear refusals before any compute."""

import pytest
import torch

from rattrlib.fanout import Job, dependency_order, run_jobs, zoo_jobs
from rattrlib.results import ResultsCache, cache_key
from rattrlib.zoo import zoo_config


def test_jobs_come_after_the_models_they_need():
    jobs = zoo_jobs("cpu", ["fashion_mnist"], ["teacher_aligned", "pgd_at", "natural"], seeds=[0], evaluate=True)
    names = [j.name for j in jobs]
    position = {name: i for i, name in enumerate(names)}
    assert position["model:fashion_mnist/natural/cpu/seed0"] < position["model:fashion_mnist/pgd_at/cpu/seed0"]
    assert position["model:fashion_mnist/pgd_at/cpu/seed0"] < position["model:fashion_mnist/teacher_aligned/cpu/seed0"]
    for method in ("natural", "pgd_at", "teacher_aligned"):
        assert position[f"model:fashion_mnist/{method}/cpu/seed0"] < position[f"evaluation:fashion_mnist/{method}/cpu/seed0"]
    assert len(names) == len(set(names)) == 6
    teacher_aligned = Job("model", "fashion_mnist", "teacher_aligned", "cpu", 0)
    assert {j.method for j in teacher_aligned.needs()} == {"pgd_at"} | (
        {zoo_config("fashion_mnist", "teacher_aligned", "cpu").init["method"]}
        if zoo_config("fashion_mnist", "teacher_aligned", "cpu").init else set())
    assert dependency_order(list(reversed(jobs)))[0].method == "natural"


def test_bad_requests_are_refused_naming_the_parameter_before_any_compute(tmp_path):
    with pytest.raises(ValueError, match="executor"):
        run_jobs([], executor="cluster")
    with pytest.raises(ValueError, match="workers"):
        run_jobs([], executor="local", workers=0)
    with pytest.raises(ValueError, match="datasets"):
        zoo_jobs("cpu", ["imagenet"])
    with pytest.raises(ValueError, match="kind"):
        Job("train", "fashion_mnist", "natural", "cpu", 0)


def test_slurm_without_sbatch_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    with pytest.raises(RuntimeError, match="sbatch"):
        run_jobs([Job("model", "fashion_mnist", "natural", "smoke", 0)], executor="slurm", folder=tmp_path / "jobs")


def _records(root):
    """{key: (weights, logs without their timings)} of every model record under ``root``."""
    cache, out = ResultsCache(root / "results"), {}
    for path in sorted((root / "results" / "model").glob("*.pt")):
        meta = torch.load(path, weights_only=True)["meta"]
        value = cache.load("model", meta["config"], seed=meta["seed"], dataset=meta["dataset"]).value
        logs = [{k: v for k, v in log.items() if "second" not in k and "time" not in k} for log in value["logs"]]
        out[path.stem] = (value["state_dict"], logs)
    return out


def _same(a, b):
    return a.keys() == b.keys() and all(
        a[k][1] == b[k][1] and all(torch.equal(a[k][0][n], b[k][0][n]) for n in a[k][0]) for k in a)


@pytest.mark.slow
def test_two_local_jobs_at_once_write_the_same_records_as_a_sequential_build(tmp_path, monkeypatch):
    jobs = [Job("model", "fashion_mnist", "natural", "smoke", seed) for seed in (0, 1)]
    jobs.append(Job("model", "fashion_mnist", "pgd_at", "smoke", 0))
    monkeypatch.setenv("RATTR_HOME", str(tmp_path / "sequential"))
    run_jobs(jobs, "sequential", threads=1)
    monkeypatch.setenv("RATTR_HOME", str(tmp_path / "local"))
    names = run_jobs(jobs, "local", workers=2, threads=1, folder=tmp_path / "jobs", poll_seconds=0.2)
    assert names == [j.name for j in jobs]
    sequential, local = _records(tmp_path / "sequential"), _records(tmp_path / "local")
    expected = {cache_key("model", zoo_config(j.dataset, j.method, j.scale), j.seed, j.dataset) for j in jobs}
    assert set(sequential) == set(local) == expected
    assert _same(sequential, local)
    assert ResultsCache(tmp_path / "local" / "results").clean_temporaries() == []


def test_list_prints_the_jobs_in_dependency_order_without_running_them(capsys):
    from rattrlib.fanout import main

    assert main(["--scale", "cpu", "--methods", "pgd_at", "natural", "--list"]) == 0
    assert capsys.readouterr().out.split() == ["model:fashion_mnist/natural/cpu/seed0",
                                               "model:fashion_mnist/pgd_at/cpu/seed0"]


def test_local_jobs_may_run_long_and_keep_the_gpus(tmp_path):
    """submitit's LocalExecutor kills a job after 2 minutes and hides the GPUs unless told otherwise."""
    from rattrlib.fanout import local_executor

    executor = local_executor(tmp_path, workers=2, timeout_min=600)
    assert executor.parameters["timeout_min"] == 600
    assert tuple(executor.parameters.get("visible_gpus", ())) == tuple(range(torch.cuda.device_count()))


def test_seeds_are_checked_not_silently_dropped():
    with pytest.raises(ValueError, match="seeds"):
        zoo_jobs("cpu", ["fashion_mnist"], ["natural"], seeds=[-1])
    with pytest.raises(ValueError, match="seeds"):
        zoo_jobs("cpu", ["fashion_mnist"], ["natural"], seeds=[])


def test_leaderboard_jobs_evaluate_on_the_chapters_protocol(monkeypatch):
    """A leaderboard job scores its model on exactly the protocol the chapter resolves (so the chapter's
    L.evaluate finds the cached row), after the model job; other data sets get no leaderboard job."""
    import rattrlib.fanout as F
    from rattrlib.chapters.leaderboard import LeaderboardSettings

    jobs = zoo_jobs("cpu", ["fashion_mnist", "mnist10k"], ["natural", "pgd_at"], seeds=[0, 1], leaderboard=True)
    names = [j.name for j in jobs]
    board = [j for j in jobs if j.kind == "leaderboard"]
    assert {(j.dataset, j.method, j.seed) for j in board} == {("fashion_mnist", m, s) for m in ("natural", "pgd_at")
                                                               for s in (0, 1)}
    for j in board:
        assert names.index(j.name.replace("leaderboard:", "model:")) < names.index(j.name)
    calls = []
    monkeypatch.setattr(F, "get_model", lambda *a, **k: (torch.nn.Linear(1, 1), []))
    monkeypatch.setattr(F.leaderboard, "evaluate", lambda model, **kw: calls.append(kw))
    Job("leaderboard", "fashion_mnist", "pgd_at", "smoke", 1)(threads=1)
    assert calls == [{"protocol": LeaderboardSettings.resolve("smoke").protocol, "name": "PGD-AT", "seed": 1}]
