"""Sweeps for the SSR chapter: the attack grid is evaluate_attributional_robustness cell by cell, log-AUC over
ε is rattrlib.metrics.log_auc of the grid's means, the transfer of a perturbation to its own attribution
reproduces the direct scores, the cache is reused, and bad inputs fail before any compute. A tiny trained
ReLU CNN on 1×8×8 images, 2 attack steps."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rattrlib.attacks import evaluate_attributional_robustness, get_attack
from rattrlib.metrics import log_auc
from rattrlib.results import ResultsCache
from rattrlib.sweeps import (GRID_COLUMNS, SSR_METRICS, TRANSFER_COLUMNS, attack_cell, attack_factory, attack_grid,
                             check_eps_list, log_auc_table, summarise_transfer, transfer_grid, transfer_scores)

EPS = [0.02, 0.05, 0.1]
K = 10
IG = {"integrated_gradients": {"n_steps": 4}}


def two_class_task(n, seed):
    """Bright left half (class 0) or bright right half (class 1), plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = 0.1 * torch.rand(n, 1, 8, 8, generator=g)
    x[y == 0, :, :, :4] += 0.5
    x[y == 1, :, :, 4:] += 0.5
    return x.clamp(0, 1), y


class Counting(nn.Module):
    """A ReLU CNN that counts its forwards (to check that validation happens before any compute)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 16),
                                 nn.ReLU(), nn.Linear(16, 2))
        self.forwards = 0

    def forward(self, x):
        self.forwards += 1
        return self.net(x)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Counting()
    x, y = two_class_task(64, 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    xt, yt = two_class_task(6, 1)
    yt[5] = 1 - yt[5]  # one misclassified image: not attacked
    torch.set_num_threads(before)
    return model, xt, yt


ATTACKS = {"top-k": attack_factory("ifia_topk", steps=2, alpha_ratio=0.5),
           "random": attack_factory("random_sign")}


@pytest.fixture(scope="module")
def grid(trained):
    model, x, y = trained
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    frame = attack_grid(model, x, y, ATTACKS, ["saliency", "integrated_gradients"], EPS, K, attribution_kwargs=IG)
    torch.set_num_threads(before)
    return frame


def test_grid_is_tidy_with_one_row_per_cell_and_metric(trained, grid):
    assert tuple(grid.columns) == GRID_COLUMNS
    assert len(grid) == 2 * 2 * len(EPS) * len(SSR_METRICS)
    assert list(grid["metric"].unique()) == list(SSR_METRICS)
    assert sorted(grid["eps"].unique()) == EPS
    assert set(grid["attack"]) == {"top-k", "random"}
    assert (grid["n_attacked"] == 5).all() and (grid["n"] <= 5).all()
    assert grid["success_rate"].between(0, 1).all()
    finite = grid.dropna(subset=["ci_low"])
    assert (finite["ci_low"] <= finite["mean"] + 1e-12).all() and (finite["mean"] <= finite["ci_high"] + 1e-12).all()
    topk = grid[grid["metric"] == "topk_intersection"]["mean"]
    assert topk.between(0, 1).all()


def test_grid_cell_equals_a_direct_evaluation(trained, grid):
    model, x, y = trained
    attack = get_attack("ifia_topk", model, attribution="integrated_gradients", attribution_kwargs={"n_steps": 4},
                        eps=0.05, steps=2, alpha=0.025, k=K, generator=torch.Generator().manual_seed(0))
    report = evaluate_attributional_robustness(model, x, y, None, attack, k=K, progress=False)
    rows = grid[(grid["attack"] == "top-k") & (grid["attribution"] == "integrated_gradients") & (grid["eps"] == 0.05)]
    for _, row in rows.iterrows():
        assert row["mean"] == pytest.approx(report.summary.iloc[0][f"{row['metric']}_mean"], abs=1e-12)
    # the cell also carries its adversarial images (within ε of the attacked clean images)
    cell = attack_cell(model, x, y, ATTACKS["top-k"], "integrated_gradients", 0.05, K, name="top-k",
                       attribution_kwargs={"n_steps": 4})
    assert cell.x_adv.shape == (5, 1, 8, 8) and list(cell.attacked) == [0, 1, 2, 3, 4]
    assert (cell.x_adv - x[cell.attacked]).abs().max() <= 0.05 + 1e-6


def test_log_auc_table_is_log_auc_of_each_curve(grid):
    table = log_auc_table(grid)
    assert len(table) == 2 * 2 * len(SSR_METRICS)
    for _, row in table.iterrows():
        curve = grid[(grid["attack"] == row["attack"]) & (grid["attribution"] == row["attribution"])
                     & (grid["metric"] == row["metric"])].sort_values("eps")
        expected = float(log_auc(torch.tensor(curve["eps"].to_numpy()), torch.tensor(curve["mean"].to_numpy())))
        assert row["log_auc"] == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert row["n_eps"] == 3 and row["eps_min"] == 0.02 and row["eps_max"] == 0.1
    # by hand for one curve: trapezoids over log2 ε, divided by the log2 range
    c = grid[(grid["attack"] == "top-k") & (grid["attribution"] == "saliency")
         & (grid["metric"] == "topk_intersection")]
    v, lx = c["mean"].to_numpy(), np.log2(c["eps"].to_numpy())
    by_hand = ((lx[1] - lx[0]) * (v[0] + v[1]) / 2 + (lx[2] - lx[1]) * (v[1] + v[2]) / 2) / (lx[2] - lx[0])
    got = table[(table["attack"] == "top-k") & (table["attribution"] == "saliency")
                & (table["metric"] == "topk_intersection")]
    assert got["log_auc"].item() == pytest.approx(by_hand, rel=1e-12)
    assert got["higher_is_better"].item() is True
    wide = log_auc_table(grid, index="attribution")
    assert list(wide.columns.names) == ["attack", "metric"] and set(wide.index) == {"saliency", "integrated_gradients"}
    assert wide.loc["saliency", ("top-k", "topk_intersection")] == pytest.approx(by_hand, rel=1e-12)


def test_log_auc_table_rejects_short_or_repeated_curves(grid):
    with pytest.raises(ValueError, match="at least 2"):
        log_auc_table(grid[grid["eps"] == 0.02])
    with pytest.raises(ValueError, match="repeated"):
        log_auc_table(pd.concat([grid, grid]))
    with pytest.raises(ValueError, match="lacks"):
        log_auc_table(grid.drop(columns="eps"))
    with pytest.raises(ValueError, match="index"):
        log_auc_table(grid, index="eps")


def test_transfer_to_the_source_attribution_reproduces_the_direct_scores(trained, grid):
    model, x, y = trained
    targets = ["saliency", "integrated_gradients", "smoothgrad"]
    frame = transfer_grid(model, x, y, {"top-k": ATTACKS["top-k"]}, "saliency", targets, EPS, K,
                          attribution_kwargs={**IG, "smoothgrad": {"n_samples": 4, "sigma": 0.1}})
    assert tuple(frame.columns) == TRANSFER_COLUMNS
    assert len(frame) == len(targets) * len(EPS) * len(SSR_METRICS)
    assert (frame["source"] == "saliency").all() and (frame["n_attacked"] == 5).all()
    same = frame[frame["attribution"] == "saliency"].drop(columns="source").reset_index(drop=True)
    direct = grid[(grid["attack"] == "top-k") & (grid["attribution"] == "saliency")].reset_index(drop=True)
    for col in ("mean", "ci_low", "ci_high"):
        np.testing.assert_allclose(same[col], direct[col], rtol=1e-6, atol=1e-9)
    assert (same["n"].to_numpy() == direct["n"].to_numpy()).all()
    # the perturbation found on saliency also moves the other maps (ε = 0.1)
    moved = frame[(frame["eps"] == 0.1) & (frame["metric"] == "cosine_distance")]
    assert (moved["mean"] > 0).all()
    assert len(log_auc_table(frame)) == len(targets) * len(SSR_METRICS)


def test_transfer_scores_are_the_per_image_values_behind_the_grid(trained):
    model, x, y = trained
    attacks = {"top-k": ATTACKS["top-k"], "random": attack_factory("random_sign")}
    scores = transfer_scores(model, x, y, attacks, "saliency", ["saliency", "integrated_gradients"], EPS, K,
                             attribution_kwargs=IG)
    assert set(scores) == {(a, e, t) for a in attacks for e in EPS for t in ("saliency", "integrated_gradients")}
    for (a, e, t), per_image in scores.items():
        cell = per_image["cell"]
        assert cell.eps == e and all(len(per_image[m]) == len(cell.attacked) for m in SSR_METRICS)
        if t == "saliency":  # the source map: the attack cell's own per-image scores
            for m in SSR_METRICS:
                np.testing.assert_allclose(per_image[m], cell.per_image.loc[cell.attacked, m].to_numpy(),
                                           rtol=1e-6, atol=1e-9)
    frame = summarise_transfer(scores, "saliency")
    row = frame[(frame["attack"] == "top-k") & (frame["eps"] == EPS[-1])
                & (frame["attribution"] == "integrated_gradients") & (frame["metric"] == SSR_METRICS[0])]
    assert len(row) == 1 and float(row["mean"].iloc[0]) == pytest.approx(
        float(np.mean(scores[("top-k", EPS[-1], "integrated_gradients")][SSR_METRICS[0]])))


def test_cells_are_cached_and_reused(trained, tmp_path):
    model, x, y = trained
    cache = ResultsCache(tmp_path)
    attacks = {"random": attack_factory("random_sign")}
    first = attack_grid(model, x, y, attacks, ["saliency"], [0.05, 0.1], K, cache=cache)
    model.forwards = 0
    again = attack_grid(model, x, y, attacks, ["saliency"], [0.05, 0.1], K, cache=cache)
    assert model.forwards == 0
    pd.testing.assert_frame_equal(first, again)
    longer = attack_grid(model, x, y, attacks, ["saliency"], [0.02, 0.05, 0.1], K, cache=cache)
    assert model.forwards > 0  # only the new ε was computed
    pd.testing.assert_frame_equal(longer[longer["eps"] > 0.03].reset_index(drop=True), first)
    assert len(list((tmp_path / "attack_cell").glob("*.pt"))) == 3
    transfer_grid(model, x, y, attacks, "saliency", ["saliency"], [0.05, 0.1], K, cache=cache)
    model.forwards = 0
    transfer_grid(model, x, y, attacks, "saliency", ["saliency"], [0.05, 0.1], K, cache=cache)
    assert model.forwards == 0


@pytest.mark.parametrize("eps_list, message", [
    ([], "empty"),
    ([0.05, 0.02], "increasing"),
    ([0.02, 0.02], "increasing"),
    ([-0.01, 0.02], "outside"),
    ([0.0, 0.02], "> 0"),
    ([8, 16], "outside"),
    ("0.1", "sequence"),
])
def test_bad_budgets_raise_before_compute(trained, eps_list, message):
    model, x, y = trained
    model.forwards = 0
    with pytest.raises(ValueError, match=message):
        attack_grid(model, x, y, ATTACKS, ["saliency"], eps_list, K)
    with pytest.raises(ValueError, match=message):
        transfer_grid(model, x, y, ATTACKS, "saliency", ["saliency"], eps_list, K)
    assert model.forwards == 0


def test_bad_names_and_settings_raise_before_compute(trained):
    model, x, y = trained
    model.forwards = 0
    bad = [
        (dict(attributions=["saliency", "lrp"]), "attribution='lrp'"),
        (dict(attributions=[]), "empty"),
        (dict(attributions=["saliency", "saliency"]), "repeat"),
        (dict(attribution_kwargs={"smoothgrad": {}}), "not in the sweep"),
        (dict(metrics=["topk_intersection", "auc"]), "metric='auc'"),
        (dict(attacks={}), "non-empty"),
        (dict(attacks={"x": "ifia_topk"}), "factory"),
        (dict(attacks={"x": attack_factory("ifia_topk", stepz=3)}), "could not be built"),
        (dict(attacks={"x": attack_factory("ifia_topk", steps=0)}), "steps"),
        (dict(attacks={"x": lambda model, **kw: get_attack("pgd", model, eps=kw["eps"], alpha=0.01, steps=1)}),
         "not an attack"),
        (dict(k=65), "k=65"),
    ]
    base = dict(attacks=ATTACKS, attributions=["saliency"], eps_list=EPS, k=K)
    for change, message in bad:
        args = {**base, **change}
        with pytest.raises(ValueError, match=message):
            attack_grid(model, x, y, args["attacks"], args["attributions"], args["eps_list"], args["k"],
                        **{key: v for key, v in change.items() if key in ("attribution_kwargs", "metrics")})
    with pytest.raises(ValueError, match="attribution='ig'"):
        transfer_grid(model, x, y, ATTACKS, "ig", ["saliency"], EPS, K)
    with pytest.raises(ValueError, match="attribution='sg'"):
        transfer_grid(model, x, y, ATTACKS, "saliency", ["saliency", "sg"], EPS, K)
    with pytest.raises(ValueError, match="alpha"):
        attack_factory("random_sign", alpha=0.1)
    with pytest.raises(ValueError, match="attack='pgd'"):
        attack_factory("pgd")
    with pytest.raises(ValueError, match="set by the sweep"):
        attack_factory("ifia_topk", eps=0.1)
    assert model.forwards == 0
    assert check_eps_list(np.array([2, 4, 8]) / 255) == pytest.approx((2 / 255, 4 / 255, 8 / 255))
    assert not math.isnan(check_eps_list([0.1])[0])
