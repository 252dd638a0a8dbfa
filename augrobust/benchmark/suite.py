"""The benchmark cases and the timing harness."""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils import benchmark as tbench

from augrobust._io import atomic_write_text
from augrobust.errors import AugrobustError, AugrobustValueError

__all__ = [
    "COMPILED",
    "FLOORS",
    "IMAGE_SOURCES",
    "QUICK_SHAPES",
    "SHAPES",
    "SKIMAGE_PHOTOS",
    "BenchCase",
    "BenchResult",
    "check_image_source",
    "default_cases",
    "image_names",
    "markdown_table",
    "metadata",
    "photo_batch",
    "run_suite",
]

SHAPES: tuple[tuple[int, int, int, int], ...] = ((256, 3, 32, 32), (64, 3, 224, 224))
#: ``--quick``: the same sizes on tiny batches (a smoke run of every case, not a measurement).
QUICK_SHAPES: tuple[tuple[int, int, int, int], ...] = ((4, 3, 32, 32), (2, 3, 224, 224))


@dataclass(frozen=True)
class BenchCase:
    """One row of the table: ``make(x) -> fn`` builds a zero-argument callable over the batch ``x``.

    ``images`` limits how many images of the batch a slow per-image loop processes (the time is reported
    per image, so a reference loop over 4 images measures the same quantity as one over 64).
    """

    group: str
    impl: str  # "augrobust" | "torch floor" | "kornia" | "imagecorruptions"
    make: Callable[[torch.Tensor], Callable[[], Any]]
    images: int | None = None
    severity: int | None = None  # the corruption severity a corruption row is timed at (None: not a corruption)


@dataclass
class BenchResult:
    group: str
    impl: str
    shape: tuple[int, ...]
    device: str
    images: int
    median_ms_per_image: float
    iqr_ms_per_image: float
    runs: int
    severity: int | None = None

    @property
    def images_per_second(self) -> float:
        return 1000.0 / self.median_ms_per_image if self.median_ms_per_image > 0 else float("inf")


#: Where the benchmark batch's images come from (``augrobust bench --images``).
IMAGE_SOURCES: tuple[str, ...] = ("builtin", "skimage")

#: The RGB photographs bundled with scikit-image (no download), in the order they fill a batch.
SKIMAGE_PHOTOS: tuple[str, ...] = (
    "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "stereo_motorcycle", "retina",
    "immunohistochemistry",
)  # fmt: skip


def check_image_source(images: object) -> str:
    """An image source of :data:`IMAGE_SOURCES` whose images can be loaded here.

    Raises:
        AugrobustValueError: an unknown source.
        AugrobustError: ``"skimage"`` without scikit-image installed (it says which extra installs it).

    Example:
        >>> check_image_source("builtin")
        'builtin'
    """
    from augrobust._checks import check_choice

    source = check_choice(images, "image source", IMAGE_SOURCES)
    if source == "skimage":
        try:
            import skimage.data  # noqa: F401
        except ImportError:
            raise AugrobustError(
                "the 'skimage' image source needs scikit-image, which is not installed: install the dev extra "
                "(pip install 'augrobust[dev]', which also brings the imagecorruptions reference) or "
                "pip install 'scikit-image>=0.22'; or use the built-in image (--images builtin)."
            ) from None
    return source


def image_names(images: str) -> list[str]:
    """The images a batch of this source cycles through, in order.

    Example:
        >>> image_names("skimage")[:2]
        ['astronaut', 'coffee']
    """
    return ["augrobust.testimage.test_image"] if check_image_source(images) == "builtin" else list(SKIMAGE_PHOTOS)


@functools.lru_cache(maxsize=4)
def _skimage_photos(h: int, w: int) -> torch.Tensor:
    """The photographs as a ``(N, 3, h, w)`` uint8 tensor: each centre-cropped to a square, resized with
    antialiasing (bilinear in float64), rounded back to uint8."""
    import skimage.data

    out = []
    for name in SKIMAGE_PHOTOS:
        image = getattr(skimage.data, name)()
        if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
            image = image[0]
        rows, cols = image.shape[:2]
        side = min(rows, cols)
        top, left = (rows - side) // 2, (cols - side) // 2
        square = torch.from_numpy(np.ascontiguousarray(image[top : top + side, left : left + side, :3]))
        chw = square.permute(2, 0, 1).unsqueeze(0).to(torch.float64)
        resized = torch.nn.functional.interpolate(
            chw, size=(h, w), mode="bilinear", antialias=True, align_corners=False
        )
        out.append(resized.round().clamp(0, 255).to(torch.uint8)[0])
    return torch.stack(out)


def photo_batch(shape: Sequence[int], device: str | torch.device = "cpu", images: str = "builtin") -> torch.Tensor:
    """The benchmark batch: float32 in [0, 1], every value a multiple of 1/255 (so the reference's uint8 copy is
    exactly the same image).

    Args:
        shape: ``(B, C, H, W)`` with ``C <= 3``.
        device: where the batch lives.
        images: ``"builtin"``: the built-in test image at the batch's size, rolled by a different offset per
            image; ``"skimage"``: the :data:`SKIMAGE_PHOTOS` (centre-cropped to square, resized with
            antialiasing), cycled to fill the batch, the second half flipped left-right.

    Example:
        >>> x = photo_batch((4, 3, 32, 32))
        >>> x.shape, x.dtype, bool(x.min() >= 0), bool(x.max() <= 1)
        (torch.Size([4, 3, 32, 32]), torch.float32, True, True)
    """
    source = check_image_source(images)
    b, c, h, w = shape
    if source == "builtin":
        from augrobust.testimage import test_image

        base = test_image(size=(h, w))
        gen = torch.Generator().manual_seed(0)
        shifts = torch.randint(0, max(1, min(h, w) // 4), (b, 2), generator=gen)
        batch = torch.stack([torch.roll(base, (int(s[0]), int(s[1])), dims=(1, 2)) for s in shifts])
    else:
        photos = _skimage_photos(h, w)
        batch = photos[torch.arange(b) % len(photos)]
        flip = torch.arange(b) >= (b + 1) // 2
        batch = torch.where(flip.view(b, 1, 1, 1), batch.flip(-1), batch)
    # test_image and the photos are uint8: scale to [0, 1] (the corruptions' float range).
    return (batch[:, :c].to(torch.float32) / 255).contiguous().to(device)


def _to_reference_images(x: torch.Tensor) -> list[np.ndarray]:
    """The reference's input: each image as uint8 HWC (rounded, so a multiple of 1/255 maps back exactly)."""
    arrays = (x.detach().cpu().permute(0, 2, 3, 1) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    return [np.ascontiguousarray(a) for a in arrays]


def _corruption_cases(
    names: Iterable[str], severities: Sequence[int], reference_images: dict[str, int]
) -> list[BenchCase]:
    import augrobust

    cases = []
    try:
        from augrobust.benchmark.reference import load_imagecorruptions

        ic = load_imagecorruptions()
    except ImportError:
        ic = None
    for name in names:
        for severity in severities:
            cases.append(
                BenchCase(
                    f"corrupt:{name}", "augrobust",
                    lambda x, n=name, s=severity: lambda: augrobust.corrupt(x, n, s), severity=severity,
                )
            )  # fmt: skip
            if ic is not None:

                def make_ref(x: torch.Tensor, n: str = name, s: int = severity) -> Callable[[], Any]:
                    images = _to_reference_images(x)  # outside the timed region

                    def loop() -> None:
                        for img in images:
                            ic.corrupt(img, severity=s, corruption_name=n)

                    return loop

                cases.append(
                    BenchCase(
                        f"corrupt:{name}", "imagecorruptions", make_ref, images=reference_images.get(name),
                        severity=severity,
                    )
                )  # fmt: skip
    return cases


def _fresh_pass(x: torch.Tensor) -> Callable[[], Any]:
    return lambda: (x * 0.9 + 0.05).clamp(0, 1)


def _noise_pass(x: torch.Tensor) -> Callable[[], Any]:
    return lambda: (x + 0.1 * torch.randn_like(x)).clamp(0, 1)


def _separable(taps: int) -> Callable[[torch.Tensor], Callable[[], Any]]:
    def make(x: torch.Tensor) -> Callable[[], Any]:
        c = x.shape[1]
        k = torch.full((c, 1, taps, 1), 1.0 / taps, device=x.device, dtype=x.dtype)
        pad = taps // 2

        def run() -> torch.Tensor:
            y = torch.nn.functional.pad(x, (0, 0, pad, pad), mode="replicate")
            y = torch.nn.functional.conv2d(y, k, groups=c)
            y = torch.nn.functional.pad(y, (pad, pad, 0, 0), mode="replicate")
            return torch.nn.functional.conv2d(y, k.transpose(2, 3), groups=c)

        return run

    return make


def _resample(x: torch.Tensor) -> Callable[[], Any]:
    grid = torch.nn.functional.affine_grid(
        torch.eye(2, 3, device=x.device).expand(x.shape[0], 2, 3) * 0.95, list(x.shape), align_corners=False
    )
    return lambda: torch.nn.functional.grid_sample(x, grid, align_corners=False)


def _pool_up(x: torch.Tensor) -> Callable[[], Any]:
    return lambda: torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(x, 4), size=x.shape[-2:])


def _quantise(x: torch.Tensor) -> Callable[[], Any]:
    return lambda: (x * 255).round().clamp(0, 255).to(torch.uint8).float().div(255)


#: The bare torch ops each corruption cannot avoid (its "x of floor" denominator), with the words the table
#: shows. One fresh float32 batch written is the least any out-of-place transform does.
FLOORS: dict[str, tuple[str, Callable[[torch.Tensor], Callable[[], Any]]]] = {
    **{n: ("randn + add + clamp", _noise_pass) for n in ("gaussian_noise", "shot_noise", "impulse_noise",
                                                          "speckle_noise")},
    **{n: ("one affine pass (x a + b).clamp", _fresh_pass) for n in ("brightness", "contrast", "saturate", "fog",
                                                                    "frost", "spatter", "snow")},
    "gaussian_blur": ("separable 9-tap depthwise conv", _separable(9)),
    "defocus_blur": ("separable 9-tap depthwise conv", _separable(9)),
    "glass_blur": ("separable 5-tap depthwise conv", _separable(5)),
    "motion_blur": ("separable 9-tap depthwise conv", _separable(9)),
    "zoom_blur": ("one bilinear grid_sample", _resample),
    "elastic_transform": ("one bilinear grid_sample", _resample),
    "pixelate": ("4x4 avg_pool + nearest upsample", _pool_up),
    "jpeg_compression": ("uint8 quantise round trip", _quantise),
}  # fmt: skip

#: Registry transforms and corruptions timed compiled too (``torch.compile`` of the apply step, draw eager).
#: Four, to keep benchmarks/cuda.sh's compile time (one compile per shape) inside its budget.
COMPILED: tuple[str, ...] = ("GaussianNoise", "DFMX", "Corruption[glass_blur]", "Corruption[zoom_blur]")


def _compiled_case(label: str, backend: str = "inductor") -> BenchCase:
    def make(x: torch.Tensor) -> Callable[[], Any]:
        from augrobust.transforms.registry import transform_registry

        aug = transform_registry()[label].build(x.shape).to(x.device)
        # Every transform shares RobustAugmentation.apply_drawn's code object: start from an empty compile cache
        # (earlier rows are timed already), or dynamo would recompile it with dynamic shapes, then hit its cache
        # limit and silently run eager.
        torch._dynamo.reset()
        step = torch.compile(aug.apply_drawn, fullgraph=True, dynamic=False, backend=backend)

        def run() -> torch.Tensor:
            return step(x, aug.draw(x))

        return run

    return BenchCase(f"compiled:{label}", "augrobust", make)


def _uncompiled_case(label: str) -> BenchCase:
    def make(x: torch.Tensor) -> Callable[[], Any]:
        from augrobust.transforms.registry import transform_registry

        aug = transform_registry()[label].build(x.shape).to(x.device)
        return lambda: aug.apply_drawn(x, aug.draw(x))

    return BenchCase(f"compiled:{label}", "eager", make)


def default_cases(
    corruptions: Sequence[str] | None = None,
    severities: int | Sequence[int] = 3,
    *,
    compiled: bool = False,
    quick: bool = False,
) -> list[BenchCase]:
    """GNT rows (sigma and eps mode against the torch floor and kornia), ANT / AFA / DFM-X rows against their torch
    floor (Gaussian draw + add + clamp, add + clamp, one rfft2/irfft2 round trip), and per corruption: augrobust
    and the reference at each of ``severities`` (one severity or several), and its torch floor once.

    Example:
        >>> cases = default_cases(["pixelate"], [1, 5])
        >>> [(c.impl, c.severity) for c in cases if c.group == "corrupt:pixelate"]  # doctest: +NORMALIZE_WHITESPACE
        [('augrobust', 1), ('imagecorruptions', 1), ('augrobust', 5), ('imagecorruptions', 5),
         ('torch floor', None)]
    """
    import kornia.augmentation as K

    import augrobust
    from augrobust._checks import check_severities, check_severity
    from augrobust.corruptions import registered_names
    from augrobust.functional import eps_for_sigma

    def gaussian_floor(x: torch.Tensor) -> Callable[[], Any]:
        return lambda: (x + 0.5 * torch.randn_like(x)).clamp(0, 1)

    def gnt_sigma(x: torch.Tensor) -> Callable[[], Any]:
        aug = augrobust.GaussianNoise(sigma=0.5)
        return lambda: aug(x)

    def gnt_eps(x: torch.Tensor) -> Callable[[], Any]:
        aug = augrobust.GaussianNoise(eps=eps_for_sigma(0.5, x.shape[1:]))
        return lambda: aug(x)

    def kornia_noise(x: torch.Tensor) -> Callable[[], Any]:
        aug = K.RandomGaussianNoise(std=0.5, p=1.0)
        return lambda: aug(x).clamp(0, 1)

    def speckle(x: torch.Tensor) -> Callable[[], Any]:
        aug = augrobust.SpeckleNoise(sigma=0.35)
        return lambda: aug(x)

    def add_clamp_floor(x: torch.Tensor) -> Callable[[], Any]:
        noise = 0.03 * torch.randn_like(x)  # precomputed: the floor of any additive noise is the add + clamp
        return lambda: (x + noise).clamp(0, 1)

    def fourier_noise(x: torch.Tensor) -> Callable[[], Any]:
        aug = augrobust.FourierNoise(mean_strength=10.0)
        return lambda: aug(x)

    def fft_floor(x: torch.Tensor) -> Callable[[], Any]:
        return lambda: torch.fft.irfft2(torch.fft.rfft2(x), s=x.shape[-2:])

    def dfmx(x: torch.Tensor) -> Callable[[], Any]:
        from augrobust.transforms.dfmx import example_dfms

        aug = augrobust.DFMX(example_dfms(10, x.shape[-1]), p=1.0)
        return lambda: aug(x)

    def adversarial_noise(x: torch.Tensor) -> Callable[[], Any]:
        generator = augrobust.functional.NoiseGenerator(x.shape[1], kernel_size=3, seed=0)
        aug = augrobust.AdversarialNoise(generator, eps=eps_for_sigma(0.5, x.shape[1:])).to(x.device)
        return lambda: aug(x)

    cases = [
        BenchCase("GaussianNoise(sigma=0.5)", "torch floor", gaussian_floor),
        BenchCase("GaussianNoise(sigma=0.5)", "augrobust", gnt_sigma),
        BenchCase("GaussianNoise(sigma=0.5)", "kornia", kornia_noise),
        BenchCase("GaussianNoise(eps)", "torch floor", gaussian_floor),
        BenchCase("GaussianNoise(eps)", "augrobust", gnt_eps),
        BenchCase("SpeckleNoise(sigma=0.35)", "augrobust", speckle),
        BenchCase("AdversarialNoise(3x3 generator)", "torch floor", gaussian_floor),
        BenchCase("AdversarialNoise(3x3 generator)", "augrobust", adversarial_noise),
        BenchCase("FourierNoise(mean_strength=10)", "torch floor", add_clamp_floor),
        BenchCase("FourierNoise(mean_strength=10)", "augrobust", fourier_noise),
        BenchCase("DFMX(p=1)", "torch floor", fft_floor),
        BenchCase("DFMX(p=1)", "augrobust", dfmx),
    ]
    names = list(registered_names() if corruptions is None else corruptions)
    # Slow references are timed on fewer images (the result is per image either way).
    slow = {"glass_blur": 2, "zoom_blur": 8, "frost": 16}
    if quick:
        slow = dict.fromkeys(names, 1)
    levels = (check_severity(severities),) if isinstance(severities, int) else check_severities(severities)
    cases += _corruption_cases(names, levels, slow)
    cases += [BenchCase(f"corrupt:{n}", "torch floor", FLOORS[n][1]) for n in names if n in FLOORS]
    if compiled:
        for label in COMPILED:
            # --quick is a smoke run: the graph capture without Inductor's code generation (seconds, not minutes).
            cases += [_uncompiled_case(label), _compiled_case(label, "aot_eager" if quick else "inductor")]
    return cases


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )  # fmt: skip
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def metadata(device: str, images: str = "builtin") -> dict[str, Any]:
    """Versions, machine, thread policy and the benchmark images: what a reader needs to interpret the numbers."""
    import kornia
    import torchvision

    import augrobust

    meta: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "augrobust": augrobust.__version__,
        "git_commit": _git_commit(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "kornia": kornia.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "images": images,
        "image_names": image_names(images),
    }
    try:
        from importlib.metadata import version

        meta["imagecorruptions"] = version("imagecorruptions")
    except Exception:  # noqa: BLE001 - optional
        meta["imagecorruptions"] = None
    if device.startswith("cuda") and torch.cuda.is_available():
        meta["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return meta


def run_suite(
    cases: Sequence[BenchCase] | None = None,
    *,
    shapes: Sequence[Sequence[int]] = SHAPES,
    device: str = "cpu",
    min_run_time: float = 1.0,
    out: str | os.PathLike[str] | None = None,
    progress: Callable[[BenchResult], None] | None = None,
    images: str = "builtin",
) -> dict[str, Any]:
    """Time every case at every shape on a :func:`photo_batch` of ``images``; write JSON to ``out`` after each row
    (finished work is never lost).

    Returns:
        ``{"metadata": {...}, "results": [BenchResult as dict, ...]}``; the metadata names the image source and
        the severities timed.

    Raises:
        AugrobustValueError: no case or no shape: the run would time nothing; an unknown image source.
        AugrobustError: ``images="skimage"`` without scikit-image.
    """
    check_image_source(images)
    cases = list(default_cases() if cases is None else cases)
    shapes = [tuple(s) for s in shapes]
    if not cases or not shapes:  # an empty report would look like a finished run
        raise AugrobustValueError(
            f"nothing to time: {len(cases)} cases x {len(shapes)} shapes; give at least one of each."
        )
    report: dict[str, Any] = {"metadata": metadata(device, images), "results": []}
    report["metadata"]["severities"] = sorted({c.severity for c in cases if c.severity is not None})
    for shape in shapes:
        x = photo_batch(shape, device, images)
        for case in cases:
            count = min(case.images or x.shape[0], x.shape[0])
            fn = case.make(x[:count])
            fn()  # warm-up (caches, lazy initialisation)
            timer = tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
            m = timer.blocked_autorange(min_run_time=min_run_time)
            times = torch.tensor(m.times)
            q1, q3 = torch.quantile(times, torch.tensor([0.25, 0.75], dtype=times.dtype)).tolist()
            result = BenchResult(
                group=case.group, impl=case.impl, shape=tuple(int(s) for s in shape), device=device, images=count,
                median_ms_per_image=m.median * 1000.0 / count, iqr_ms_per_image=(q3 - q1) * 1000.0 / count,
                runs=len(m.times) * m.number_per_run, severity=case.severity,
            )  # fmt: skip
            report["results"].append({**asdict(result), "images_per_second": result.images_per_second})
            if progress is not None:
                progress(result)
            if out is not None:
                atomic_write_text(out, json.dumps(report, indent=2))
    return report


_FLOOR_WORDS = {
    "GaussianNoise(sigma=0.5)": "randn + add + clamp",
    "GaussianNoise(eps)": "randn + add + clamp",
    "AdversarialNoise(3x3 generator)": "randn + add + clamp",
    "FourierNoise(mean_strength=10)": "add + clamp of a precomputed field",
    "DFMX(p=1)": "rfft2 + irfft2",
}


_SOURCE_WORDS = {
    "builtin": "the built-in test image, rolled per image",
    "skimage": "scikit-image's photographs, centre-cropped, resized with antialiasing, cycled, second half flipped",
}


def _times(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio >= 0.01 else f"{ratio:.2g}x"  # a smoke run's 0.003x is not "0.00x"


def _ratio(ours: float | None, ref: float | None) -> str:
    return _times(ref / ours) if ours and ref else ""


def markdown_table(report: dict[str, Any]) -> str:
    """One table per shape: ms/image per implementation, augrobust's speed-up over the reference, and its time
    as a multiple of the row's torch floor ("x of floor": the bare torch ops the algorithm cannot avoid, named per
    row). ``compiled:`` rows compare ``torch.compile`` of the apply step (augrobust) with eager mode (eager).

    With several severities, corruption rows are labelled ``corrupt:NAME@SEVERITY`` (the floor, which does not
    depend on the severity, is repeated in each), and a second table per shape gives each corruption's speed-up
    over the reference at every severity and the minimum over them. The headings name the image source.
    """
    meta = report["metadata"]
    source = meta.get("images", "builtin")  # reports written before the option existed used the built-in image
    rows: dict[tuple[tuple[int, ...], str, int | None], dict[str, float]] = {}
    for r in report["results"]:
        key = (tuple(r["shape"]), r["group"], r.get("severity"))
        rows.setdefault(key, {})[r["impl"]] = r["median_ms_per_image"]
    severities = sorted({k[2] for k in rows if k[2] is not None})
    several = len(severities) > 1
    timed_at = {(k[0], k[1]) for k in rows if k[2] is not None}  # (shape, group) pairs with per-severity rows
    impls = ["augrobust", "eager", "torch floor", "kornia", "imagecorruptions"]
    if not severities:
        at = ""
    elif several:
        at = f", corruptions at severities {','.join(map(str, severities))}"
    else:
        at = f", corruptions at severity {severities[0]}"
    lines: list[str] = []
    for shape in sorted({k[0] for k in rows}, key=lambda s: s[-1]):
        lines += [
            f"\n**{tuple(shape)} float32, images: {source}{at}, ms per image (median)**\n",
            "| case | " + " | ".join(impls) + " | speed-up vs imagecorruptions | x of floor | floor |",
            "|---|" + "---:|" * (len(impls) + 2) + "---|",
        ]
        for (s, group, severity), by_impl in rows.items():
            if s != shape or (severity is None and (s, group) in timed_at):
                continue  # a corruption's floor row: shown in each of its severity rows
            if severity is not None:
                by_impl = {**rows.get((s, group, None), {}), **by_impl}
            cells = [f"{by_impl[i]:.4g}" if i in by_impl else "" for i in impls]
            ours = by_impl.get("augrobust")
            floor = by_impl.get("torch floor")
            vs_floor = f"{ours / floor:.2f}" if ours and floor else ""
            name = group.split(":", 1)[1] if group.startswith("corrupt:") else None
            words = FLOORS[name][0] if name in FLOORS else (_FLOOR_WORDS.get(group, "") if floor else "")
            label = f"{group}@{severity}" if several and severity is not None else group
            lines.append(
                f"| {label} | " + " | ".join(cells) + f" | {_ratio(ours, by_impl.get('imagecorruptions'))} | "
                f"{vs_floor} | {words} |"
            )
        if several:
            groups = list(dict.fromkeys(g for (s, g, sev) in rows if s == shape and sev is not None))
            lines += [
                f"\n**{tuple(shape)}, images: {source}: speed-up of augrobust over imagecorruptions per severity, "
                "and the minimum over severities**\n",
                "| corruption | " + " | ".join(map(str, severities)) + " | min |",
                "|---|" + "---:|" * (len(severities) + 1),
            ]
            for group in groups:
                ratios = {}
                for severity in severities:
                    by_impl = rows.get((shape, group, severity), {})
                    if by_impl.get("augrobust") and by_impl.get("imagecorruptions"):
                        ratios[severity] = by_impl["imagecorruptions"] / by_impl["augrobust"]
                if not ratios:
                    continue
                low = min(ratios.values())
                worst = f"**{_times(low)}**" if low < 1 else _times(low)  # bold: slower than the reference
                cells = [_times(ratios[s]) if s in ratios else "" for s in severities]
                lines.append(f"| {group.split(':', 1)[-1]} | " + " | ".join(cells) + f" | {worst} |")
    names = meta.get("image_names") or []
    lines.append(
        f"\nMeasured {meta['date']} on {meta['machine']} ({meta['cpu_count']} cores, {meta['torch_threads']} torch "
        f"threads, device {meta['device']}), torch {meta['torch']}, kornia {meta['kornia']}, "
        f"imagecorruptions {meta.get('imagecorruptions')}, commit {meta.get('git_commit')}. "
        f"Images ({source}): {_SOURCE_WORDS.get(source, source)}"
        + (f": {', '.join(names)}." if source != "builtin" and names else ".")
    )
    return "\n".join(lines) + "\n"
