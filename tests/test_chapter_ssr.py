"""Chapter 05 (SSR): settings fail fast naming the parameter, the claims construct, the per-image log-AUC."""

import math

import numpy as np
import pytest

from rattrlib.chapters import ssr
from rattrlib.claims import RANDOM, Measurements, judge_all
from rattrlib.metrics import METRICS


@pytest.mark.parametrize("bad, name", [
    ({"datasets": "fashion_mnist"}, "datasets"), ({"datasets": ["fashion_mnist", "nope"]}, "datasets[1]"),
    ({"exp2_dataset": "nope"}, "exp2_dataset"), ({"eps_list": [8 / 255]}, "eps_list"),
    ({"eps_list": [2 / 255, 2.0]}, "eps_list[1]"), ({"eps_list": [8 / 255, 4 / 255]}, "eps_list"),
    ({"scale_s_grid": [-1.0]}, "scale_s_grid[0]"), ({"sigma": 0.0}, "sigma"), ({"radius": 2.0}, "radius"),
    ({"n_eval": 1}, "n_eval"), ({"exp2_attributions": ["gradcam"]}, "exp2_attributions[0]"),
    ({"seeds": [0, 0]}, "seeds"), ({"attack_steps": 0}, "attack_steps"), ({"nope": 1}, "nope"),
])
def test_settings_reject_bad_values_naming_the_parameter(bad, name):
    with pytest.raises(ValueError) as err:
        ssr.SSRSettings.resolve("smoke", **bad)
    assert name in str(err.value)


def test_presets_cover_every_field_and_cpu_has_three_seeds():
    for scale, preset in ssr.SSRSettings.PRESETS.items():
        s = ssr.SSRSettings.resolve(scale)
        assert all(getattr(s, f) is not None or f in ("k", "radius") for f in preset)
    assert ssr.SSRSettings.resolve("cpu").seeds == (0, 1, 2)
    assert len(ssr.SSRSettings.resolve("smoke").seeds) >= 2


def test_uniform_radius_matches_smoothgrad_variance():
    s = ssr.SSRSettings.resolve("smoke", sigma=0.1)
    # U(-r, r) has variance r²/3: matched to σ² at r = √3·σ
    assert math.isclose(s.uniform_radius ** 2 / 3, 0.1 ** 2)
    assert ssr.SSRSettings.resolve("smoke", radius=0.05).uniform_radius == 0.05
    assert s.attribution_kwargs()["uniform_gradient"]["radius"] == s.uniform_radius


def test_claims_construct_with_unique_ids_margins_and_reasons():
    claims = ssr.CLAIMS
    assert len({c.id for c in claims}) == len(claims) > 10
    for c in claims:
        assert c.metric in METRICS and c.margin >= 0 and c.margin_reason
        assert c.says and c.where.startswith("§")
    madry = [c for c in claims if "pgd_at" in c.id and c.metric == "cosine_distance"]
    assert madry and all(c.relation == "not_worse" and c.margin == 0.01 for c in madry)
    # matched smoothing: no claim compares SmoothGrad with Uniform Gradient at unmatched settings
    assert any("matched" in c.id for c in claims)


def test_per_image_log_auc_is_linear_and_matches_the_curve():
    eps = np.array([2, 4, 8, 16]) / 255
    values = np.random.default_rng(0).random((4, 7))
    per_image = ssr.per_image_log_auc(eps, values)
    mean_curve = ssr.per_image_log_auc(eps, values.mean(axis=1, keepdims=True))[0]
    assert np.isclose(per_image.mean(), mean_curve)
    # a constant curve has log-AUC equal to the constant; a linear one in log2 ε its midpoint
    assert np.allclose(ssr.per_image_log_auc(eps, np.full((4, 2), 0.3)), 0.3)
    assert np.isclose(ssr.per_image_log_auc(eps, np.array([[1.0], [2.0], [3.0], [4.0]]))[0], 2.5)
    with pytest.raises(ValueError):
        ssr.per_image_log_auc(eps[:1], values[:1])


def test_claims_are_judged_net_of_random_on_synthetic_measurements():
    settings = ssr.SSRSettings.resolve("smoke")
    m = Measurements()
    rng = np.random.default_rng(1)
    claim = next(c for c in ssr.claims(settings) if c.id.endswith("smoothgrad_vs_saliency.top-k"))
    for seed in settings.seeds:
        for row, level in (("SmoothGrad", 0.02), ("Saliency", 0.10)):
            for under in (claim.under, RANDOM):
                m.add(row, under, "cosine_distance", seed, level + 0.001 * rng.random(20), dataset=claim.dataset)
    (verdict,) = judge_all([claim], m)
    assert verdict.verdict == "holds" and verdict.net_verdict is not None


def test_protocol_note_of_the_s_table_states_its_seed_and_probe_and_unknown_parts_are_refused():
    settings = ssr.SSRSettings.resolve("cpu", seeds=[4, 5])
    note = ssr.protocol_note(settings, "s")
    assert "seed 4;" in note and "256 training images" in note and "β_s = 0.3" in note
    with pytest.raises(ValueError, match="experiment='IV'"):
        ssr.protocol_note(settings, "IV")
