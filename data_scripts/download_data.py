"""Download rattr's online datasets, or list every registered dataset.

    python data_scripts/download_data.py NAME [NAME ...] [--root DIR]
    python data_scripts/download_data.py --list

Each NAME's loader is called with ``download=True`` for both splits (reading one image of each, which checks the
files), using torchvision's download helpers with the official URLs and md5 sums. Without ``--root`` the files go
to ``$RATTR_HOME/data/NAME`` (``~/.cache/rattr/data/NAME``); with ``--root DIR`` every NAME goes into DIR, each in
its own sub-folder, where ``load_dataset(NAME, root=DIR)`` finds it. A failed download prints one line (the
dataset, the URL tried, why) and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # fallback: run from a checkout without installing

from rattrlib.data import DATASETS, MissingDataError  # noqa: E402
from rattrlib.data.base import SPLITS  # noqa: E402
from rattrlib.data.online import data_dir  # noqa: E402


def registry_table() -> str:
    """One line per registered dataset: name, offline/online, C×H×W, boxes/masks, the command that fetches it."""
    rows = [("name", "kind", "shape", "localisation", "fetch command")]
    for name, info in sorted(DATASETS.items()):
        extras = "+".join(k for k, flag in (("boxes", info.has_boxes), ("masks", info.has_masks)) if flag) or "-"
        rows.append((name, "offline" if info.offline else "online", "×".join(map(str, info.shape)), extras,
                     info.fetch_command))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows)


def fetch(name: str, root: str | None) -> Path | None:
    """Download dataset ``name`` (both splits) and return the folder that holds it (None for an offline one)."""
    info = DATASETS[name]
    if info.offline:
        print(f"{name} is offline (installed from a package, not downloaded here): {info.fetch_command}")
        return None
    for split in SPLITS:
        info.loader(split=split, root=root, download=True, limit=1)
    return data_dir(name, root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="datasets to download (see --list)")
    parser.add_argument("--root", default=None, help="folder to put the files in (default: $RATTR_HOME/data/NAME)")
    parser.add_argument("--list", action="store_true", help="print the registered datasets and exit")
    args = parser.parse_args(argv)
    if args.list:
        print(registry_table())
        return 0
    if not args.names:
        parser.error(f"name at least one dataset; valid names: {', '.join(sorted(DATASETS))}")
    unknown = [n for n in args.names if n not in DATASETS]
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(unknown)}; valid names: {', '.join(sorted(DATASETS))}")
    for name in args.names:
        try:
            folder = fetch(name, args.root)
        except (MissingDataError, ValueError) as error:  # offline, a mirror gone, a corrupt or changed archive
            print(f"download_data.py: {error}", file=sys.stderr)
            return 1
        if folder is not None:
            print(f"{name}: files in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
