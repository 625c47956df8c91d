"""The ART chapter's settings, claims and table helpers (rattrlib.chapters.art)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from rattrlib.chapters._common import PLUS_MINUS
from rattrlib.chapters.art import ABLATION, ARTSettings, CLAIMS, PAPER_IMAGES, ours_cell, paper_rows, paper_vs_ours
from rattrlib.claims import RANDOM, Claim, Measurements, judge_all
from rattrlib.config import SCALES
from rattrlib.published import art_table


@pytest.mark.parametrize("bad, name", [
    ({"dataset": "nope"}, "dataset"), ({"loc_dataset": "mnist"}, "loc_dataset"), ({"eps": 2.0}, "eps"),
    ({"betas": [10.0, -1.0]}, "betas[1]"), ({"lams": "0.5"}, "lams"), ({"a_grid": [1, 0]}, "a_grid[1]"),
    ({"a": 0}, "a"), ({"n_eval": 1}, "n_eval"), ({"n_table4": 1.5}, "n_table4"), ({"seeds": [0, 0]}, "seeds"),
    ({"strong_steps": []}, "strong_steps"), ({"loc_threshold": 1.5}, "loc_threshold"), ({"n_show": 20}, "n_show"),
    ({"beta": float("nan")}, "beta"), ({"spsa_samples": 0}, "spsa_samples"), ({"n_corrupt": 0}, "n_corrupt"),
])
def test_settings_reject_bad_values_naming_the_parameter(bad, name):
    with pytest.raises(ValueError, match=name.replace("[", r"\[").replace("]", r"\]")):
        ARTSettings.resolve("smoke", **bad)


def test_settings_reject_unknown_names():
    with pytest.raises(ValueError, match="unknown parameter"):
        ARTSettings.resolve("cpu", seed=0)


@pytest.mark.parametrize("scale", SCALES)
def test_every_preset_sets_every_field(scale):
    names = {f.name for f in dataclasses.fields(ARTSettings)} - {"scale", "device"}
    assert names <= set(ARTSettings.PRESETS[scale])
    s = ARTSettings.resolve(scale)
    assert s.protocol().n_eval == s.n_eval


def test_cpu_preset_has_three_seeds_and_a_grid_that_can_test_saturation():
    s = ARTSettings.resolve("cpu")
    assert s.seeds == (0, 1, 2)
    assert max(s.lams) >= 1 and 0.75 in s.lams and max(s.a_grid) >= 5 and {1, 3} <= set(s.a_grid)
    assert len(ARTSettings.resolve("smoke").seeds) >= 2


def test_params_override_presets_and_protocol_follows():
    s = ARTSettings.resolve("smoke", eps=0.05, n_table4=12, lams=[0.5, 1])
    assert s.eps == 0.05 and s.lams == (0.5, 1.0)
    assert s.protocol(n_eval=s.n_table4).n_eval == 12 and s.protocol().eps == 0.05
    assert s.protocol(n_pgd=20).n_pgd == 20 and isinstance(s.n_show, int)


def test_art_overrides_only_name_what_differs_from_the_zoo():
    s = ARTSettings.resolve("cpu")
    assert s.art_overrides() is None
    assert s.art_overrides(lam=1.0) == {"lam": 1.0}
    assert s.overrides("PGD-AT") is None


def test_claims_construct_with_unique_ids_margins_and_reasons():
    ids = [c.id for c in CLAIMS]
    assert len(ids) == len(set(ids)) and all(i.startswith("art.") for i in ids)
    assert all(isinstance(c, Claim) and c.margin_reason.strip() and c.says.strip() for c in CLAIMS)
    masking = [c for c in CLAIMS if "no_masking" in c.id]
    assert len(masking) == 2 and all(c.relation == "not_worse" and c.margin == pytest.approx(0.004) for c in masking)
    saturation = [c for c in CLAIMS if "saturates" in c.id]
    assert saturation and all(c.relation == "comparable" and c.margin == pytest.approx(0.01) for c in saturation)
    assert all(c.margin == 0 for c in CLAIMS if c.relation == "better")


def test_ablation_claim_rows_are_named_as_the_chapter_names_them():
    symbols = {symbol for symbol, _, _ in ABLATION}
    rows = {r for c in CLAIMS if c.dataset == "ablation" for r in (c.a, c.b)}
    assert all(r.split("=")[0] in symbols for r in rows)
    assert {"λ=1", "λ=0.75", "a=5", "a=3", "a=1"} <= rows
    assert f"λ={1.0:g}" == "λ=1"


def test_paper_budget_is_100_epochs_of_cifar10():
    assert PAPER_IMAGES == 5_000_000


def _measure(m, row, under, metric, seed, values, dataset=""):
    m.add(row, under, metric, seed, values, dataset=dataset)


def test_tables_show_mean_and_seed_spread_and_claims_need_random_rows():
    rng = np.random.default_rng(0)
    m = Measurements()
    for seed in (0, 1):
        for row, level in (("ART", 0.8), ("PGD-AT", 0.5)):
            _measure(m, row, "ifia_topk", "topk_intersection", seed, np.clip(level + 0.05 * rng.standard_normal(20), 0, 1))
    summary = m.summary(n_boot=200)
    text = ours_cell(summary, "", "ART", "ifia_topk", "topk_intersection")
    assert "±" in text and 70 < float(text.split(PLUS_MINUS)[0]) < 90
    assert ours_cell(summary, "", "ART", RANDOM, "topk_intersection") == "–"
    table = paper_vs_ours(summary, ["ART", "PGD-AT", "IG-NORM"],
                          {"top-k ∩ (%)": ("", "ifia_topk", "topk_intersection", "topk")},
                          paper_rows(art_table("Table 1", "cifar10")))
    assert table.loc["ART", ("top-k ∩ (%)", "paper")] == "92.90"
    assert table.loc["IG-NORM", ("top-k ∩ (%)", "ours")] == "–"
    claim = [c for c in CLAIMS if c.id == "art.table1.topk_art_vs_pgd"]
    with pytest.raises(ValueError, match="random"):
        judge_all(claim, m)
    for seed in (0, 1):
        for row in ("ART", "PGD-AT"):
            _measure(m, row, RANDOM, "topk_intersection", seed, np.full(20, 0.95))
    (verdict,) = judge_all(claim, m, n_boot=200)
    assert verdict.verdict == "holds" and verdict.net_verdict == "holds"


def test_paper_rows_rename_pgd_and_scale_kendall():
    frame = paper_rows(art_table("Table 1", "cifar10"))
    assert "PGD-AT" in frame.index
    assert frame.loc["ART", "kendall_x100"] == pytest.approx(0.9176)
    assert isinstance(frame, pd.DataFrame)


def test_none_is_always_the_preset_and_all_is_a_value():
    """None means the scale's preset; "all" (and "protocol" for n_pgd_ablation) are explicit (review finding 8)."""
    from rattrlib.chapters.art import images
    cpu = ARTSettings.resolve("cpu", n_corrupt=None, n_seg=None, n_align=None, n_pgd_ablation=None)
    assert (cpu.n_corrupt, cpu.n_seg, cpu.n_align, cpu.n_pgd_ablation) == (500, 500, 1000, 500)
    every = ARTSettings.resolve("cpu", n_corrupt="all", n_seg="all", n_align="all", n_pgd_ablation="protocol")
    assert [images(v) for v in (every.n_corrupt, every.n_seg, every.n_align, every.n_pgd_ablation)] == [None] * 4
    assert ARTSettings.resolve("paper").n_loc == "all"
    for name in ("n_corrupt", "n_pgd_ablation"):
        with pytest.raises(ValueError, match=name):
            ARTSettings.resolve("cpu", **{name: "every"})


def test_table_notes_state_the_settings_they_rest_on():
    from rattrlib.chapters.art import ARTChapter

    chapter = ARTChapter(ARTSettings.resolve("cpu", n_table4=37, n_strong=41, spsa_steps=7, n_corrupt=43, lam=0.75))
    assert "on 37 test images per model and seed" in chapter.table4_note().data
    assert "on 37 test images per model and seed" in chapter.targeted_note().data
    strong = chapter.strong_note().data
    assert "same 41 test images" in strong and "40 and 100 / 500 steps" in strong and "SPSA (7 Adam steps" in strong
    assert "43 test images per corruption" in chapter.table3_note().data
    assert "λ = 0.75" in chapter.ablation_note().data and "dashed" in chapter.ablation_note().data
    assert "Training budget (images seen)" in chapter.alignment_note().data
