"""tinygrad_rnn.cli — the `tinygrad-rnn` command (also `python -m tinygrad_rnn`). Read after nn/ and optim.py.

Subcommands, one module each:

    forecast   forecast.py   predict the next value of a series (default: yearly sunspot numbers)
    predict    predict.py    forecast ahead from a `forecast` checkpoint and a CSV
    chars      chars.py      a character-level language model (default: CPython's help topics)
    generate   chars.py      sample text from a `chars` checkpoint
    gradcheck  checks.py     finite-difference checks of every primitive and recurrent layer
    gradflow   gradflow.py   vanishing and exploding gradients through time (see docs/gradients-through-time.md)

The code only composes the library, as a user script would. This file turns
argv into a call and every user error into one line on stderr with exit status
2: argparse's own errors (`_Parser.error`), `CLIError` from the subcommands, and
the library's own user errors. Checkpoints, and the rules that keep a run from
losing one (no silent overwrite, periodic saves, Ctrl-C, divergence), are in
checkpoints.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ..core.errors import TinygradRNNError
from .checkpoints import Interrupted
from .common import CLIError

PROG = "tinygrad-rnn"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's status for a program stopped by Ctrl-C (128 + SIGINT)


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse prints the usage block before its error; we print one line that points at --help."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    from . import chars, checks, forecast, gradflow, predict

    parser = _Parser(
        prog=PROG,
        description="Train, sample from and check recurrent networks built on tinygrad_rnn's autodiff.",
        epilog=f"Each command has its own --help, e.g. `{PROG} forecast --help`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    forecast.add_parser(subparsers)
    predict.add_parser(subparsers)
    chars.add_parsers(subparsers)
    checks.add_parser(subparsers)
    gradflow.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status (0 success, 1 failed gradient check, 2 user error,
    130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            commands = ", ".join(_command_names(parser))
            raise _UsageError(f"{PROG}: error: choose a command: {commands} (see {PROG} --help)")
        with _one_blas_thread():
            status: int = args.run(args)
        return status
    except SystemExit as exc:  # --help and --version exit 0 through argparse
        return exc.code if isinstance(exc.code, int) else 0
    except _UsageError as exc:
        return _fail(str(exc))
    except (CLIError, TinygradRNNError) as exc:
        return _fail(f"{PROG}: error: {exc}")
    except Interrupted as exc:  # Ctrl-C during training: the message says what was saved
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        return _fail(f"{PROG}: error: out of memory; try smaller sizes (--hidden, --batch, --layers, --length)")
    except BrokenPipeError:  # e.g. `tinygrad-rnn generate | head`: the reader left, which is not an error
        # Point stdout at /dev/null so that Python's flush at exit does not raise a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _command_names(parser: argparse.ArgumentParser) -> list[str]:
    return [
        name for action in parser._actions if isinstance(action, argparse._SubParsersAction) for name in action.choices
    ]


def _one_blas_thread() -> Any:
    """Run numpy's BLAS on one thread. Our matrices are tiny (batch x hidden), so extra BLAS threads
    cost more in wake-ups than they save, and when the cores are busy they thrash: a `chars` step
    measured 5-10x slower with OpenBLAS's default two threads on a loaded 2-core machine."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _fail(message: str) -> int:
    print(" ".join(message.split()), file=sys.stderr)
    return EXIT_USAGE


def _version() -> str:
    from .. import __version__

    return str(__version__)


def entry_point() -> None:
    """The console script `tinygrad-rnn`."""
    sys.exit(main())
