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
