"""The quickstart's settings (validated before any compute, 'all' test images expressible) and its completeness
table (IG's Prop. 1 on a linear model, where the Riemann sum is exact)."""

import pytest
import torch
from torch import nn

from rattrlib.attributions import IntegratedGradients
from rattrlib.chapters.quickstart import QuickstartSettings, completeness_table


def test_presets_and_bad_values_name_the_parameter():
    s = QuickstartSettings.resolve("cpu")
    assert s.n_test == "all" and s.seed == 0 and s.device == "auto"
    assert QuickstartSettings.resolve("smoke", n_test=20.0).n_test == 20
    for name, bad in [("dataset", "nope"), ("n_show", 0), ("n_show", 33), ("ig_steps", 0), ("n_test", "some"),
                      ("seeds", [0, 0])]:
        with pytest.raises(ValueError, match=name):
            QuickstartSettings.resolve("smoke", **{name: bad})
    with pytest.raises(ValueError, match="unknown"):
        QuickstartSettings.resolve("smoke", n_eval=3)


def test_completeness_is_exact_for_a_linear_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    x = torch.rand(4, 1, 4, 4)
    predicted = model(x).argmax(1)
    ig = IntegratedGradients(model, n_steps=5).attribute(x, predicted)
    table = completeness_table(model, x, predicted, ig)
    assert list(table.columns) == ["sum of IG", "f(x) − f(0)", "relative gap"]
    assert (table["relative gap"] < 1e-4).all()
