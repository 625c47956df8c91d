"""The RAR/GALI evaluation (rattrlib.evaluation): protocol presets and validation, a cached evaluation of a
smoke-scale zoo model, and GALI's AA scores against hand-checkable references."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from rattrlib.evaluation import (IFIAProtocol, aa_scores, evaluate_zoo_model, ifia_protocol, object_masks,
                                 reference_maps, results_table)
from rattrlib.metrics import aa_kendall, aa_topk
from rattrlib.plots import plot_maps_before_after
from rattrlib.zoo import get_model


def test_protocol_presets_follow_rar_gali_and_reject_bad_settings():
    fm, mn = ifia_protocol("fashion_mnist", "paper"), ifia_protocol("mnist10k", "paper")
    assert (fm.eps, fm.alpha, fm.steps, fm.k) == (0.1, 0.01, 100, 100)
    assert (mn.eps, mn.alpha, mn.steps) == (0.3, 0.01, 100)
    assert ifia_protocol("fashion_mnist", "cpu", eps=0.05, steps=None).eps == 0.05   # None keeps the preset
    assert ifia_protocol("fashion_mnist", "cpu", steps=None).steps == 50
    with pytest.raises(ValueError, match="unknown protocol setting.*'epsilon'"):
        ifia_protocol("fashion_mnist", "cpu", epsilon=0.1)
    with pytest.raises(ValueError, match="eps"):
        ifia_protocol("fashion_mnist", "cpu", eps=2.0)
    with pytest.raises(ValueError, match="n_eval"):
        IFIAProtocol(eps=0.1, alpha=0.01, steps=10, n_eval=1)
    with pytest.raises(ValueError, match="dataset='nope'"):
        ifia_protocol("nope", "cpu")


@pytest.fixture
def tiny_evaluation(tiny_zoo):
    protocol = ifia_protocol("tiny", "smoke", k=10, n_eval=16, n_pgd=16)
    return protocol, evaluate_zoo_model("tiny", "natural", protocol, scale="smoke", device="cpu", progress=False)


def test_evaluation_is_cached_and_its_row_matches_its_reports(tiny_evaluation, tiny_zoo):
    protocol, ev = tiny_evaluation
    again = evaluate_zoo_model("tiny", "natural", protocol, scale="smoke", device="cpu", progress=False)
    assert torch.equal(again.ifia.result.adv_map, ev.ifia.result.adv_map)
    assert len(list((tiny_zoo / "results" / "evaluation").glob("*.pt"))) == 1
    row = ev.row()
    s = ev.ifia.summary.iloc[0]
    assert row["top-k ∩ (%)"] == pytest.approx(100 * s["topk_intersection_mean"])
    assert row["attacked"] == len(ev.attacked) == len(ev.ifia.result)
    assert 0 <= row["PGD acc. (%)"] <= row["clean acc. (%)"] + 1e-9 <= 100 + 1e-9
    # every attacked image stays in the ε-ball and keeps its label where the attack succeeded
    x = ev.images[ev.attacked]
    assert (ev.ifia.result.x_adv - x).abs().max() <= protocol.eps + 1e-6
    ok = ev.ifia.result.success
    assert torch.equal(ev.ifia.result.adv_label[ok], ev.ifia.result.label[ok])


def test_aa_scores_against_the_model_itself_equal_the_plain_scores(tiny_evaluation):
    """GALI Table 1: the AT row's AA scores equal its plain scores because AT is its own reference."""
    protocol, ev = tiny_evaluation
    model, _ = get_model("tiny", "natural", "smoke", device="cpu", progress=False)
    ref = reference_maps(ev, model, protocol)
    assert torch.allclose(ref, ev.ifia.result.clean_map)
    scores = aa_scores(ev, ref)
    assert scores["goodness top-k (%)"] == pytest.approx(100.0)
    assert scores["AA top-k (%)"] == pytest.approx(100 * ev.ifia.result.topk_intersection.double().mean().item())
    assert scores["AA Kendall"] == pytest.approx(ev.ifia.result.kendall_tau.double().mean().item())


def test_aa_scores_with_an_object_mask_are_the_product_of_their_factors(tiny_evaluation):
    protocol, ev = tiny_evaluation
    masks = object_masks(ev, threshold=0.5)
    x = ev.images[ev.attacked]
    assert torch.equal(masks, x.mean(1) > 0.5)   # the bright half of each tiny image
    res = ev.ifia.result
    scores = aa_scores(ev, masks)
    expected = aa_topk(masks, res.clean_map, res.adv_map, res.k).double().mean().item()
    assert scores["AA top-k (%)"] == pytest.approx(100 * expected)
    assert scores["AA Kendall"] == pytest.approx(
        np.nanmean(aa_kendall(masks, res.clean_map, res.adv_map).double().numpy()))
    with pytest.raises(ValueError, match="reference has shape"):
        aa_scores(ev, masks[:1])


def test_results_table_puts_paper_beside_ours():
    ours = {"natural": {"acc": 91.0, "topk": 40.0}, "ig_norm": {"acc": 85.0, "topk": 70.0}}
    paper = pd.DataFrame({"clean_accuracy": [90.86]}, index=["natural"])
    table = results_table(ours, paper, {"acc": "clean_accuracy"})
    assert list(table.columns) == [("acc", "paper"), ("acc", "ours"), ("topk", "paper"), ("topk", "ours")]
    assert table.loc["natural", ("acc", "paper")] == 90.86 and np.isnan(table.loc["ig_norm", ("acc", "paper")])
    assert table.loc["ig_norm", ("topk", "ours")] == 70.0


def test_before_after_figure_draws_images_every_model_classifies_correctly(tiny_evaluation):
    _, ev = tiny_evaluation
    fig = plot_maps_before_after({"a": ev, "b": dataclasses.replace(ev, name="b")}, n_show=2)
    assert len(fig.axes) == 2 * 5
