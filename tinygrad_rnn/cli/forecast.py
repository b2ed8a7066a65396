"""cli/forecast.py — `tinygrad-rnn forecast`: train an RNN, LSTM or GRU to predict the next value of a series.

The default series is the yearly sunspot numbers 1700-2008 shipped in
tinygrad_rnn/io/data_files (see the README there). The last `--test-fraction` of the
series is held out. The model reads `--window` past values and predicts the next
one; it is trained on every window of the training part, with the loss at every
step of the window (each step predicts its successor). Errors are reported in the
series' own units beside the naive forecast "next value = last value".
"""

from __future__ import annotations

import argparse
import csv
import io
import time
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..core.engine import no_grad
from ..core.tensor import Tensor
from ..nn.recurrent import tbptt_chunks
from . import checkpoints, common
from .baselines import LinearAR
from .common import CLIError

DEFAULT_COLUMN = "SUNACTIVITY"
TRANSFORMS = ("auto", "sqrt", "none")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "forecast",
        help="train a recurrent network to predict the next value of a time series",
        description=(
            "Train an RNN, LSTM or GRU to predict the next value of a series from the previous --window values. "
            "Without --csv it uses the yearly sunspot numbers 1700-2008 that ship with the package. Reports "
            "train and test errors in the series' units beside the naive forecast (repeat the last value), "
            "--horizon steps ahead, and saves a checkpoint that `tinygrad-rnn predict` forecasts from."
        ),
    )
    data = add_data_options(parser)
    data.add_argument(
        "--window", type=common.positive_int, default=12, help="past values the model reads (default: 12)"
    )
    data.add_argument(
        "--test-fraction", type=common.fraction, default=0.2, help="share held out at the end (default: 0.2)"
    )
    data.add_argument(
        "--transform",
        choices=TRANSFORMS,
        default="auto",
        help=(
            "model the square root of the series (sqrt), or the series itself (none); auto takes sqrt when no "
            "value is negative, since counts such as sunspots vary more where they are large (default: auto)"
        ),
    )
    common.add_model_options(parser, cell="gru", hidden=32, layers=1)
    training = common.add_training_options(parser, lr=0.01, batch=16, bptt=None)
    training.add_argument(
        "--epochs",
        type=common.positive_int,
        default=15,
        help="passes over the windows in this run; with --resume, epochs beyond the checkpoint's (default: 15)",
    )
    common.add_schedule_option(training)
    common.add_checkpoint_options(parser, default="forecast.npz", save_every=100, what="--epochs")
    out = parser.add_argument_group("output")
    add_horizon_option(out, "also report the test error 2, 3, ..., N steps ahead, feeding predictions back")
    out.add_argument("--plot", metavar="FILE", help="save a PNG of forecast against truth and the loss curve")
    parser.set_defaults(run=run)


def add_data_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    data = parser.add_argument_group("data")
    data.add_argument(
        "--csv", metavar="FILE", help="a CSV file, with or without a header row (default: the sunspot numbers)"
    )
    data.add_argument("--column", metavar="NAME", help="the column of --csv to forecast (needed if it has several)")
    return data


def add_horizon_option(group: argparse._ArgumentGroup, what: str) -> None:
    group.add_argument("--horizon", type=common.positive_int, default=1, metavar="N", help=f"{what} (default: 1)")


# ---------------------------------------------------------------- data


def to_model_units(values: np.ndarray, scale: Mapping[str, Any]) -> np.ndarray:
    """What the network reads and predicts: (f(value) - mean) / std, where f is the transform (the square
    root, or nothing) and mean and std are those of f over the training part, which a checkpoint stores.
    Every conversion goes through this function and `to_series_units`."""
    return (apply_transform(values, scale.get("transform", "none")) - scale["mean"]) / scale["std"]


def to_series_units(z: np.ndarray, scale: Mapping[str, Any]) -> np.ndarray:
    """The inverse of `to_model_units`: back to the series' own units."""
    return invert_transform(
        np.asarray(z, dtype=np.float64) * scale["std"] + scale["mean"], scale.get("transform", "none")
    )


def resolve_transform(name: str, series: np.ndarray, label: str) -> str:
    """The transform `--transform name` means for this series: auto is sqrt unless a value is negative."""
    negative = bool(np.any(series < 0))
    if name == "auto":
        return "none" if negative else "sqrt"
    if name == "sqrt" and negative:
        raise CLIError(f"--transform sqrt needs values >= 0, but {label} has {series.min():.4g}; use --transform none")
    return name


def apply_transform(values: np.ndarray, transform: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if transform != "sqrt":
        return values
    if np.any(values < 0):
        raise CLIError(f"the model reads square roots, but the values include {values.min():.4g}, below 0")
    return np.sqrt(values)


def invert_transform(values: np.ndarray, transform: str) -> np.ndarray:
    """Back to the series' units; a square root below 0 cannot be, so it counts as 0."""
    return np.maximum(values, 0.0) ** 2 if transform == "sqrt" else values


def read_series(path: str | None, column: str | None, preferred: str | None = None) -> tuple[np.ndarray, str, str]:
    """(values, column name, a label for messages) from the user's CSV or the embedded default.
    Without --column, a CSV of several columns needs one named `preferred` (the column a model was trained on)."""
    if path is None:
        text = resources.files("tinygrad_rnn").joinpath("io/data_files/sunspots.csv").read_text(encoding="utf-8")
        label = "the embedded sunspot series"
        column = column or DEFAULT_COLUMN
    else:
        text = read_text_file(path)
        label = path
    return (*parse_csv(text, column, label, preferred), label)


def read_text_file(path: str) -> str:
    file = Path(path)
    if not file.exists():
        raise CLIError(f"{path}: no such file")
    if file.is_dir():
        raise CLIError(f"{path} is a folder, not a file")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CLIError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not text.strip():
        raise CLIError(f"{path} is empty")
    return text


def parse_csv(text: str, column: str | None, label: str, preferred: str | None = None) -> tuple[np.ndarray, str]:
    reader = csv.reader(io.StringIO(text))
    try:  # line_num, not a row count: a quoted cell may span lines
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise CLIError(f"{label} is not valid CSV: line {reader.line_num}: {exc}") from None
    if not rows:
        raise CLIError(f"{label} is empty")
    header = [cell.strip() for cell in rows[0][1]]
    if all(_is_number(cell) for cell in header):  # no header row: columns are called 1, 2, ...
        header = [str(i + 1) for i in range(len(header))]
    else:
        rows = rows[1:]
    if column is None and preferred in header:
        column = preferred
    if column is None:
        if len(header) != 1:
            raise CLIError(f"{label} has columns {', '.join(header)}; choose one with --column")
        column = header[0]
    if column not in header:
        raise CLIError(f"{label} has no column {column!r}; its columns are: {', '.join(header)}")
    j = header.index(column)
    values = []
    for line, row in rows:
        cell = row[j].strip() if j < len(row) else ""
        if not _is_number(cell):
            what = "is empty" if not cell else f"holds {cell!r}, which is not a finite number"
            raise CLIError(f"{label}, line {line}: column {column!r} {what}")
        values.append(float(cell))
    if not values:
        raise CLIError(f"{label} has a header row but no values")
    return np.array(values), column


def _is_number(cell: str) -> bool:
    try:
        return bool(np.isfinite(float(cell)))
    except ValueError:
        return False


def split_sizes(n: int, test_fraction: float) -> tuple[int, int]:
    """(train length, test length): the test part has at least one value."""
    n_test = max(1, round(n * test_fraction))
    return n - n_test, n_test


def windows(z: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """(length, len(starts)) array whose column i is z[starts[i] : starts[i] + length]: sequence-first."""
    return np.stack([z[s : s + length] for s in starts], axis=1)


# ---------------------------------------------------------------- the command


def run(args: argparse.Namespace) -> int:
    series, column, label = read_series(args.csv, args.column)
    n_train, n_test = split_sizes(len(series), args.test_fraction)
    check_length(label, len(series), args.window, args.test_fraction, args.horizon)
    resume_path = checkpoints.resume_path(args)
    checkpoints.claim_checkpoint(args.checkpoint, resume_path, args.force)
    common.check_plot_path(args.plot)
    rng = np.random.default_rng(args.seed)  # initialises the parameters, then shuffles the windows
    bptt = args.bptt or args.window
    settings = {**common.model_settings(args), "window": args.window}

    from ..nn.functional import mse_loss
    from .models import Forecaster

    model = Forecaster(args.cell, args.hidden, args.layers, dtype=args.dtype, rng=rng)
    optimizer = common.make_optimizer(args.optimizer, model.parameters(), args.lr)
    start_step, start_epoch = 0, 0
    if resume_path is not None:
        saved, params, optimizer_state = checkpoints.load_checkpoint(resume_path, "forecast")
        checkpoints.compare_settings(resume_path, saved, settings)
        # what the model was trained on; checkpoints from before --transform modelled the values as they are
        scale = {"mean": float(saved["mean"]), "std": float(saved["std"]), "transform": saved.get("transform", "none")}
        start_step, start_epoch = int(saved.get("step", 0)), int(saved.get("epochs", 0))
        checkpoints.restore_training(resume_path, model, optimizer, params, optimizer_state, args.lr, start_step)
    else:
        transform = resolve_transform(args.transform, series, label)
        modelled = apply_transform(series[:n_train], transform)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, in words
            mean, std = float(modelled.mean()), float(modelled.std())
        if not np.isfinite([mean, std]).all():
            raise CLIError(f"the values of {column} in {label} are too large to standardise (their std overflows)")
        scale = {"mean": mean, "std": std if std > 0 else 1.0, "transform": transform}
    z = to_model_units(series, scale).astype(args.dtype)

    starts = np.arange(n_train - args.window)  # every window whose target stays inside the training part
    steps_per_epoch = -(-len(starts) // args.batch)
    common.say(
        f"forecast {column} of {label}: {n_train} values to train on, {n_test} to test; "
        f"{args.cell.upper()} hidden {args.hidden} x {args.layers} layer(s), window {args.window}, bptt {bptt}"
    )
    value, units = ("sqrt(value)", f"sqrt({column})") if scale["transform"] == "sqrt" else ("value", column)
    common.say(
        f"train loss: mse of the standardised series ({value} - {scale['mean']:.4g}) / {scale['std']:.4g}, "
        f"over every position of every window; rmse: its square root in the units of {units}"
    )
    config = {**settings, **scale, "kind": "forecast", "column": column, "source": label}
    run = checkpoints.TrainingRun(
        args.checkpoint,
        model,
        optimizer,
        lambda step: {**config, "step": step, "epochs": start_epoch + (step - start_step) // steps_per_epoch},
        save_every=args.save_every,
        saved_step=start_step if checkpoints.same_file(resume_path, args.checkpoint) else None,
        advice=common.divergence_advice(args.lr, args.clip),
    )
    losses: list[float] = []
    report_every = max(1, args.epochs // 5)
    end = start_step + args.epochs * steps_per_epoch
    step = forward_backward(model, bptt, mse_loss, args.compile)
    started = time.perf_counter()
    with run, common.progress_bar(end, "forecast", initial=start_step) as bar:
        for epoch in range(start_epoch + 1, start_epoch + args.epochs + 1):
            epoch_losses = []
            for batch in np.array_split(rng.permutation(starts), steps_per_epoch):
                if args.schedule == "cosine":
                    common.set_lr(optimizer, common.cosine_lr(args.lr, len(losses), end - start_step))
                seq = windows(z, batch, args.window + 1)[:, :, None]
                loss = train_step(optimizer, step, model.parameters(), seq, args.clip)
                run.step_done(start_step + len(losses) + 1, loss)
                losses.append(loss)
                epoch_losses.append(loss)
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                bar.update(1)
            if (epoch - start_epoch) % report_every == 0 or epoch == start_epoch + args.epochs:
                epoch_loss = float(np.mean(epoch_losses))
                common.say(
                    f"epoch {epoch:3d}/{start_epoch + args.epochs}  train loss {epoch_loss:.4f} "
                    f"(rmse {np.sqrt(epoch_loss) * scale['std']:.4g})"
                )
        run.save(end)
    seconds = time.perf_counter() - started
    common.say(f"trained {len(losses)} steps in {seconds:.1f} s")
    common.say_saved("checkpoint", args.checkpoint, f"step {end}")

    # predicted[i] is the forecast of series[window + i], in the series' own units
    predicted = to_series_units(predict_one_step(model, z, args.window), scale)
    if args.plot:
        plot_forecast(args.plot, series, predicted, args.window, n_train, losses, f"{column} ({args.cell.upper()})")
        common.say_saved("plot", args.plot)
    if args.horizon > 1:
        report_horizons(model, series, scale, args.window, n_train, args.horizon)
    truth = series[args.window :]
    origins = np.arange(args.window, len(series))
    one_step = baseline_forecasts(series, n_train, args.window, origins, 1, scale["transform"])
    split = n_train - args.window
    common.say(
        f"errors in the units of {column}: mse in squared units, rmse in the units themselves; "
        "every baseline is fitted on the training part only"
    )
    for part, where in (("train", slice(None, split)), ("test", slice(split, None))):
        model_mse = _mse(predicted[where], truth[where])
        others = {_baseline_label(name): _mse(guess[0, where], truth[where]) for name, guess in one_step.items()}
        print(f"{part} mse {model_mse:.4g} (" + ", ".join(f"{k} {v:.4g}" for k, v in others.items()) + ")")
        rmse = ", ".join(f"{k} {np.sqrt(v):.4g}" for k, v in others.items())
        print(f"{part} rmse {np.sqrt(model_mse):.4g} ({rmse})")
    return 0


def _baseline_label(name: str) -> str:
    """The summary lines' name for a column of the horizon table: AR(12)-sqrt is "linear AR(12) on sqrt"."""
    if name == "naive":
        return "naive baseline"
    order, _, transform = name.partition("-")
    return f"linear {order}" + (f" on {transform}" if transform else "")


def check_length(label: str, n: int, window: int, test_fraction: float, horizon: int) -> None:
    """Training needs one window and its target in the training part; --horizon N needs N - 1 more."""
    need_train = window + max(1, horizon - 1)
    if split_sizes(n, test_fraction)[0] >= need_train:
        return
    need = need_train
    while split_sizes(need, test_fraction)[0] < need_train:
        need += 1
    what = f"--window {window}" + (f" and --horizon {horizon}" if horizon > 1 else "")
    raise CLIError(
        f"{label} has {n} values, too short for {what}: with --test-fraction {test_fraction} it needs at least {need}"
    )


def report_horizons(
    model: Any, series: np.ndarray, scale: Mapping[str, Any], window: int, n_train: int, horizon: int
) -> None:
    """Test mse at each horizon h = 1..N: every test value forecast from the values up to h steps before it."""
    n_test = len(series) - n_train
    origins = np.arange(n_train - horizon + 1, len(series))  # forecasts start after series[origin - 1]
    recent = windows(to_model_units(series, scale), origins - window, window)
    ahead = {
        "model": to_series_units(model.forecast(recent, horizon), scale),
        **baseline_forecasts(series, n_train, window, origins, horizon, scale.get("transform", "none")),
    }
    truth = series[n_train:]
    common.say(f"test mse by horizon h: each of the {n_test} test values forecast h steps ahead, predictions fed back")
    width = {name: max(14, len(name) + 2) for name in ahead}
    common.say("  h" + "".join(f"{name:>{width[name]}}" for name in ahead))
    for h in range(1, horizon + 1):
        take = slice(horizon - h, horizon - h + n_test)  # the origins h - 1 steps before each test value
        common.say(f"{h:3d}" + "".join(f"{_mse(f[h - 1, take], truth):{width[n]}.4g}" for n, f in ahead.items()))


def baseline_forecasts(
    series: np.ndarray, n_train: int, window: int, origins: np.ndarray, horizon: int, transform: str = "none"
) -> dict[str, np.ndarray]:
    """Each baseline's forecasts (horizon, len(origins)) from the values before each origin, fed back
    like the network's: the naive "next = last"; a linear AR(window) fitted by least squares on
    series[:n_train]; and, when the network models a transform of the series, the same AR on that
    transform. The ARs are left out when the training part is too short to determine their window + 1
    coefficients."""
    forecasts = {"naive": np.broadcast_to(series[origins - 1], (horizon, len(origins)))}  # the last value, repeated
    if n_train < 2 * window + 1:
        return forecasts
    recent = windows(series, origins - window, window).T  # (origins, window)
    forecasts[f"AR({window})"] = LinearAR.fit(series[:n_train], window).forecast(recent, horizon)
    if transform != "none":
        modelled = apply_transform(series, transform)
        ar = LinearAR.fit(modelled[:n_train], window)
        recent = windows(modelled, origins - window, window).T
        forecasts[f"AR({window})-{transform}"] = invert_transform(ar.forecast(recent, horizon), transform)
    return forecasts


def forward_backward(model: Any, bptt: int, loss_fn: Any, compile: bool) -> Any:
    """The part of a training step that tg.compile replays: forward and backward over the chunks of a batch
    of windows, returning each chunk's loss (detached; read with .item() outside, where it may branch)."""

    def chunks_forward_backward(inputs: Tensor, targets: Tensor) -> tuple[Tensor, ...]:
        losses = []
        for chunk in tbptt_chunks(model, inputs, bptt):
            # Each chunk's loss is weighted by its share of the window, so the gradients that
            # backward() adds up over the chunks are those of the whole window's mean loss.
            share = (chunk.stop - chunk.start) / len(inputs)
            loss = loss_fn(chunk.output, targets[chunk.start : chunk.stop]) * share
            loss.backward()
            losses.append(loss.detach())
        return tuple(losses)

    return common.compiled(chunks_forward_backward, compile)


def train_step(optimizer: Any, step: Any, params: list[Any], seq: np.ndarray, clip: float) -> float:
    """One optimizer step on a batch of windows (T + 1, B, 1); `step` is `forward_backward(...)`."""
    optimizer.zero_grad()
    total = 0.0
    for loss in step(Tensor(seq[:-1]), Tensor(seq[1:])):
        total += loss.item()
    common.clip_gradients(params, clip)
    optimizer.step()
    return total


def predict_one_step(model: Any, z: np.ndarray, window: int) -> np.ndarray:
    """The forecast of z[t] from z[t - window : t], for every t >= window, in one batched forward pass."""
    starts = np.arange(len(z) - window)
    with no_grad():
        prediction, _ = model(Tensor(windows(z, starts, window)[:, :, None]))
    return np.asarray(prediction.data[-1, :, 0], dtype=np.float64)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((np.asarray(a, dtype=np.float64) - b) ** 2))


def plot_forecast(
    path: str, series: np.ndarray, predicted: np.ndarray, window: int, n_train: int, losses: list[float], title: str
) -> None:
    plt = common.pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), gridspec_kw={"height_ratios": [2, 1]})
    t = np.arange(len(series))
    top.plot(t, series, color="black", linewidth=1.2, label="truth")
    split = n_train - window
    top.plot(t[window:n_train], predicted[:split], color="tab:blue", linewidth=1, label="one-step forecast (train)")
    top.plot(t[n_train:], predicted[split:], color="tab:red", linewidth=1.5, label="one-step forecast (test)")
    top.axvspan(n_train - 0.5, len(series) - 0.5, color="tab:red", alpha=0.08)
    top.set_title(f"{title}: forecast against truth")
    top.set_xlabel("time step")
    top.legend(loc="upper left", fontsize=8)
    bottom.plot(np.arange(1, len(losses) + 1), losses, color="tab:gray", linewidth=0.8)
    bottom.set_yscale("log")
    bottom.set_xlabel("training step")
    bottom.set_ylabel("train loss (mse, standardised)")
    fig.tight_layout()
    common.save_figure(fig, path)
    plt.close(fig)
