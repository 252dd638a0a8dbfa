"""What the subcommands share: one help style, one spelling per option, and checks of output paths.

Every command is built with :func:`add_command`, so each help text shows the defaults; the options that
mean the same thing in several commands (``--data``, ``--preset``, ``--reference``, ``--corruptions``,
``--severities``, ``--seed``, ``--device``, ``--threads``, ``--batch-size``, ``--out``, ``--quiet``) are added by the
functions below, with the same name, parsing and help everywhere. Nothing here imports torch: building the
parser must stay cheap.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="augrobust")
    >>> p = add_command(parser.add_subparsers(dest="command"), "x", help="an example", description="An example.")
    >>> add_severities(p)
    >>> add_corruptions(p, default=None, default_text="every registered corruption")
    >>> args = parser.parse_args(["x", "--severities", "1,3", "--corruptions", "noise"])
    >>> args.severities, args.corruptions
    ([1, 3], ['gaussian_noise', 'shot_noise', 'impulse_noise'])
"""

from __future__ import annotations

import argparse
import os
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from augrobust._checks import PRESET_CHOICES, REFERENCE_CHOICES, check_severities
from augrobust._corruption_names import SUBSETS
from augrobust.errors import AugrobustError, AugrobustValueError

__all__ = [
    "DefaultsHelpFormatter",
    "add_batch_size",
    "add_command",
    "add_corruptions",
    "add_data",
    "add_device",
    "add_out",
    "add_preset",
    "add_quiet",
    "add_reference",
    "add_seed",
    "add_severities",
    "check_output_dir",
    "check_output_file",
    "corruption_list",
    "severity_list",
]


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Wraps each paragraph of a description on its own (an indented block, an example, is kept as written)
    and ends every option's help with its default.

    An option whose help already says its default (``default: ...``), a flag, a required option or one with an
    empty list default is left as written; list defaults are shown as the comma-separated text one would type.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in re.split(r"\n\s*\n", text.strip("\n")):
            lines = block.splitlines()
            if any(line.startswith(" ") for line in lines):
                blocks.append("\n".join(indent + line for line in lines))
            else:
                words = " ".join(line.strip() for line in lines)
                blocks.append(textwrap.fill(words, width, initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(blocks)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default:" in text
            or default is None
            or default == []
            or default is argparse.SUPPRESS
            or isinstance(default, bool)
            or action.required
            or not action.option_strings
        ):
            return text
        shown = ",".join(str(v) for v in default) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})".lstrip()


def add_command(subparsers: Any, name: str, *, help: str, description: str) -> argparse.ArgumentParser:
    """A subcommand's parser, in the common help style, with the ``--debug`` flag also accepted after it."""
    parser = subparsers.add_parser(name, help=help, description=description, formatter_class=DefaultsHelpFormatter)
    # SUPPRESS: absent, it leaves the global flag (``augrobust --debug CMD``) as it was.
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="on an error, also print the traceback"
    )
    return parser


def severity_list(text: str) -> list[int]:
    """``"1,3,5"`` -> ``[1, 3, 5]``: distinct severities in 1..5 (an argparse ``type``)."""
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
        return list(check_severities(values, "--severities"))
    except ValueError as err:  # int() and the check's AugrobustValueError
        raise argparse.ArgumentTypeError(
            f"expected distinct comma-separated severities in 1..5 such as 1,3,5, got {text!r}"
            + (f" ({err})" if isinstance(err, AugrobustError) else "")
        ) from None


def corruption_list(text: str) -> list[str]:
    """A subset name (``common``, ``noise``, ...) or comma-separated corruption names, as a list."""
    text = text.strip()
    if text in SUBSETS:
        return list(SUBSETS[text])
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected a subset ({', '.join(SUBSETS)}) or corruption names, got {text!r}")
    return names


def add_data(
    parser: argparse.ArgumentParser, *, specs: Sequence[str], default: str = "synthetic", what: str = ""
) -> None:
    """``--data SPEC``: where the images come from (``synthetic``, ``cifar10:ROOT``, ...)."""
    parser.add_argument("--data", default=default, metavar="SPEC", help=f"{what}{' | '.join(specs)}")


def add_preset(parser: argparse.ArgumentParser, *, auto: bool = False, default: str = "imagenet") -> None:
    """``--preset``: the severity table; with ``auto``, also ``auto`` (chosen from the image size)."""
    choices = (("auto",) if auto else ()) + PRESET_CHOICES
    extra = " (auto: cifar for 32-px images, tinyimagenet for 64-px, else imagenet)" if auto else ""
    parser.add_argument("--preset", default=default, choices=choices, help=f"severity table{extra}")


def add_reference(parser: argparse.ArgumentParser, *, auto: bool = False, default: str = "imagecorruptions") -> None:
    """``--reference``: which reference implementation the corruptions follow."""
    choices = (("auto",) if auto else ()) + REFERENCE_CHOICES
    extra = (
        " (auto: hendrycks, the scripts that built CIFAR-10-C and Tiny-ImageNet-C, for the cifar and tinyimagenet "
        "presets; imagecorruptions otherwise)"
        if auto
        else ""
    )
    parser.add_argument("--reference", default=default, choices=choices, help=f"reference implementation{extra}")


def add_corruptions(parser: argparse.ArgumentParser, *, default: str | None, default_text: str = "") -> None:
    """``--corruptions``: a subset name or comma-separated names, parsed into a list.

    A string ``default`` is parsed like a typed value (argparse does so) and shown as typed; ``None`` needs
    ``default_text``, which says what happens then.
    """
    shown = f" (default: {default_text})" if default is None else ""
    parser.add_argument(
        "--corruptions", type=corruption_list, default=default, metavar="SUBSET|NAMES",
        help=f"a subset ({', '.join(SUBSETS)}) or comma-separated corruption names{shown}",
    )  # fmt: skip


def add_severities(parser: argparse.ArgumentParser, *, default: str = "1,2,3,4,5") -> None:
    """``--severities 1,3,5``, parsed into a list (a string ``default`` is parsed like a typed value)."""
    parser.add_argument(
        "--severities", type=severity_list, default=default, metavar="S,S,...",
        help="comma-separated severities in 1..5",
    )  # fmt: skip


def add_seed(parser: argparse.ArgumentParser, *, default: int = 0, help: str = "seed of the random draws") -> None:
    """``--seed N``."""
    parser.add_argument("--seed", type=int, default=default, help=help)


def add_device(parser: argparse.ArgumentParser, *, default: str = "cpu") -> None:
    """``--device``: ``cpu``, ``cuda``, ``cuda:1``, ``mps``..."""
    parser.add_argument("--device", default=default, help="where to compute: cpu, cuda, cuda:1, mps, ...")


def default_threads(workers: int = 0) -> int:
    """torch's intra-op CPU threads when ``--threads`` is not given.

    ``OMP_NUM_THREADS`` when it is set (``torchrun`` sets 1 per process). Otherwise the cores this process may
    use, shared among the ranks of this machine (``LOCAL_WORLD_SIZE``), less the cores other jobs keep busy
    (the 1-minute load average, rounded) and the command's own ``workers`` processes (DataLoader workers,
    which start after this is decided), at least 1 and at most 4. The load matters: torch splits each op
    evenly over its threads and waits for the slowest, so a thread that has to share its core with another
    job stalls every op. Measured on the 2-core dev machine beside a one-thread training job, 2 threads were
    2.2x slower than 1 over the 19 corruptions (geometric mean, up to 7x; benchmarks/README.md, "Threads").

    Example:
        >>> 1 <= default_threads() <= max(4, int(os.environ.get("OMP_NUM_THREADS", "1")))
        True
    """
    configured = os.environ.get("OMP_NUM_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    ranks = os.environ.get("LOCAL_WORLD_SIZE", "1")
    ranks = int(ranks) if ranks.isdigit() and int(ranks) > 0 else 1
    try:
        busy = round(os.getloadavg()[0])
    except (AttributeError, OSError):  # no load average on this platform
        busy = 0
    return max(1, min((cores - busy - max(0, workers)) // ranks, 4))


def add_threads(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: torch's intra-op CPU threads (see :func:`default_threads`); :func:`apply_threads` sets them."""
    parser.add_argument(
        "--threads", type=int, default=None, metavar="N",
        help="torch intra-op CPU threads (default: OMP_NUM_THREADS if set, else the cores not busy with other jobs, "
        "per local rank, 1 to 4)",
    )  # fmt: skip


def apply_threads(args: argparse.Namespace, workers: int = 0) -> int:
    """Set torch's intra-op threads from ``args.threads`` (or the default, given the command's ``workers``
    processes); returns the count. Imports torch."""
    import torch

    from augrobust._checks import check_count

    if args.threads is not None:
        threads = check_count(args.threads, "--threads", minimum=1)
    else:
        threads = default_threads(workers)
    torch.set_num_threads(threads)
    return threads


def add_batch_size(parser: argparse.ArgumentParser, *, default: int, help: str, aliases: Sequence[str] = ()) -> None:
    """``--batch-size N`` (older spellings kept as ``aliases``)."""
    parser.add_argument("--batch-size", *aliases, dest="batch_size", type=int, default=default, help=help)


def add_out(parser: argparse.ArgumentParser, *, default: str | None, help: str, required: bool = False) -> None:
    """``--out PATH``: where the command writes."""
    parser.add_argument("--out", default=default, required=required, metavar="PATH", help=help)


def add_quiet(parser: argparse.ArgumentParser, *, aliases: Sequence[str] = ()) -> None:
    """``--quiet``: no progress output (older spellings kept as ``aliases``)."""
    parser.add_argument("--quiet", "-q", *aliases, dest="quiet", action="store_true", help="show no progress")


def _writable_folder(folder: Path, target: Path) -> None:
    """``folder`` (the nearest existing ancestor of ``target``) must be a writable directory."""
    if not folder.is_dir():
        raise AugrobustValueError(f"cannot write {str(target)!r}: {str(folder)!r} is a file, not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise AugrobustValueError(f"cannot write {str(target)!r}: folder {str(folder)!r} is not writable.")


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_output_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """An output folder that exists and is writable, or can be created; checked before any work starts.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile() as f:
        ...     check_output_dir(f.name)
        Traceback (most recent call last):
        ...
        augrobust.errors.AugrobustValueError: --out ... is a file; give a folder.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise AugrobustValueError(f"{option} {str(target)!r} is a file; give a folder.")
    _writable_folder(_existing_ancestor(target), target)
    return target


def check_output_file(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """An output file whose folder exists and is writable, or can be created; checked before any work starts.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     check_output_file(d, "--markdown")
        Traceback (most recent call last):
        ...
        augrobust.errors.AugrobustValueError: --markdown ... is a folder; give a file name.
    """
    target = Path(path)
    if target.is_dir():
        raise AugrobustValueError(f"{option} {str(target)!r} is a folder; give a file name.")
    if target.exists() and not os.access(target, os.W_OK):
        raise AugrobustValueError(f"{option} {str(target)!r} exists and is not writable.")
    _writable_folder(_existing_ancestor(target.parent), target)
    return target
