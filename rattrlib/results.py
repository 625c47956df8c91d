"""Cached, provenance-stamped results that many processes can share.

Every expensive artefact (a trained checkpoint, an evaluation table, a generated dataset) is stored under a key
derived from its kind, full config, seed and dataset. A stored record carries that config and seed, the rattrlib
version, the git commit, a fingerprint of the rattrlib sources its computation depends on (:data:`CODE`) and a
SHA-256 of its payload.

- Writes are atomic (temporary file then ``os.replace``): an interrupted run never leaves a half-written record
  under a valid name, and its temporary files are removed by the next process that takes the key's lock.
- One lock per key (``filelock``, works on shared filesystems): a missing result is computed by one process while
  the others wait for it and then load it.
- A truncated or corrupt file is reported with a warning, moved aside (never deleted) and recomputed. A record
  made by other code (its source fingerprint differs) is recomputed, or loaded with a warning when
  ``allow_stale=True``.
- A read-only cache still returns results: what cannot be stored is reported with a warning.

>>> cache = ResultsCache()
>>> table = cache.get_or_compute("eval", {"eps": 0.1}, lambda: run_eval(), seed=0, dataset="fashion_mnist")
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import os
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, TypeVar

import filelock
import torch
from torch import Tensor, nn

from rattrlib import __version__
from rattrlib.config import rattr_home

T = TypeVar("T")

#: Bumped when the on-disk layout changes; records of another format are stale.
CACHE_FORMAT = 2


#: The rattrlib sources (paths relative to the package) each kind of record depends on; a record whose stored
#: fingerprint of them differs from the running code's is stale. Kinds not listed depend on :data:`EVALUATION_CODE`.
MODEL_CODE = ("train", "models", "data", "attributions", "attacks", "metrics", "precision.py", "config.py")
EVALUATION_CODE = MODEL_CODE + ("corruptions.py", "evaluation.py", "sweeps.py", "zoo.py")
CODE = {"dataset": ("data", "config.py"), "model": MODEL_CODE, "checkpoint": MODEL_CODE,
        "training_cost": MODEL_CODE,
        # kinds computed by chapter code (tests/test_results.py checks that every kind's code is covered)
        "clean_correct": EVALUATION_CODE + ("chapters/ssr.py",),
        "ssr_lambda_max": EVALUATION_CODE + ("chapters/ssr.py",),
        "leaderboard": EVALUATION_CODE + ("leaderboard.py", "claims.py"),
        "explorer_grid": EVALUATION_CODE + ("explorer.py", "chapters/explorer.py")}

#: Seconds a process waits for another one holding a key's lock before it says so (then it keeps waiting).
LOCK_NOTICE_SECONDS = 30


class CorruptCacheError(RuntimeError):
    """A cache file exists but cannot be trusted (truncated, bad checksum, stale format or mismatched key)."""


class StaleCodeError(RuntimeError):
    """A cache record is sound but was computed by rattrlib sources that differ from the running ones."""


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
    code: Optional[str]
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


def _source_without_docstrings(path: Path) -> str:
    """The code of a Python file as its syntax tree, without docstrings: comments, formatting and documentation
    do not change a result, so they do not change the fingerprint."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


@functools.lru_cache(maxsize=None)
def code_fingerprint(parts: Sequence[str]) -> str:
    """SHA-256 (20 hex digits) of the rattrlib sources under ``parts`` (files or folders relative to the
    package), docstrings and comments excluded."""
    package = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for part in sorted(parts):
        root = package / part
        if not root.exists():
            raise ValueError(f"code part {part!r} is not a file or folder of rattrlib ({package})")
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            h.update(f"{path.relative_to(package)}\n{_source_without_docstrings(path)}\n".encode())
    return h.hexdigest()[:20]


def _fingerprint_code_as_imported() -> None:
    """Fingerprint every part set now, when the code that will compute the results is the code on disk, rather
    than at first use (a source edited during a long run would otherwise stamp old results as new code)."""
    for parts in {*CODE.values(), EVALUATION_CODE}:
        code_fingerprint(parts)


def _tensor_hash(t: Tensor, h) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{tuple(t.shape)}{t.dtype}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # reshape: 0-d tensors too


def tensor_fingerprint(t: Tensor) -> str:
    """SHA-256 of a tensor's shape, dtype and bytes."""
    h = hashlib.sha256()
    _tensor_hash(t, h)
    return h.hexdigest()


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 (20 hex digits) of the model's class, structure (repr) and every parameter and buffer."""
    h = hashlib.sha256()
    h.update(f"{type(model).__module__}.{type(model).__qualname__}\n{model!r}".encode())
    for name, value in model.state_dict().items():
        h.update(name.encode())
        if isinstance(value, Tensor):
            _tensor_hash(value, h)
    return h.hexdigest()[:20]


def data_fingerprint(images: Tensor, labels: Tensor) -> str:
    """SHA-256 (20 hex digits) of the images and labels."""
    h = hashlib.sha256()
    _tensor_hash(images, h)
    _tensor_hash(labels.long(), h)
    return h.hexdigest()[:20]


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


_WRITER = f"{socket.gethostname().replace('.', '_')}~{os.getpid()}"  # in temporary names: who is writing
_UMASK = os.umask(0)
os.umask(_UMASK)
_CLEANED: set[Path] = set()  # caches whose leftover temporaries this process has removed


def _writer_is_dead(tmp: Path) -> bool:
    """True when temporary ``tmp`` (``.<key>.<host>~<pid>.<random>.tmp``) was written on this host by a
    process that no longer exists; a writer on another host, or alive, keeps its file."""
    parts = tmp.name[1:].split(".")
    if len(parts) < 4 or "~" not in parts[1]:
        return False
    host, _, pid = parts[1].rpartition("~")
    if host != _WRITER.rpartition("~")[0] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by another user
        return False
    return False


class ResultsCache:
    """A folder of records, one file per key: ``<root>/<kind>/<key>.pt``, with its lock ``.<key>.lock`` beside."""

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
            "code": code_fingerprint(CODE.get(kind, EVALUATION_CODE)),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "key": key,
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
        path = self.path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.{_WRITER}.", suffix=".tmp")
        try:
            os.chmod(tmp, 0o666 & ~_UMASK)  # as an ordinary file: readable by the group sharing the cache
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

    def load(self, kind: str, config: Any, *, seed: int, dataset: str, allow_stale: bool = False) -> Record | None:
        """The stored record, or ``None`` if there is none. Raises :class:`CorruptCacheError` on a bad file and
        :class:`StaleCodeError` on a record made by other rattrlib sources (unless ``allow_stale``)."""
        key = cache_key(kind, config, seed, dataset)
        path = self.path(kind, key)
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            meta = stored["meta"]
            payload = stored["payload"].numpy().tobytes()
        except FileNotFoundError:
            return None
        except PermissionError:
            raise
        except Exception as err:  # truncated, not a torch file at all, or not a record's layout
            raise CorruptCacheError(f"{path}: unreadable ({type(err).__name__}: {err})") from err
        if meta.get("format") != CACHE_FORMAT:
            raise CorruptCacheError(f"{path}: stale format {meta.get('format')!r}, expected {CACHE_FORMAT}")
        if meta.get("key") != key or meta.get("config") != _canonical(config):
            raise CorruptCacheError(f"{path}: stored config does not match the requested one")
        if hashlib.sha256(payload).hexdigest() != meta.get("sha256"):
            raise CorruptCacheError(f"{path}: payload checksum mismatch")
        code = code_fingerprint(CODE.get(kind, EVALUATION_CODE))
        if meta.get("code") != code and not allow_stale:
            raise StaleCodeError(f"{path}: computed by other rattrlib sources (code {meta.get('code')}, running "
                                 f"{code}, parts {list(CODE.get(kind, EVALUATION_CODE))})")
        try:
            value = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)
        except Exception as err:
            raise CorruptCacheError(f"{path}: payload unreadable ({type(err).__name__}: {err})") from err
        return self._record(meta, value)

    def get_or_compute(self, kind: str, config: Any, compute: Callable[[], T], *, seed: int, dataset: str,
                       recompute: bool = False, allow_stale: bool = False,
                       validate: Optional[Callable[[Any], None]] = None) -> T:
        """Return the cached value for this key, or run ``compute()``, store its result and return it.

        ``validate(value)`` raises on a stored value of the wrong structure; such a record is treated as corrupt.
        Holding the key's lock, a corrupt record is reported (``UserWarning``), renamed to
        ``*.corrupt-<ns>-<pid>`` and recomputed; a stale one is recomputed (``allow_stale``: loaded with a
        warning). Waits while another process computes the same key, then loads its result.
        """
        if self.root not in _CLEANED:
            _CLEANED.add(self.root)
            self.clean_temporaries()
        if not recompute:
            found = self._lookup(kind, config, seed, dataset, allow_stale, validate, repair=False)
            if found is not None:
                return found.value
        key = cache_key(kind, config, seed, dataset)
        with self._key_lock(kind, key):
            if not recompute:
                found = self._lookup(kind, config, seed, dataset, allow_stale, validate, repair=True)
                if found is not None:
                    return found.value
            value = compute()
            self.save_or_warn(kind, config, value, seed=seed, dataset=dataset)
        return value

    def save_or_warn(self, kind: str, config: Any, value: Any, *, seed: int, dataset: str) -> Optional[Record]:
        """:meth:`save`, or a warning and None where the cache cannot be written (read-only, full disk)."""
        try:
            return self.save(kind, config, value, seed=seed, dataset=dataset)
        except OSError as err:
            warnings.warn(f"result not stored in the cache (kept in memory only): {kind} "
                          f"{cache_key(kind, config, seed, dataset)} — {type(err).__name__}: {err}", stacklevel=3)
            return None

    def remove(self, kind: str, config: Any, *, seed: int, dataset: str) -> None:
        """Delete the record of this key if there is one (a warning where the cache is read-only)."""
        path = self.path(kind, cache_key(kind, config, seed, dataset))
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            warnings.warn(f"could not remove {path}: {type(err).__name__}: {err}", stacklevel=2)

    def clean_temporaries(self) -> list[Path]:
        """Remove the temporary files that writers killed during :meth:`save` left behind — those written on
        this host by a process that no longer runs; return what was removed. (Done once per process and cache
        by :meth:`get_or_compute`.)"""
        removed = []
        for tmp in sorted(self.root.glob("*/.*.tmp")):
            if _writer_is_dead(tmp):
                with contextlib.suppress(OSError):
                    tmp.unlink()
                    removed.append(tmp)
        return removed

    # -- internals
    def _lookup(self, kind, config, seed, dataset, allow_stale, validate, repair: bool) -> Optional[Record]:
        """The usable record or None. With ``repair`` (the key's lock held), a corrupt file is moved aside."""
        try:
            record = self.load(kind, config, seed=seed, dataset=dataset, allow_stale=True)
            if record is None:
                return None
            if validate is not None:
                try:
                    validate(record.value)
                except Exception as err:
                    path = self.path(kind, record.key)
                    raise CorruptCacheError(f"{path}: payload of the wrong structure "
                                            f"({type(err).__name__}: {err})") from err
        except CorruptCacheError as err:
            if repair:
                self._move_aside(self.path(kind, cache_key(kind, config, seed, dataset)), err)
            return None
        except PermissionError as err:
            warnings.warn(f"cache record unreadable, recomputed: {type(err).__name__}: {err}", stacklevel=4)
            return None
        code = code_fingerprint(CODE.get(kind, EVALUATION_CODE))
        if record.code != code:
            if not allow_stale:
                return None
            warnings.warn(f"{kind} {record.key} was computed by other rattrlib sources (code {record.code}, "
                          f"running {code}); loaded anyway because allow_stale=True", stacklevel=4)
        return record

    def _move_aside(self, path: Path, err: Exception) -> None:
        aside = path.with_name(f"{path.name}.corrupt-{time.time_ns()}-{os.getpid()}")
        try:
            os.replace(path, aside)
        except FileNotFoundError:  # another process moved it first
            return
        except OSError as move_err:
            warnings.warn(f"cache record ignored and recomputed: {err}; it could not be moved aside "
                          f"({type(move_err).__name__}: {move_err})", stacklevel=5)
            return
        warnings.warn(f"cache record ignored and recomputed: {err}; moved to {aside.name}", stacklevel=5)

    @contextlib.contextmanager
    def _key_lock(self, kind: str, key: str):
        """Hold the key's file lock; where the cache cannot be written, go on without it (and say so)."""
        folder = self.root / kind
        try:
            folder.mkdir(parents=True, exist_ok=True)
            lock = filelock.FileLock(folder / f".{key}.lock")
            try:
                lock.acquire(timeout=LOCK_NOTICE_SECONDS)
            except filelock.Timeout:
                warnings.warn(f"waiting for another process computing {kind} {key} (lock {lock.lock_file})",
                              stacklevel=4)
                lock.acquire()
        except OSError as err:
            warnings.warn(f"cache {self.root} is not writable ({type(err).__name__}: {err}); computing {kind} "
                          f"{key} without a lock", stacklevel=4)
            yield
            return
        try:
            yield
        finally:
            lock.release()

    @staticmethod
    def _record(meta: dict, value: Any) -> Record:
        fields = {f.name for f in dataclasses.fields(Record)} - {"value"}
        return Record(value=value, **{k: meta.get(k) for k in fields})


_fingerprint_code_as_imported()
