"""Chapter 02 (RAR): settings rejected by name before compute, claims and their margins, the tables and verdicts
built from per-image measurements (synthetic here, no training)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from rattrlib.chapters import rar
from rattrlib.chapters._common import METHOD_NAMES, PLUS_MINUS
from rattrlib.claims import RANDOM, Measurements, check_claims
from rattrlib.settings import ChapterSettings


def test_presets_hold_every_field_and_three_seeds_at_cpu():
    fields = {f.name for f in dataclasses.fields(rar.RARSettings)} - {"scale", "device"}
    for scale, preset in rar.RARSettings.PRESETS.items():
        assert set(preset) == fields, scale
    assert rar.RARSettings.resolve("cpu").seeds == (0, 1, 2)
    assert len(rar.RARSettings.resolve("smoke").seeds) == 2
    assert issubclass(rar.RARSettings, ChapterSettings)


@pytest.mark.parametrize("params, name", [
    ({"datasets": ["fashion_mnist", "nope"]}, "datasets[1]='nope' is not valid"),
    ({"datasets": "fashion_mnist"}, "datasets='fashion_mnist' must be a list"),
    ({"methods": ["natural", "natural"]}, "methods"),
    ({"methods": ["art"]}, "methods[0]='art'"),
    ({"eps": 2.0}, "eps"),
    ({"alpha": 0.0}, "alpha"),
    ({"attack_steps": 0}, "attack_steps"),
    ({"k": 1000}, "k=1000"),
    ({"beta": -1.0}, "beta"),
    ({"n_eval": 1}, "n_eval"),
    ({"n_show": 11}, "n_show"),
    ({"seeds": [0, 0]}, "seeds"),
    ({"seed": 0}, "unknown parameter"),
])
def test_bad_settings_are_rejected_by_name(params, name):
    with pytest.raises(ValueError, match=name.replace("[", r"\[").replace("]", r"\]")):
        rar.RARSettings.resolve("smoke", **params)


def test_topk_is_per_dataset_as_in_gali_unless_given():
    s = rar.RARSettings.resolve("cpu", datasets=["fashion_mnist", "mnist10k"])
    assert s.protocol("fashion_mnist").k == 100 and s.protocol("mnist10k").k == 200   # GALI §10.2 / §10.3
    assert s.protocol("mnist10k").eps == 0.3 and s.protocol("fashion_mnist").eps == 0.1
    assert rar.RARSettings.resolve("cpu", datasets=["mnist10k"], k=50).protocol("mnist10k").k == 50


def test_claims_construct_with_unique_ids_and_margins_from_the_papers_numbers():
    claims = check_claims(rar.CLAIMS)
    assert len({c.id for c in claims}) == len(claims) == 3 * 2 * 6
    by_id = {c.id: c for c in claims}
    # GALI Table 1: F-MNIST Nat 90.86 vs RAR 85.44 (5.42 → 6 points), AT 73.01 vs RAR 70.26 (2.75 → 3);
    # MNIST 99.17 vs 98.34 (0.83 → 1), 92.47 vs 88.17 (4.30 → 5)
    assert by_id["rar.fashion_mnist.clean_drop.ig_norm"].margin == pytest.approx(0.06)
    assert by_id["rar.fashion_mnist.pgd_vs_at.ig_sum_norm"].margin == pytest.approx(0.03)
    assert by_id["rar.mnist10k.clean_drop.ig_sum_norm"].margin == pytest.approx(0.01)
    assert by_id["rar.mnist.pgd_vs_at.ig_norm"].margin == pytest.approx(0.05)
    for c in claims:
        assert c.margin_reason and c.says
        if c.metric != "accuracy":
            assert c.margin == 0 and c.relation == "better" and c.attributional
        else:
            assert c.relation == "not_worse"


def test_whole_points_up():
    assert rar.whole_points_up(0.0542) == pytest.approx(0.06)
    assert rar.whole_points_up(0.03) == pytest.approx(0.03)
    assert rar.whole_points_up(0.0275) == pytest.approx(0.03)


def synthetic_result(seeds=(0, 1, 2), n=60):
    """Measurements where the RAR rows are far more attribution-robust than natural and PGD-AT, keep clean
    accuracy and PGD accuracy: every claim should hold."""
    rng = np.random.default_rng(0)
    settings = rar.RARSettings.resolve("smoke", seeds=list(seeds))
    m = Measurements()
    level = {"Natural": 0.3, "PGD-AT": 0.45, "IG-NORM (RAR)": 0.8, "IG-SUM-NORM (RAR)": 0.8}  # display names
    for seed in seeds:
        for row, value in level.items():
            m.add(row, "clean", "accuracy", seed, np.ones(n), dataset="fashion_mnist")
            m.add(row, "pgd", "accuracy", seed, (np.arange(n) % 10) < (0 if row == "Natural" else 7),
                  dataset="fashion_mnist")
            for metric in ("topk_intersection", "kendall_tau"):
                m.add(row, "ifia_topk", metric, seed, np.clip(value + 0.02 * rng.standard_normal(n), 0, 1),
                      dataset="fashion_mnist")
                m.add(row, RANDOM, metric, seed, np.clip(0.9 + 0.02 * rng.standard_normal(n), 0, 1),
                      dataset="fashion_mnist")
    return rar.RARResult(settings, {}, m, {})


def test_table_states_the_attack_success_rate_over_seeds():
    from types import SimpleNamespace

    result = synthetic_result()
    for seed, rate in zip((0, 1, 2), (0.9, 1.0, 0.95)):
        summary = pd.DataFrame({"success_rate": [rate]})
        result.evaluations["fashion_mnist", "ig_norm", seed] = SimpleNamespace(ifia=SimpleNamespace(summary=summary))
    table = result.table("fashion_mnist")
    assert table.loc["IG-NORM (RAR)", (rar.SUCCESS, "ours")] == f"95.0{PLUS_MINUS}5.0"      # std of 90, 100, 95
    assert table.loc["IG-NORM (RAR)", (rar.SUCCESS, "paper")] == "–"               # GALI reports none
    assert table.loc["Natural", (rar.SUCCESS, "ours")] == "–"                # not evaluated here


def test_table_shows_paper_and_mean_with_seed_spread_and_random_columns():
    table = synthetic_result().table("fashion_mnist")
    assert list(table.index) == [METHOD_NAMES[m] for m in rar.RAR_METHODS]
    assert ("top-k ∩ (%) · random", "ours") in table.columns
    assert table.loc["IG-SUM-NORM (RAR)", ("accuracy (%) · clean", "paper")] == "85.4"          # GALI's RAR row
    assert table.loc["IG-NORM (RAR)", ("accuracy (%) · clean", "paper")] == "–"                 # no published IG-NORM
    assert table.loc["Natural", ("top-k ∩ (%) · random", "paper")] == "–"               # no published baseline
    assert PLUS_MINUS in table.loc["Natural", ("top-k ∩ (%) · IFIA", "ours")]


def test_verdicts_of_synthetic_measurements_hold():
    verdicts = synthetic_result().verdicts()
    assert len(verdicts) == 12                                   # F-MNIST claims only: the rows measured
    assert {v.verdict for v in verdicts} == {"holds"}
    assert all(v.net_verdict == "holds" for v in verdicts if v.claim.attributional)
    assert "RAR's 5M" in verdicts[0].budget and "RAR's 1.2M" in verdicts[0].budget
