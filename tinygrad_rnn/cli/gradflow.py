"""cli/gradflow.py — `tinygrad-rnn gradflow`: watch gradients vanish and explode through time.

Runs `experiments.run_experiment` (a tanh RNN with the spectral radius
of W_hh below and above 1, each with and without clipping, an LSTM and a GRU, at
default and at open-gate initialisation, on the adding problem) and prints the
table of ||dL/dh_t|| at t = T, T/2, 1 with the fitted rate per step. `--plot`
draws the whole profiles on a log scale; `--health` adds `check_gradients`'
verdict per configuration; `--sweep` trains each cell on delayed copy for
growing lags and reports the longest lag it learns.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..inspect.health import check_gradients
from . import common
from .common import CLIError
from .experiments import LagResult, Row, default_configs, format_table, lag_sweep, run_experiment


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gradflow",
        help="measure vanishing and exploding gradients through time, and the remedies",
        description=(
            "Measure ||dL/dh_t|| at every step t of the adding problem for a tanh RNN whose W_hh has spectral radius "
            "below 1 (vanishing) and above 1 (exploding), each with and without gradient-norm clipping, and for an "
            "LSTM and a GRU (default initialisation, and with the state-keeping gate biased open). Prints the norm "
            "at t = T, T/2 and 1 and the rate per step fitted to log-norm over t. Clipping rescales the whole "
            "profile by one factor; the rate is unchanged."
        ),
    )
    exp = parser.add_argument_group("experiment")
    exp.add_argument("--T", type=common.positive_int, default=200, help="sequence length, >= 2 (default: 200)")
    exp.add_argument("--batch", type=common.positive_int, default=16, help="sequences in the batch (default: 16)")
    exp.add_argument("--hidden", type=common.positive_int, default=32, help="hidden units (default: 32)")
    exp.add_argument(
        "--rho-small", type=common.positive_float, default=0.9, help="spectral radius below 1 (default: 0.9)"
    )
    exp.add_argument(
        "--rho-large", type=common.positive_float, default=2.0, help="spectral radius above 1 (default: 2.0)"
    )
    exp.add_argument("--clip", type=common.positive_float, default=1.0, help="max_norm for clipping (default: 1.0)")
    exp.add_argument(
        "--gate-bias",
        type=common.nonnegative_float,
        default=3.0,
        help="added to the LSTM forget-gate and GRU update-gate biases in the open-gate rows (default: 3.0)",
    )
    common.add_seed_option(exp, "seed for the data and the weights")
    out = parser.add_argument_group("output")
    out.add_argument("--plot", metavar="FILE", help="save log-scale curves of ||dL/dh_t|| over t (needs matplotlib)")
    out.add_argument("--health", action="store_true", help="add check_gradients' verdict for each configuration")
    sweep = parser.add_argument_group("lag sweep")
    sweep.add_argument("--sweep", action="store_true", help="also train each cell on delayed copy for growing lags")
    sweep.add_argument(
        "--lags", type=_lags, default=(2, 4, 8, 16, 32), help="comma-separated lags (default: 2,4,8,16,32)"
    )
    sweep.add_argument(
        "--budget", type=common.positive_int, default=300, help="Adam updates per cell and lag (default: 300)"
    )
    sweep.add_argument(
        "--threshold", type=common.fraction, default=0.9, help="held-out accuracy that counts as learned (default: 0.9)"
    )
    sweep.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="replay each training step's forward and backward with tg.compile instead of running it eagerly; "
        "the same results to the bit (default: on; the default sweep took 5.2 s CPU against eager's 8.8)",
    )
    parser.set_defaults(run=run)


def _lags(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    from .common import say

    if args.T < 2:
        raise CLIError(f"--T {args.T}: the adding problem needs at least 2 steps")
    if not args.rho_small < 1 < args.rho_large:
        raise CLIError(f"--rho-small {args.rho_small:g} must be below 1 and --rho-large {args.rho_large:g} above 1")
    common.check_plot_path(args.plot)
    started = time.perf_counter()
    configs = default_configs(args.rho_small, args.rho_large, args.clip, args.gate_bias)
    rows = run_experiment(configs, T=args.T, batch=args.batch, hidden=args.hidden, seed=args.seed)
    say(f"adding problem, T = {args.T}, batch {args.batch}, hidden {args.hidden}, seed {args.seed}")
    say(format_table(rows))
    say(
        "rate/step: exp(-slope) of log ||dL/dh_t|| against t, the factor per step back in time; "
        "clip x: the factor clipping multiplied every gradient by (the + clip rows show the profile times it); "
        "early: share of ||dL/dW_hh|| from steps t <= T/2"
    )
    if args.health:
        for row in rows:
            say(f"{row.config.label}: {_health_line(row)}")
    if args.plot:
        _plot(rows, args.plot)
        common.say_saved("plot", args.plot)
    say(f"gradflow took {time.perf_counter() - started:.1f} s")
    if args.sweep:

        def show(result: LagResult) -> None:
            verdict = "learned" if result.learned else "not learned"
            outcome = f"accuracy {result.accuracy:.0%} after {result.steps} updates, {verdict}"
            say(f"  {result.cell} lag {result.lag}: {outcome}")

        say(f"lag sweep on delayed copy: {args.budget} updates per cell and lag, threshold {args.threshold:.0%}")
        sweep = lag_sweep(
            lags=args.lags,
            threshold=args.threshold,
            budget=args.budget,
            progress=show,
            seed=args.seed,
            compile=args.compile,
        )
        say(str(sweep))
        say(f"sweep took {sweep.seconds:.1f} s")
    return 0


def _health_line(row: Row) -> str:
    """One line: the problem counts, and where the first problem of the most common kind began."""
    health = check_gradients(row.report.grads, row.report)
    if health.ok:
        return str(health)
    counts = Counter(p.kind for p in health.problems)
    kind = counts.most_common(1)[0][0]
    first = next(p for p in health.problems if p.kind == kind)
    summary = ", ".join(f"{k} x{n}" for k, n in counts.items())
    return f"{summary}; {first.origin}" if first.origin else summary


def _plot(rows: Sequence[Row], path: str) -> None:
    plt = common.pyplot()
    figure, axis = plt.subplots(figsize=(8, 5))
    colors: dict[str, Any] = {}
    for row in rows:
        steps = range(1, row.report.T + 1)
        # A clipped row shares its unclipped twin's colour, dashed: same shape, shifted down.
        base = row.config.label.split(" + clip")[0]
        style = "--" if row.config.clip is not None else "-"
        (line,) = axis.semilogy(
            steps,
            row.profile,
            style,
            color=colors.get(base),
            label=f"{row.config.label} (rate {row.report.rate():.3f})",
        )
        colors.setdefault(base, line.get_color())
    axis.set_xlabel("time step t")
    axis.set_ylabel("||dL/dh_t||  (clipped rows: times the clip factor)")
    axis.set_title(f"Gradient flow back through time, adding problem, T = {rows[0].report.T}")
    axis.legend(fontsize=7, loc="best")
    axis.grid(True, which="major", alpha=0.3)
    figure.tight_layout()
    common.save_figure(figure, path)
    plt.close(figure)
