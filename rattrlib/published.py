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


def gali_table1(dataset: str) -> pd.DataFrame:
    """GALI Table 1 rows for ``dataset`` (``"fashion_mnist"`` or ``"mnist"``) as a DataFrame."""
    if dataset not in GALI_TABLE1:
        raise ValueError(f"GALI Table 1 has no rows for {dataset!r}; it has {sorted(GALI_TABLE1)}")
    rows = GALI_TABLE1[dataset]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(GALI_TABLE1_COLUMNS))
    frame.index.name = "method"
    return frame
