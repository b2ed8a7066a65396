"""The command line never loses a trained model, and the forecast can be used: overwrite refusal,
--force, --resume, periodic saves, Ctrl-C, divergence, non-finite values, --horizon and `predict`.

Tiny settings throughout; every test runs `tinygrad_rnn.cli.main` in a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinygrad_rnn import optim
from tinygrad_rnn.cli import checkpoints, main
from tinygrad_rnn.cli.common import CLIError
from tinygrad_rnn.cli.forecast import read_series, split_sizes, to_model_units, to_series_units
from tinygrad_rnn.cli.predict import load_forecaster
from tinygrad_rnn.core.tensor import Tensor

TEXT = "the quick brown fox jumps over the lazy dog. " * 40
CHARS = ["chars", "--text", "fox.txt", "--hidden", "8", "--batch", "4", "--bptt", "8", "--sample-every", "1000"]
FORECAST = ["forecast", "--hidden", "4", "--window", "8", "--batch", "64"]  # 4 steps per epoch on the sunspots


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fox.txt").write_text(TEXT)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def saved_config(path: str) -> dict[str, Any]:
    with np.load(path) as saved:
        config: dict[str, Any] = json.loads(str(saved["cli.config"]))
    return config


def saved_arrays(path: str) -> dict[str, np.ndarray]:
    """The numeric entries: parameters and optimizer state."""
    with np.load(path) as saved:
        return {name: saved[name] for name in saved.files if saved[name].dtype.kind in "biufc"}


def record_saves(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The step of every checkpoint written, in order."""
    steps: list[int] = []
    real = checkpoints.save_checkpoint

    def spy(path: str, model: Any, config: Any, optimizer: Any = None) -> None:
        real(path, model, config, optimizer)
        steps.append(config["step"])

    monkeypatch.setattr(checkpoints, "save_checkpoint", spy)
    return steps


def on_optimizer_step(monkeypatch: pytest.MonkeyPatch, call: int, action: Any) -> None:
    """Run `action(optimizer)` right after the `call`-th Adam step."""
    real = optim.Adam.step
    calls = []

    def step(self: optim.Adam, closure: Any = None) -> None:
        real(self)
        calls.append(1)
        if len(calls) == call:
            action(self)

    monkeypatch.setattr(optim.Adam, "step", step)


# ---------------------------------------------------------------- no silent overwrite


def test_a_second_run_refuses_to_replace_the_first_runs_checkpoint(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, *CHARS, "--steps", "6")[0] == 0
    trained = Path("chars.npz").read_bytes()
    status, out, err = run(capsys, *CHARS, "--steps", "1")
    assert status == 2 and out == ""
    assert "--checkpoint chars.npz already exists" in err and "--resume" in err and "--force" in err
    assert Path("chars.npz").read_bytes() == trained
    assert sorted(os.listdir()) == ["chars.npz", "fox.txt"]


def test_force_replaces_the_checkpoint(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, *CHARS, "--steps", "6")[0] == 0
    assert run(capsys, *CHARS, "--steps", "1", "--force")[0] == 0
    assert saved_config("chars.npz")["step"] == 1


def test_resuming_into_another_existing_file_needs_force(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, *CHARS, "--steps", "2")[0] == 0
    assert run(capsys, *CHARS, "--steps", "2", "--checkpoint", "other.npz")[0] == 0
    status, _, err = run(capsys, *CHARS, "--steps", "2", "--resume", "chars.npz", "--checkpoint", "other.npz")
    assert status == 2 and "--checkpoint other.npz already exists" in err
    assert run(capsys, *CHARS, "--steps", "2", "--resume", "chars.npz", "--checkpoint", "other.npz", "--force")[0] == 0
    assert saved_config("other.npz")["step"] == 4


def test_help_states_the_overwrite_rule_and_what_steps_mean_with_resume(capsys: pytest.CaptureFixture[str]) -> None:
    _, chars_help, _ = run(capsys, "chars", "--help")
    _, forecast_help, _ = run(capsys, "forecast", "--help")
    for text in (chars_help, forecast_help):
        flat = " ".join(text.split())
        assert "A run never replaces a checkpoint it did not write" in flat
        assert "--save-every" in flat and "Ctrl-C finishes the current step, saves and exits" in flat
    assert "with --resume, steps beyond the checkpoint's" in " ".join(chars_help.split())
    assert "with --resume, epochs beyond the checkpoint's" in " ".join(forecast_help.split())


# ---------------------------------------------------------------- --resume for forecast


def test_forecast_resume_continues_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, *FORECAST, "--epochs", "2")[0] == 0
    first = saved_config("forecast.npz")
    before = saved_arrays("forecast.npz")
    assert (first["step"], first["epochs"]) == (8, 2)
    status, out, _ = run(capsys, *FORECAST, "--epochs", "1", "--resume")
    assert status == 0 and "resumed from forecast.npz at step 8" in out and "epoch   3/3" in out
    after_config, after = saved_config("forecast.npz"), saved_arrays("forecast.npz")
    assert (after_config["step"], after_config["epochs"]) == (12, 3)
    assert (after_config["mean"], after_config["std"]) == (first["mean"], first["std"])
    assert int(after["optimizer.state.0.step"]) == 12  # Adam's step count went on from 8
    assert not np.array_equal(before["rnn.weight_hh_l0"], after["rnn.weight_hh_l0"])


# ---------------------------------------------------------------- periodic saves and Ctrl-C


def test_save_every_writes_periodic_checkpoints(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = record_saves(monkeypatch)
    assert run(capsys, *CHARS, "--steps", "7", "--save-every", "3")[0] == 0
    assert steps == [3, 6, 7]
    steps.clear()
    assert run(capsys, *FORECAST, "--epochs", "2", "--save-every", "0", "--force")[0] == 0
    assert steps == [8]


@pytest.mark.parametrize("command", ["chars", "forecast"])
def test_ctrl_c_finishes_the_step_saves_and_exits_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    adam_step = optim.Adam.step
    on_optimizer_step(monkeypatch, 3, lambda _: os.kill(os.getpid(), signal.SIGINT))  # a real Ctrl-C mid-run
    argv = [*CHARS, "--steps", "50"] if command == "chars" else [*FORECAST, "--epochs", "5"]
    path = f"{command}.npz"
    status, out, err = run(capsys, *argv)
    assert status == 130
    assert err == f"tinygrad-rnn: interrupted after step 3; checkpoint saved to {path}; continue with --resume\n"
    assert "Ctrl-C: stopping after this step" in out
    assert saved_config(path)["step"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    monkeypatch.setattr(optim.Adam, "step", adam_step)
    status, out, _ = run(capsys, *argv[:-2], argv[-2], "1", "--resume")
    assert status == 0 and f"resumed from {path} at step 3" in out


def test_ctrl_c_after_the_last_step_saves_it_and_stops(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tinygrad_rnn.cli import chars

    real_sample = chars.sample_text

    def sample_then_ctrl_c(*args: Any) -> str:
        os.kill(os.getpid(), signal.SIGINT)  # while the last step's sample is drawn
        return real_sample(*args)

    monkeypatch.setattr(chars, "sample_text", sample_then_ctrl_c)
    status, out, err = run(capsys, *CHARS, "--steps", "4")
    assert status == 130 and "cross-entropy" not in out  # stopped: no evaluation after the interrupt
    assert err == "tinygrad-rnn: interrupted after the last step; chars.npz keeps the checkpoint of step 4\n"
    assert saved_config("chars.npz")["step"] == 4


def test_an_interrupt_mid_step_keeps_the_last_periodic_checkpoint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(_: object) -> None:
        raise KeyboardInterrupt

    on_optimizer_step(monkeypatch, 5, interrupt)
    status, _, err = run(capsys, *CHARS, "--steps", "50", "--save-every", "2")
    assert status == 130
    assert err == "tinygrad-rnn: interrupted in the middle of a step; chars.npz keeps the checkpoint of step 4\n"
    assert saved_config("chars.npz")["step"] == 4
    assert sorted(os.listdir()) == ["chars.npz", "fox.txt"]  # no temporary file left behind


# ---------------------------------------------------------------- divergence and non-finite values


def test_divergence_stops_and_keeps_the_last_good_checkpoint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = record_saves(monkeypatch)
    status, out, err = run(capsys, *FORECAST, "--lr", "1e6", "--save-every", "1")  # the 1.9e15 run
    assert status == 2 and err.count("\n") == 1
    match = re.fullmatch(
        r"tinygrad-rnn: error: training diverged: the loss is (\S+) at step (\d+), over 1000 times its start; "
        r"forecast.npz keeps the checkpoint of step (\d+); try a smaller --lr \(this run used 1e\+06\) "
        r"or a smaller --clip \(this run used 1\)\n",
        err,
    )
    assert match, err
    diverged_at, kept = int(match.group(2)), int(match.group(3))
    assert kept == diverged_at - 1 == steps[-1]
    assert float(match.group(1)) > 1000  # the first loss of standardised data is about 1
    assert "test mse" not in out  # no summary of a diverged model
    arrays = saved_arrays("forecast.npz")
    assert all(np.all(np.isfinite(a)) for a in arrays.values())


def test_non_finite_parameters_are_never_written(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def poison(optimizer: optim.Adam) -> None:
        optimizer.param_groups[0]["params"][0].data[...] = np.nan

    on_optimizer_step(monkeypatch, 3, poison)  # after step 3 the parameters hold NaN: its save must refuse
    status, _, err = run(capsys, *CHARS, "--steps", "10", "--save-every", "1")
    assert status == 2
    assert (
        "training diverged: the parameters hold NaN or Inf after step 3; chars.npz keeps the checkpoint of step 2"
        in err
    )
    assert saved_config("chars.npz")["step"] == 2
    assert all(np.all(np.isfinite(a)) for a in saved_arrays("chars.npz").values())


def test_divergence_is_measured_from_the_first_loss_or_from_1() -> None:
    from tinygrad_rnn.cli.models import Forecaster

    model = Forecaster("rnn", 2, 1, rng=0)
    optimizer = optim.Adam(model.parameters(), lr=0.1)

    def losses_until_stop(*losses: float) -> int:
        run = checkpoints.TrainingRun(
            "unused.npz", model, optimizer, lambda step: {}, save_every=0, saved_step=None, advice=""
        )
        for step, loss in enumerate(losses, start=1):
            try:
                run.step_done(step, loss)
            except CLIError as exc:
                assert "training diverged" in str(exc)
                return step
        return 0

    assert losses_until_stop(2.0, 1999.0, 2001.0) == 3  # 1000 times the first loss
    assert losses_until_stop(1e-6, 5e-3, 999.0) == 0  # a well-trained resumed run: noise is not divergence
    assert losses_until_stop(1e-6, 1001.0) == 2
    assert losses_until_stop(0.5, float("inf")) == 2
    assert not Path("unused.npz").exists()


def test_a_nan_loss_on_the_first_step_saves_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tinygrad_rnn.nn import functional

    real = functional.mse_loss
    monkeypatch.setattr(functional, "mse_loss", lambda *a, **k: real(*a, **k) * np.nan)
    status, _, err = run(capsys, *FORECAST)
    assert status == 2 and "the loss is nan at step 1; this run saved nothing to forecast.npz" in err
    assert not Path("forecast.npz").exists()


# ---------------------------------------------------------------- forecasting ahead


def test_horizon_table_scores_every_test_value_against_the_naive_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, *FORECAST, "--epochs", "3", "--horizon", "4")
    assert status == 0
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("test mse by horizon"))
    assert lines[head + 1].split() == ["h", "model", "naive", "AR(8)", "AR(8)-sqrt"]
    table = [[float(x) for x in line.split()] for line in lines[head + 2 : head + 6]]
    assert [row[0] for row in table] == [1, 2, 3, 4]
    series = read_series(None, None)[0]
    n_train = split_sizes(len(series), 0.2)[0]
    truth = series[n_train:]
    for h, row in enumerate(table, start=1):
        last_seen = series[n_train - h : len(series) - h]  # the naive forecast h steps ahead
        assert row[2] == pytest.approx(np.mean((truth - last_seen) ** 2), rel=1e-3)
    assert table[0][1] == pytest.approx(float(re.search(r"^test mse (\S+) \(", out, re.M).group(1)), rel=1e-3)  # type: ignore[union-attr]
    one_step = re.search(r"^test mse .*linear AR\(8\) (\S+), linear AR\(8\) on sqrt (\S+)\)$", out, re.M)
    assert one_step, out
    assert table[0][3:] == pytest.approx([float(one_step.group(1)), float(one_step.group(2))], rel=1e-3)


def test_predict_feeds_each_forecast_back(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    values = 50 + 40 * np.sin(np.arange(80) / 3)
    Path("wave.csv").write_text("t,level\n" + "".join(f"{i},{v:.4f}\n" for i, v in enumerate(values)))
    argv = ["--csv", "wave.csv", "--column", "level", "--window", "6", "--hidden", "4", "--epochs", "2"]
    assert run(capsys, "forecast", *argv)[0] == 0
    status, out, _ = run(capsys, "predict", "--csv", "wave.csv", "--horizon", "3")  # the trained column by default
    assert status == 0
    rows = out.splitlines()
    assert rows[0].startswith("the next 3 value(s) of level after the 80 values in wave.csv")
    assert rows[1] == "step,forecast"
    forecasts = [float(row.split(",")[1]) for row in rows[2:]]
    assert [row.split(",")[0] for row in rows[2:]] == ["1", "2", "3"]

    model, config = load_forecaster("forecast.npz")  # the Python route: one forward pass per step, by hand
    recent = list(to_model_units(values[-6:], config))
    for expected in forecasts:
        output, _ = model(Tensor(np.array(recent[-6:])[:, None, None]))
        step_ahead = float(output.data[-1, 0, 0])
        assert to_series_units(np.array(step_ahead), config) == pytest.approx(expected, rel=1e-5)
        recent.append(step_ahead)


def test_generate_at_a_tiny_temperature_picks_the_likeliest_character(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, *CHARS, "--steps", "2")[0] == 0
    status, out, err = run(capsys, "generate", "--temperature", "1e-300", "--length", "20", "--prime", "the")
    assert status == 0 and err == "" and len(out) == len("the") + 20 + 1


# ---------------------------------------------------------------- no input gives a traceback

BASE = {  # tiny runs, so that a value the command accepts costs little
    "forecast": [*FORECAST, "--epochs", "1", "--force"],
    "predict": ["--checkpoint", "trained.npz"],
    "chars": [*CHARS, "--steps", "1", "--force"],
    "generate": ["--checkpoint", "chars-trained.npz", "--length", "3"],
    "gradcheck": ["--only", "tanh"],
    "gradflow": ["--T", "3", "--batch", "1", "--hidden", "2"],
}


def _valued_options() -> list[tuple[str, str]]:
    """(command, option) for every option of every command that takes a value, read from the parser."""
    import argparse

    from tinygrad_rnn.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    return [
        (name, action.option_strings[-1])
        for name, parser in commands.items()
        for action in parser._actions
        if action.option_strings and action.nargs != 0 and action.dest != "help"
    ]


def test_every_command_is_covered_by_the_sweep() -> None:
    assert {command for command, _ in _valued_options()} == set(BASE)


@pytest.mark.parametrize("value", ["-1", "nan", "", "/"])
def test_no_value_of_any_option_gives_a_traceback(capsys: pytest.CaptureFixture[str], value: str) -> None:
    assert main([*FORECAST, "--epochs", "1", "--checkpoint", "trained.npz"]) == 0
    assert main([*CHARS, "--steps", "1", "--checkpoint", "chars-trained.npz"]) == 0
    capsys.readouterr()
    for command, option in _valued_options():
        status = main([command, *BASE[command], option, value])  # an exception here fails the test
        _, err = capsys.readouterr()
        assert status in (0, 1, 2), (command, option, value, status)
        assert status != 2 or (err.count("\n") == 1 and err.startswith("tinygrad-rnn") and "error: " in err), err
