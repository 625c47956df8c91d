"""Chapter settings: presets per scale, and bad values rejected by name before any compute."""

import dataclasses
import math

import pytest

from rattrlib.chapters._common import budget_sentence, images_seen
from rattrlib.settings import ChapterSettings, int_check, optional, real_check, sequence_of, setting
from rattrlib.zoo import zoo_config


@dataclasses.dataclass(frozen=True)
class ToySettings(ChapterSettings):
    eps: float = setting(real_check(0, 1, low_open=True), "ε")
    n_eval: int = setting(int_check(2), "images")
    n_pgd: int = setting(optional(int_check(1)), "PGD images (None: all)")
    grid: tuple = setting(sequence_of(real_check(0, 10)), "a grid")
    PRESETS = {"smoke": {"seeds": (0,), "eps": 0.1, "n_eval": 8, "n_pgd": 16, "grid": (1.0,)},
               "cpu": {"seeds": (0, 1, 2), "eps": 0.1, "n_eval": 100, "n_pgd": None, "grid": (1.0, 2.0)},
               "paper": {"seeds": (0,), "eps": 0.1, "n_eval": 1000, "n_pgd": None, "grid": (1.0, 2.0, 5.0)}}


def test_presets_fill_what_is_not_given():
    s = ToySettings.resolve("cpu", eps=0.3)
    assert (s.seeds, s.eps, s.n_eval, s.n_pgd, s.grid) == ((0, 1, 2), 0.3, 100, None, (1.0, 2.0))
    assert ToySettings.resolve("smoke").n_eval == 8


def test_lists_become_tuples_and_integral_floats_ints():
    s = ToySettings.resolve("cpu", seeds=[3, 4], grid=[0.5, 1], n_eval=50.0)
    assert s.seeds == (3, 4) and s.grid == (0.5, 1.0) and s.n_eval == 50 and isinstance(s.n_eval, int)


@pytest.mark.parametrize("params, name", [
    ({"epz": 0.1}, "epz"),
    ({"eps": "abc"}, "eps"),
    ({"eps": math.nan}, "eps"),
    ({"eps": 0.0}, "eps"),
    ({"n_eval": 2.5}, "n_eval"),
    ({"n_eval": 0}, "n_eval"),
    ({"n_eval": True}, "n_eval"),
    ({"seeds": []}, "seeds"),
    ({"seeds": [0, 0]}, "seeds"),
    ({"seeds": "0"}, "seeds"),
    ({"grid": [1, 20]}, r"grid\[1\]"),
    ({"device": "tpu"}, "device"),
])
def test_bad_values_are_rejected_naming_the_parameter(params, name):
    with pytest.raises(ValueError, match=name):
        ToySettings.resolve("cpu", **params)


def test_bad_scale_lists_the_scales():
    with pytest.raises(ValueError, match="smoke"):
        ToySettings.resolve("gpu")


def test_images_seen_counts_the_start_model():
    natural = zoo_config("fashion_mnist", "natural", "cpu")
    pgd = zoo_config("fashion_mnist", "pgd_at", "cpu")
    assert images_seen(natural) == natural.epochs * 60_000
    assert images_seen(pgd) == pgd.epochs * pgd.n_train + images_seen(natural)
    text = budget_sentence({"PGD-AT": pgd}, 5_000_000, "RAR", seeds=(0, 1, 2))
    assert "0.4 % of RAR's 5M" in text and "3 seeds" in text and "fine-tuning natural (180k)" in text


def test_describe_shows_what_a_none_resolves_to():
    from rattrlib.chapters.leaderboard import LeaderboardSettings
    from rattrlib.chapters.rar import RARSettings

    rar = RARSettings.resolve("cpu", datasets=["fashion_mnist", "mnist10k"], eps=0.05).describe()["value"]
    assert rar["eps"] == 0.05                                  # given: shown as it is
    assert rar["k"] == "None → 100 (fashion_mnist), 200 (mnist10k)"  # per dataset where they differ (GALI §10.3)
    assert rar["alpha"] == "None → 0.01" and rar["n_eval"] == 100
    board = LeaderboardSettings.resolve("cpu", attack_steps=4).describe()["value"]
    assert board["alpha"] == "None → 0.0625"                   # 2.5·ε / steps = 2.5 · 0.1 / 4
