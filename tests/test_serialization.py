"""Tests of tinygrad_rnn.io.serialization: round trips of models and optimizers through real files,
atomic writes under simulated failures, and a named CheckpointError (a ValueError) for every bad file.
"""

from __future__ import annotations

import io
import os
import struct
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinygrad_rnn import Tensor
from tinygrad_rnn.core.errors import ArgumentError, CheckpointError
from tinygrad_rnn.io.serialization import load, save, subdict
from tinygrad_rnn.nn.module import Module, Parameter
from tinygrad_rnn.optim import Adam


class Tiny(Module):
    """y = tanh(x @ w + b) @ v, enough to have nested names and two dtypes of interest."""

    def __init__(self, seed: int = 0, dtype: Any = np.float64) -> None:
        rng = np.random.default_rng(seed)
        self.w = Parameter(rng.standard_normal((3, 4)), dtype=dtype)
        self.b = Parameter(rng.standard_normal(4), dtype=dtype)
        self.head = Head(rng, dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.head((x @ self.w + self.b).tanh())


class Head(Module):
    def __init__(self, rng: np.random.Generator, dtype: Any) -> None:
        self.v = Parameter(rng.standard_normal((4, 2)), dtype=dtype)

    def forward(self, h: Tensor) -> Tensor:
        return h @ self.v


X = np.random.default_rng(9).standard_normal((5, 3))
Y = np.random.default_rng(10).standard_normal((5, 2))


def train(model: Tiny, opt: Adam, steps: int) -> None:
    for _ in range(steps):
        opt.zero_grad()
        d = model(Tensor(X)) - Tensor(Y)
        (d * d).mean().backward()
        opt.step()


def files_in(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


# ---------------------------------------------------------------- round trips


def test_model_round_trip_writes_exactly_the_path(tmp_path: Path) -> None:
    model = Tiny(dtype=np.float32)
    path = tmp_path / "weights.ckpt"
    save(model, path)
    assert files_in(tmp_path) == ["weights.ckpt"]  # no ".npz" appended, no temporary file left
    loaded = load(str(path))
    assert list(loaded) == ["w", "b", "head.v"]
    for name, value in model.state_dict().items():
        assert loaded[name].dtype == np.float32
        np.testing.assert_array_equal(loaded[name], value)
    with np.load(path, allow_pickle=False) as plain:  # readable by numpy alone, without pickle
        np.testing.assert_array_equal(plain["head.v"], model.head.v.data)
    other = Tiny(seed=1, dtype=np.float32)
    other.load_state_dict(loaded)
    np.testing.assert_array_equal(other(Tensor(X, dtype=np.float32)).data, model(Tensor(X, dtype=np.float32)).data)


def test_model_and_optimizer_in_one_file_resume_identically(tmp_path: Path) -> None:
    model = Tiny()
    opt = Adam(model.parameters(), lr=0.05, amsgrad=True)
    train(model, opt, 3)
    path = tmp_path / "ckpt.npz"
    save({"model": model, "optim": opt.state_dict(), "step": 3}, path)
    ckpt = load(path)
    assert int(ckpt["step"]) == 3

    resumed = Tiny(seed=5)
    resumed_opt = Adam(resumed.parameters(), lr=0.5, amsgrad=True)
    resumed.load_state_dict(subdict(ckpt, "model"))
    resumed_opt.load_state_dict(subdict(ckpt, "optim"))
    train(model, opt, 4)
    train(resumed, resumed_opt, 4)
    for (name, p), q in zip(model.named_parameters(), resumed.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_optimizer_alone_and_plain_mappings(tmp_path: Path) -> None:
    model = Tiny()
    opt = Adam(model.parameters())
    train(model, opt, 1)
    save(opt, tmp_path / "opt")
    loaded = load(tmp_path / "opt")
    assert str(loaded["optimizer"]) == "Adam" and loaded["param_groups.0.betas"].shape == (2,)
    save({"a": {"b": np.arange(3), "c": Tensor([1.0, 2.0])}, "flag": True}, tmp_path / "m")
    assert sorted(load(tmp_path / "m")) == ["a.b", "a.c", "flag"]


def test_overwrite_keeps_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    save({"x": np.zeros(2)}, path)
    assert (path.stat().st_mode & 0o777) == 0o644  # not mkstemp's private 0600
    path.chmod(0o640)
    save({"x": np.ones(2)}, path)
    assert (path.stat().st_mode & 0o777) == 0o640
    np.testing.assert_array_equal(load(path)["x"], np.ones(2))


# ---------------------------------------------------------------- atomicity


class Boom(Exception):
    pass


@pytest.mark.parametrize("where", ["write_array", "fsync", "replace", "interrupt"])
def test_a_failed_save_leaves_the_previous_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    path = tmp_path / "model.npz"
    save({"x": np.arange(4.0)}, path)
    previous = path.read_bytes()
    if where in ("write_array", "interrupt"):
        real = np.lib.format.write_array
        calls = []

        def failing(f: Any, array: np.ndarray, **kwargs: Any) -> None:
            calls.append(1)
            if len(calls) == 2:  # the first member is already written: a genuinely partial archive
                raise KeyboardInterrupt if where == "interrupt" else Boom("disk full")
            real(f, array, **kwargs)

        monkeypatch.setattr(np.lib.format, "write_array", failing)
    else:

        def fail(*args: Any) -> None:
            raise Boom(where)

        monkeypatch.setattr(os, where, fail)
    with pytest.raises(KeyboardInterrupt if where == "interrupt" else Boom):
        save({"x": np.arange(1000.0), "y": np.ones(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == previous
    assert files_in(tmp_path) == ["model.npz"]
    np.testing.assert_array_equal(load(path)["x"], np.arange(4.0))


def test_an_os_error_while_writing_is_a_named_checkpoint_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.npz"
    save({"x": np.arange(4.0)}, path)
    previous = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(CheckpointError, match=r"save: cannot write '.*model\.npz': No space left on device"):
        save({"x": np.ones(4)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == previous and files_in(tmp_path) == ["model.npz"]


def test_a_new_file_is_not_created_when_saving_fails(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="entry 'bad'"):
        save({"good": np.zeros(2), "bad": np.array([object()])}, tmp_path / "new.npz")
    assert files_in(tmp_path) == []


# ---------------------------------------------------------------- errors on load


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"load: no such file '.*nope\.npz'"):
        load(tmp_path / "nope.npz")
    with pytest.raises(CheckpointError, match="is a directory"):
        load(tmp_path)


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    save(Tiny(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"m\.npz' is corrupt or truncated") as info:
        load(path)
    assert isinstance(info.value, ValueError)


def test_corrupt_entry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    save({"first": np.zeros(8), "second": np.arange(64.0)}, path)
    data = bytearray(path.read_bytes())
    offset = data.index(np.arange(64.0)[40:48].tobytes())  # somewhere inside the data of "second"
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"entry 'second' of .*m\.npz' is corrupt"):
        load(path)


def test_not_an_npz(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"notes\.txt' is not an \.npz archive"):
        load(text)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"not an \.npz archive"):
        load(empty)
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(CheckpointError, match=r"array\.npy' is a single \.npy array"):
        load(npy)
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("readme.txt", "just text")
    with pytest.raises(CheckpointError, match=r"entry 'readme\.txt' .* is not a \.npy array"):
        load(other_zip)


def test_object_arrays_are_refused_on_load(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    np.savez(path, fine=np.zeros(2), sneaky=np.array([{"a": 1}], dtype=object))  # np.savez pickles objects
    with pytest.raises(CheckpointError, match=r"entry 'sneaky' of .* is an object array, which needs pickle"):
        load(path)


# ---------------------------------------------------------------- errors on save


def test_bad_objects_and_paths_on_save(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"save: entry 'opt.fn' has dtype object"):
        save({"opt": {"fn": print}}, tmp_path / "a")
    with pytest.raises(CheckpointError, match=r"expected a Module, an Optimizer, a scheduler or a mapping .* got list"):
        save([np.zeros(2)], tmp_path / "a")
    with pytest.raises(CheckpointError, match=r"directory .* does not exist"):
        save({"x": np.zeros(1)}, tmp_path / "missing" / "a.npz")
    with pytest.raises(CheckpointError, match="it is a directory"):
        save({"x": np.zeros(1)}, tmp_path)
    with pytest.raises(CheckpointError, match=r"without '/', got 'a/b'"):
        save({"a/b": np.zeros(1)}, tmp_path / "a")
    with pytest.raises(CheckpointError, match=r"two entries flatten to the same name 'a.b'"):
        save({"a.b": np.zeros(1), "a": {"b": np.ones(1)}}, tmp_path / "a")
    assert files_in(tmp_path) == []


def test_subdict_names_what_exists() -> None:
    with pytest.raises(
        CheckpointError, match=r"no entries under 'modle'; the top-level names are \['model', 'optim'\]"
    ):
        subdict({"model.w": np.zeros(1), "optim.state.0.step": np.array(1)}, "modle")


# ---------------------------------------------------------------- load_state_dict through a file


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda d: d.pop("head.v"), "missing entries: head.v"),
        (lambda d: d.update(extra=np.zeros(1)), "unexpected entries: extra"),
        (lambda d: d.update(w=np.zeros((4, 3))), r"w has shape \(4, 3\), expected \(3, 4\)"),
    ],
)
def test_load_state_dict_from_a_bad_file_leaves_the_model_unchanged(tmp_path: Path, edit: Any, pattern: str) -> None:
    state = Tiny(seed=3).state_dict()
    edit(state)
    path = tmp_path / "bad.npz"
    save(state, path)
    model = Tiny(seed=0)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=pattern):
        model.load_state_dict(load(path))
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


# ---------------------------------------------------------------- hostile archives: declared sizes, methods, fuzz


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """A .npy header alone, declaring any shape, with no data behind it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def write_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def patch_records(path: Path, signature: bytes, offset: int, fmt: str, value: int) -> None:
    """Overwrite one field in every zip record with `signature` (local headers or the central directory)."""
    data = bytearray(path.read_bytes())
    at = data.find(signature)
    assert at != -1, "no such record"
    while at != -1:
        struct.pack_into(fmt, data, at + offset, value)
        at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))


LOCAL, CENTRAL = b"PK\x03\x04", b"PK\x01\x02"


@pytest.mark.parametrize("method", [12, 14, 99])  # bzip2 and lzma (zipfile reads them; np.savez never writes them)
def test_an_unsupported_compression_method_is_a_named_checkpoint_error(tmp_path: Path, method: int) -> None:
    path = tmp_path / "m.npz"
    write_zip(path, {"w.npy": npy_bytes(np.arange(3.0))})
    patch_records(path, LOCAL, 8, "<H", method)
    patch_records(path, CENTRAL, 10, "<H", method)
    with pytest.raises(CheckpointError, match=rf"entry 'w' of .*m\.npz' uses compression method {method}"):
        load(path)


def test_a_zip_version_newer_than_zipfile_reads_is_a_named_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    write_zip(path, {"ok.npy": npy_bytes(np.zeros(2)), "w.npy": npy_bytes(np.arange(3.0))})
    data = bytearray(path.read_bytes())
    second = data.find(CENTRAL, data.find(CENTRAL) + 4)  # only w's record asks for version 10.0
    data[second + 6] = 100
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"load: entry 'w' of .*m\.npz': zip file version 10\.0") as info:
        load(path)
    assert not isinstance(info.value, NotImplementedError)


def test_a_header_declaring_2_to_the_40_elements_is_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    write_zip(path, {"huge.npy": npy_header("<f8", (2**40,)) + np.zeros(2).tobytes()})
    with pytest.raises(CheckpointError, match=r"entry 'huge' .* declares shape \(1099511627776,\) of float64"):
        load(path)
    write_zip(path, {"short.npy": npy_header("<f8", (3,)) + np.zeros(2).tobytes()})  # one element missing
    with pytest.raises(CheckpointError, match=r"entry 'short' .* \(24 bytes\), but the entry holds 16 bytes"):
        load(path)


def test_a_zip_header_lying_about_sizes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    write_zip(path, {"w.npy": npy_bytes(np.zeros(4))})
    patch_records(path, CENTRAL, 24, "<L", 2**31)  # uncompressed size: 2 GiB from a stored 200-byte entry
    with pytest.raises(
        CheckpointError, match=r"entry 'w' .* is corrupt: it declares \d+ bytes .* expand to 2147483648"
    ):
        load(path)


def test_a_zip_bomb_is_refused_from_its_declared_size_without_inflating(tmp_path: Path) -> None:
    path = tmp_path / "bomb.npz"
    count = 65 * 2**20 // 8  # 65 MiB of zeros deflate to about 65 KB
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("z.npy", "w", force_zip64=True) as member:
            member.write(npy_header("<f8", (count,)))
            chunk = bytes(2**20)
            for _ in range(count * 8 // len(chunk)):
                member.write(chunk)
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"entry 'z' of .*bomb\.npz' .* over the limit of 67108864"):
            load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"load allocated {peak} bytes before refusing"


def test_max_bytes_sets_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    save({"a": np.zeros(100), "b": np.zeros(100)}, path)
    with pytest.raises(CheckpointError, match=r"entry 'b' .* over the limit of 1000 .* pass a larger max_bytes"):
        load(path, max_bytes=1000)
    assert set(load(path, max_bytes=2000)) == {"a", "b"}
    with pytest.raises(ArgumentError, match=r"load: max_bytes must be a non-negative integer or None, got -1"):
        load(path, max_bytes=-1)


def test_a_duplicated_or_encrypted_entry_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("w.npy", npy_bytes(np.zeros(1)))
        archive.writestr("w.npy", npy_bytes(np.ones(1)))
    with pytest.raises(CheckpointError, match=r"entry 'w' of .* appears twice"):
        load(path)
    write_zip(path, {"w.npy": npy_bytes(np.zeros(1))})
    patch_records(path, CENTRAL, 8, "<H", 0x1)
    with pytest.raises(CheckpointError, match=r"entry 'w' of .* is encrypted"):
        load(path)


def test_every_dtype_and_layout_np_savez_writes_still_loads(tmp_path: Path) -> None:
    arrays = {
        "f32": np.float32(3.5),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "empty": np.zeros((0, 3)),
        "big_endian": np.arange(4, dtype=">i4"),
        "text": np.array(["ab", "c"]),
        "complex": np.array([1 + 2j]),
        "record": np.zeros(2, dtype=[("x", "f8"), ("y", "i2")]),
    }
    for writer in (np.savez, np.savez_compressed):
        path = tmp_path / f"{writer.__name__}.npz"
        writer(path, **arrays)
        loaded = load(path)
        for name, value in arrays.items():
            assert loaded[name].dtype == value.dtype and loaded[name].shape == value.shape, name
            np.testing.assert_array_equal(loaded[name], value)
            assert loaded[name].flags.writeable


def corruptions(data: bytes, rng: np.random.Generator) -> bytes:
    """One random damage: flipped bytes (half of them aimed at zip and .npy headers), a cut, or an insertion."""
    out = bytearray(data)
    kind = rng.integers(4)
    if kind == 3:
        return bytes(out[: rng.integers(len(out))])
    if kind == 2:
        at = int(rng.integers(len(out)))
        return bytes(out[:at] + rng.bytes(int(rng.integers(1, 16))) + out[at:])
    marks = [i for sig in (LOCAL, CENTRAL, b"PK\x05\x06", b"PK\x06\x06", b"\x93NUMPY") for i in _find_all(data, sig)]
    for _ in range(int(rng.integers(1, 6))):
        if kind == 1 and marks:
            at = min(len(out) - 1, int(rng.choice(marks)) + int(rng.integers(0, 60)))
        else:
            at = int(rng.integers(len(out)))
        out[at] = int(rng.integers(256))
    return bytes(out)


def _find_all(data: bytes, signature: bytes) -> list[int]:
    found, at = [], data.find(signature)
    while at != -1:
        found.append(at)
        at = data.find(signature, at + 1)
    return found


@pytest.mark.parametrize("compressed", [False, True], ids=["saved", "savez_compressed"])
def test_random_corruptions_give_a_checkpoint_error_or_arrays_never_anything_else(
    tmp_path: Path, compressed: bool
) -> None:
    model = Tiny()
    opt = Adam(model.parameters(), lr=0.1)
    train(model, opt, 2)
    path = tmp_path / "good.npz"
    save({"model": model, "optim": opt}, path)
    if compressed:
        np.savez_compressed(path, **load(path))
    good = path.read_bytes()
    rng = np.random.default_rng(14)
    outcomes = {"loaded": 0, "refused": 0}
    damaged = tmp_path / "damaged.npz"
    for case in range(300):
        damaged.write_bytes(corruptions(good, rng))
        try:
            result = load(damaged)
        except CheckpointError as exc:
            assert "damaged.npz" in str(exc), f"case {case}: the message does not name the file: {exc}"
            outcomes["refused"] += 1
        except BaseException as exc:
            pytest.fail(f"case {case}: {type(exc).__name__} escaped load(): {exc}")
        else:
            assert all(isinstance(v, np.ndarray) for v in result.values())
            outcomes["loaded"] += 1
    assert outcomes["refused"] > 100, outcomes  # the damage must actually have been noticed most of the time
