"""Chapter 03 (GALI): settings validation, the claims as declared, and the per-image AA scores."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rattrlib.chapters import gali
from rattrlib.chapters._common import PLUS_MINUS, indexed_summary, mean_spread
from rattrlib.claims import RANDOM, Claim, Measurements, judge_all
from rattrlib.metrics import aa_kendall, aa_topk, topk_intersection
from scipy.stats import kendalltau, spearmanr


@pytest.mark.parametrize("params, message", [
    ({"datasets": ["fashion_mnist", "nope"]}, "datasets[1]='nope' is not valid"),
    ({"datasets": "fashion_mnist"}, "datasets='fashion_mnist' must be a list"),
    ({"datasets": ["fashion_mnist", "fashion_mnist"]}, "repeats a dataset"),
    ({"eps": 2.0}, "eps=2.0"),
    ({"k_mnist": 1000}, "k_mnist=1000"),
    ({"k_fashion_mnist": 0}, "k_fashion_mnist"),
    ({"lams": [0.001]}, "lams"),
    ({"lams": [0.0, -1.0]}, "lams[1]=-1.0"),
    ({"lams": [0.001, 0.001]}, "repeats a λ"),
    ({"sweep_dataset": "cifar10"}, "sweep_dataset='cifar10' is not valid"),
    ({"sweep_seeds": 0}, "sweep_seeds"),
    ({"mask_threshold": 1.5}, "mask_threshold=1.5"),
    ({"n_show": 11}, "n_show=11"),
    ({"seeds": [0, 0]}, "repeats a seed"),
    ({"lam": 0.1}, "unknown parameter"),
])
def test_settings_reject_bad_values_naming_the_parameter(params, message):
    with pytest.raises(ValueError) as err:
        gali.GALISettings.resolve("smoke", **params)
    assert message in str(err.value)


def test_presets_per_scale_and_k_per_dataset():
    cpu = gali.GALISettings.resolve("cpu")
    assert cpu.seeds == (0, 1, 2) and cpu.datasets == ("fashion_mnist",)
    assert gali.GALISettings.resolve("smoke").seeds == (0, 1)
    # GALI §10.2 / §10.3: k = 100 on Fashion-MNIST, 200 on MNIST
    assert cpu.protocol("fashion_mnist").k == 100
    assert cpu.protocol("mnist10k").k == 200 and cpu.protocol("mnist").k == 200
    assert cpu.protocol("mnist10k").eps == 0.3 and cpu.protocol("fashion_mnist").eps == 0.1
    assert gali.GALISettings.resolve("cpu", lams=[0.01, 0.0]).lams == (0.0, 0.01)
    assert gali.GALISettings.resolve("cpu", seeds=[3, 4], sweep_seeds=5).sweep_seed_list == (3, 4)
    paper = gali.GALISettings.resolve("paper")
    assert paper.datasets == ("fashion_mnist", "mnist") and paper.attack_steps is None


def test_paper_budget_is_galis_appendix():
    assert gali.PAPER_IMAGES == {"fashion_mnist": 100_000 * 32, "mnist": 90_000 * 50}


def test_claims_construct_with_unique_ids_and_reasoned_margins():
    ids = [c.id for c in gali.CLAIMS]
    assert len(ids) == len(set(ids))
    for c in gali.CLAIMS:
        assert c.paper == "GALI" and c.margin_reason
        assert c.margin == (0.01 if c.relation == "not_worse" else 0.0)
    # "retain" claims are not-worse by 1 point; the rest are orderings
    retain = {c.id for c in gali.CLAIMS if c.relation == "not_worse"}
    assert retain == {f"gali.{d}.{x}" for d in gali.GALI_DATASETS for x in ("atreg_pgd_vs_at", "rarreg_topk_vs_rar")}
    # GALI's text says nothing of Nat: no claim on it (the old "Nat lowest" was not GALI's wording)
    assert not [c for c in gali.CLAIMS if "Nat" in (c.a, c.b)]
    # AA-Spearman, Table 5 and the λ sweep each have claims
    assert any(c.metric == "aa_spearman" for c in gali.CLAIMS)
    assert any(c.dataset == gali.object_key("mnist") for c in gali.CLAIMS)
    sweep = [c for c in gali.CLAIMS if c.dataset == gali.sweep_key("fashion_mnist")]
    assert {(c.a, c.b) for c in sweep} == {("λ = 0.001", "λ = 0"), ("λ = 0.001", "λ = 0.01")}
    # GALI's numbers are quoted beside the margin, not inside the quote
    claim = next(c for c in gali.CLAIMS if c.id == "gali.fashion_mnist.rar_topk_vs_at")
    assert "72.08 vs AT 46.12" in claim.margin_reason and "72.08" not in claim.says


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("’", "'")).strip()


def test_every_quote_is_verbatim_in_the_paper_with_ellipses_for_cuts():
    paper = _normalised(Path("/work/shared/papers/GALI-stable-object-aligned-explanations.txt").read_text()
                        if Path("/work/shared/papers").exists() else "")
    if not paper:
        pytest.skip("the paper text is not on this machine")
    for says in {c.says for c in gali.CLAIMS}:
        for part in says.split("…"):
            assert _normalised(part) in paper, (says, part)


def test_fine_tune_rule_withholds_fine_tune_vs_start_claims_below_one_epoch():
    # cpu: 1 epoch on 2k of F-MNIST's 60k images; paper: 100k steps × 32 ≈ 53 epochs
    assert gali.fine_tune_epochs("fashion_mnist", "cpu") < gali.MIN_FINE_TUNE_EPOCHS
    assert gali.fine_tune_epochs("fashion_mnist", "paper") >= gali.MIN_FINE_TUNE_EPOCHS
    by_id = {c.id: c for c in gali.CLAIMS}
    start = [c for c in gali.CLAIMS if gali.compares_with_start(c)]
    assert {c.id for c in start} >= {"gali.fashion_mnist.atreg_pgd_vs_at", "gali.fashion_mnist.rarreg_topk_vs_rar",
                                     "gali.fashion_mnist.lambda.pgd_rises"}
    assert all(gali.fine_tune_too_short(c, "cpu") for c in start if c.dataset.startswith("fashion_mnist"))
    assert not any(gali.fine_tune_too_short(c, "paper") for c in start if c.dataset.startswith("fashion_mnist"))
    assert gali.fine_tune_too_short(by_id["gali.fashion_mnist.rar_topk_vs_at"], "cpu") is None


class _Report:
    """A stand-in for a RobustnessReport: per-image correctness and the attack result's maps."""

    def __init__(self, correct, clean, adv, k):
        self.per_image = pd.DataFrame({"correct": correct})
        self.summary = pd.DataFrame(index=["stub"])
        self.result = type("R", (), {"clean_map": clean, "adv_map": adv, "k": k})()


def test_aa_values_are_the_metrics_per_attacked_image():
    g = torch.Generator().manual_seed(0)
    clean, adv, ref = (torch.rand(3, 6, 6, generator=g) for _ in range(3))
    report = _Report([True, False, True, True], clean, adv, k=5)
    out = gali.aa_values(report, ref)
    values, images = out["aa_topk"]
    assert list(images) == [0, 2, 3]
    np.testing.assert_allclose(values, aa_topk(ref, clean, adv, 5).numpy())
    np.testing.assert_allclose(out["aa_kendall"][0], aa_kendall(ref, clean, adv).numpy())
    # the goodness factors: the unattacked AA values, i.e. top-k(R) ∩ top-k(A), τ(R, A), ρ(R, A)
    good = gali.aa_values(report, ref, goodness=True)
    np.testing.assert_allclose(good["aa_topk"][0], topk_intersection(ref, clean, 5).numpy())
    np.testing.assert_allclose(good["aa_kendall"][0], [kendalltau(r.ravel(), c.ravel()).statistic
                                                       for r, c in zip(ref, clean)], atol=1e-6)
    np.testing.assert_allclose(good["aa_spearman"][0], [spearmanr(r.ravel(), c.ravel()).statistic
                                                        for r, c in zip(ref, clean)], atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        gali.aa_values(report, ref[:2])


def test_measure_aa_adds_attack_random_and_goodness_rows_that_the_claims_engine_judges():
    g = torch.Generator().manual_seed(1)
    measurements = Measurements()
    for row, shift in (("AT", 0.0), (gali.AT_REG, 0.5)):
        for seed in (0, 1):
            clean = torch.rand(6, 5, 5, generator=g)
            adv = clean + (1 - shift) * torch.rand(6, 5, 5, generator=g)
            noisy = clean + 0.1 * torch.rand(6, 5, 5, generator=g)
            ev = type("E", (), {"ifia": _Report([True] * 6, clean, adv, 5),
                                "random": _Report([True] * 6, clean, noisy, 5)})()
            gali.measure_aa(measurements, ev, clean.clone(), row, seed, "fashion_mnist")
    frame = measurements.frame
    assert set(frame["under"]) == {"ifia_topk", RANDOM, gali.GOODNESS}
    assert set(frame[frame["under"] == gali.GOODNESS]["metric"]) == set(gali.AA_METRICS)
    claim = next(c for c in gali.CLAIMS if c.id == "gali.fashion_mnist.atreg_aatopk_vs_at")
    (verdict,) = judge_all([claim], measurements, n_boot=200)
    assert verdict.n_seeds == 2 and verdict.net_verdict is not None


def test_table_cells_are_mean_and_spread_of_per_seed_means():
    m = Measurements()
    m.add("AT", "pgd", "accuracy", 0, [1, 0, np.nan, 1])
    m.add("AT", "pgd", "accuracy", 1, [0, 0, 1, 1])
    s = indexed_summary(m).loc[("", "AT", "pgd", "accuracy")]
    assert s["mean"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert s["seed_std"] == pytest.approx(np.std([2 / 3, 0.5], ddof=1))
    assert s["n_seeds"] == 2
    assert mean_spread("accuracy", s) == f"{100 * s['mean']:.1f}{PLUS_MINUS}{100 * s['seed_std']:.1f}"
    assert mean_spread("kendall_tau", {"mean": 0.5, "seed_std": 0.1, "n_seeds": 1}) == "0.500"
    assert mean_spread("accuracy", {"mean": float("nan"), "seed_std": 0.0, "n_seeds": 0}) == "–"


def test_rar_start_starts_from_the_rar_model():
    overrides = gali.row_overrides("fashion_mnist", gali.RAR_REG, "smoke")
    assert overrides["start"]["method"] == "ig_sum_norm"
    assert gali.row_overrides("fashion_mnist", gali.AT_REG, "smoke") is None


def test_goodness_claim_compares_clean_maps_and_is_not_netted_against_random_noise():
    # Table 3: RAR-start + Regularizer's clean map is closer to the reference than RAR's on every image
    g = torch.Generator().manual_seed(2)
    measurements = Measurements()
    for row, spread in ((gali.RAR_REG, 0.2), ("RAR", 2.0)):
        for seed in (0, 1, 2):
            ref = torch.rand(8, 6, 6, generator=g)
            clean = ref + spread * torch.rand(8, 6, 6, generator=g)
            ev = type("E", (), {"ifia": _Report([True] * 8, clean, torch.rand(8, 6, 6, generator=g), 10),
                                "random": _Report([True] * 8, clean, clean + 0.01, 10)})()
            gali.measure_aa(measurements, ev, ref, row, seed, "fashion_mnist")
    (claim,) = gali.table3_claims("fashion_mnist")
    assert claim.under == gali.GOODNESS and claim.unperturbed and not claim.attributional
    assert "79.41 vs RAR 74.10" in claim.margin_reason
    (verdict,) = judge_all([claim], measurements, n_boot=200)
    assert verdict.verdict == "holds" and verdict.net_verdict is None
    assert verdict.mean_a > verdict.mean_b and verdict.n_seeds == 3
    # the same data with the rows swapped: the ordering is reversed
    swapped = Claim("swapped", "GALI", "Table 3", claim.says, "aa_topk", "RAR", gali.RAR_REG, gali.GOODNESS,
                    dataset="fashion_mnist", margin_reason="test")
    assert judge_all([swapped], measurements, n_boot=200)[0].verdict == "does not hold"


def test_appendix_tables_claims_are_keyed_per_reference_and_withheld_like_their_fine_tunes():
    d = "fashion_mnist"
    trades = gali.table4_claims(d)
    assert {(c.a, c.b) for c in trades} == {(gali.AT_REG, "AT"), (gali.RAR_REG, "RAR")}
    assert all(c.dataset == gali.trades_key(d) and c.attributional for c in trades)
    assert any("55.21 vs AT 45.23" in c.margin_reason for c in trades)
    assert gali.table_keys(d) == (d, gali.trades_key(d), gali.object_key(d))
    assert all(gali.claim_dataset(c) == d for c in trades + gali.table3_claims(d))
    # every appendix claim compares a fine-tune with its start: withheld at cpu (1 epoch on 2k images), judged
    # at the paper's budget
    for c in trades + gali.table3_claims(d):
        assert gali.fine_tune_too_short(c, "cpu") and gali.fine_tune_too_short(c, "paper") is None


def test_appendix_tables_hold_the_papers_numbers():
    from rattrlib.published import gali_table3, gali_table4
    assert gali_table3("fashion_mnist").loc["RAR", "goodness_topk"] == 74.10
    assert gali_table3("mnist").loc["AT-start + Regularizer", "goodness_spearman"] == 0.9989
    assert gali_table4("fashion_mnist").loc["AT", "aa_kendall"] == 0.6241
    with pytest.raises(ValueError, match="GALI Table 4 has no rows for 'cifar10'"):
        gali_table4("cifar10")


def test_table_notes_state_their_reference_and_images_and_refuse_an_unknown_table():
    settings = gali.GALISettings.resolve("cpu", n_eval=37, lams=[0.0, 0.002])
    result = gali.GALIResult(settings, {}, {}, Measurements(), {})
    assert "37 test images per seed" in result.table_note("fashion_mnist", "Table 4")
    assert "TRADES model of the same seed" in result.table_note("fashion_mnist", "Table 4")
    assert "object mask (intensity > 0.1)" in result.table_note("fashion_mnist", "Table 5")
    assert "no random row" in result.table_note("fashion_mnist", "Table 3")
    assert "λ ∈ {0, 0.002}" in result.sweep_note() and "seed 0 " in result.sweep_note()
    with pytest.raises(ValueError, match="table='Table 9'"):
        result.table_note("fashion_mnist", "Table 9")


def test_seconds_table_marks_seeds_a_row_did_not_run():
    holder = type("Seconds", (), {"seconds": {("AT", 0): 1.26, ("AT", 1): 2.0, ("λ = 0.01", 0): 3.0}})()
    table = gali.GALIResult.seconds_table(holder)
    assert table.loc["AT", 0] == 1.3 and table.loc["λ = 0.01", 1] == "–"


def test_table1_states_the_attack_success_rate_per_model_and_none_for_the_random_rows():
    from types import SimpleNamespace

    settings = gali.GALISettings.resolve("smoke", seeds=[0, 1])
    m = Measurements()
    for seed in (0, 1):
        for row in gali.ROWS:
            m.add(row, "clean", "accuracy", seed, np.ones(4), dataset="fashion_mnist")
            m.add(row, "pgd", "accuracy", seed, np.zeros(4), dataset="fashion_mnist")
            for metric, under in gali.TABLE1_COLUMNS:
                if under is None:
                    for condition in ("ifia_topk", RANDOM):
                        m.add(row, condition, metric, seed, np.full(4, 0.5), dataset="fashion_mnist")
    evaluations = {("fashion_mnist", "AT", seed): SimpleNamespace(ifia=SimpleNamespace(
        summary=pd.DataFrame({"success_rate": [rate]}))) for seed, rate in ((0, 0.8), (1, 1.0))}
    table = gali.GALIResult(settings, evaluations, {}, m, {}).table1("fashion_mnist")
    assert table.loc["AT", (gali.SUCCESS, "ours")] == f"90.0{PLUS_MINUS}14.1"      # std of 80 and 100
    assert table.loc["AT", (gali.SUCCESS, "paper")] == "–"                         # GALI reports none
    assert table.loc["Nat", (gali.SUCCESS, "ours")] == "–"                         # not evaluated here
    assert table.loc["AT" + gali.NOISE, (gali.SUCCESS, "ours")] == ""              # random noise is no attack
