"""The ``augrobust`` command.

Each subcommand lives in its own module, which exposes ``add_parser(subparsers)``; the parser it adds sets
``func`` (called with the parsed arguments, returns an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# One line per subcommand module.
_COMMAND_MODULES: tuple[str, ...] = (
    "augrobust.commands.demo",
    "augrobust.commands.preview",
    "augrobust.commands.bench",
    "augrobust.commands.train",
    "augrobust.commands.eval",
    "augrobust.commands.dfm",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="augrobust",
        description="GPU-native augmentations for corruption robustness: demo, benchmarks, training, evaluation.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
