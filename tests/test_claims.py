"""The claims engine: declaration checks, each verdict reachable, the hierarchical bootstrap against oracles."""

import math

import numpy as np
import pytest
from scipy import stats

from rattrlib.claims import (Claim, Measurements, check_claims, claims_table, contrast_interval, decide, judge,
                             judge_all, load_verdicts, save_verdicts)


def claim(**changes):
    base = dict(id="t.topk", paper="ART", where="Table 1", says="ART is more robust", metric="topk_intersection",
                a="ART", b="PGD-AT", under="ifia_topk")
    return Claim(**{**base, **changes})


def measured(a_values, b_values, *, metric="topk_intersection", under="ifia_topk", random_a=None, random_b=None):
    """Measurements of rows ART and PGD-AT; ``*_values`` are lists (one array per seed). The random baseline an
    attributional claim needs defaults to maps that do not move (1.0)."""
    if random_a is None:
        random_a = [np.ones_like(np.asarray(v, dtype=float)) for v in a_values]
        random_b = [np.ones_like(np.asarray(v, dtype=float)) for v in b_values]
    m = Measurements()
    for seed, (va, vb) in enumerate(zip(a_values, b_values)):
        m.add("ART", under, metric, seed, va)
        m.add("PGD-AT", under, metric, seed, vb)
        m.add("ART", "random", metric, seed, random_a[seed])
        m.add("PGD-AT", "random", metric, seed, random_b[seed])
    return m


# ------------------------------------------------------------------------------------------------ declaration
def test_claim_with_the_same_side_twice_is_refused():
    with pytest.raises(ValueError, match="both sides"):
        claim(b="ART")


def test_same_row_under_two_conditions_is_a_valid_claim():
    c = claim(b="ART", under_b="random", metric="kendall_tau")
    assert c.side_b_under == "random" and not c.attributional


@pytest.mark.parametrize("under", ["clean", "goodness"])
def test_similarity_metric_without_a_perturbation_is_refused_as_fixed_by_construction(under):
    with pytest.raises(ValueError, match="by construction"):
        claim(under=under)


@pytest.mark.parametrize("under", ["clean", "goodness"])
def test_reference_metric_on_unperturbed_maps_is_a_claim_but_not_about_attributional_robustness(under):
    # GALI's goodness: two models' clean maps against a third model's map; not fixed, and no random row applies
    c = claim(metric="aa_topk", under=under)
    assert c.unperturbed and not c.attributional
    assert claim(metric="aa_topk").attributional  # the same metric under an attack is judged net of random too


def test_margin_spanning_the_metric_range_is_refused():
    with pytest.raises(ValueError, match="by construction"):
        claim(relation="comparable", margin=1.0)
    with pytest.raises(ValueError, match="by construction"):
        claim(metric="kendall_tau", relation="not_worse", margin=2.5)
    claim(relation="comparable", margin=0.01)  # a real band is accepted


@pytest.mark.parametrize("changes, word", [
    ({"metric": "accuracy_of_vibes"}, "metric vocabulary"),
    ({"metric": "log_auc"}, "no direction"),
    ({"relation": "much_better"}, "relation"),
    ({"margin": -0.1}, "margin"),
    ({"margin": math.nan}, "margin"),
    ({"says": " "}, "says"),
])
def test_bad_declarations_name_the_field(changes, word):
    with pytest.raises(ValueError, match=word):
        claim(**changes)


def test_duplicate_ids_are_refused():
    with pytest.raises(ValueError, match="unique"):
        check_claims([claim(), claim(b="Natural")])


def test_direction_is_read_from_the_metric():
    assert claim().sign == 1.0
    assert claim(metric="center_of_mass_dislocation").sign == -1.0


# ------------------------------------------------------------------------------------------------ verdicts
@pytest.mark.parametrize("relation, margin, low, high, expected", [
    ("better", 0.0, 0.01, 0.05, "holds"),
    ("better", 0.0, -0.05, -0.01, "does not hold"),
    ("better", 0.0, -0.01, 0.02, "inconclusive"),
    ("better", 0.02, 0.01, 0.05, "inconclusive"),
    ("not_worse", 0.02, -0.015, 0.01, "holds"),
    ("not_worse", 0.02, -0.05, -0.03, "does not hold"),
    ("comparable", 0.01, -0.005, 0.008, "holds"),
    ("comparable", 0.01, 0.02, 0.05, "does not hold"),
    ("comparable", 0.01, -0.05, -0.02, "does not hold"),
    ("comparable", 0.01, 0.0, 0.03, "inconclusive"),
    ("better", 0.0, math.nan, 0.3, "inconclusive"),
])
def test_decide(relation, margin, low, high, expected):
    assert decide(relation, margin, low, high) == expected


def test_each_verdict_is_reached_from_synthetic_measurements():
    rng = np.random.default_rng(0)
    base = [rng.uniform(0.3, 0.7, 200) for _ in range(3)]
    higher = [b + 0.1 + rng.normal(0, 0.02, 200) for b in base]
    same = [b + rng.normal(0, 0.02, 200) for b in base]
    assert judge(claim(), measured(higher, base)).verdict == "holds"
    assert judge(claim(), measured(base, higher)).verdict == "does not hold"
    noisy = [b + rng.normal(0, 0.3, 200) for b in base]
    assert judge(claim(), measured(noisy, base)).verdict == "inconclusive"
    assert judge(claim(relation="comparable", margin=0.02), measured(same, base)).verdict == "holds"
    assert judge(claim(relation="comparable", margin=0.02), measured(higher, base)).verdict == "does not hold"


def test_lower_is_better_metric_flips_the_sign():
    rng = np.random.default_rng(1)
    small = [rng.uniform(0, 1, 100) for _ in range(2)]
    large = [s + 2.0 for s in small]
    v = judge(claim(metric="center_of_mass_dislocation"), measured(small, large, metric="center_of_mass_dislocation"))
    assert v.difference == pytest.approx(2.0) and v.verdict == "holds"


def test_net_of_random_can_disagree_with_raw():
    # ART's maps survive the attack better, but only because they move less under any noise: the attack's own
    # effect (attack − random) is the same for both rows, so the raw claim holds and the net one does not.
    rng = np.random.default_rng(2)
    n = 300
    rnd_a = [np.clip(0.9 + rng.normal(0, 0.02, n), 0, 1) for _ in range(3)]
    rnd_b = [np.clip(0.6 + rng.normal(0, 0.02, n), 0, 1) for _ in range(3)]
    att_a = [r - 0.3 + rng.normal(0, 0.01, n) for r in rnd_a]
    att_b = [r - 0.3 + rng.normal(0, 0.01, n) for r in rnd_b]
    v = judge(claim(), measured(att_a, att_b, random_a=rnd_a, random_b=rnd_b))
    assert v.verdict == "holds"
    assert v.net_verdict == "inconclusive"
    assert abs(v.net_difference) < 0.01


def test_missing_images_on_one_side_are_skipped_not_counted():
    a = [np.array([1.0, 1.0, np.nan, 1.0])]
    b = [np.array([0.0, 0.0, 0.0, np.nan])]
    v = judge(claim(), measured(a, b), n_boot=200)
    assert v.mean_a == 1.0 and v.mean_b == 0.0 and v.n_images == 3


# ------------------------------------------------------------------------------------------------ the bootstrap
def test_one_seed_bootstrap_is_seeded_and_reproducible():
    rng = np.random.default_rng(3)
    m = measured([rng.normal(0.5, 0.1, 80)], [rng.normal(0.48, 0.1, 80)])
    one, two = judge(claim(), m, seed=7), judge(claim(), m, seed=7)
    assert (one.ci_low, one.ci_high) == (two.ci_low, two.ci_high)
    other = judge(claim(), m, seed=8)
    assert (other.ci_low, other.ci_high) != (one.ci_low, one.ci_high)
    assert one.scope == "images only (1 seed)" and "(images only)" in claims_table([one]).iloc[0]["n (images × seeds)"]


def test_several_seeds_use_student_t_over_the_per_seed_differences():
    # oracle: scipy's t interval of the per-seed mean differences
    rng = np.random.default_rng(10)
    a = [rng.uniform(0, 1, 60) + o for o in (0.05, 0.1, 0.02, 0.08)]
    b = [rng.uniform(0, 1, 60) for _ in range(4)]
    v = judge(claim(metric="kendall_tau"), measured(a, b, metric="kendall_tau"))
    d = np.array([x.mean() - y.mean() for x, y in zip(a, b)])
    low, high = stats.t.interval(0.95, 3, loc=d.mean(), scale=d.std(ddof=1) / 2)
    assert (v.difference, v.ci_low, v.ci_high) == pytest.approx((d.mean(), low, high))
    assert v.scope == "seeds and images" and v.n_seeds == 4


@pytest.mark.parametrize("seed_sd, image_sd", [(0.1, 0.01), (0.0, 0.3)])
def test_null_claims_are_called_at_the_nominal_rate(seed_sd, image_sd):
    # calibration over 400 simulated null claims (true difference 0) with 3 seeds: each tail should hold 2.5 %.
    # The two-stage percentile bootstrap this replaced said "holds" 9–12 % of the time when seed noise dominates
    # and was 1.5x too wide when only image noise exists.
    rng = np.random.default_rng(11)
    calls, widths = [], []
    for _ in range(400):
        shift = rng.normal(0, seed_sd, (3, 2))
        a = [rng.normal(shift[s, 0], image_sd, 40) for s in range(3)]
        b = [rng.normal(shift[s, 1], image_sd, 40) for s in range(3)]
        r = contrast_interval(measured_tables(a, b), [1.0, -1.0])
        calls.append(decide("better", 0.0, r["low"], r["high"]))
        widths.append(r["high"] - r["low"])
    holds = calls.count("holds") / len(calls)
    assert holds < 0.05 and calls.count("does not hold") / len(calls) < 0.05
    assert 0.9 < 1 - (holds + calls.count("does not hold") / len(calls)) < 0.995


def measured_tables(a, b):
    m = measured(a, b, metric="kendall_tau")
    return [m.side("", "ART", "ifia_topk", "kendall_tau"), m.side("", "PGD-AT", "ifia_topk", "kendall_tau")]


def test_one_seed_interval_matches_the_t_interval_of_paired_differences():
    # oracle: with one seed the two-stage bootstrap is the paired image bootstrap, whose percentile interval
    # for a mean of ~500 roughly normal differences agrees with Student's t interval to a few percent.
    rng = np.random.default_rng(4)
    base = rng.uniform(0, 1, 500)
    a = base + rng.normal(0.05, 0.1, 500)
    v = judge(claim(metric="kendall_tau"), measured([a], [base], metric="kendall_tau"), n_boot=4000)
    d = a - base
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    assert v.difference == pytest.approx(d.mean())
    assert v.ci_low == pytest.approx(d.mean() - half, abs=0.15 * half)
    assert v.ci_high == pytest.approx(d.mean() + half, abs=0.15 * half)


def test_pairing_narrows_the_interval_when_sides_share_images():
    rng = np.random.default_rng(5)
    base = rng.uniform(0, 1, 300)
    a = base + 0.02 + rng.normal(0, 0.01, 300)
    paired = judge(claim(), measured([a], [base]))
    shuffled = judge(claim(), measured([a], [rng.permutation(base)]))
    assert paired.ci_high - paired.ci_low < 0.3 * (shuffled.ci_high - shuffled.ci_low)


def test_seed_to_seed_spread_widens_the_interval():
    # per-seed means that differ (training noise) must widen the interval beyond the image noise alone
    rng = np.random.default_rng(6)
    offsets = [-0.05, 0.0, 0.05, 0.1]
    base = [rng.uniform(0, 1, 400) for _ in offsets]
    a_spread = [b + 0.02 + o for b, o in zip(base, offsets)]
    a_steady = [b + 0.045 + rng.normal(0, 0.01, 400) for b in base]
    wide = judge(claim(), measured(a_spread, base))
    narrow = judge(claim(), measured(a_steady, base))
    assert wide.ci_high - wide.ci_low > 5 * (narrow.ci_high - narrow.ci_low)


def test_sides_on_different_seeds_are_refused():
    m1 = measured([np.ones(3)], [np.zeros(3)])
    m2 = measured([np.ones(3), np.ones(3)], [np.zeros(3), np.zeros(3)])
    with pytest.raises(ValueError, match="different seeds"):
        contrast_interval([m1.side("", "ART", "ifia_topk", "topk_intersection"),
                           m2.side("", "ART", "ifia_topk", "topk_intersection")], [1.0, -1.0])


# ------------------------------------------------------------------------------------------------ rendering
def test_judge_all_skips_unmeasured_claims_and_renders_one_table(tmp_path):
    rng = np.random.default_rng(7)
    m = measured([rng.uniform(0.5, 1, 50)], [rng.uniform(0, 0.5, 50)])
    claims = [claim(), claim(id="t.other", b="Natural")]
    verdicts = judge_all(claims, m)
    assert [v.claim.id for v in verdicts] == ["t.topk"]
    table = claims_table(verdicts)
    assert table.iloc[0]["verdict"] == "holds" and table.iloc[0]["n (images × seeds)"] == "50 × 1 (images only)"
    assert "%" not in table.iloc[0]["difference [95 % CI]"]  # points, no unit inside the cell
    path = save_verdicts(verdicts, tmp_path / "v.json", chapter="04_art", scale="smoke")
    frame = load_verdicts([path])
    assert frame.loc[0, "verdict"] == "holds" and frame.loc[0, "claim_id"] == "t.topk"


def test_an_attributional_claim_without_its_random_baseline_is_an_error():
    m = Measurements().add("ART", "ifia_topk", "topk_intersection", 0, [0.5, 0.6])
    m.add("PGD-AT", "ifia_topk", "topk_intersection", 0, [0.4, 0.5])
    with pytest.raises(ValueError, match="random baseline"):
        judge_all([claim()], m)


def test_front_page_lists_every_saved_verdict_with_its_chapter(tmp_path):
    from rattrlib.claims import verdicts_frontpage

    rng = np.random.default_rng(8)
    m = measured([rng.uniform(0.5, 1, 40)], [rng.uniform(0, 0.5, 40)])
    declared = [claim(), claim(id="t.natural", b="Natural"), claim(id="t.random", b="ART", under_b="random")]
    path = save_verdicts(judge_all(declared, m), tmp_path / "04_art.json", chapter="04_art", scale="cpu",
                         declared=declared)
    page = verdicts_frontpage(load_verdicts([path]), "cpu")
    source = "| ART, Table 1 ([04_art](chapters/04_art)) | top-k ∩ (%): "
    assert source + "ART better than PGD-AT (under the IFIA top-k attack) | holds | " in page
    assert "[04_art](chapters/04_art)" in page and "**2** of 3 declared claims judged: **1** holds" in page
    assert "| holds | holds | 40 × 1 (images only) |\n" in page  # raw, net of random, counts
    nets = [v.net_verdict for v in judge_all(declared, m) if v.net_verdict]  # the claim against random has none
    assert nets == ["holds"]
    assert "Net of random noise, the 1 about attributional robustness: **1** holds · **0** does not hold" in page
    skipped = page[page.index("## Declared, not judged at this scale"):]
    assert source + "ART better than Natural (under the IFIA top-k attack) |" in skipped
    assert "**1** not judged at this scale (listed at the end)" in page
    assert "(nan)" not in page and "ART under the IFIA top-k attack better than ART under random sign noise" in page
    assert "No chapter has saved verdicts" in verdicts_frontpage(load_verdicts([]), "cpu")


def test_a_statement_names_metric_rows_and_condition_in_words():
    assert claim().statement() == "top-k ∩ (%): ART better than PGD-AT (under the IFIA top-k attack)"
    kept = claim(metric="accuracy", a="ART", b="ART", under="spsa", under_b="pgd", relation="not_worse",
                 margin=0.004, margin_reason="test")
    assert kept.statement() == "accuracy (%): ART under SPSA at most 0.4 worse than ART under PGD"
    assert claim(under="eot").statement().endswith("(under eot)")  # a condition without a phrase reads as it is


def test_summary_and_verdict_count_images_the_same_way_when_seeds_attack_different_numbers():
    rng = np.random.default_rng(4)
    a = [rng.uniform(0.5, 1, n) for n in (91, 94, 90)]     # each seed's model classifies different images correctly
    b = [rng.uniform(0, 0.5, n) for n in (91, 94, 90)]
    m = measured([np.pad(x, (0, 94 - len(x)), constant_values=np.nan) for x in a],
                 [np.pad(x, (0, 94 - len(x)), constant_values=np.nan) for x in b])
    summary = m.summary().set_index(["row", "under"])
    v = judge(claim(), m, n_boot=200)
    assert summary.loc[("ART", "ifia_topk"), "n_images"] == v.n_images == 92      # (91 + 94 + 90) / 3 = 91.7
    assert claims_table([v]).iloc[0]["n (images × seeds)"] == "92 × 3"


def test_a_seed_without_any_finite_value_is_left_out_and_none_left_is_inconclusive():
    rng = np.random.default_rng(9)
    a = [rng.uniform(0.5, 1, 30), np.full(30, np.nan), rng.uniform(0.5, 1, 30)]
    b = [rng.uniform(0, 0.5, 30) for _ in range(3)]
    v = judge(claim(metric="kendall_tau"), measured(a, b, metric="kendall_tau"))
    assert v.n_seeds == 2 and v.verdict == "holds"
    empty = judge(claim(metric="kendall_tau"), measured([np.full(5, np.nan)], [np.ones(5)], metric="kendall_tau"))
    assert empty.verdict == "inconclusive" and empty.n_seeds == 0 and math.isnan(empty.difference)
    summary = measured(a, b, metric="kendall_tau").summary().set_index(["row", "under"])
    assert summary.loc[("ART", "ifia_topk"), "n_seeds"] == 2 and summary.loc[("ART", "ifia_topk"), "n_images"] == 30
    assert summary.loc[("ART", "ifia_topk"), "mean"] == pytest.approx(np.mean([a[0].mean(), a[2].mean()]))


def test_an_interval_bound_near_a_threshold_gets_the_digits_that_tell_them_apart():
    from rattrlib.claims import _interval_text

    assert _interval_text("cosine_distance", 0.017, 0.0004, 0.034, 0.0) == "0.0170 [0.0004, 0.0340]"
    assert _interval_text("cosine_distance", 0.017, 0.01, 0.034, 0.0) == "0.017 [0.010, 0.034]"   # already clear
    assert _interval_text("accuracy", -0.002, -0.00399, 0.0, 0.004) == "-0.200 [-0.399, 0.000]"  # vs −0.4 points
    assert _interval_text("accuracy", 0.01, 0.0, 0.02, 0.0) == "1.00 [0.00, 2.00]"  # a bound equal to 0 stays as it is
