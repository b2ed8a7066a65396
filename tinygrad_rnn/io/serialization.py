"""serialization.py — save and load state dicts as plain .npz files. No pickle, anywhere.

Read after optim/. A checkpoint is numpy's .npz layout: a zip archive with
one `name.npy` member per entry, readable by `np.load(path)` with no
tinygrad_rnn installed. Keys are state_dict names ("rnn.weight_hh_l0",
"state.0.exp_avg"); a nested mapping is flattened with dotted keys, so a model
and its optimizer can share one file::

    tg.save({"model": model.state_dict(), "optim": opt.state_dict()}, "ckpt.npz")
    ckpt = tg.load("ckpt.npz")                       # {"model.w": ..., "optim.state.0.step": ...}
    model.load_state_dict(subdict(ckpt, "model"))
    opt.load_state_dict(subdict(ckpt, "optim"))

Writing is atomic: the archive goes to a temporary file in the same directory,
is flushed and fsync'ed, and only then renamed over `path` (os.replace is atomic
on POSIX and Windows). A crash or error mid-write leaves the previous file as it
was, and the temporary file is removed.

Every problem raises CheckpointError (a ValueError) naming the file or the entry,
including operating-system errors such as a full disk.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from ..core.errors import CheckpointError
from ..core.tensor import Tensor
from ..nn.module import Module
from ..optim import Optimizer

PathLike = str | os.PathLike[str]

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip
_NPY_MAGIC = b"\x93NUMPY"
_STORABLE = "biufcUS"  # numeric, bool and text arrays round-trip without pickle


def save(obj: Any, path: PathLike) -> None:
    """Write `obj` to exactly `path` as an .npz archive, atomically.

    `obj` is a Module or an Optimizer (its `state_dict()` is saved), or a
    mapping of name -> array / Tensor / number / nested mapping / Module / Optimizer.
    """
    arrays = _flatten(_state_of(obj))
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise CheckpointError(f"save: cannot write {target!r}: the directory {directory!r} does not exist")
    if os.path.isdir(target):
        raise CheckpointError(f"save: cannot write {target!r}: it is a directory")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(target)}.", suffix=".tmp")
    except OSError as exc:
        raise CheckpointError(f"save: cannot write {target!r}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        # mkstemp makes the file private (0600); give it the mode the old file had, or the usual 0644.
        os.chmod(tmp, os.stat(target).st_mode & 0o777 if os.path.exists(target) else 0o644)
        os.replace(tmp, target)
    except BaseException as exc:  # also KeyboardInterrupt: never leave a temporary file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # disk full, permission denied, ...
            raise CheckpointError(f"save: cannot write {target!r}: {exc.strerror or exc}") from None
        raise
    _fsync_directory(directory)


def load(path: PathLike) -> dict[str, np.ndarray]:
    """Read an .npz file written by `save` (or by np.savez) into a dict of arrays, without pickle."""
    source = os.fspath(path)
    if not os.path.exists(source):
        raise CheckpointError(f"load: no such file {source!r}")
    if os.path.isdir(source):
        raise CheckpointError(f"load: {source!r} is a directory, not an .npz file")
    try:
        with open(source, "rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise CheckpointError(f"load: cannot read {source!r}: {exc.strerror or exc}") from None
    if magic.startswith(_NPY_MAGIC):
        raise CheckpointError(f"load: {source!r} is a single .npy array, not an .npz archive; use np.load for it")
    if magic[:4] not in _ZIP_MAGIC:
        raise CheckpointError(f"load: {source!r} is not an .npz archive (it does not start with a zip header)")
    out: dict[str, np.ndarray] = {}
    try:
        with np.load(source, allow_pickle=False) as archive:
            for key in archive.files:
                try:
                    value = archive[key]
                except ValueError as exc:
                    if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                        raise CheckpointError(
                            f"load: entry {key!r} of {source!r} is an object array, which needs pickle; "
                            "refusing to load it (save numeric arrays only)"
                        ) from None
                    raise CheckpointError(f"load: entry {key!r} of {source!r} is corrupt: {exc}") from None
                except (OSError, EOFError, zipfile.BadZipFile) as exc:
                    raise CheckpointError(f"load: entry {key!r} of {source!r} is corrupt or truncated: {exc}") from None
                if not isinstance(value, np.ndarray):  # np.load hands back raw bytes for a non-.npy member
                    raise CheckpointError(f"load: entry {key!r} of {source!r} is not a .npy array; not an .npz file?")
                out[key] = value
    except CheckpointError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"load: {source!r} is corrupt or truncated: {exc}") from None
    return out


def subdict(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The entries of a flat state dict under `prefix.`, with the prefix removed."""
    head = prefix + "."
    out = {key[len(head) :]: value for key, value in state.items() if key.startswith(head)}
    if not out:
        tops = sorted({key.split(".", 1)[0] for key in state})
        raise CheckpointError(f"subdict: no entries under {prefix!r}; the top-level names are {tops}")
    return out


# ---------------------------------------------------------------- helpers


def _state_of(obj: Any) -> Mapping[str, Any]:
    """A Module's or Optimizer's state_dict, or the mapping itself."""
    if isinstance(obj, Module | Optimizer):
        return obj.state_dict()
    if isinstance(obj, Mapping):
        return obj
    raise CheckpointError(
        f"save: expected a Module, an Optimizer or a mapping of name -> array, got {type(obj).__name__}"
    )


def _flatten(state: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """Nested mappings -> one flat dict with dotted keys; every value checked to be a storable array."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not key or "/" in key:
            raise CheckpointError(f"save: entry names must be non-empty strings without '/', got {key!r}")
        name = prefix + key
        if isinstance(value, Mapping | Module | Optimizer):
            items = _flatten(_state_of(value), name + ".")
        else:
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
            if array.dtype.kind not in _STORABLE:
                raise CheckpointError(
                    f"save: entry {name!r} has dtype {array.dtype} ({type(value).__name__}); only numeric, bool "
                    "and string arrays can be stored without pickle"
                )
            items = {name: array}
        for item in items:
            if item in out:
                raise CheckpointError(f"save: two entries flatten to the same name {item!r}")
        out.update(items)
    return out


def _write_npz(f: IO[bytes], arrays: Mapping[str, np.ndarray]) -> None:
    """The .npz layout that np.savez writes, built directly so that no key can clash with its arguments."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(name + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
