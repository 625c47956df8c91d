"""Where the book's build time goes: per chapter and per cell, read from the executed chapters' papermill metadata.

``book/build.py`` executes each chapter with papermill, which records every cell's start, end and duration in the
executed notebook (``book/chapters/<chapter>.ipynb``). This script reads those records — nothing is re-run — and
writes, per chapter, the total seconds, the scale and parameters it ran with, and its cells sorted by duration
(with the first line of each cell's source). A thin chapter spends its time in one library call, so the results
cache is read too: the records a chapter stored while it ran (file times within the chapter's start and end), each
with the seconds since the record before it — what that model, attack or evaluation cost, as the chapter computes
one thing at a time — and what it is (kind, method, dataset, seed, attack).

    python benchmarks/book_profile.py                       # book/chapters/ → benchmarks/results/book_profile.json
    python benchmarks/book_profile.py --chapters DIR --top 8

A chapter still running (``*.running.ipynb``) or never executed is listed under ``missing``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def first_line(source) -> str:
    text = "".join(source) if isinstance(source, list) else source
    lines = [line for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return lines[0][:100] if lines else ""


def describe(config, kind: str) -> str:
    """A short name for a cached record's config (method / dataset / attack / attribution where present)."""
    def find(obj, names):
        if isinstance(obj, dict):
            for name in names:
                if name in obj and isinstance(obj[name], (str, int, float)):
                    return f"{name}={obj[name]}"
            for value in obj.values():
                found = find(value, names)
                if found:
                    return found
        return ""
    parts = [kind] + [find(config, (n,)) for n in ("method", "dataset", "attack", "attribution", "objective")]
    return " ".join(p for p in parts if p)


def stored_records(cache: Path, start: float, end: float, top: int) -> list:
    """Cache records written between ``start`` and ``end`` (epoch seconds), with the seconds since the previous
    one, the slowest ``top`` of them."""
    files = sorted((f for f in cache.glob("*/*.pt") if start <= f.stat().st_mtime <= end),
                   key=lambda f: f.stat().st_mtime)
    rows, previous = [], start
    for f in files:
        mtime = f.stat().st_mtime
        meta = torch.load(f, map_location="cpu", weights_only=True)["meta"]
        rows.append({"seconds": round(mtime - previous, 1), "record": describe(meta.get("config", {}), meta["kind"]),
                     "seed": meta.get("seed"), "key": meta.get("key")})
        previous = mtime
    return sorted(rows, key=lambda r: -r["seconds"])[:top]


def chapter_profile(path: Path, top: int, cache: Path | None = None) -> dict:
    """Total and per-cell seconds of one executed chapter, its scale and parameters."""
    notebook = json.loads(path.read_text())
    meta = notebook["metadata"].get("papermill", {})
    cells = []
    for index, cell in enumerate(notebook["cells"]):
        record = cell.get("metadata", {}).get("papermill", {})
        if cell["cell_type"] == "code" and record.get("duration") is not None:
            cells.append({"cell": index, "seconds": round(record["duration"], 1), "source": first_line(cell["source"])})
    cells.sort(key=lambda c: -c["seconds"])
    out = {"seconds": round(meta.get("duration") or sum(c["seconds"] for c in cells), 1),
           "start_time": meta.get("start_time"), "parameters": meta.get("parameters", {}),
           "slowest_cells": cells[:top]}
    if cache is not None and meta.get("start_time") and meta.get("end_time"):
        window = [datetime.fromisoformat(meta[k]).timestamp() for k in ("start_time", "end_time")]
        out["slowest_records"] = stored_records(cache, *window, top=top)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapters", type=Path, default=ROOT / "book" / "chapters")
    parser.add_argument("--top", type=int, default=6, help="slowest cells kept per chapter")
    parser.add_argument("--out", type=Path, default=RESULTS / "book_profile.json")
    parser.add_argument("--cache", type=Path, default=None,
                        help="results cache to read the chapters' records from (default: $RATTR_HOME/results)")
    args = parser.parse_args()
    if args.cache is None:
        from rattrlib.config import rattr_home
        args.cache = rattr_home() / "results"
    listed = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    chapters = {name: chapter_profile(args.chapters / f"{name}.ipynb", args.top, args.cache)
                for name in listed if (args.chapters / f"{name}.ipynb").exists()}
    result = {"benchmark": "seconds per chapter and per cell of the executed book (papermill records)",
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.machine(),
              "cpus": os.cpu_count(), "total_seconds": round(sum(c["seconds"] for c in chapters.values()), 1),
              "chapters": chapters, "missing": [name for name in listed if name not in chapters]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    for name, c in chapters.items():
        print(f"{name:14s} {c['seconds']:7.0f} s  slowest: {c['slowest_cells'][0]['source'] if c['slowest_cells'] else ''}")
    print(f"missing: {result['missing']}; wrote {args.out}")


if __name__ == "__main__":
    main()
