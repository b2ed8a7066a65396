"""End-to-end tests of the `tinygrad-rnn` command: every subcommand on tiny settings, and every bad input.

Most tests call `tinygrad_rnn.cli.main(argv)` in-process (the console script is
`sys.exit(main())`), inside a temporary working directory; two run the real
program in a subprocess to see exactly what a user sees.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_rnn.checks.gradcheck import numerical_jacobian
from tinygrad_rnn.cli import build_parser, main
from tinygrad_rnn.cli.checks import PRIMITIVE_CHECKS, recurrent_checks
from tinygrad_rnn.cli.forecast import read_series
from tinygrad_rnn.core import ops
from tinygrad_rnn.core.engine import Function

TINY_FORECAST = ["forecast", "--epochs", "5", "--hidden", "16"]
TEXT = "the quick brown fox jumps over the lazy dog. " * 60
TINY_MODEL = ["--hidden", "16", "--batch", "4", "--bptt", "16", "--lr", "0.02"]
# a constant lr: 40 cosine steps learn too little for the greedy sample to reproduce the text
TINY_CHARS = [*TINY_MODEL, "--steps", "40", "--sample-every", "20", "--schedule", "constant"]


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def summary(out: str, metric: str) -> tuple[float, float]:
    """(value, baseline) from a closing line such as `test mse 0.0123 (naive baseline 0.0345, linear AR(12) ...)`."""
    match = re.search(
        rf"^{metric} ([0-9.e+-]+)(?: nats/char)? \((?:naive|unigram) baseline ([0-9.e+-]+)[,)]", out, re.M
    )
    assert match, f"no summary line for {metric!r} in:\n{out}"
    return float(match.group(1)), float(match.group(2))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- help and entry points


@pytest.mark.parametrize("command", [None, "forecast", "predict", "chars", "generate", "gradcheck", "gradflow"])
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: str | None) -> None:
    status, out, _ = run(capsys, *([command] if command else []), "--help")
    assert status == 0
    assert out.startswith("usage: tinygrad-rnn" + (f" {command}" if command else ""))
    for option in {
        "forecast": ["--csv", "--column", "--cell", "--bptt", "--dtype", "--plot", "--resume", "--force", "--horizon"],
        "predict": ["--checkpoint", "--csv", "--column", "--horizon"],
        "chars": ["--text", "--resume", "--force", "--save-every", "--steps", "--clip", "--seed"],
        "generate": ["--checkpoint", "--prime", "--temperature"],
    }.get(command or "", []):
        assert option in out


def test_module_and_console_script_are_the_same_program(tmp_path: Path) -> None:
    as_module = subprocess.run([sys.executable, "-m", "tinygrad_rnn", "--version"], capture_output=True, text=True)
    assert as_module.returncode == 0 and as_module.stdout.startswith("tinygrad-rnn ")
    script = shutil.which("tinygrad-rnn")
    if script is None:
        pytest.skip("the tinygrad-rnn script is not on PATH (package not installed)")
    as_script = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert as_script.stdout == as_module.stdout


def test_no_command_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys)
    assert status == 2 and err.count("\n") == 1 and "choose a command" in err


# ---------------------------------------------------------------- forecast


def test_forecast_beats_the_naive_baseline_on_the_default_series(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, _ = run(capsys, *TINY_FORECAST, "--checkpoint", "f.npz")
    assert status == 0
    test_mse, naive = summary(out, "test mse")
    assert test_mse < naive
    train_mse, train_naive = summary(out, "train mse")
    assert train_mse < train_naive
    closing = [line.split(" (")[0].rsplit(" ", 1)[0] for line in out.rstrip().splitlines()[-4:]]
    assert closing == ["train mse", "train rmse", "test mse", "test rmse"]  # the summary lines come last
    test_rmse, naive_rmse = summary(out, "test rmse")  # in the series' own units: the square root of the mse
    assert test_rmse == pytest.approx(np.sqrt(test_mse), rel=1e-3)
    assert naive_rmse == pytest.approx(np.sqrt(naive), rel=1e-3)
    with np.load(tmp_path / "f.npz", allow_pickle=False) as saved:  # a plain .npz: no tinygrad_rnn needed to read it
        assert {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight", "head.bias"} <= set(saved.files)
        config = json.loads(str(saved["cli.config"]))
    assert config["kind"] == "forecast" and config["cell"] == "gru" and config["hidden"] == 16


def test_forecast_reports_linear_ar_baselines_fitted_on_the_training_part(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "forecast", "--epochs", "1", "--hidden", "4", "--window", "9", "--checkpoint", "f.npz")
    assert status == 0
    test_line = next(line for line in out.splitlines() if line.startswith("test mse"))
    reported = {
        name: float(value) for name, value in re.findall(r"(linear AR\(9\)(?: on sqrt)?) ([0-9.e+-]+)", test_line)
    }
    # the same fits by the normal equations: 247 training values, 62 test values, one step ahead
    series = read_series(None, None)[0]
    for name, forward, back in [
        ("linear AR(9)", np.asarray, np.asarray),
        ("linear AR(9) on sqrt", np.sqrt, np.square),
    ]:
        x = forward(series)
        design = np.array([[*x[t - 9 : t], 1.0] for t in range(9, len(x))])
        fit = np.linalg.solve(design[: 247 - 9].T @ design[: 247 - 9], design[: 247 - 9].T @ x[9:247])
        expected = np.mean((back(design[247 - 9 :] @ fit) - series[247:]) ** 2)
        assert reported[name] == pytest.approx(expected, rel=1e-3)
    assert reported["linear AR(9)"] == pytest.approx(378, abs=0.5)  # the figure issue 14 reports


def test_forecast_is_reproducible_with_a_seed(capsys: pytest.CaptureFixture[str]) -> None:
    outputs = [run(capsys, *TINY_FORECAST[:2], "2", "--seed", "7", "--checkpoint", f"{i}.npz")[1] for i in range(2)]
    assert summary(outputs[0], "test mse") == summary(outputs[1], "test mse")


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_forecast_reads_a_csv_column(capsys: pytest.CaptureFixture[str], tmp_path: Path, cell: str) -> None:
    t = np.arange(120)
    rows = ["when,label,value"] + [f"{i},x{i},{np.sin(i / 4):.5f}" for i in t]
    (tmp_path / "wave.csv").write_text("\n".join(rows) + "\n")
    status, out, _ = run(
        capsys,
        "forecast",
        "--csv",
        "wave.csv",
        "--column",
        "value",
        "--window",
        "8",
        "--epochs",
        "3",
        "--hidden",
        "8",
        "--cell",
        cell,
        "--layers",
        "2",
        "--bptt",
        "3",
        "--dtype",
        "float32",
    )
    assert status == 0
    assert "value of wave.csv" in out
    summary(out, "test mse")
    with np.load(tmp_path / "forecast.npz") as saved:
        assert saved["rnn.weight_hh_l1"].dtype == np.float32


# ---------------------------------------------------------------- chars, generate, resume


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "fox.txt"
    path.write_text(TEXT)
    return path


def test_chars_learns_and_generation_is_reproducible(capsys: pytest.CaptureFixture[str], text_file: Path) -> None:
    status, out, _ = run(capsys, "chars", "--text", str(text_file), "--cell", "gru", *TINY_CHARS)
    assert status == 0
    assert out.count("--- step") == 2  # a sample while training, at steps 20 and 40
    val, unigram = summary(out, "val cross-entropy")
    assert val < unigram - 0.5  # a repetitive text: far better than letter frequencies after 40 steps
    first = run(capsys, "generate", "--checkpoint", "chars.npz", "--prime", "the ", "--seed", "3", "--length", "80")
    second = run(capsys, "generate", "--checkpoint", "chars.npz", "--prime", "the ", "--seed", "3", "--length", "80")
    other = run(capsys, "generate", "--checkpoint", "chars.npz", "--prime", "the ", "--seed", "4", "--length", "80")
    assert first[0] == 0 and first == second
    assert first[1].startswith("the ") and len(first[1]) == len("the ") + 80 + 1
    assert other[1] != first[1]
    cold = run(
        capsys,
        "generate",
        "--checkpoint",
        "chars.npz",
        "--prime",
        "the ",
        "--seed",
        "3",
        "--length",
        "80",
        "--temperature",
        "0.05",
    )
    assert "the quick" in cold[1] or "the lazy" in cold[1]  # near-greedy sampling reproduces the training text


def test_chars_resume_continues_from_the_checkpoint(
    capsys: pytest.CaptureFixture[str], text_file: Path, tmp_path: Path
) -> None:
    args = ["chars", "--text", str(text_file), *TINY_MODEL, "--steps", "10", "--sample-every", "10"]
    assert run(capsys, *args)[0] == 0
    before = dict(np.load(tmp_path / "chars.npz"))
    status, out, _ = run(capsys, *args, "--resume")
    assert status == 0 and "resumed from chars.npz at step 10" in out and "--- step 20/20" in out
    after = dict(np.load(tmp_path / "chars.npz"))
    assert json.loads(str(after["cli.config"]))["step"] == 20
    assert int(after["optimizer.state.0.step"]) == 20  # Adam's own step count went on from 10, not from 0
    assert not np.array_equal(before["rnn.weight_hh_l0"], after["rnn.weight_hh_l0"])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_compiled_training_steps_match_eager_to_the_bit(
    capsys: pytest.CaptureFixture[str], text_file: Path, tmp_path: Path, cell: str
) -> None:
    """forecast and chars can replay their step with tg.compile; --no-compile runs it eagerly. The checkpoints
    (parameters and optimizer state) must be identical: chars carries an LSTM's (h, c) through the compiled
    step and wraps around to a fresh state; forecast cuts each window into 3 truncated-BPTT chunks."""
    commands = {
        "chars": ["chars", "--text", str(text_file), "--cell", cell, *TINY_MODEL, "--steps", "45"],
        "forecast": ["forecast", "--cell", cell, "--hidden", "8", "--bptt", "5", "--epochs", "2"],
    }
    for name, argv in commands.items():
        saved = []
        for flags in (["--compile"], ["--no-compile"]):
            status, out, _ = run(capsys, *argv, *flags, "--checkpoint", f"{name}.npz", "--force")
            assert status == 0, out
            saved.append(dict(np.load(tmp_path / f"{name}.npz")))
        compiled, eager = saved
        assert compiled.keys() == eager.keys()
        for key in compiled:
            assert np.array_equal(compiled[key], eager[key]), f"{name}: {key} differs"


@pytest.mark.parametrize("command", ["chars", "forecast"])
def test_training_commands_compile_their_step_by_default(command: str) -> None:
    parser = build_parser()
    assert parser.parse_args([command]).compile is True
    assert parser.parse_args([command, "--no-compile"]).compile is False


# ---------------------------------------------------------------- gradcheck


def test_gradcheck_passes_for_every_primitive_and_layer(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "gradcheck")
    assert status == 0
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines()[1:-1]}
    checks = (*PRIMITIVE_CHECKS, *recurrent_checks())
    for check in checks:
        assert rows[check.name].endswith("pass")
    assert re.search(rf"^{len(checks)} passed, 0 failed", out, re.M)


def test_gradcheck_fails_when_a_vjp_is_wrong(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    correct = ops.Sigmoid.backward

    def off_by_a_tenth(ctx: Function, grad_out: object) -> object:
        return correct(ctx, grad_out) * 1.1  # type: ignore[operator]

    monkeypatch.setattr(ops.Sigmoid, "backward", off_by_a_tenth)
    status, out, _ = run(capsys, "gradcheck", "--only", "sigmoid", "--only", "tanh", "--only", "LSTM")
    assert status == 1
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines()}
    assert rows["sigmoid"].endswith("FAIL") and rows["LSTM"].endswith("FAIL")  # the LSTM's gates are sigmoids
    assert rows["tanh"].endswith("pass")
    assert "sigmoid: gradcheck: d(output 0)/d(input 0) mismatch" in out
    assert re.search(r"^1 passed, 2 failed", out, re.M)


def test_every_primitive_has_a_check() -> None:
    primitives = {
        c
        for name, c in vars(ops).items()
        if isinstance(c, type) and issubclass(c, Function) and c.__module__ == ops.__name__ and name[0] != "_"
    }
    assert {"Add", "MatMul", "GetItem", "Tanh"} <= {c.__name__ for c in primitives}  # the discovery finds them
    assert primitives == {check.op for check in PRIMITIVE_CHECKS}


def test_recurrent_checks_depend_on_every_input() -> None:
    """A parameter the layer ignored would give two zero Jacobians, which agree: a vacuous pass."""
    for check in recurrent_checks():
        inputs = check.inputs(np.random.default_rng(0))
        jacobians = numerical_jacobian(check.fn, inputs)
        for j in range(len(inputs)):
            assert any(np.abs(per_output[j]).max() > 1e-3 for per_output in jacobians), (check.name, j)


# ---------------------------------------------------------------- bad input: one line, status 2, nothing written


def _write(path: str, content: str | bytes) -> str:
    Path(path).write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


BAD_INPUTS = {
    "missing csv": (lambda: ["forecast", "--csv", "nope.csv"], "nope.csv: no such file"),
    "empty csv": (lambda: ["forecast", "--csv", _write("e.csv", "")], "e.csv is empty"),
    "header only": (lambda: ["forecast", "--csv", _write("h.csv", "v\n")], "a header row but no values"),
    "non-numeric column": (
        lambda: ["forecast", "--csv", _write("n.csv", "v\n1\n2\nthree\n"), "--column", "v"],
        "n.csv, line 4: column 'v' holds 'three', which is not a finite number",
    ),
    "unknown column": (lambda: ["forecast", "--csv", _write("u.csv", "a,b\n1,2\n"), "--column", "c"], "no column 'c'"),
    "ambiguous column": (lambda: ["forecast", "--csv", _write("m.csv", "a,b\n1,2\n")], "choose one with --column"),
    "series shorter than the window": (
        lambda: ["forecast", "--csv", _write("s.csv", "v\n" + "1\n2\n" * 10), "--window", "24"],
        "has 20 values, too short for --window 24",
    ),
    "square root of negative values": (
        lambda: ["forecast", "--csv", _write("neg.csv", "v\n" + "1\n-2\n" * 30), "--transform", "sqrt"],
        "--transform sqrt needs values >= 0, but neg.csv has -2",
    ),
    "missing text": (lambda: ["chars", "--text", "nope.txt"], "nope.txt: no such file"),
    "empty text": (lambda: ["chars", "--text", _write("e.txt", "")], "e.txt is empty"),
    "one distinct character": (
        lambda: ["chars", "--text", _write("a.txt", "aaaa" * 100)],
        "only one distinct character",
    ),
    "binary text": (lambda: ["chars", "--text", _write("b.txt", b"\xff\xfe\x00abc")], "is not UTF-8 text"),
    "unknown cell": (lambda: ["forecast", "--cell", "transformer"], "argument --cell: invalid choice: 'transformer'"),
    "non-positive hidden": (lambda: ["chars", "--hidden", "0"], "argument --hidden: expected a positive integer"),
    "checkpoint in a missing folder": (
        lambda: ["forecast", "--epochs", "1", "--checkpoint", "no/such/f.npz"],
        "--checkpoint no/such/f.npz: the folder",
    ),
    "missing checkpoint": (lambda: ["generate", "--checkpoint", "none.npz"], "no such file"),
    "not a checkpoint": (lambda: ["generate", "--checkpoint", _write("x.npz", "hello")], "not an .npz archive"),
    "checkpoint of another command": (
        lambda: ["generate", "--checkpoint", "trained/forecast.npz"],
        "not of `tinygrad-rnn chars`",
    ),
    "checkpoint of another model": (
        lambda: [
            "chars",
            "--text",
            "trained/fox.txt",
            "--resume",
            "trained/chars.npz",
            "--hidden",
            "9",
            "--checkpoint",
            "c.npz",
        ],
        "holds a different model: it was trained with --hidden 16 (this run asks for 9)",
    ),
    "existing checkpoint": (
        lambda: ["forecast", "--epochs", "1", "--checkpoint", _write("old.npz", "mine")],
        "--checkpoint old.npz already exists and this run would replace it; continue training it with --resume, "
        "replace it with --force",
    ),
    "checkpoint that is not a file": (  # a pipe, not /dev/null: a regression must not replace a device as root
        lambda: ["chars", "--text", "trained/fox.txt", "--checkpoint", _fifo("pipe.npz")],
        "--checkpoint pipe.npz is not a regular file",
    ),
    "resume from a missing checkpoint": (lambda: ["forecast", "--resume", "none.npz"], "no such file"),
    "resume from a checkpoint of another model": (
        lambda: [
            "forecast",
            "--resume",
            "trained/forecast.npz",
            "--checkpoint",
            "f.npz",
            "--hidden",
            "32",
            "--window",
            "12",
        ],
        "trained with --hidden 4 (this run asks for 32), --window 24 (this run asks for 12)",
    ),
    "horizon longer than the training part": (
        lambda: ["forecast", "--window", "24", "--horizon", "300"],
        "has 309 values, too short for --window 24 and --horizon 300",
    ),
    "csv cell beyond the csv module's limit": (
        lambda: ["forecast", "--csv", _write("big.csv", "v\n1\n" + "9" * 200_000 + "\n")],
        "big.csv is not valid CSV: line 3: field larger than field limit",
    ),
    "values that overflow": (
        lambda: ["forecast", "--csv", _write("o.csv", "v\n" + "1e308\n-1e308\n" * 30)],
        "the values of v in o.csv are too large to standardise",
    ),
    "predict from a chars checkpoint": (
        lambda: ["predict", "--checkpoint", "trained/chars.npz"],
        "not of `tinygrad-rnn forecast`",
    ),
    "predict from a series shorter than the window": (
        lambda: ["predict", "--checkpoint", "trained/forecast.npz", "--csv", _write("p.csv", "v\n1\n2\n")],
        "p.csv has 2 values in column 'v'; the model in trained/forecast.npz reads the last 24",
    ),
    "predict from a csv with a bad line": (
        lambda: ["predict", "--checkpoint", "trained/forecast.npz", "--csv", _write("q.csv", "v\n1\n\n2\n-\n")],
        "q.csv, line 5: column 'v' holds '-', which is not a finite number",
    ),
    "checkpoint holding NaN": (
        lambda: ["generate", "--checkpoint", _with_nan("trained/chars.npz", "nan.npz")],
        "nan.npz: parameter head.bias holds NaN or Inf",
    ),
    **{
        f"negative seed for {command}": (
            lambda command=command: [command, "--seed", "-1"],
            "argument --seed: expected an integer >= 0, got '-1'",
        )
        for command in ("forecast", "chars", "generate", "gradcheck", "gradflow")
    },
    "prime outside the vocabulary": (
        lambda: ["generate", "--checkpoint", "trained/chars.npz", "--prime", "QZ"],
        "--prime has 2 character(s) the model does not know",
    ),
}


def _fifo(path: str) -> str:
    os.mkfifo(path)
    return path


def _with_nan(source: str, target: str) -> str:
    entries = dict(np.load(source))
    entries["head.bias"][0] = np.nan
    np.savez(target, **entries)
    return target


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoints of both commands, made once for the bad-input tests that need one."""
    folder = tmp_path_factory.mktemp("trained")
    (folder / "fox.txt").write_text(TEXT)
    forecast = ["forecast", "--epochs", "1", "--hidden", "4", "--window", "24"]
    assert main([*forecast, "--checkpoint", str(folder / "forecast.npz")]) == 0
    chars = ["chars", "--text", str(folder / "fox.txt"), *TINY_MODEL, "--steps", "2", "--sample-every", "2"]
    assert main([*chars, "--checkpoint", str(folder / "chars.npz")]) == 0
    return folder


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_with_status_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trained: Path, case: str
) -> None:
    os.symlink(trained, tmp_path / "trained")
    capsys.readouterr()
    argv, expected = BAD_INPUTS[case]
    argv = argv()
    before = leftovers(tmp_path)
    status, _, err = run(capsys, *argv)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("tinygrad-rnn"), err
    assert expected in err
    assert "Traceback" not in err
    assert leftovers(tmp_path) == before  # no checkpoint, partial or whole, and no temporary file


def test_a_failed_run_leaves_the_previous_checkpoint_untouched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "forecast", "--epochs", "1", "--hidden", "4", "--checkpoint", "good.npz")[0] == 0
    good = (tmp_path / "good.npz").read_bytes()
    _write("short.csv", "v\n1\n2\n3\n")
    assert run(capsys, "forecast", "--csv", "short.csv", "--checkpoint", "good.npz")[0] == 2
    assert (tmp_path / "good.npz").read_bytes() == good


def test_a_run_stopped_in_the_middle_of_a_step_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyboardInterrupt inside a step (a second Ctrl-C) may leave parameters half updated: keep the file."""
    from tinygrad_rnn import optim

    assert run(capsys, "forecast", "--epochs", "1", "--hidden", "4", "--checkpoint", "good.npz")[0] == 0
    good = (tmp_path / "good.npz").read_bytes()
    calls = []

    def interrupted(self: object, closure: object = None) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(optim.Adam, "step", interrupted)
    status, _, err = run(capsys, "forecast", "--epochs", "1", "--hidden", "4", "--checkpoint", "good.npz", "--force")
    assert status == 130 and "Traceback" not in err
    assert err == "tinygrad-rnn: interrupted in the middle of a step; this run saved nothing to good.npz\n"
    assert (tmp_path / "good.npz").read_bytes() == good
    assert leftovers(tmp_path) == ["good.npz"]


def test_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tinygrad_rnn", "forecast", "--csv", "missing.csv"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr == "tinygrad-rnn: error: missing.csv: no such file\n"
    assert result.stdout == ""


# ---------------------------------------------------------------- plots


def test_plot_without_matplotlib_says_how_to_install_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    status, _, err = run(capsys, *TINY_FORECAST, "--plot", "out.png")
    assert status == 2
    assert 'pip install "tinygrad_rnn[plot]"' in err and err.count("\n") == 1
    assert leftovers(tmp_path) == []  # checked before training: no checkpoint either


@pytest.mark.parametrize("command", ["forecast", "chars", "gradflow"])
def test_plot_writes_a_png(capsys: pytest.CaptureFixture[str], tmp_path: Path, text_file: Path, command: str) -> None:
    pytest.importorskip("matplotlib")
    argv = {
        "forecast": [*TINY_FORECAST[:2], "1"],
        "chars": ["chars", "--text", str(text_file), *TINY_CHARS],
        "gradflow": ["gradflow", "--T", "4", "--batch", "2", "--hidden", "4"],
    }[command]
    status, out, _ = run(capsys, *argv, "--plot", "out.png")
    assert status == 0 and "plot saved to out.png" in out
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cosine_schedule_runs_from_the_peak_to_zero() -> None:
    from tinygrad_rnn.cli.common import cosine_lr

    assert [cosine_lr(0.4, step, 4) for step in range(5)] == pytest.approx(
        [0.4, 0.4 * (1 + 0.5**0.5) / 2, 0.2, 0.4 * (1 - 0.5**0.5) / 2, 0.0]
    )


def test_the_square_root_transform_round_trips_and_clips_impossible_roots() -> None:
    from tinygrad_rnn.cli.forecast import apply_transform, invert_transform, resolve_transform

    values = np.array([0.0, 2.25, 100.0])
    np.testing.assert_allclose(invert_transform(apply_transform(values, "sqrt"), "sqrt"), values)
    np.testing.assert_array_equal(invert_transform(np.array([-1.0, 3.0]), "sqrt"), [0.0, 9.0])
    assert resolve_transform("auto", values, "x") == "sqrt"
    assert resolve_transform("auto", -values, "x") == "none"
