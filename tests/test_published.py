"""The transcribed paper numbers are complete and well-formed."""

import pytest

from rattrlib.published import GALI_TABLE1_COLUMNS, gali_table1


@pytest.mark.parametrize("dataset", ["fashion_mnist", "mnist"])
def test_gali_table1_rows(dataset):
    table = gali_table1(dataset)
    assert list(table.columns) == list(GALI_TABLE1_COLUMNS)
    assert len(table) == 7
    assert table["clean_accuracy"].between(80, 100).all()
    assert table["kendall"].between(0, 1).all()
    # the AT row is its own reference in the AA metrics (GALI: AA with the AT teacher as reference)
    assert table.loc["AT", "aa_topk"] == table.loc["AT", "topk"]


def test_unknown_dataset_lists_valid_ones():
    with pytest.raises(ValueError, match="fashion_mnist"):
        gali_table1("cifar10")


@pytest.mark.parametrize("dataset", ["fashion_mnist", "mnist"])
def test_gali_table5_rows(dataset):
    from rattrlib.published import gali_table5

    table = gali_table5(dataset)
    assert list(table.index) == ["AT+Regularizer", "RAR+Regularizer", "RAR", "AT"]
    assert table["aa_topk"].between(0, 100).all() and table["aa_kendall"].between(0, 1).all()
    # GALI's claim in Table 5: the regularised models beat their starting points on AA-Top-K
    assert table.loc["AT+Regularizer", "aa_topk"] > table.loc["AT", "aa_topk"]
    assert table.loc["RAR+Regularizer", "aa_topk"] > table.loc["RAR", "aa_topk"]


def test_ssr_settings_and_claims():
    from rattrlib.published import ssr_claims, ssr_settings
    from rattrlib.sweeps import SSR_EPS

    settings = ssr_settings()
    # the budgets the sweeps module uses are the paper's, rescaled to [0, 1]
    assert tuple(e / 255 for e in settings.loc["eps_linf", "value"]) == pytest.approx(SSR_EPS)
    assert settings.loc["ssr_beta", "value"] == 0.3 and settings.loc["ssr_scale_s", "value"] == 1e6
    assert settings["source"].str.len().gt(0).all()
    claims = ssr_claims()
    assert {"smoothing_beats_saliency_ig", "ssr_beats_natural", "ssr_cheaper", "transfer_hits_ig_more"} <= set(claims.index)
    assert claims["source"].str.contains("§5").all()


@pytest.mark.parametrize("dataset", ["tiny_imagenet", "flower17"])
def test_sat_robustness_rows(dataset):
    from rattrlib.published import SAT_ROBUSTNESS_COLUMNS, sat_robustness

    table = sat_robustness(dataset)
    assert list(table.columns) == list(SAT_ROBUSTNESS_COLUMNS) and len(table) == 9
    assert table.values.min() >= 0 and table.values.max() <= 100
    # accuracy falls (or stays) as ε grows, in every row as printed
    assert (table.diff(axis=1).iloc[:, 1:] <= 0).all().all()


def test_sat_saliency_rows():
    from rattrlib.published import sat_saliency

    table = sat_saliency()
    assert list(table.columns) == ["eps_1", "eps_2", "eps_3", "eps_4"] and len(table) == 10
    assert table.loc["Adv. — S.Grad"].tolist() == [40.01, 21.2, 10.96, 4.85]
    with pytest.raises(ValueError, match="cifar100"):
        sat_saliency("cifar10")
