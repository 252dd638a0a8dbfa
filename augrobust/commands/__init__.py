"""The subcommands of the ``augrobust`` command, one module each.

Every module exposes ``add_parser(subparsers)`` (adds its parser; cheap: no torch) and ``run(args) -> int``
(does the work; the heavy imports happen here).
"""
