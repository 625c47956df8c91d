"""Numbers the papers publish, transcribed once with their source, so chapters can print them beside ours.

Only the papers' own numbers live here; every number of ours is computed when a chapter runs.
Top-K values are percentages, Kendall values correlations, accuracies percentages.
"""

from __future__ import annotations

import pandas as pd

#: GALI (Gali, Sarkar, Balasubramanian), Table 1: IFIA top-k attack on IG; F-MNIST ε=0.1, MNIST ε=0.3.
GALI_TABLE1 = {
    "fashion_mnist": {
        "Nat": (90.86, 0.01, 39.01, 0.4610, 5.41, 0.1946),
        "AT": (85.73, 73.01, 46.12, 0.6251, 46.12, 0.6251),
        "AT-start + Regularizer": (86.21, 76.52, 72.33, 0.6624, 54.96, 0.6354),
        "RAR": (85.44, 70.26, 72.08, 0.6747, 51.48, 0.5754),
        "RAR-start + Regularizer": (86.81, 73.24, 73.49, 0.6920, 55.39, 0.6145),
        "ERAR": (85.45, 71.61, 81.50, 0.7216, 59.21, 0.6154),
        "ERAR-start + Regularizer": (87.01, 74.16, 82.31, 0.7368, 62.34, 0.65),
    },
    "mnist": {
        "Nat": (99.17, 0.00, 46.61, 0.1758, 4.12, 0.0021),
        "AT": (98.40, 92.47, 62.56, 0.2422, 62.56, 0.2422),
        "AT-start + Regularizer": (98.20, 93.5, 71.84, 0.3465, 64.78, 0.2652),
        "RAR": (98.34, 88.17, 72.45, 0.3111, 58.42, 0.2851),
        "RAR+Regularizer": (98.62, 90.79, 73.48, 0.3317, 61.12, 0.2961),
        "ERAR": (98.41, 89.53, 81.00, 0.3494, 66.45, 0.2821),
        "ERAR+Regularizer": (98.72, 92.66, 82.89, 0.3625, 73.28, 0.3019),
    },
}
GALI_TABLE1_COLUMNS = ("clean_accuracy", "adversarial_accuracy", "topk", "kendall", "aa_topk", "aa_kendall")

#: GALI, appendix Table 5 ("Object as reference"): AA-Top-K (%) and AA-Kendall with the object, segmented by
#: thresholding the image, as the reference map (same IFIA evaluation as Table 1).
GALI_TABLE5 = {
    "mnist": {"AT+Regularizer": (61.47, 0.2458), "RAR+Regularizer": (59.65, 0.2894), "RAR": (54.89, 0.2517),
              "AT": (58.69, 0.2178)},
    "fashion_mnist": {"AT+Regularizer": (50.47, 0.5148), "RAR+Regularizer": (48.57, 0.4747),
                      "RAR": (40.25, 0.4152), "AT": (42.85, 0.4875)},
}
GALI_TABLE5_COLUMNS = ("aa_topk", "aa_kendall")


def _table(name: str, table: dict, columns, dataset: str) -> pd.DataFrame:
    if dataset not in table:
        raise ValueError(f"GALI {name} has no rows for {dataset!r}; it has {sorted(table)}")
    frame = pd.DataFrame.from_dict(table[dataset], orient="index", columns=list(columns))
    frame.index.name = "method"
    return frame


def gali_table1(dataset: str) -> pd.DataFrame:
    """GALI Table 1 rows for ``dataset`` (``"fashion_mnist"`` or ``"mnist"``) as a DataFrame."""
    return _table("Table 1", GALI_TABLE1, GALI_TABLE1_COLUMNS, dataset)


def gali_table5(dataset: str) -> pd.DataFrame:
    """GALI Table 5 (object as reference) rows for ``dataset`` (``"fashion_mnist"`` or ``"mnist"``)."""
    return _table("Table 5", GALI_TABLE5, GALI_TABLE5_COLUMNS, dataset)
