"""The SAT chapter's settings, claims and cheap helpers (no training)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from rattrlib.chapters import sat
from rattrlib.chapters._common import PLUS_MINUS
from rattrlib.claims import Measurements, RELATIONS, judge_all
from rattrlib.config import SCALES


@pytest.mark.parametrize("scale", SCALES)
def test_presets_hold_every_field_and_resolve(scale):
    fields = {f.name for f in dataclasses.fields(sat.SATSettings)} - {"scale", "device"}
    assert fields <= set(sat.SATSettings.PRESETS[scale])
    settings = sat.SATSettings.resolve(scale)
    assert len(settings.seeds) >= 2
    if scale == "cpu":
        assert len(settings.seeds) >= 3


@pytest.mark.parametrize("bad, message", [
    ({"dataset": "nope"}, "dataset='nope' is not valid"),
    ({"eps_table": [1, 2, 40]}, "eps_table[2] (in /255)=40"),
    ({"sources": ["box", "outline"]}, "sources[1]='outline' is not valid"),
    ({"dataset": "flowers102", "sources": ["box"]}, "sources[0]='box' is not valid for dataset"),
    ({"attributions": ["saliency"]}, "attributions[0]='saliency' is not valid"),
    ({"combine": "both"}, "combine='both' is not valid"),
    ({"train_steps": 3}, "give train_steps and train_alpha together"),
    ({"train_steps": 3, "train_alpha": 20}, "train_alpha (in /255)=20"),
    ({"families": ["pgd"]}, "must include 'natural'"),
    ({"families": ["natural"], "teachers": ["pgd_at"]}, "add 'pgd' to families"),
    ({"n_eval": 0}, "n_eval"), ({"seeds": [0, 0]}, "repeats a seed"), ({"nope": 1}, "unknown parameter"),
    ({"map_quantile": 1.0}, "map_quantile"), ({"sg_sigma": 0}, "sg_sigma")])
def test_settings_reject_bad_values_naming_the_parameter(bad, message):
    with pytest.raises(ValueError) as err:
        sat.SATSettings.resolve("smoke", **bad)
    assert message in str(err.value)


def test_claims_are_unique_fixed_and_quote_the_poster():
    ids = [c.id for c in sat.CLAIMS]
    assert len(ids) == len(set(ids)) == 2 * 2 * len(sat.FAMILIES) + len(sat.MAP_NAMES) + 1
    for claim in sat.CLAIMS:
        assert claim.relation in RELATIONS and claim.margin >= 0 and claim.margin_reason
        assert claim.metric == "accuracy" and claim.under == sat.UNDER
    # the teacher-map claim against noise is on ONE row fixed in advance, never a max over rows
    against_noise = [c for c in sat.CLAIMS if c.dataset == sat.MAPS and c.b == "Original + Uniform-Noise"]
    assert [c.a for c in against_noise] == ["Adv. — S.Grad"]
    # no claim on training time: those hold by construction
    assert not any("time" in c.id for c in sat.CLAIMS)


def test_robustness_rows_follow_families_and_original_matches_sat_budget():
    settings = sat.SATSettings.resolve("cpu")
    configs = sat.robustness_configs(settings, "mask", 0)
    assert list(configs) == [r for f in settings.families for r in sat.FAMILIES[f]]
    original, sat_row = configs["Original"], configs["SAT"]
    assert original.method == "natural" and original.hyperparameters == {}
    assert (original.epochs, original.n_train, original.init) == (sat_row.epochs, sat_row.n_train, sat_row.init)
    assert sat_row.n_train == settings.n_train
    assert configs["PGD"].hyperparameters["steps"] == settings.train_steps
    assert configs["PGD-SAT"].hyperparameters["combine"] == settings.combine


def test_verdicts_come_from_the_engine_on_per_image_values():
    rng = np.random.default_rng(0)
    measurements = Measurements()
    for seed in (0, 1, 2):
        measurements.add("SAT", sat.UNDER, "accuracy", seed, rng.random(100) < 0.9, dataset="mask")
        measurements.add("Original", sat.UNDER, "accuracy", seed, rng.random(100) < 0.2, dataset="mask")
    verdicts = judge_all([c for c in sat.CLAIMS if c.dataset == "mask"], measurements)
    assert [v.claim.id for v in verdicts] == ["sat.mask.natural.sat_vs_plain"]
    assert verdicts[0].verdict == "holds" and verdicts[0].n_seeds == 3


def test_results_table_shows_paper_and_seed_spread():
    settings = sat.SATSettings.resolve("smoke")
    per_eps = pd.DataFrame([{"label": "mask", "row": "SAT", "eps": e, "seed": s, "accuracy": 0.5 + s / 100}
                            for s in (0, 1) for e in (1.0, 2.0, 3.0)])
    table = sat.SATResults(settings, Measurements(), per_eps, {}).table("mask")
    assert table.loc["SAT", ("ε=1/255", "paper")] == "66.17"
    assert table.loc["SAT", ("ε=1/255", "ours")] == f"50.5{PLUS_MINUS}0.7"


def test_none_is_always_the_preset_and_words_say_all_or_zoo():
    """None means the scale's preset; "all" / "zoo" / "area" are explicit values (review finding 8)."""
    cpu = sat.SATSettings.resolve("cpu", n_eval=None, n_train=None, train_steps=None, train_alpha=None)
    assert (cpu.n_eval, cpu.n_train, cpu.train_steps, cpu.train_alpha) == (200, 2000, 3, 1.0)
    every = sat.SATSettings.resolve("cpu", n_eval="all", n_train="zoo", train_steps="zoo", train_alpha="zoo")
    assert sat.eval_images(every) is None and sat.eval_images(cpu) == 200
    zoo_row = sat.zoo_config(every.dataset, "natural", "cpu")
    assert sat.on_subset(every, zoo_row) == zoo_row
    assert sat.robustness_configs(every, "mask", 0)["PGD"].hyperparameters == \
        sat.zoo_config(every.dataset, "pgd_at", "cpu").hyperparameters
    assert sat.SATSettings.resolve("paper").n_eval == "all"
    with pytest.raises(ValueError, match="n_eval"):
        sat.SATSettings.resolve("cpu", n_eval="every")
    with pytest.raises(ValueError, match="give train_steps and train_alpha together"):
        sat.SATSettings.resolve("cpu", train_steps="zoo")
