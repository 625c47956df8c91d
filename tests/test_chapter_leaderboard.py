"""The leaderboard chapter's settings, its views on hand-made rows and its Pareto figure (the chapter itself runs
in make test's smoke book; the leaderboard's measurements are tested in test_leaderboard.py)."""

import numpy as np
import pandas as pd
import pytest

from rattrlib import leaderboard as L
from rattrlib.chapters import leaderboard as board
from rattrlib.plots import plot_pareto
from rattrlib.zoo import SAT_FAMILY, ZOO_METHODS


def test_settings_presets_and_overrides():
    s = board.LeaderboardSettings.resolve("cpu")
    assert s.methods == ZOO_METHODS and s.seeds == (0, 1, 2)
    p = s.protocol
    assert p.dataset == "fashion_mnist" and p.eps == 0.1 and p.seeds == (0, 1, 2)
    assert p.ifia.alpha == pytest.approx(2.5 * 0.1 / s.attack_steps)          # Madry's rule, not RAR's 0.01
    assert p.ifia.n_clean is None and p.ifia.precision == "fp32"
    changed = board.LeaderboardSettings.resolve("cpu", eps=0.05, alpha=0.01, n_eval=10, auc_attributions=[])
    assert (changed.protocol.eps, changed.protocol.ifia.alpha, changed.protocol.ifia.n_eval) == (0.05, 0.01, 10)
    assert changed.protocol.auc_attributions == ()
    paper = board.LeaderboardSettings.resolve("paper")
    assert paper.protocol.dataset == "cifar10" and not set(paper.methods) & set(SAT_FAMILY)
    assert (paper.protocol.autoattack_steps, paper.protocol.autoattack_queries) == (100, 5000)


@pytest.mark.parametrize("params, name", [({"methods": ["nat"]}, "methods"), ({"methods": []}, "methods"),
                                          ({"methods": ["art", "art"]}, "methods"), ({"eps": 0.0}, "eps"),
                                          ({"eps": float("nan")}, "eps"), ({"n_eval": 1}, "n_eval"),
                                          ({"autoattack_queries": 0}, "autoattack_queries"),
                                          ({"auc_attributions": ["guided_backprop"]}, "auc_attributions"),
                                          ({"n_pgd": 2.5}, "n_pgd"), ({"epz": 0.1}, "epz")])
def test_bad_parameters_are_named_before_any_compute(params, name):
    with pytest.raises(ValueError, match=name):
        board.LeaderboardSettings.resolve("smoke", **params)


def test_a_method_without_a_zoo_preset_is_refused_by_name():
    with pytest.raises(ValueError, match="sat"):
        board.LeaderboardSettings.resolve("paper", methods=["natural", "sat"])


def _row(name, values, protocol):
    """A Row whose summary gives every column of ``protocol`` the value of its metric in ``values`` ± 0.01."""
    records = {}
    for c in L.columns(protocol):
        v = values.get(c.metric, 0.5)
        records[c.label] = {"mean": v, "ci_low": v - 0.01, "ci_high": v + 0.01, "n_images": 10, "n_seeds": 3,
                            "scope": "seeds and images", "under": c.under, "metric": c.metric,
                            "higher_is_better": c.higher_is_better}
    summary = pd.DataFrame.from_dict(records, orient="index")
    return L.Row(name=name, summary=summary, seeds=(0, 1, 2), n_images=10, training_cost=1.0,
                 provenance={"protocol": protocol.as_dict(), "models": [], "evaluation_seconds": []})


@pytest.fixture
def fake_result():
    settings = board.LeaderboardSettings.resolve("smoke")
    p = settings.protocol
    rows = [_row("A", {"accuracy": 0.9, "topk_intersection": 0.3, "max_sensitivity": 0.2}, p),
            _row("B", {"accuracy": 0.8, "topk_intersection": 0.6, "max_sensitivity": 0.5}, p),
            _row("C", {"accuracy": 0.7, "topk_intersection": 0.605, "max_sensitivity": 0.1}, p),
            _row("D", {"accuracy": 0.6, "topk_intersection": 0.2, "max_sensitivity": 0.9}, p)]
    return board.LeaderboardResult(settings, rows, {}, pd.DataFrame(), ())


def test_leaders_share_the_top_rank_when_intervals_overlap(fake_result):
    leaders = board.leaders(fake_result)
    assert leaders.loc["clean accuracy", "shares the top rank"] == "A"
    assert leaders.loc["clean accuracy", "next by mean"] == "B, C"
    # B (0.60 ± 0.01) and C (0.605 ± 0.01) overlap: both lead, and one more makes three
    assert set(leaders.loc[board.ATTRIBUTIONAL, "shares the top rank"].split(", ")) == {"B", "C"}
    assert leaders.loc[board.ATTRIBUTIONAL, "next by mean"] == "A"
    # lower is better for Max-Sensitivity: C leads
    assert leaders.loc["Max-Sensitivity · saliency", "better"] == "lower"
    assert leaders.loc["Max-Sensitivity · saliency", "shares the top rank"] == "C"


def test_display_table_is_sorted_by_rank_and_in_display_units(fake_result):
    table = board.display_table(fake_result, "robust accuracy")
    assert list(table.index) == ["A", "B", "C", "D"]
    assert table.loc["A", "clean accuracy"].startswith("90.0 [89.0, 91.0]")
    with pytest.raises(ValueError, match="group"):
        board.display_table(fake_result, "speed")


def test_pareto_front_joins_the_undominated_methods(fake_result):
    table = L.table(fake_result.rows)
    fig = plot_pareto(table, board.ACCURACY, board.ATTRIBUTIONAL, size_column="training cost (CPU s/epoch)",
                      highlight=["D"])
    ax = fig.axes[0]
    front = [line for line in ax.get_lines() if line.get_label() == "Pareto front (means)"][0]
    # A (90, 30), B (80, 60), C (70, 60.5) are undominated; D (60, 20) is beaten by all three
    assert np.allclose(front.get_xdata(), [70, 80, 90]) and np.allclose(front.get_ydata(), [60.5, 60, 30])
    colours = ax.collections[-1].get_facecolors()
    assert colours.shape[0] == 4 and colours[3][0] > colours[0][0]   # D highlighted in red


def test_pareto_names_do_not_overlap_where_the_points_crowd():
    rng = np.random.default_rng(0)
    x, y = 0.80 + 0.01 * rng.random(12), 0.40 + 0.01 * rng.random(12)   # 12 methods within one point of each other
    table = pd.DataFrame({"acc": x, "acc · CI low": x - 0.01, "acc · CI high": x + 0.01,
                          "attr": y, "attr · CI low": y - 0.01, "attr · CI high": y + 0.01},
                         index=[f"method-{i}" for i in range(12)])
    fig = plot_pareto(table, "acc", "attr")
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[0].texts]
    assert len(boxes) == 12
    overlapping = [(i, j) for i in range(12) for j in range(i + 1, 12) if boxes[i].overlaps(boxes[j])]
    assert not overlapping


def test_display_table_states_the_images_behind_its_first_column(fake_result):
    table = board.display_table(fake_result, "attributional robustness")
    column = [c for c in table.columns if c.startswith("images × seeds")]
    assert column == [f"images × seeds ({table.columns[0]})"] and set(table[column[0]]) == {"10 × 3"}


def test_protocol_note_states_the_interval_of_the_seeds_given():
    three = board.protocol_note(board.LeaderboardSettings.resolve("cpu"))
    one = board.protocol_note(board.LeaderboardSettings.resolve("cpu", seeds=[0]))
    assert "Student's t over the 3 per-seed means" in three and "bootstrap" not in three
    assert "bootstrap over the images of the one seed" in one and "Student" not in one
    assert "Square queries (Croce & Hein: 100 and 5000" in three                   # the reduced AutoAttack is said
    assert "(Croce & Hein" not in board.protocol_note(board.LeaderboardSettings.resolve("paper"))


def test_budget_table_divides_the_timed_cost_by_the_natural_models():
    budgets = pd.DataFrame({"method": ["Natural", "PGD-AT"], "CPU s / epoch (timed)": [10.0, 95.0],
                            "training s (logged, mean over seeds)": [30.0, 100.0]}).set_index("method")
    result = board.LeaderboardResult(board.LeaderboardSettings.resolve("smoke"), [], {}, budgets, ())
    assert list(board.budget_table(result)["cost ÷ Natural"]) == [1.0, 9.5]
    assert board._training_seconds([{"seconds": 1.5}, {"seconds": 2.0}]) == 3.5


def test_an_empty_claims_table_says_so_in_a_row():
    from rattrlib.claims import claims_table

    table = claims_table([])
    assert len(table) == 1 and "no claim" in table.iloc[0]["verdict"]
