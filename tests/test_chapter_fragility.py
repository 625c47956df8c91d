"""The fragility primer's settings and claims (the chapter itself runs in make test's smoke book)."""

import pytest

from rattrlib.chapters import fragility
from rattrlib.claims import check_claims


def test_settings_take_the_protocol_of_the_scale_and_overrides():
    s = fragility.FragilitySettings.resolve("cpu")
    assert s.seeds == (0, 1, 2) and s.protocol.eps == 0.1 and s.protocol.k == 100
    assert fragility.FragilitySettings.resolve("cpu", eps=0.05, n_eval=20).protocol.n_eval == 20


@pytest.mark.parametrize("params, name", [({"eps": 2.0}, "eps"), ({"dataset": "cifar"}, "dataset"),
                                          ({"n_eval": 1}, "n_eval"), ({"alpha": float("nan")}, "alpha"),
                                          ({"n_show": 2.5}, "n_show"), ({"epz": 0.1}, "epz")])
def test_bad_parameters_are_named(params, name):
    with pytest.raises(ValueError, match=name):
        fragility.FragilitySettings.resolve("smoke", **params)


def test_claims_compare_the_attack_with_random_noise_on_the_same_model():
    claims = check_claims(fragility.CLAIMS)
    assert all(c.a == c.b == "Natural" and {c.under, c.side_b_under} == {"random", "ifia_topk"} for c in claims)
    assert all(not c.attributional for c in claims)  # already net of random: the random run is one side
