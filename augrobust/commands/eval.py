"""``augrobust eval``: corruption robustness of any model.

The model is an augrobust checkpoint (``--checkpoint``) or ``--model torchvision:NAME`` / ``timm:NAME`` with
``--weights FILE`` (a plain state_dict or an augrobust checkpoint; nothing is downloaded), optionally behind
``--normalize``. The data is clean images corrupted on the fly (``--data synthetic|cifar10:DIR|folder:DIR``)
or pre-made files (``--data imagenet-c:DIR|tinyimagenet-c:DIR|cifar10-c:DIR|cifar100-c:DIR``, or
``--npy-root``). It calls :func:`augrobust.evaluate` with the same defaults as Python and writes
``report.json``, ``report.md``, ``heatmap.png`` and ``severity_curves.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from augrobust.commands._options import (
    add_batch_size,
    add_command,
    add_corruptions,
    add_data,
    add_device,
    add_out,
    add_preset,
    add_quiet,
    add_reference,
    add_seed,
    add_severities,
    add_threads,
    apply_threads,
    check_output_dir,
)
from augrobust.errors import AugrobustValueError

__all__ = ["CLEAN_DATA_SPECS", "DATA_SPECS", "add_parser", "run"]

#: The ``--data`` specs (``augrobust.data.DATA_SPECS``, spelled here so that ``--help`` imports no torch; a test
#: keeps the two equal). The last four are pre-corrupted benchmarks, read by the evaluation only.
DATA_SPECS: tuple[str, ...] = (
    "synthetic", "synthetic:N", "cifar10:DIR", "cifar100:DIR", "folder:DIR",
    "imagenet-c:DIR", "tinyimagenet-c:DIR", "cifar10-c:DIR", "cifar100-c:DIR",
)  # fmt: skip

#: The specs of clean images (what the DFM sweep, which needs clean images, accepts).
CLEAN_DATA_SPECS: tuple[str, ...] = tuple(s for s in DATA_SPECS if not s.split(":")[0].endswith("-c"))


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``augrobust eval``."""
    p = add_command(
        subparsers, "eval",
        help="evaluate any model on corrupted data (errors, mCE against a baseline, ECE, figures)",
        description="Evaluate a model clean and under ImageNet-C corruptions (on the fly or from pre-made "
        "ImageNet-C / CIFAR-10-C files); write report.json, report.md, heatmap.png and severity_curves.png into "
        "--out. The same defaults as augrobust.evaluate(); the paths are checked before any work starts.",
    )  # fmt: skip
    p.add_argument(
        "--benchmark", default="c", choices=("c", "p"),
        help="c: ImageNet-C-style corruptions (errors, CE); p: ImageNet-P-style perturbation sequences on the fly "
        "(flip probability, top-5 distance; --baseline is then another model's P report.json or none)",
    )  # fmt: skip
    p.add_argument(
        "--p-root", default=None, metavar="DIR",
        help="with --benchmark p: read the sequences from this folder (`augrobust generate --format cifar-p|"
        "imagenet-p|tinyimagenet-p` output, or a released CIFAR-10-P / ImageNet-P folder) instead of making them",
    )  # fmt: skip
    p.add_argument(
        "--p-format", default=None, choices=("cifar-p", "imagenet-p", "tinyimagenet-p"),
        help="with --p-root: the layout of a folder that has no augrobust manifest (default: from the manifest)",
    )  # fmt: skip
    p.add_argument("--checkpoint", default=None, metavar="PATH", help="checkpoint written by `augrobust train`")
    p.add_argument(
        "--model", default=None, metavar="LIB:NAME",
        help="torchvision:NAME or timm:NAME, built with random init and loaded from --weights (no download)",
    )  # fmt: skip
    p.add_argument("--weights", default=None, metavar="FILE", help="state_dict or augrobust checkpoint for --model")
    p.add_argument("--num-classes", type=int, default=None, help="classes of --model (default 1000)")
    p.add_argument(
        "--normalize", default=None, metavar="imagenet|cifar|MEAN,STD",
        help="input normalisation applied after the corruption (MEAN,STD: 2 or 6 comma-separated numbers)",
    )  # fmt: skip
    add_data(p, specs=DATA_SPECS, what="clean test images or pre-made corrupted files: ")
    p.add_argument(
        "--clean", default=None, metavar="SPEC", help="with pre-made --data: clean images for the clean error"
    )
    p.add_argument(
        "--npy-root", default=None, metavar="DIR",
        help="read CIFAR-10-C-style <corruption>.npy files from this folder (as --data cifar10-c:DIR, with --data "
        "as the clean set)",
    )  # fmt: skip
    add_corruptions(p, default="common", default_text="common (the 15 benchmark corruptions)")
    add_severities(p)
    add_device(p)
    add_threads(p)
    add_out(p, default="eval_report", help="output folder")
    add_batch_size(p, default=128, help="images per batch (the on-the-fly draws depend on it)")
    p.add_argument("--num-images", type=int, default=None, help="evaluate the first N images only (default: all)")
    p.add_argument(
        "--image-size", type=int, default=None,
        help="synthetic image side / folder resize (default: the checkpoint's, else 32 / the files' size)",
    )  # fmt: skip
    add_seed(p, help="seed of the corruptions' random draws")
    add_preset(p, auto=True, default="auto")
    add_reference(p, auto=True, default="auto")
    p.add_argument(
        "--baseline", default="auto", metavar="auto|alexnet|none|REPORT.json",
        help="CE/mCE baseline: auto = AlexNet's published errors on ImageNet-C-shaped data only; or another "
        "model's report.json (default: auto)",
    )  # fmt: skip
    p.add_argument("--name", default=None, help="model name in the report and figures")
    p.add_argument("--no-figures", action="store_true", help="write no PNG (figures need augrobust[plots])")
    add_quiet(p, aliases=("--no-progress",))
    p.set_defaults(func=run)
    return p


def _corruption_arg(value: Any) -> Any:
    # --corruptions gives a list; a single set name ("common", "all", "validation") is passed as the set.
    if isinstance(value, list) and len(value) == 1 and value[0] in ("common", "all", "validation"):
        return value[0]
    return value


def run(args: argparse.Namespace) -> int:
    """Check the inputs and the output folder, evaluate, write the report files and figures."""
    apply_threads(args)
    import augrobust.evaluation as evaluation
    from augrobust.data import CIFARC, CorruptedBenchmark, from_spec

    if (args.checkpoint is None) == (args.model is None):
        raise AugrobustValueError("give --checkpoint PATH (an augrobust checkpoint) or --model LIB:NAME, not both.")
    if args.model is None and (args.weights is not None or args.num_classes is not None):
        raise AugrobustValueError("--weights and --num-classes go with --model (a checkpoint knows its classes).")
    if not args.no_figures:
        from augrobust.figures import require_matplotlib

        require_matplotlib()  # before any compute: a missing extra is said now
    config: dict[str, Any] = {}
    if args.checkpoint is not None:
        from augrobust.train.checkpoint import load_model

        model, config = load_model(args.checkpoint, args.device)
        name = args.name or config.get("arch")
    else:
        from augrobust.models import load_model_spec

        model = load_model_spec(args.model, weights=args.weights, num_classes=args.num_classes or 1000).to(args.device)
        name = args.name or args.model
    out = check_output_dir(args.out)
    if args.p_root is not None or args.p_format is not None:
        if args.benchmark != "p" or args.p_root is None:
            raise AugrobustValueError("--p-root DIR (and --p-format) go with --benchmark p.")
        return _run_perturbation_files(args, model, out, name)
    num_classes = int(config["num_classes"]) if config else (args.num_classes or 1000)
    image_size = args.image_size or config.get("image_size")
    # The synthetic test split of the training run: its seed is the trainer's (any seed's test split is
    # disjoint from every training split); --seed seeds the corruptions.
    data_seed = int(config.get("seed", 0) or 0)
    data = from_spec(
        args.data, train=False, seed=data_seed, image_size=image_size, num_images=args.num_images,
        num_classes=num_classes, benchmarks=True,
    )  # fmt: skip
    clean = None
    if args.clean is not None:
        clean = from_spec(args.clean, train=False, image_size=image_size, num_images=args.num_images,
                          num_classes=num_classes)  # fmt: skip
    if args.npy_root is not None:
        if isinstance(data, CorruptedBenchmark):
            raise AugrobustValueError("--npy-root goes with a clean --data; pre-made --data already names the files.")
        data, clean = CIFARC(args.npy_root), data
    if args.benchmark == "p":
        return _run_perturbations(args, model, data, out, name)
    if isinstance(data, CorruptedBenchmark):  # every file to read is there, before the evaluation starts
        for corruption in data.corruptions() if args.corruptions is None else _names(args.corruptions):
            if corruption not in data.corruptions():
                raise AugrobustValueError(
                    f"no files for corruption {corruption!r} in {data.spec}; available: "
                    f"{', '.join(data.corruptions())}."
                )
    # The baseline is resolved (and a bad one refused) before any compute, by the rule evaluate() applies.
    if isinstance(data, CorruptedBenchmark):
        preset = data.preset if args.preset == "auto" else args.preset
    else:
        preset, _ = evaluation.auto_preset(int(data[0][0].shape[-1]), args.preset, args.reference)
    baseline = evaluation.resolve_baseline(args.baseline, num_classes=num_classes, preset=preset)
    report = evaluation.evaluate(
        model, data, corruptions=_corruption_arg(args.corruptions) if args.corruptions else "common",
        severities=tuple(args.severities), preset=args.preset, reference=args.reference, normalize=args.normalize,
        batch_size=args.batch_size, device=args.device, seed=args.seed,
        baseline="none" if baseline is None else baseline,
        num_classes=num_classes, clean=clean, out_dir=out, model_name=name, progress=not args.quiet,
    )  # fmt: skip
    report.metadata.update(data=args.data)
    if args.checkpoint is not None:
        report.metadata.update(checkpoint=str(args.checkpoint), arch=config["arch"])
        if config.get("sparse"):  # a DST run: its per-layer sparsity in the report header
            from augrobust.train.sparse import layer_sparsity

            report.metadata["sparsity"] = layer_sparsity(model)
    if args.weights is not None:
        report.metadata.update(weights=str(args.weights))
    written = [report.save_json(out / "report.json"), report.save_markdown(out / "report.md")]
    if not args.no_figures:
        written += [report.save_heatmap(out / "heatmap.png"), report.save_severity_curves(out / "severity_curves.png")]
    sys.stdout.write(report.to_markdown())
    sys.stdout.write(f"\nwrote {', '.join(str(p) for p in written)}\n")
    return 0


def _p_baseline(args: argparse.Namespace) -> Any:
    """``--baseline`` for ``--benchmark p``: another model's P report.json, or none (no invented constants)."""
    from augrobust.perturbation_eval import PerturbationReport

    if args.baseline in ("auto", "none"):
        return None
    if args.baseline == "alexnet":
        raise AugrobustValueError(
            "--benchmark p has no published AlexNet constants in the reference code; give another model's "
            "P report.json as --baseline, or none."
        )
    return PerturbationReport.load_json(args.baseline)


def _write_p_report(report: Any, baseline: Any, out: Any, what: str) -> int:
    written = [report.save_json(out / "report.json"), report.save_markdown(out / "report.md", baseline)]
    sys.stdout.write(report.to_markdown(baseline))
    sys.stdout.write(f"\nwrote {', '.join(str(p) for p in written)} ({what})\n")
    return 0


def _run_perturbation_files(args: argparse.Namespace, model: Any, out: Any, name: str | None) -> int:
    """``--benchmark p --p-root DIR``: the sequences read from files."""
    from augrobust.models import Normalized, parse_normalize
    from augrobust.perturbation_eval import evaluate_perturbation_files

    baseline = _p_baseline(args)
    normalize = parse_normalize(args.normalize)
    if normalize is not None:
        model = Normalized(model, *normalize)
    report = evaluate_perturbation_files(
        model, args.p_root, format=args.p_format, batch_size=args.batch_size, device=args.device, baseline=baseline
    )
    return _write_p_report(report, baseline, out, f"{name}, from {args.p_root}")


def _run_perturbations(args: argparse.Namespace, model: Any, data: Any, out: Any, name: str | None) -> int:
    """``--benchmark p``: flip probability and top-5 distance on the fly, written as report.json / report.md."""
    from augrobust.data import CorruptedBenchmark
    from augrobust.models import Normalized, parse_normalize
    from augrobust.perturbation_eval import evaluate_perturbations

    if isinstance(data, CorruptedBenchmark):
        raise AugrobustValueError(
            f"--benchmark p makes its sequences from clean images; --data {args.data!r} is a pre-made corrupted set."
        )
    baseline = _p_baseline(args)
    normalize = parse_normalize(args.normalize)
    if normalize is not None:
        model = Normalized(model, *normalize)
    side = int(data[0][0].shape[-1])
    variant = {32: "cifar", 64: "tinyimagenet"}.get(side, "imagenet")  # the auto rule of the C benchmark
    report = evaluate_perturbations(
        model, data, variant=variant, batch_size=args.batch_size, device=args.device, seed=args.seed,
        baseline=baseline,
    )  # fmt: skip
    return _write_p_report(report, baseline, out, f"{name}, variant {variant}")


def _names(value: Any) -> list[str]:
    from augrobust.corruptions import SUBSETS

    arg = _corruption_arg(value)
    return list(SUBSETS[arg]) if isinstance(arg, str) else list(arg)
