"""The leaderboard (rattrlib.leaderboard) on a tiny 4-class CNN: protocol presets and checks, one cached
evaluation (every column, the worst case per image against each attack, AutoAttack against clean and PGD), rank
intervals on hand-made rows, place, write/read, and the input-shape check before any compute."""

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import rattrlib.leaderboard as L
from rattrlib.attacks import evaluate_attributional_robustness
from rattrlib.data import DATASETS, DatasetInfo, ImageDataset
from rattrlib.evaluation import IFIAProtocol, make_ifia
from rattrlib.metrics import log_auc
from rattrlib.attributions import Saliency
from rattrlib.claims import METRICS, Measurements
from rattrlib.results import ResultsCache

QUADRANTS = ("top left", "top right", "bottom left", "bottom right")


def tiny4_dataset(split="train", n=32):
    """Four classes: one bright 4×4 quadrant of an 8×8 image on a dark noisy background."""
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    labels = torch.arange(n) % 4
    images = 0.1 * torch.rand(n, 1, 8, 8, generator=g)
    for c in range(4):
        r, q = divmod(c, 2)
        images[labels == c, :, 4 * r:4 * r + 4, 4 * q:4 * q + 4] += 0.6
    return ImageDataset("tiny4", split, images.clamp(0, 1), labels, QUADRANTS)


def tiny4_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 4))
    data = tiny4_dataset("train", 64)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(data.images), data.labels).backward()
        opt.step()
    return model.eval()


def tiny4_protocol(**changes):
    ifia = IFIAProtocol(eps=0.25, alpha=0.08, steps=3, k=8, ig_steps=2, n_eval=8, n_pgd=None, n_clean=None,
                        precision="fp32")
    settings = {"dataset": "tiny4", "ifia": ifia, "autoattack_steps": 5, "smoothgrad_samples": 2,
                "sensitivity_samples": 4, "seeds": (0,), "auc_attributions": ("saliency", "integrated_gradients"),
                "pgd_alpha": 0.03, **changes}
    return L.LeaderboardProtocol(**settings)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread for this module: on 2 busy cores, 2 threads made these 8×8 convolutions 15× slower
    (AutoAttack on 32 images: 41 s vs 2.8 s CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny4(tmp_path_factory, one_thread):
    """'tiny4' registered as a dataset, results cached under a temporary RATTR_HOME; the trained model and one
    evaluation of it (the cost of the module)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(DATASETS, "tiny4", DatasetInfo("tiny4", "test data", (1, 8, 8), QUADRANTS, True, "none",
                                                  lambda split, **kw: tiny4_dataset(split)))
        home = tmp_path_factory.mktemp("rattr")
        mp.setenv("RATTR_HOME", str(home))
        model, protocol = tiny4_model(), tiny4_protocol()
        row = L.evaluate(model, protocol=protocol, name="tiny", device="cpu", training_cost=1.5)
        yield {"model": model, "protocol": protocol, "row": row, "home": home}


def test_protocol_presets_and_bad_settings():
    cpu, paper, smoke = L.protocol("cpu"), L.protocol("paper"), L.protocol("smoke")
    assert (cpu.dataset, cpu.eps, cpu.ifia.n_clean, cpu.pgd_steps, cpu.pgd_alpha) == ("fashion_mnist", 0.1, None,
                                                                                      40, 0.01)
    assert (paper.dataset, paper.eps, paper.autoattack_steps) == ("cifar10", 8 / 255, 100)
    assert smoke.ifia.n_eval < cpu.ifia.n_eval < paper.ifia.n_eval
    assert cpu.attacks == L.ENSEMBLE and cpu.eps_multipliers == (0.25, 0.5, 1.0, 2.0)
    assert cpu.attributions == ("saliency", "integrated_gradients", "smoothgrad")
    assert L.protocol("cpu", steps=7, n_eval=None).ifia.steps == 7          # IFIA fields pass through
    with pytest.raises(ValueError, match="unknown protocol setting.*'epsilon'"):
        L.protocol("cpu", epsilon=0.1)
    ifia = cpu.ifia
    assert L.LeaderboardProtocol("fashion_mnist", ifia, attributions=["saliency"]).auc_attributions == ("saliency",)
    assert L.LeaderboardProtocol("fashion_mnist", ifia, auc_attributions=[]).auc_attributions == ()
    bad = [({"attributions": ("saliency", "guided_backprop")}, "attributions entry"),
           ({"attacks": ("ifia_topk",)}, "must include 'random_sign'"),
           ({"eps_multipliers": (0.5, 2.0)}, "must include 1"),
           ({"eps_multipliers": (1.0, 20.0)}, "leaves the \\[0, 1\\] scale"),
           ({"auc_attributions": ("smoothgrad",), "attributions": ("saliency",)}, "auc_attributions entry"),
           ({"autoattack_steps": 0}, "autoattack_steps"),
           ({"seeds": (0, 0)}, "repeats a seed")]
    for change, message in bad:
        with pytest.raises(ValueError, match=message):
            L.LeaderboardProtocol(**{"dataset": "fashion_mnist", "ifia": ifia, **change})


def test_autoattack_needs_four_classes(tiny_zoo):
    """The 2-class 'tiny' set of tests/conftest.py: APGD-T's targeted DLR loss reads the 4th logit."""
    ifia = IFIAProtocol(eps=0.1, alpha=0.01, steps=2, k=8, n_eval=4)
    with pytest.raises(ValueError, match="dataset='tiny' has 2 classes; AutoAttack"):
        L.LeaderboardProtocol(dataset="tiny", ifia=ifia)


def test_wrong_input_shape_is_rejected_before_any_compute(tiny4, monkeypatch):
    def no_compute(*args, **kwargs):
        raise AssertionError("the evaluation ran")

    monkeypatch.setattr(L, "_measure", no_compute)
    rgb = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 4))
    with pytest.raises(ValueError, match="model must take tiny4 images of shape N×1×8×8"):
        L.evaluate(rgb, protocol=tiny4["protocol"], device="cpu")
    ten_classes = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(ValueError, match=r"model must return 4 logits .* expected \(2, 4\)"):
        L.evaluate(ten_classes, protocol=tiny4["protocol"], device="cpu")
    with pytest.raises(ValueError, match="model must be an nn.Module"):
        L.evaluate(lambda x: x, protocol=tiny4["protocol"], device="cpu")
    with pytest.raises(ValueError, match="name="):
        L.evaluate(tiny4["model"], protocol=tiny4["protocol"], name="", device="cpu")


def test_evaluate_returns_a_row_with_every_column_finite(tiny4):
    row, protocol = tiny4["row"], tiny4["protocol"]
    labels = [c.label for c in L.columns(protocol)]
    assert list(row.summary.index) == labels
    for short in ("saliency", "IG", "SmoothGrad"):
        assert f"random top-k ∩ · {short}" in labels and f"worst Kendall τ · {short}" in labels
    assert "log-AUC worst top-k ∩ · IG" in labels and "log-AUC worst top-k ∩ · SmoothGrad" not in labels
    s = row.summary
    assert np.isfinite(s[["mean", "ci_low", "ci_high"]].to_numpy(dtype=float)).all()
    assert (s["ci_low"] <= s["mean"] + 1e-12).all() and (s["mean"] <= s["ci_high"] + 1e-12).all()
    assert (s["n_images"] > 0).all() and (s["n_seeds"] == 1).all()
    assert set(s["scope"]) == {"images only (1 seed)"}
    similarity = s[s["metric"].isin(["topk_intersection", "accuracy"])]
    assert ((similarity["mean"] >= 0) & (similarity["mean"] <= 1)).all()
    assert (row.name, row.seeds, row.n_images, row.training_cost) == ("tiny", (0,), 8, 1.5)
    assert {"code", "protocol", "seeds", "models", "torchattacks"} <= set(row.provenance)


def test_worst_case_is_the_per_image_minimum_over_the_ensemble(tiny4):
    m, protocol = tiny4["row"].measurements, tiny4["protocol"]
    for attribution in protocol.attributions:
        multipliers = protocol.eps_multipliers if attribution in protocol.auc_attributions else (1.0,)
        for mult in multipliers:
            for metric in L.SIMILARITIES:
                worst = m.side("", "tiny", L.condition(L.WORST, attribution, mult), metric)[0]
                each = pd.concat([m.side("", "tiny", L.condition(a, attribution, mult), metric)[0]
                                  for a in protocol.attacks], axis=1)
                assert worst.notna().sum() > 0
                assert (worst.dropna() <= each.loc[worst.dropna().index].min(axis=1) + 1e-12).all()
                assert np.allclose(worst.to_numpy(), np.fmin.reduce(each.to_numpy(), axis=1), equal_nan=True)
    # one attack of the ensemble re-run on its own gives the stored per-image values
    images = tiny4_dataset("test").subset(protocol.ifia.n_eval, seed=0)
    alone = evaluate_attributional_robustness(
        tiny4["model"], images.images, images.labels, None,
        make_ifia(tiny4["model"], protocol.ifia, "saliency", {}, objective="topk"), k=protocol.ifia.k, progress=False)
    stored = m.side("", "tiny", "ifia_topk@saliency", "topk_intersection")[0]
    assert np.allclose(stored.to_numpy(), alone.per_image["topk_intersection"].to_numpy(), equal_nan=True)


def test_object_aware_scores_are_the_goodness_times_the_similarity(tiny4):
    """AA top-k = |topk(clean) ∩ object| / k × top-k ∩ (GALI eq. 10 with a mask): the goodness factor depends on
    the clean map only, so per image every attack's AA top-k over its top-k ∩ is the same fraction of the
    clean map's top-k inside the object — computed here by hand from a re-run of the IFIA attack — and the
    worst case of AA top-k is that fraction times the worst top-k ∩."""
    m, protocol = tiny4["row"].measurements, tiny4["protocol"]
    images = tiny4_dataset("test").subset(protocol.ifia.n_eval, seed=0)
    alone = evaluate_attributional_robustness(
        tiny4["model"], images.images, images.labels, None,
        make_ifia(tiny4["model"], protocol.ifia, "saliency", {}, objective="topk"), k=protocol.ifia.k,
        progress=False, keep_result=True)
    attacked = np.flatnonzero(alone.per_image["correct"].to_numpy(dtype=bool))
    top = np.argsort(-alone.result.clean_map.flatten(1).numpy(), axis=1, kind="stable")[:, :protocol.ifia.k]

    def goodness(data):
        mask = (data.images[attacked].mean(dim=1) > L.OBJECT_THRESHOLD).flatten(1).numpy()
        out = np.full(len(data), np.nan)
        out[attacked] = np.take_along_axis(mask, top, axis=1).sum(axis=1) / protocol.ifia.k
        return out

    # this model's saliency looks mostly at the top rows, outside the bright quadrant of most images: with the
    # top half as the "object" the goodness factor is far from 0 and from 1
    top_half = torch.zeros_like(images.images)
    top_half[:, :, :4] = 1.0
    halves = ImageDataset("tiny4", "test", top_half, images.labels, QUADRANTS)
    direct = L._object_aware(alone, halves, L.OBJECT_THRESHOLD)["aa_topk"]
    assert 0.2 < np.nanmean(goodness(halves)) < 0.99
    assert np.allclose(direct, goodness(halves) * alone.per_image["topk_intersection"].to_numpy(),
                       equal_nan=True)
    goodness = goodness(images)
    for attack in ("ifia_topk", "random_sign", L.WORST):
        under = L.condition(attack, "saliency")
        aa = m.side("", "tiny", under, "aa_topk")[0].to_numpy()
        similarity = m.side("", "tiny", under, "topk_intersection")[0].to_numpy()
        assert np.allclose(aa, goodness * similarity, equal_nan=True), attack
        tau = m.side("", "tiny", under, "aa_kendall")[0].to_numpy()
        assert np.isfinite(tau[attacked]).all() and (np.abs(tau[attacked]) <= 1 + 1e-12).all()


def test_a_model_wrong_on_every_image_gets_nan_attributional_columns_not_a_crash(tiny4):
    """Nothing is attacked when every evaluated image is misclassified: the attributional and object-aware values
    are NaN (no interval), the accuracies are still measured."""
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(64, 4), nn.ReLU())
    with torch.no_grad():
        wrong[1].weight.zero_()
        wrong[1].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 5.0]))       # always "bottom right"
    images = tiny4_dataset("test")
    protocol = tiny4_protocol(ifia=dataclasses.replace(tiny4["protocol"].ifia, n_eval=8))
    subset = images.subset(8, seed=0)
    keep = subset.labels != 3
    assert keep.sum() >= 2
    data = ImageDataset("tiny4", "test", subset.images[keep], subset.labels[keep], QUADRANTS)
    m = Measurements()
    L._ensemble(wrong, data, protocol, "saliency", 1.0, 0, 0, m, False)
    for metric in (*L.SIMILARITIES, *L.AWARE):
        assert np.isnan(m.side("", "", L.condition(L.WORST, "saliency"), metric)[0].to_numpy()).all(), metric


def test_object_aware_columns_only_where_objects_lie_on_black(tiny4):
    cifar = L.protocol("paper")
    assert cifar.dataset == "cifar10" and cifar.object_threshold is None
    assert not any(c.metric in L.AWARE for c in L.columns(cifar))
    assert L.protocol("cpu").object_threshold == L.OBJECT_THRESHOLD
    assert sum(c.metric in L.AWARE for c in L.columns(L.protocol("cpu"))) == 2 * len(L.LEADERBOARD_ATTRIBUTIONS)
    with pytest.raises(ValueError, match="object_threshold"):
        tiny4_protocol(object_threshold=1.5)


def test_one_seeds_evaluation_is_cached_whatever_the_other_seeds(tiny4):
    """The cache key holds the evaluated seed, not the protocol's list of seeds: scoring seed 0 under a protocol
    that lists seeds 0, 1, 2 loads the row computed under seeds = (0,)."""
    home = tiny4["home"] / "results" / "leaderboard"
    before = sorted(home.glob("*.pt"))
    row = L.evaluate(tiny4["model"], protocol=dataclasses.replace(tiny4["protocol"], seeds=(0, 1, 2)), name="again",
                     device="cpu", cache=ResultsCache(tiny4["home"] / "results"))
    assert sorted(home.glob("*.pt")) == before
    assert np.allclose(row.summary["mean"].astype(float), tiny4["row"].summary["mean"].astype(float), equal_nan=True)


def test_alignment_and_stability_columns(tiny4):
    m, protocol = tiny4["row"].measurements, tiny4["protocol"]
    images = tiny4_dataset("test").subset(protocol.ifia.n_eval, seed=0)
    x, g = images.images.flatten(1), Saliency(tiny4["model"]).attribute(images.images, images.labels).flatten(1)
    expected = (x * g).sum(1) / (x.norm(dim=1) * g.norm(dim=1))       # cos(x, ∇f_y) by hand
    got = m.side("", "tiny", "clean", "alignment")[0].to_numpy()
    assert np.allclose(got, expected.detach().double().numpy(), atol=1e-6)
    for metric in L.STABILITY:
        values = m.side("", "tiny", L.STABILITY_CONDITION, metric)[0].to_numpy()
        assert np.isfinite(values).any() and (values[np.isfinite(values)] >= 0).all(), metric
        assert not METRICS[metric].higher_is_better
    # Max-Sensitivity is the maximum over the same draws whose mean is Avg-Sensitivity
    mx, avg = (m.side("", "tiny", L.STABILITY_CONDITION, metric)[0].to_numpy()
               for metric in ("max_sensitivity", "avg_sensitivity"))
    assert (mx >= avg - 1e-12).all()


def test_log_auc_is_the_metric_on_the_worst_case_curve(tiny4):
    m, protocol = tiny4["row"].measurements, tiny4["protocol"]
    curve = np.stack([m.side("", "tiny", L.condition(L.WORST, "integrated_gradients", mult),
                             "topk_intersection")[0].to_numpy() for mult in protocol.eps_multipliers])
    eps = torch.tensor([mult * protocol.eps for mult in protocol.eps_multipliers], dtype=torch.float64)
    expected = log_auc(eps, torch.from_numpy(curve)).numpy()
    got = m.side("", "tiny", "worst_case@integrated_gradients log-AUC", "topk_intersection")[0].to_numpy()
    assert np.allclose(got, expected, equal_nan=True)
    assert np.nanmin(got) >= 0 and np.nanmax(got) <= 1


def test_autoattack_is_at_most_clean_and_pgd(tiny4):
    m = tiny4["row"].measurements
    clean, aa, pgd = (m.side("", "tiny", under, "accuracy")[0].to_numpy().astype(bool)
                      for under in ("clean", "autoattack", "pgd"))
    assert len(clean) == len(aa) == len(pgd) == 32                      # n_clean = n_pgd = all: the same images
    assert not (aa & ~clean).any()                                       # a robust image is a correct one
    assert aa.mean() <= pgd.mean() + 1 / len(aa)                          # the stronger attack, within one image
    state = torch.get_rng_state()
    images = tiny4_dataset("test")
    again = L.autoattack_correct(tiny4["model"], images.images, images.labels, eps=0.25, n_classes=4, steps=5)
    assert torch.equal(torch.get_rng_state(), state)                     # torchattacks' reseeding is undone
    assert np.array_equal(again.numpy(), aa)                             # seeded: the same verdict per image


def test_evaluation_is_cached(tiny4):
    again = L.evaluate(tiny4["model"], protocol=tiny4["protocol"], name="again", device="cpu",
                       cache=ResultsCache(tiny4["home"] / "results"))
    assert len(list((tiny4["home"] / "results" / "leaderboard").glob("*.pt"))) == 1
    assert again.name == "again" and set(again.measurements.frame["row"]) == {"again"}
    assert np.allclose(again.summary["mean"].astype(float), tiny4["row"].summary["mean"].astype(float))


def test_merge_pools_seeds_into_a_t_interval(tiny4):
    row = tiny4["row"]
    frame = row.measurements.frame.assign(seed=1)
    frame["value"] = np.where(frame["metric"] == "accuracy", frame["value"], 0.9 * frame["value"])
    other = L._row("tiny", frame, tiny4["protocol"], 2.5, ["x"], [1.0])
    merged = L.merge([row, other])
    assert merged.seeds == (0, 1) and merged.training_cost == pytest.approx(2.0)
    assert set(merged.summary["scope"]) == {"seeds and images"} and (merged.summary["n_seeds"] == 2).all()
    col = "worst top-k ∩ · saliency"
    assert merged.value(col)[0] == pytest.approx(0.95 * row.value(col)[0])
    with pytest.raises(ValueError, match="repeat a seed"):
        L.merge([row, row])


def test_an_interval_is_cut_to_the_metrics_range_and_keeps_its_unbounded_side(tiny4):
    from scipy import stats

    row = tiny4["row"]
    frames = []
    for seed, value in ((0, 1.0), (1, 0.9), (2, 1.0)):  # clean accuracy per seed: 100 %, 90 %, 100 %
        frame = row.measurements.frame.assign(seed=seed)
        frame.loc[frame["metric"] == "accuracy", "value"] = value
        frames.append(frame)
    rows = [L._row("tiny", f, tiny4["protocol"], None, ["x"], [1.0]) for f in frames]
    merged = L.merge(rows)
    clean = merged.summary[(merged.summary["metric"] == "accuracy") & (merged.summary["under"] == "clean")].iloc[0]
    means = np.array([1.0, 0.9, 1.0])
    half = stats.t.ppf(0.975, 2) * means.std(ddof=1) / math.sqrt(3)
    assert means.mean() + half > 1.0                       # Student's t passes 100 % here ...
    assert clean["ci_high"] == 1.0                          # ... and the table stops at the metric's bound
    assert clean["ci_low"] == pytest.approx(means.mean() - half)
    assert L.interval_within_bounds("log_auc", -5.0, 5.0) == (-5.0, 5.0)  # an unbounded metric is left alone


def hand_row(name, mean, low, high, metric="topk_intersection", label="score", protocol=None):
    summary = pd.DataFrame({"mean": [mean], "ci_low": [low], "ci_high": [high], "n_images": [100], "n_seeds": [3],
                            "scope": ["seeds and images"], "under": ["x"], "metric": [metric],
                            "higher_is_better": [metric != "max_sensitivity"]}, index=[label])
    return L.Row(name=name, summary=summary, seeds=(0, 1, 2), n_images=100, training_cost=None,
                 provenance={"protocol": protocol or {"p": 1}})


HAND = [hand_row("A", 0.80, 0.75, 0.85), hand_row("B", 0.78, 0.70, 0.86), hand_row("C", 0.60, 0.55, 0.65),
        hand_row("D", 0.62, 0.50, 0.74), hand_row("E", math.nan, math.nan, math.nan)]


def test_ranks_give_the_documented_intervals():
    """Oracle by hand: best = 1 + #{j: l_j > h_i}; worst = #{j: h_j ≥ l_i}; A leads, B overlaps it."""
    r = L.ranks(HAND, "score")
    assert list(r.index) == ["A", "B", "D", "C", "E"]
    expected = {"A": (1, 1, 2, True), "B": (2, 1, 3, True), "C": (4, 3, 4, False), "D": (3, 2, 4, False)}
    for name, (rank, best, worst, top) in expected.items():
        assert tuple(r.loc[name, ["rank", "best_rank", "worst_rank", "shares_top"]]) == (rank, best, worst, top)
    assert np.isnan(r.loc["E", "rank"]) and not r.loc["E", "shares_top"]
    # lower is better (Max-Sensitivity): the intervals are mirrored
    low = [hand_row("A", 0.2, 0.15, 0.25, "max_sensitivity"), hand_row("B", 0.3, 0.1, 0.5, "max_sensitivity"),
           hand_row("C", 0.6, 0.55, 0.65, "max_sensitivity")]
    r = L.ranks(low, "score")
    assert list(r.index) == ["A", "B", "C"]
    assert r[["rank", "best_rank", "worst_rank"]].to_numpy().tolist() == [[1, 1, 2], [2, 1, 2], [3, 3, 3]]
    # a method overlapping the leader's interval but surely beaten by another does not share the top rank
    nested = [hand_row("L", 0.9, 0.5, 1.3), hand_row("j", 0.85, 0.84, 0.86), hand_row("i", 0.6, 0.55, 0.65)]
    r = L.ranks(nested, "score")
    assert (r.loc["i", "best_rank"], r.loc["i", "shares_top"], r.loc["i", "rank"]) == (2, False, 3)
    assert r.loc["j", "shares_top"] and r.loc["L", "shares_top"]
    # a wide interval does not lift a worse mean above a better one: w shares the top, k does not, k ranks first
    wide = [hand_row("w", 0.5, 0.0, 1.0), hand_row("k", 0.7, 0.69, 0.71), hand_row("m", 0.9, 0.89, 0.91)]
    r = L.ranks(wide, "score")
    assert list(r.index) == ["m", "k", "w"] and r["rank"].tolist() == [1, 2, 3]
    assert r["shares_top"].tolist() == [True, False, True]
    with pytest.raises(ValueError, match="column='nope'"):
        L.ranks(HAND, "nope")


def test_place_puts_the_users_row_in_its_rank(tmp_path):
    mine = hand_row("mine", 0.70, 0.68, 0.72)
    placed = L.place(mine, HAND, "score")
    assert list(placed.index) == ["A", "B", "mine", "D", "C", "E"]
    assert placed["yours"].tolist() == [False, False, True, False, False, False]
    assert placed.loc["mine", "rank"] == 3 and placed.loc["D", "rank"] == 4
    with pytest.raises(ValueError, match="already on the leaderboard"):
        L.place(hand_row("A", 0.7, 0.6, 0.8), HAND, "score")
    with pytest.raises(ValueError, match="different protocols"):
        L.place(hand_row("other", 0.7, 0.6, 0.8, protocol={"p": 2}), HAND, "score")


def test_write_produces_csv_and_json_with_provenance(tiny4, tmp_path):
    rows = [tiny4["row"], L.merge([tiny4["row"]], name="copy")]
    csv, js = L.write(rows, tmp_path / "leaderboard_smoke")
    assert (csv.name, js.name) == ("leaderboard_smoke.csv", "leaderboard_smoke.json")
    frame = pd.read_csv(csv, index_col="method")
    assert list(frame.index) == ["tiny", "copy"]
    assert {"clean accuracy", "clean accuracy · CI low", "AutoAttack accuracy · CI high"} <= set(frame.columns)
    payload = json.loads(js.read_text())
    assert {"code", "protocol", "seeds", "columns", "rows"} <= set(payload)
    assert payload["protocol"]["ifia"]["eps"] == 0.25 and payload["seeds"] == [0]
    assert {"code", "protocol", "seeds", "models"} <= set(payload["rows"][0]["provenance"])
    back = L.read(tmp_path / "leaderboard_smoke")
    assert [r.name for r in back] == ["tiny", "copy"]
    assert np.allclose(back[0].summary["mean"], tiny4["row"].summary["mean"].astype(float))
    placed = L.place(L.merge([tiny4["row"]], name="mine"), tmp_path / "leaderboard_smoke.json",
                     "clean accuracy")
    assert placed["yours"].sum() == 1 and len(placed) == 3
    shown = L.table(rows, display=True)
    assert shown.loc["tiny", "images × seeds"] == "8 × 1" and "[" in shown.loc["tiny", "clean accuracy"]


def test_table_is_sortable_and_states_cost_relative_to_natural():
    rows = [hand_row("natural", 0.1, 0.05, 0.15), hand_row("pgd_at", 0.5, 0.4, 0.6)]
    rows[0].training_cost, rows[1].training_cost = 10.0, 80.0
    t = L.table(rows)
    assert list(t.columns) == ["score", "score · CI low", "score · CI high", "images × seeds",
                               "training cost (CPU s/epoch)", "cost ÷ natural"]
    assert t.sort_values("score", ascending=False).index[0] == "pgd_at"
    assert t.loc["pgd_at", "cost ÷ natural"] == 8.0
    shown = L.table(rows, display=True)
    assert shown.loc["pgd_at", "score"] == "50.0 [40.0, 60.0]"          # top-k ∩ shown in percent
    with pytest.raises(ValueError, match="repeat the names"):
        L.table([rows[0], rows[0]])
