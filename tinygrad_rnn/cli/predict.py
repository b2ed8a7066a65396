"""cli/predict.py — `tinygrad-rnn predict`: forecast the next values of a series from a `forecast` checkpoint.

It reads the last `window` values of the CSV the user gives (or of the embedded
sunspot series), standardises them as the checkpoint says (`to_model_units`), and
feeds each prediction back as the newest value for `--horizon` steps
(`Forecaster.forecast`). `load_forecaster` is the same load in Python.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import checkpoints
from .common import CELLS, DTYPES, CLIError, say
from .forecast import add_data_options, add_horizon_option, read_series, to_model_units, to_series_units
from .models import Forecaster


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="forecast the next values of a series with a model saved by `tinygrad-rnn forecast`",
        description=(
            "Load a checkpoint written by `tinygrad-rnn forecast` and forecast the values that follow the end of "
            "a series: the last --window values of the --csv column (default: the embedded sunspot numbers). "
            "Each forecast is fed back as the newest value to forecast the next one."
        ),
    )
    parser.add_argument(
        "--checkpoint", metavar="FILE", default="forecast.npz", help="written by `forecast` (default: forecast.npz)"
    )
    data = add_data_options(parser)
    add_horizon_option(data, "how many values to forecast")
    parser.set_defaults(run=run)


def load_forecaster(path: str) -> tuple[Forecaster, dict[str, Any]]:
    """The model saved by `tinygrad-rnn forecast` in `path`, and its settings (window, mean, std, ...)."""
    config, params, _ = checkpoints.load_checkpoint(path, "forecast")
    try:
        cell, dtype = str(config["cell"]), str(config["dtype"])
        hidden, layers, window = int(config["hidden"]), int(config["layers"]), int(config["window"])
        mean, std = float(config["mean"]), float(config["std"])
        if cell not in CELLS or dtype not in DTYPES or min(hidden, layers, window) < 1 or not std > 0:
            raise ValueError
    except (KeyError, ValueError, TypeError):
        raise CLIError(f"{path}: its settings are incomplete; retrain with `tinygrad-rnn forecast`") from None
    model = Forecaster(cell, hidden, layers, dtype=dtype)
    checkpoints.load_model_state(path, model, params)
    return model, {**config, "window": window, "mean": mean, "std": std}


def run(args: argparse.Namespace) -> int:
    model, config = load_forecaster(args.checkpoint)
    series, column, label = read_series(args.csv, args.column, preferred=str(config.get("column")))
    window = config["window"]
    if len(series) < window:
        raise CLIError(
            f"{label} has {len(series)} values in column {column!r}; the model in {args.checkpoint} "
            f"reads the last {window}"
        )
    recent = to_model_units(series[-window:, None], config)  # (window, 1): one sequence
    ahead = to_series_units(model.forecast(recent, args.horizon)[:, 0], config)
    say(
        f"the next {args.horizon} value(s) of {column} after the {len(series)} values in {label}, "
        f"by the {str(config['cell']).upper()} in {args.checkpoint} reading the last {window}:"
    )
    print("step,forecast")
    for step, value in enumerate(ahead, start=1):
        print(f"{step},{value:.6g}")
    return 0
