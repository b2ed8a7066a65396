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
import math
import mmap
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from ..core.errors import ArgumentError, CheckpointError, fmt_shape
from ..core.tensor import Tensor
from ..nn.module import Module
from ..optim import Optimizer
from ..optim.lr_scheduler import LRScheduler

PathLike = str | os.PathLike[str]

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip
_NPY_MAGIC = b"\x93NUMPY"
_STORABLE = "biufcUS"  # numeric, bool and text arrays round-trip without pickle


def save(obj: Any, path: PathLike) -> None:
    """Write `obj` to exactly `path` as an .npz archive, atomically.

    `obj` is a Module, an Optimizer or a learning-rate scheduler (its `state_dict()`
    is saved), or a mapping of name -> array / Tensor / number / nested mapping / any of those.
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


def load(path: PathLike, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Read an .npz file written by `save` (or by np.savez) into a dict of arrays, without pickle.

    Nothing is allocated before the sizes the archive declares have been checked:
    each entry's .npy header (shape x itemsize) must match the size its zip header
    declares, and all entries together may expand to at most `max_bytes`. The
    default limit is max(64 MiB, 100 x the file's size): a checkpoint from `save`
    is stored uncompressed, so it always fits, while a small file that claims to
    expand a thousandfold (a zip bomb) is refused. Pass a larger `max_bytes` for a
    heavily compressed archive you trust. Every problem is a CheckpointError
    naming the file and, where there is one, the entry.
    """
    source = os.fspath(path)
    if not os.path.exists(source):
        raise CheckpointError(f"load: no such file {source!r}")
    if os.path.isdir(source):
        raise CheckpointError(f"load: {source!r} is a directory, not an .npz file")
    try:
        with open(source, "rb") as f:
            magic = f.read(6)
        file_size = os.path.getsize(source)
    except OSError as exc:
        raise CheckpointError(f"load: cannot read {source!r}: {exc.strerror or exc}") from None
    if magic.startswith(_NPY_MAGIC):
        raise CheckpointError(f"load: {source!r} is a single .npy array, not an .npz archive; use np.load for it")
    if magic[:4] not in _ZIP_MAGIC:
        raise CheckpointError(f"load: {source!r} is not an .npz archive (it does not start with a zip header)")
    limit = max(_MIN_LIMIT, _RATIO_LIMIT * file_size) if max_bytes is None else max_bytes
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 0:
        raise ArgumentError(f"load: max_bytes must be a non-negative integer or None, got {max_bytes!r}")
    try:
        archive = zipfile.ZipFile(source)
    except NotImplementedError as exc:  # the only one zipfile raises while reading the directory: a zip version
        names = ", ".join(_names_needing_a_newer_zip(source)) or "an entry"
        raise CheckpointError(f"load: {names} of {source!r}: {exc}, which no .npz writer uses") from None
    except _READ_ERRORS as exc:
        raise CheckpointError(f"load: {source!r} is corrupt or truncated: {_describe(exc)}") from None
    with archive:
        members = _checked_members(source, archive.infolist(), file_size, limit)
        return {key: _read_entry(source, key, archive, info) for key, info in members.items()}


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
    """A Module's, Optimizer's or scheduler's state_dict, or the mapping itself."""
    if isinstance(obj, Module | Optimizer | LRScheduler):
        return obj.state_dict()
    if isinstance(obj, Mapping):
        return obj
    raise CheckpointError(
        f"save: expected a Module, an Optimizer, a scheduler or a mapping of name -> array, got {type(obj).__name__}"
    )


def _flatten(state: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """Nested mappings -> one flat dict with dotted keys; every value checked to be a storable array."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not key or "/" in key:
            raise CheckpointError(f"save: entry names must be non-empty strings without '/', got {key!r}")
        name = prefix + key
        if isinstance(value, Mapping | Module | Optimizer | LRScheduler):
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


_MIN_LIMIT = 64 * 2**20  # bytes: load's default limit is the larger of this and 100 x the file size
_RATIO_LIMIT = 100
_CHUNK = 2**20
_NPY_MAX_HEADER = 10000  # np.load's own limit on the .npy header's length
# What zipfile, zlib and numpy's header parser raise on damaged input. NotImplementedError: an unknown
# compression method or zip version; RuntimeError: an encrypted entry; OverflowError, MemoryError:
# absurd sizes in headers we could not check first.
_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    OverflowError,
    MemoryError,
    struct.error,
)
_COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}  # what np.savez* write


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _checked_members(source: str, infos: list[zipfile.ZipInfo], file_size: int, limit: int) -> dict[str, Any]:
    """Entry name -> ZipInfo, after checking what the zip headers declare against the file and the limit."""
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        key = info.filename[: -len(".npy")] if info.filename.endswith(".npy") else info.filename
        where = f"load: entry {key!r} of {source!r}"
        if not info.filename.endswith(".npy"):
            raise CheckpointError(f"{where} is not a .npy array; not an .npz file?")
        if key in members:
            raise CheckpointError(f"{where} appears twice in the archive")
        if info.compress_type not in _COMPRESSIONS:
            raise CheckpointError(
                f"{where} uses compression method {info.compress_type}; .npz entries are stored or deflated"
            )
        if info.flag_bits & 0x1:
            raise CheckpointError(f"{where} is encrypted, which no .npz writer does")
        if info.compress_size > file_size or (
            info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size
        ):
            raise CheckpointError(
                f"{where} is corrupt: it declares {info.compress_size} bytes in a {file_size}-byte file "
                f"that expand to {info.file_size}"
            )
        total += info.file_size
        if total > limit:
            raise CheckpointError(
                f"{where} takes the archive's declared size to {total} bytes, over the limit of {limit} "
                f"(the file has {file_size}); if you trust this file, pass a larger max_bytes to load()"
            )
        members[key] = info
    return members


def _names_needing_a_newer_zip(source: str) -> list[str]:
    """The entries whose central-directory record asks for a zip version zipfile cannot read.

    zipfile refuses the whole archive without saying which entry it was, so this scans
    the directory's records (46 fixed bytes, then the name) only to name it."""
    names = []
    with open(source, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        at = data.find(b"PK\x01\x02")
        while at != -1 and at + 46 <= len(data):
            extract_version, name_length = data[at + 6], struct.unpack_from("<H", data, at + 28)[0]
            if extract_version > zipfile.MAX_EXTRACT_VERSION:
                name = bytes(data[at + 46 : at + 46 + name_length]).decode("utf-8", "replace")
                names.append(f"entry {name.removesuffix('.npy')!r}")
            at = data.find(b"PK\x01\x02", at + 4)
    return names


def _read_entry(source: str, key: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One .npy member as an array. Its header's shape must account for exactly the bytes the zip
    header declares, so the allocation is bounded by what load() already checked."""
    where = f"load: entry {key!r} of {source!r}"
    try:
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(member, max_header_size=_NPY_MAX_HEADER)
            elif version == (2, 0):
                header = np.lib.format.read_array_header_2_0(member, max_header_size=_NPY_MAX_HEADER)
            else:
                raise CheckpointError(f"{where} is in .npy format {version[0]}.{version[1]}, not 1.0 or 2.0")
            shape, fortran_order, dtype = header
            if dtype.hasobject:
                raise CheckpointError(
                    f"{where} is an object array, which needs pickle; refusing to load it (save numeric arrays only)"
                )
            count = math.prod(shape)
            data_bytes = count * dtype.itemsize  # Python ints: a shape like (2**40,) cannot overflow
            header_bytes = member.tell()
            if header_bytes + data_bytes != info.file_size:
                raise CheckpointError(
                    f"{where} is corrupt: its header declares shape {fmt_shape(shape)} of {dtype} "
                    f"({data_bytes} bytes), but the entry holds {info.file_size - header_bytes} bytes of data"
                )
            flat = np.empty(count, dtype=dtype)
            raw = flat.view(np.uint8) if data_bytes else np.empty(0, np.uint8)
            filled = 0
            while filled < data_bytes:  # in chunks, so no second full-size copy is ever held
                chunk = member.read(min(data_bytes - filled, _CHUNK))
                if not chunk:
                    raise CheckpointError(f"{where} is truncated: {filled} of {data_bytes} bytes")
                raw[filled : filled + len(chunk)] = np.frombuffer(chunk, np.uint8)
                filled += len(chunk)
            member.read(1)  # reaching the end makes zipfile check the CRC
    except CheckpointError:
        raise
    except _READ_ERRORS as exc:
        raise CheckpointError(f"{where} is corrupt or truncated: {_describe(exc)}") from None
    return flat.reshape(shape, order="F" if fortran_order else "C")


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
