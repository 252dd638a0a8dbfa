"""The ``augrobust`` command.

Each subcommand is a module of :mod:`augrobust.commands` with ``add_parser(subparsers)`` (which sets the
parser's ``func`` to the module's ``run``) and ``run(args) -> int``. Building the parser imports no torch:
``augrobust --help`` and ``augrobust CMD --help`` answer at once.

A user's mistake (an :class:`~augrobust.errors.AugrobustError`, a missing or unwritable path) ends the
command with one line on stderr, ``augrobust CMD: error: ...``, and exit status 2, as argparse does for a
bad option; Ctrl-C ends it with status 130. ``--debug`` adds the traceback.

Example:
    >>> import contextlib, io
    >>> stderr = io.StringIO()
    >>> with contextlib.redirect_stderr(stderr):
    ...     status = main(["eval", "--checkpoint", "no/such/checkpoint.pt"])
    >>> status
    2
    >>> print(stderr.getvalue(), end="")
    augrobust eval: error: checkpoint not found: 'no/such/checkpoint.pt'.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from augrobust.commands import COMMANDS
from augrobust.commands._options import DefaultsHelpFormatter
from augrobust.errors import AugrobustError

__all__ = ["build_parser", "main"]

_COMMAND_MODULES: tuple[str, ...] = tuple(f"augrobust.commands.{name}" for name in COMMANDS)

#: Exit status of a user's error (argparse's, for a bad option) and of Ctrl-C (128 + SIGINT).
EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


def build_parser() -> argparse.ArgumentParser:
    """The ``augrobust`` parser with every subcommand (cheap: imports no torch).

    Example:
        >>> sorted(build_parser().parse_args(["demo", "--size", "64"]).__dict__)[:3]
        ['batch_size', 'columns', 'command']
    """
    from augrobust import __version__

    parser = argparse.ArgumentParser(
        prog="augrobust",
        description="GPU-native augmentations for corruption robustness: demo, benchmarks, training, evaluation. "
        "Run 'augrobust COMMAND --help' for a command's options.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="on an error, also print the traceback")
    parser.add_argument("--version", action="version", version=f"augrobust {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def _message(err: BaseException) -> str:
    if isinstance(err, OSError) and not isinstance(err, AugrobustError) and err.filename is not None:
        return f"{err.strerror or type(err).__name__}: {str(err.filename)!r}"
    return str(err) or type(err).__name__


#: torch's CPU allocator backs large tensors with transparent huge pages when this is 1 (read once, when torch
#: loads). A fresh batch-sized tensor then faults in 2 MB pages: measured 0.20 -> 0.07 ms per 224-px float image
#: on the dev machine, which is most of the cost of the cheapest corruptions. Set before any command imports
#: torch; the user's own value wins. Library users can export it themselves (docs/benchmarks.md).
THP_ENV = "THP_MEM_ALLOC_ENABLE"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``augrobust`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    if "torch" not in sys.modules:
        os.environ.setdefault(THP_ENV, "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as err:
        error, message, status = err, "interrupted", EXIT_INTERRUPTED
    except (AugrobustError, FileNotFoundError) as err:
        error, message, status = err, _message(err), EXIT_USAGE
    except OSError as err:
        if err.filename is None:  # not about a path the user gave: a fault to report with its traceback
            raise
        error, message, status = err, _message(err), EXIT_USAGE
    if getattr(args, "debug", False):
        traceback.print_exception(error, file=sys.stderr)
    print(f"augrobust {args.command}: error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
