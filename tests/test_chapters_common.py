"""The pieces the chapters share (rattrlib.chapters._common): the "mean ± seed spread" cell, column labels and
display factors from the claims engine's vocabulary, and the declared claims every chapter publishes."""

import json

import pandas as pd
import pytest

from rattrlib.chapters import gali, sat, ssr
from rattrlib.chapters._common import PLUS_MINUS, column_label, declared_claims, display_scale, mean_spread
from rattrlib.claims import Measurements


def test_cells_labels_and_factors_come_from_the_claims_vocabulary():
    assert display_scale("accuracy") == 100.0 and display_scale("kendall_tau") == 1.0
    assert column_label("accuracy", "PGD-40") == "accuracy (%) · PGD-40"
    assert column_label("kendall_tau") == "Kendall τ"
    m = Measurements()
    for seed, values in ((0, [1.0, 0.0]), (1, [1.0, 1.0])):
        m.add("AT", "pgd", "accuracy", seed, values)
    stats = m.summary().iloc[0]
    assert mean_spread("accuracy", stats) == f"75.0{PLUS_MINUS}35.4"
    assert mean_spread("kendall_tau", {"mean": 0.25, "seed_std": 0.0, "n_seeds": 1}) == "0.250"


def test_declared_claims_keep_the_run_datasets_and_their_extended_keys():
    mine = declared_claims(gali.CLAIMS, ["fashion_mnist"])
    assert mine and {c.dataset.split(" · ")[0] for c in mine} == {"fashion_mnist"}
    assert any(" · " in c.dataset for c in mine)          # Table 5 and the λ sweep keys are kept


@pytest.mark.parametrize("module,settings", [(ssr, ssr.SSRSettings), (sat, sat.SATSettings)])
def test_publish_lists_every_declared_claim_as_not_judged_when_nothing_ran(module, settings, tmp_path, monkeypatch):
    monkeypatch.setenv("RATTR_HOME", str(tmp_path))
    results = type("Results", (), {"settings": settings.resolve("smoke")})()
    path = module.publish(results, [])
    payload = json.loads(path.read_text())
    declared = ssr.claims(results.settings) if module is ssr else sat.CLAIMS
    assert payload["verdicts"] == [] and len(payload["not_judged"]) == len(declared) > 0


def test_every_attribution_has_one_display_name_and_ssr_rows_use_them():
    from rattrlib.attributions import ATTRIBUTIONS
    from rattrlib.chapters._common import ATTRIBUTION_NAMES

    assert set(ATTRIBUTION_NAMES) == set(ATTRIBUTIONS)
    assert len(set(ATTRIBUTION_NAMES.values())) == len(ATTRIBUTION_NAMES)          # no two maps share a name
    statements = [c.statement() for c in ssr.claims(ssr.SSRSettings.resolve("smoke"))]
    assert any("SmoothGrad better than Integrated Gradients" in s for s in statements)
    assert any("SSR better than Natural" in s for s in statements)
    assert not any(name in s for s in statements for name in ("smoothgrad", "uniform_gradient", "integrated_gradients"))
    # every side of every SSR claim is a row its experiments write (a mismatch would only show as "not judged")
    for scale in ("smoke", "cpu", "paper"):
        sides = {side for c in ssr.claims(ssr.SSRSettings.resolve(scale)) for side in (c.a, c.b)}
        assert sides <= set(ssr.ATTRIBUTION_ROWS) | set(ssr.MODELS), scale


def test_success_cell_skips_a_seed_without_attacked_images():
    from types import SimpleNamespace

    from rattrlib.chapters._common import success_cell

    def ev(rate):
        return SimpleNamespace(ifia=SimpleNamespace(summary=pd.DataFrame({"success_rate": [rate]})))

    evaluations = {("d", "AT", 0): ev(0.8), ("d", "AT", 1): ev(float("nan")), ("d", "AT", 2): ev(1.0),
                   ("d", "Nat", 0): ev(float("nan"))}
    assert success_cell(evaluations, "d", "AT", [0, 1, 2]) == f"90.0{PLUS_MINUS}14.1"     # seed 1 attacked nothing
    assert success_cell(evaluations, "d", "AT", [0]) == "80.0"
    assert success_cell(evaluations, "d", "Nat", [0]) == "–" == success_cell(evaluations, "d", "ART", [0, 1])
