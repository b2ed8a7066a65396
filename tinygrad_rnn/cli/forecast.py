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
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..core.engine import no_grad
from ..core.tensor import Tensor
from ..nn.recurrent import tbptt_chunks
from . import common
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
            "train and test mean squared error beside the naive forecast (repeat the last value), and saves a "
            "checkpoint."
        ),
    )
    data = parser.add_argument_group("data")
    data.add_argument("--csv", metavar="FILE", help="a CSV file with a header row (default: the sunspot numbers)")
    data.add_argument("--column", metavar="NAME", help="the column of --csv to forecast (needed if it has several)")
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
        "--epochs", type=common.positive_int, default=15, help="passes over the windows (default: 15)"
    )
    training.add_argument(
        "--schedule",
        choices=common.SCHEDULES,
        default="cosine",
        help="learning rate over the run: cosine decays --lr to 0 by this run's last step; constant keeps it "
        "(default: cosine)",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--checkpoint", metavar="FILE", default="forecast.npz", help="where to save (default: forecast.npz)"
    )
    out.add_argument("--plot", metavar="FILE", help="save a PNG of forecast against truth and the loss curve")
    parser.set_defaults(run=run)


# ---------------------------------------------------------------- data


def read_series(path: str | None, column: str | None) -> tuple[np.ndarray, str, str]:
    """(values, column name, a label for messages) from the user's CSV or the embedded default."""
    if path is None:
        text = resources.files("tinygrad_rnn").joinpath("io/data_files/sunspots.csv").read_text(encoding="utf-8")
        label = "the embedded sunspot series"
        column = column or DEFAULT_COLUMN
    else:
        text = read_text_file(path)
        label = path
    return (*parse_csv(text, column, label), label)


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


def parse_csv(text: str, column: str | None, label: str) -> tuple[np.ndarray, str]:
    rows = [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text)), start=1) if any(c.strip() for c in row)]
    if not rows:
        raise CLIError(f"{label} is empty")
    header = [cell.strip() for cell in rows[0][1]]
    if all(_is_number(cell) for cell in header):  # no header row: columns are called 1, 2, ...
        header = [str(i + 1) for i in range(len(header))]
    else:
        rows = rows[1:]
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
            what = "an empty value" if not cell else f"the non-numeric value {cell!r}"
            raise CLIError(f"column {column!r} of {label} has {what} on line {line}")
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
    if n_train < args.window + 1:
        need = args.window + 1
        while split_sizes(need, args.test_fraction)[0] < args.window + 1:
            need += 1
        raise CLIError(
            f"{label} has {len(series)} values, too short for --window {args.window}: with --test-fraction "
            f"{args.test_fraction} it needs at least {need}"
        )
    common.check_checkpoint_path(args.checkpoint)
    common.check_plot_path(args.plot)
    rng = np.random.default_rng(args.seed)  # initialises the parameters, then shuffles the windows
    bptt = args.bptt or args.window

    transform = resolve_transform(args.transform, series, label)
    modelled = apply_transform(series, transform)
    mean, std = float(modelled[:n_train].mean()), float(modelled[:n_train].std())
    std = std if std > 0 else 1.0
    z = ((modelled - mean) / std).astype(args.dtype)

    from ..nn.functional import mse_loss
    from .models import Forecaster

    model = Forecaster(args.cell, args.hidden, args.layers, dtype=args.dtype, rng=rng)
    params = model.parameters()
    optimizer = common.make_optimizer(args.optimizer, params, args.lr)

    starts = np.arange(n_train - args.window)  # every window whose target stays inside the training part
    steps_per_epoch = -(-len(starts) // args.batch)
    common.say(
        f"forecast {column} of {label}: {n_train} values to train on, {n_test} to test; "
        f"{args.cell.upper()} hidden {args.hidden} x {args.layers} layer(s), window {args.window}, bptt {bptt}, "
        f"{'square root of the values' if transform == 'sqrt' else 'values as they are'}"
    )
    total_steps = args.epochs * steps_per_epoch
    losses: list[float] = []
    report_every = max(1, args.epochs // 5)
    bar = common.progress_bar(args.epochs * steps_per_epoch, "forecast")
    started = time.perf_counter()
    try:
        for epoch in range(1, args.epochs + 1):
            epoch_losses = []
            for batch in np.array_split(rng.permutation(starts), steps_per_epoch):
                if args.schedule == "cosine":
                    common.set_lr(optimizer, common.cosine_lr(args.lr, len(losses), total_steps))
                seq = windows(z, batch, args.window + 1)[:, :, None]
                loss = train_step(model, optimizer, seq, bptt, args.clip, mse_loss)
                common.check_finite(loss, len(losses) + 1)
                losses.append(loss)
                epoch_losses.append(loss)
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                bar.update(1)
            if epoch % report_every == 0 or epoch == args.epochs:
                common.say(
                    f"epoch {epoch:3d}/{args.epochs}  train loss {np.mean(epoch_losses):.4f} (standardised units)"
                )
    finally:
        bar.close()
    seconds = time.perf_counter() - started

    # predicted[i] is the forecast of series[window + i], in the series' own units
    predicted = invert_transform(predict_one_step(model, z, args.window) * std + mean, transform)
    truth = series[args.window :]
    split = n_train - args.window
    baselines = baseline_forecasts(series, n_train, args.window, transform)

    config = {
        "kind": "forecast",
        "cell": args.cell,
        "hidden": args.hidden,
        "layers": args.layers,
        "dtype": args.dtype,
        "window": args.window,
        "transform": transform,
        "mean": mean,
        "std": std,
        "column": column,
        "source": label,
        "epochs": args.epochs,
        "seed": args.seed,
    }
    common.save_checkpoint(args.checkpoint, model, config, optimizer)
    common.say(f"trained {len(losses)} steps in {seconds:.1f} s; checkpoint saved to {args.checkpoint}")
    if args.plot:
        plot_forecast(args.plot, series, predicted, args.window, n_train, losses, f"{column} ({args.cell.upper()})")
        common.say(f"plot saved to {args.plot}")
    for part, where in (("train", slice(None, split)), ("test", slice(split, None))):
        others = ", ".join(f"{name} {_mse(guess[where], truth[where]):.4g}" for name, guess in baselines.items())
        print(f"{part} mse {_mse(predicted[where], truth[where]):.4g} ({others})")
    return 0


def resolve_transform(name: str, series: np.ndarray, label: str) -> str:
    """The transform `--transform name` means for this series: auto is sqrt unless a value is negative."""
    negative = bool(np.any(series < 0))
    if name == "auto":
        return "none" if negative else "sqrt"
    if name == "sqrt" and negative:
        raise CLIError(f"--transform sqrt needs values >= 0, but {label} has {series.min():.4g}; use --transform none")
    return name


def apply_transform(values: np.ndarray, transform: str) -> np.ndarray:
    return np.sqrt(values) if transform == "sqrt" else np.asarray(values, dtype=np.float64)


def invert_transform(values: np.ndarray, transform: str) -> np.ndarray:
    """Back to the series' units; a square root below 0 cannot be, so it counts as 0."""
    return np.maximum(values, 0.0) ** 2 if transform == "sqrt" else values


def baseline_forecasts(series: np.ndarray, n_train: int, window: int, transform: str) -> dict[str, np.ndarray]:
    """One-step forecasts of series[window:] by the classical models, each fitted on the training part only:
    the naive "next = last", a linear AR(window) by least squares, and the same AR on the network's transform.
    The ARs are left out when the training part is too short to determine their window + 1 coefficients."""
    forecasts = {"naive baseline": series[window - 1 : -1]}
    if n_train >= 2 * window + 1:
        forecasts[f"linear AR({window})"] = LinearAR.fit(series[:n_train], window).one_step(series)
        if transform != "none":
            modelled = apply_transform(series, transform)
            ar = LinearAR.fit(modelled[:n_train], window)
            forecasts[f"linear AR({window}) on the {transform}"] = invert_transform(ar.one_step(modelled), transform)
    return forecasts


def train_step(model: Any, optimizer: Any, seq: np.ndarray, bptt: int, clip: float, loss_fn: Any) -> float:
    """One optimizer step on a batch of windows (T + 1, B, 1), backpropagating through at most `bptt` steps."""
    inputs, targets = seq[:-1], seq[1:]
    optimizer.zero_grad()
    total = 0.0
    for chunk in tbptt_chunks(model, inputs, bptt):
        # Each chunk's loss is weighted by its share of the window, so the gradients that
        # backward() adds up over the chunks are those of the whole window's mean loss.
        share = (chunk.stop - chunk.start) / len(inputs)
        loss = loss_fn(chunk.output, targets[chunk.start : chunk.stop]) * share
        loss.backward()
        total += loss.item()
    common.clip_gradients(model.parameters(), clip)
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
