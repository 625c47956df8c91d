"""Cached, provenance-stamped results.

Every expensive artefact (a trained checkpoint, an evaluation table, a generated dataset) is stored under a key
derived from its kind, full config, seed and dataset. A stored record carries that config and seed, the rattrlib
version, the git commit of the code that made it and a SHA-256 of its payload. Writes are atomic (temporary file
then ``os.replace``), so an interrupted run never leaves a half-written record under a valid name. A truncated,
corrupt or stale file is reported with a warning, moved aside (never deleted) and recomputed.

>>> cache = ResultsCache()
>>> table = cache.get_or_compute("eval", {"eps": 0.1}, lambda: run_eval(), seed=0, dataset="fashion_mnist")
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch

from rattrlib import __version__
from rattrlib.config import rattr_home

T = TypeVar("T")

#: Bumped when the on-disk layout changes; records of another format are stale.
CACHE_FORMAT = 2


class CorruptCacheError(RuntimeError):
    """A cache file exists but cannot be trusted (truncated, bad checksum, stale format or mismatched key)."""


@dataclasses.dataclass(frozen=True)
class Record:
    """A stored result with its provenance."""

    value: Any
    kind: str
    config: dict
    seed: int
    dataset: str
    rattrlib_version: str
    git_commit: str
    created: str
    key: str


def _canonical(obj: Any) -> Any:
    """JSON-ready form of a config: dataclasses become dicts, tuples lists, floats keep full precision."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _canonical(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, torch.device):
        return str(obj)
    raise TypeError(f"config value {obj!r} of type {type(obj).__name__} is not JSON-serialisable")


def cache_key(kind: str, config: Any, seed: int, dataset: str) -> str:
    """SHA-256 (first 20 hex digits) of the canonical JSON of kind, config, seed and dataset."""
    blob = json.dumps(
        {"kind": kind, "config": _canonical(config), "seed": seed, "dataset": dataset, "format": CACHE_FORMAT},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def git_commit() -> str:
    """The commit of the rattrlib checkout (``+dirty`` if it has uncommitted changes), or ``'unknown'``."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=here, capture_output=True,
                               text=True, timeout=10)
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class ResultsCache:
    """A folder of records, one file per key: ``<root>/<kind>/<key>.pt``."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else rattr_home() / "results"

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.pt"

    def save(self, kind: str, config: Any, value: Any, *, seed: int, dataset: str) -> Record:
        """Store ``value`` atomically and return its record."""
        key = cache_key(kind, config, seed, dataset)
        buffer = io.BytesIO()
        torch.save(value, buffer)
        payload = buffer.getvalue()
        meta = {
            "format": CACHE_FORMAT,
            "kind": kind,
            "config": _canonical(config),
            "seed": seed,
            "dataset": dataset,
            "rattrlib_version": __version__,
            "git_commit": git_commit(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "key": key,
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
        path = self.path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                # a uint8 tensor is stored as raw bytes (a bytes object would be pickled as latin-1 text)
                torch.save({"meta": meta, "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self._record(meta, value)

    def load(self, kind: str, config: Any, *, seed: int, dataset: str) -> Record | None:
        """The stored record, or ``None`` if there is none. Raises :class:`CorruptCacheError` on a bad file."""
        key = cache_key(kind, config, seed, dataset)
        path = self.path(kind, key)
        if not path.exists():
            return None
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            meta = stored["meta"]
        except Exception as err:  # truncated or not a torch file at all
            raise CorruptCacheError(f"{path}: unreadable ({type(err).__name__}: {err})") from err
        if meta.get("format") != CACHE_FORMAT:
            raise CorruptCacheError(f"{path}: stale format {meta.get('format')!r}, expected {CACHE_FORMAT}")
        payload = stored["payload"].numpy().tobytes()
        if meta.get("key") != key or meta.get("config") != _canonical(config):
            raise CorruptCacheError(f"{path}: stored config does not match the requested one")
        if hashlib.sha256(payload).hexdigest() != meta.get("sha256"):
            raise CorruptCacheError(f"{path}: payload checksum mismatch")
        value = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)
        return self._record(meta, value)

    def get_or_compute(self, kind: str, config: Any, compute: Callable[[], T], *, seed: int, dataset: str,
                       recompute: bool = False) -> T:
        """Return the cached value for this key, or run ``compute()``, store its result and return it.

        A corrupt or stale file is reported (``UserWarning``), renamed to ``*.corrupt-<time>`` and recomputed.
        """
        if not recompute:
            try:
                record = self.load(kind, config, seed=seed, dataset=dataset)
            except CorruptCacheError as err:
                path = self.path(kind, cache_key(kind, config, seed, dataset))
                aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d%H%M%S')}")
                os.replace(path, aside)
                warnings.warn(f"cache record ignored and recomputed: {err}; moved to {aside.name}", stacklevel=2)
                record = None
            if record is not None:
                return record.value
        value = compute()
        self.save(kind, config, value, seed=seed, dataset=dataset)
        return value

    @staticmethod
    def _record(meta: dict, value: Any) -> Record:
        fields = {f.name for f in dataclasses.fields(Record)} - {"value"}
        return Record(value=value, **{k: meta[k] for k in fields})
