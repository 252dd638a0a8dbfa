"""The subcommands of the ``augrobust`` command, one module each.

Every module exposes ``add_parser(subparsers)``, which adds its parser and sets the parser's ``func`` to the
module's ``run``, and ``run(args) -> int``, which does the work. Building a parser must stay cheap: a
module imports torch, the trainer, the evaluation or the benchmark suite only inside ``run``. A new command
is a new module here and its name in :data:`COMMANDS`.

Example:
    >>> COMMANDS
    ('demo', 'preview', 'bench', 'train', 'eval', 'compare', 'dfm', 'generate')
"""

from __future__ import annotations

__all__ = ["COMMANDS"]

#: The subcommands, in the order ``augrobust --help`` lists them (module ``augrobust.commands.<name>``).
COMMANDS: tuple[str, ...] = ("demo", "preview", "bench", "train", "eval", "compare", "dfm", "generate")
