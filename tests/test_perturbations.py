"""ImageNet-P sequences: shapes and frame counts, and frame-by-frame fidelity to a transcription of the
reference scripts (hendrycks/robustness ImageNet-P/create_p/make_{imagenet,cifar,tinyimagenet}_p.py).

The scripts cannot be installed (they walk ImageNet folders and call ffmpeg), so their frame loops are
transcribed below with the libraries they call: Pillow (``Image.transform``, what torchvision 0.2-0.4's
``affine`` ends in), NumPy, scikit-image and torch. Random sequences share their draws with augrobust.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import zoom as scipy_zoom
from skimage import color as skcolor
from skimage.filters import gaussian as sk_gaussian

from augrobust.errors import AugrobustValueError
from augrobust.perturbations import frame_count, get_perturbation_names, get_spec, perturb, perturbation_generators
from tests.oracle import ic_corruptions, photo, real_photos

# ----------------------------------------------------------------------------- transcription of the scripts


def tv_affine_coefficients(size, angle, translate, scale, shear):
    """Old torchvision: inverse of T * C * RSS * C^-1, centre at (w/2 + 0.5, h/2 + 0.5), x shear."""
    w, h = size
    cx, cy = w * 0.5 + 0.5, h * 0.5 + 0.5
    rot, sh = math.radians(angle), math.radians(shear)
    det = math.cos(rot + sh) * math.cos(rot) + math.sin(rot + sh) * math.sin(rot)
    k = (1.0 / scale) / det
    m = [k * math.cos(rot + sh), k * math.sin(rot + sh), k * 0, k * -math.sin(rot), k * math.cos(rot), k * 0]
    m[2] += m[0] * (-cx - translate[0]) + m[1] * (-cy - translate[1])
    m[5] += m[3] * (-cx - translate[0]) + m[4] * (-cy - translate[1])
    m[2] += cx
    m[5] += cy
    return m


def tv_affine(img, angle=0.0, translate=(0, 0), scale=1.0, shear=0.0, resample=Image.NEAREST):
    return img.transform(
        img.size, Image.AFFINE, tv_affine_coefficients(img.size, angle, translate, scale, shear), resample
    )


def tv_center_crop(img, size):
    w, h = img.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def to_tensor(img):
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)


def to_pil_array(t):
    return t.mul(255).byte().permute(1, 2, 0).numpy()


def ref_frames(name, img, variant, difficulty, draws=None):
    """The script's frames (H, W, 3 uint8 each) for one PIL image; ``draws`` are the shared random draws."""
    crop = {"imagenet": 224, "tinyimagenet": 64, "cifar": None}[variant]

    def cropped(im):
        return im if crop is None else tv_center_crop(im, crop)

    out = []
    if name == "gaussian_noise":
        sigma = {"imagenet": (0.03, 0.05, 0.08), "tinyimagenet": (0.025, 0.05, 0.075), "cifar": (0.02, 0.04, 0.06)}[
            variant
        ][difficulty - 1]
        x = to_tensor(cropped(img))
        out.append(np.asarray(img) if variant == "cifar" else to_pil_array(x))
        for i in range(1, 31):
            out.append(to_pil_array(torch.clamp(x + sigma * draws[i - 1], 0, 1)))
    elif name == "shot_noise":
        lam = {"imagenet": (300, 120, 60), "tinyimagenet": (500, 250, 125), "cifar": (700, 400, 200)}[variant][
            difficulty - 1
        ]
        base = cropped(img)
        out.append(np.asarray(base))
        for i in range(1, 31):
            out.append(np.uint8(255 * np.clip(draws[i - 1] / lam, 0, 1)))
    elif name == "speckle_noise":
        s = {"imagenet": (0.05, 0.10, 0.15), "tinyimagenet": (0.05, 0.1, 0.15), "cifar": (0.05, 0.07, 0.1)}[variant][
            difficulty - 1
        ]
        base = cropped(img)
        out.append(np.asarray(base))
        x = np.asarray(base) / 255.0
        for i in range(1, 31):
            out.append(np.uint8(255 * np.clip(x + x * (0.0 + s * draws[i - 1]), 0, 1)))
    elif name == "brightness":
        step = {"imagenet": 2, "tinyimagenet": 2, "cifar": 1.5}[variant]
        x = np.asarray(cropped(img)) / 255.0
        for i in range(31):
            hsv = skcolor.rgb2hsv(x)
            hsv[:, :, 2] = np.clip(hsv[:, :, 2] + (i - 15) * step / 100.0, 0, 1)
            out.append(np.uint8(skcolor.hsv2rgb(hsv) * 255))
    elif name == "translate":
        n, k = {"imagenet": (41, 20), "tinyimagenet": (31, 15), "cifar": (16, 7)}[variant]
        for i in range(n):
            out.append(np.asarray(cropped(tv_affine(img, translate=(i - k, 0)))))
    elif name == "rotate":
        for i in range(31):
            out.append(np.asarray(cropped(tv_affine(img, angle=i - 15, resample=Image.BILINEAR))))
    elif name == "scale":
        for i in range(31):
            s = (i * 2 + 70) / 100.0 if variant == "cifar" else (i * 2.5 + 40) / 100.0
            out.append(np.asarray(cropped(tv_affine(img, scale=s, resample=Image.BILINEAR))))
    elif name == "shear":
        for i in range(31):
            out.append(np.asarray(cropped(tv_affine(img, shear=i - 15, resample=Image.BILINEAR))))
    elif name == "zoom_blur":
        first = cropped(img)
        out.append(np.asarray(first))
        avg = to_tensor(first)
        for i in range(1, 31):
            avg += to_tensor(cropped(tv_affine(img, scale=1 + 0.004 * i, resample=Image.BILINEAR)))
            out.append(to_pil_array(avg / (i + 1)))
    elif name == "gaussian_blur":
        base, step, trunc = {
            "imagenet": (0.25, 0.035, 6.0),
            "tinyimagenet": (0.35, 0.014, 7.0),
            "cifar": (0.3, 0.015, 7.0),
        }[variant]
        x = np.asarray(cropped(img)) / 255.0
        for i in range(31):
            out.append(np.uint8(255 * sk_gaussian(x, sigma=base + step * i, channel_axis=-1, truncate=trunc)))
    elif name == "motion_blur":
        radius, sigma, n, offset, step = {
            "imagenet": (10, 3, 31, 30, 4),
            "tinyimagenet": (14, 3, 31, 30, 5),
            "cifar": (6, 1.8, 21, 20, 9),
        }[variant]
        base = np.asarray(cropped(img))
        for i in range(n):
            # Wand / ImageMagick stand-in: imagecorruptions' NumPy port, read back as 8-bit (nearest level)
            blurred = ic_corruptions._motion_blur(base, radius=radius, sigma=sigma, angle=(i - offset) * step)
            out.append(np.uint8(np.clip(np.rint(blurred), 0, 255)))
    elif name == "snow":
        spread, zoom, radius, sigma = {
            "imagenet": (0.3, 3, 14, 4),
            "tinyimagenet": (0.28, 2, 10, 2.5),
            "cifar": (0.3, 2, 10, 2),
        }[variant]
        x = np.asarray(cropped(img)) / 255.0
        n = x.shape[0]
        layer = (0.05 + spread * draws)[..., np.newaxis]  # np.random.normal(loc=0.05, scale=spread), draw for draw
        side = int(np.ceil(n / zoom))
        top = (n - side) // 2
        layer = scipy_zoom(layer[top : top + side, top : top + side], (zoom, zoom, 1), order=1)
        trim = (layer.shape[0] - n) // 2
        layer = layer[trim : trim + n, trim : trim + n]
        layer[layer < 0.5] = 0
        png = (np.clip(layer.squeeze(), 0, 1) * 255).astype(np.uint8)
        for i in range(31):
            moved = np.uint8(
                np.clip(
                    np.rint(ic_corruptions._motion_blur(png, radius=radius, sigma=sigma, angle=i * 4 - 150)), 0, 255
                )
            )
            flakes = (moved / 255.0)[..., np.newaxis]
            gray = cv2.cvtColor(np.float32(x), cv2.COLOR_RGB2GRAY).reshape(n, n, 1)
            z = 0.85 * x + (1 - 0.85) * np.maximum(x, gray * 1.5 + 0.5)
            out.append(np.uint8(np.clip(z + flakes + np.rot90(flakes, k=2), 0, 1) * 255))
    elif name == "tilt":
        k = 0.75 if variant == "cifar" else 1.0
        x = np.asarray(img)
        h, w = x.shape[:2]
        for i in range(31):
            out.append(
                np.asarray(cropped(Image.fromarray(opencv_warp_fixed_point(x, tilt_forward(w, h, k * (i - 15))))))
            )
    elif name == "spatter":
        loc, scale, sigma, thr, flow = {
            "imagenet": (0.65, 0.27, 3.7, 0.69, [0.05, 0.1, 0.15, 0.7]),
            "tinyimagenet": (0.6, 0.25, 1.75, 0.7, [0.2, 0.8]),
            "cifar": (0.6, 0.265, 1.75, 0.7, [0.2, 0.8]),
        }[variant]
        x = cv2.cvtColor(np.array(cropped(img), dtype=np.float32) / 255.0, cv2.COLOR_BGR2BGRA)
        liquid = sk_gaussian(loc + scale * draws, sigma=sigma)  # np.random.normal(loc, scale), draw for draw
        liquid[liquid < thr] = 0
        for _ in range(31):
            liquid_u8 = (liquid * 255).astype(np.uint8)
            dist = 255 - cv2.Canny(liquid_u8, 50, 150)
            dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
            _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
            dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
            dist = cv2.equalizeHist(dist)
            dist = cv2.filter2D(dist, cv2.CV_8U, np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]))
            dist = cv2.blur(dist, (3, 3)).astype(np.float32)
            m = cv2.cvtColor(liquid_u8 * dist, cv2.COLOR_GRAY2BGRA)
            if np.max(m[..., :3]) == 0:  # no liquid left: the script divides by 0 (NaN frames); augrobust adds no water
                out.append(np.uint8(x[..., :3] * 255))
                liquid = np.apply_along_axis(
                    lambda col: np.convolve(col, np.array(flow), mode="same"), axis=0, arr=liquid
                )
                continue
            m /= np.max(m, axis=(0, 1))
            m *= 0.6
            ones = np.ones_like(m[..., :1])
            tint = cv2.cvtColor(
                np.concatenate((175 / 255.0 * ones, 238 / 255.0 * ones, 238 / 255.0 * ones), axis=2), cv2.COLOR_BGR2BGRA
            )
            out.append(np.uint8(cv2.cvtColor(np.clip(x + m * tint, 0, 1), cv2.COLOR_BGRA2BGR) * 255))
            liquid = np.apply_along_axis(lambda col: np.convolve(col, np.array(flow), mode="same"), axis=0, arr=liquid)
    else:
        raise KeyError(name)
    return np.stack(out)


def tilt_forward(w, h, deg):
    """The script's camera: P2 @ T @ RX @ RY @ P1 with focal length sqrt(w^2 + h^2), phi = theta = deg."""
    a = np.deg2rad(deg)
    f = np.sqrt(w**2 + h**2)
    p1 = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1], [0, 0, 1]])
    rx = np.array([[1, 0, 0, 0], [0, np.cos(a), -np.sin(a), 0], [0, np.sin(a), np.cos(a), 0], [0, 0, 0, 1]])
    ry = np.array([[np.cos(a), 0, -np.sin(a), 0], [0, 1, 0, 0], [np.sin(a), 0, np.cos(a), 0], [0, 0, 0, 1]])
    t = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, f], [0, 0, 0, 1]])
    p2 = np.array([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0]])
    return p2 @ t @ rx @ ry @ p1


def opencv_warp_fixed_point(img, forward):
    """cv2.warpPerspective(img, forward, (w, h)) as OpenCV 3.x-4.10 computes it (the scripts' OpenCV).

    Inverse map per pixel in float64 within 32 x 32-pixel output blocks (x = block start + offset), rounded to
    1/32 pixel; integer bilinear weights on a 2^15 scale; black outside. Checked once against
    opencv-python-headless 4.10.0.84: 0 differing values on 5 photographs x 31 frames (docs/imagenet_p.md).
    """
    inv = np.linalg.inv(forward)
    h, w = img.shape[:2]
    bh = min(16, h)
    bw = min(1024 // bh, w)
    ys, xs = np.mgrid[0:h, 0:w]
    start, off = (xs // bw) * bw, xs % bw
    bx = inv[0, 0] * start + inv[0, 1] * ys + inv[0, 2]
    by = inv[1, 0] * start + inv[1, 1] * ys + inv[1, 2]
    bz = inv[2, 0] * start + inv[2, 1] * ys + inv[2, 2]
    z = bz + inv[2, 0] * off
    z = np.where(z != 0, 32 / np.where(z != 0, z, 1), 0)
    gx = np.rint(np.clip((bx + inv[0, 0] * off) * z, -(2**31), 2**31 - 1)).astype(np.int64)
    gy = np.rint(np.clip((by + inv[1, 0] * off) * z, -(2**31), 2**31 - 1)).astype(np.int64)
    col, row, fx, fy = gx >> 5, gy >> 5, gx & 31, gy & 31
    total = np.zeros(img.shape, np.int64)
    for dy, dx, wt in ((0, 0, (32 - fy) * (32 - fx)), (0, 1, (32 - fy) * fx), (1, 0, fy * (32 - fx)), (1, 1, fy * fx)):
        r, c = row + dy, col + dx
        ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        total += img[np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)].astype(np.int64) * (wt * 32 * ok)[..., None]
    return np.clip((total + (1 << 14)) >> 15, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- inputs and shared draws

IMPLEMENTED = get_perturbation_names()


def imagenet_input() -> np.ndarray:
    """A photograph as Resize(256) leaves it: shorter side 256, not square (so crops and centres matter)."""
    img = real_photos()["chelsea"]  # 300 x 451
    h, w = img.shape[:2]
    size = (256, int(256 * w / h))
    return np.asarray(Image.fromarray(img).resize(size[::-1], Image.BILINEAR))


def cifar_inputs() -> np.ndarray:
    return np.stack([photo(n, (32, 32)) for n in ("astronaut", "coffee")])


def shared_draws(name, u: torch.Tensor, variant, difficulty, seed):
    """Draws made the reference's way (torch / NumPy global generators), as augrobust params and per image."""
    spec = get_spec(name)
    if name == "gaussian_noise":
        params = spec.sample(u, difficulty, variant, [torch.Generator().manual_seed(seed + b) for b in range(len(u))])
        return params, [params["noise"][b] for b in range(len(u))]
    if name == "shot_noise":
        lam = {"imagenet": (300, 120, 60), "tinyimagenet": (500, 250, 125), "cifar": (700, 400, 200)}[variant][
            difficulty - 1
        ]
        np.random.seed(seed)
        per_image = []
        for b in range(len(u)):
            z = u[b].permute(1, 2, 0).numpy() / 255.0
            per_image.append(np.stack([np.random.poisson(z * lam) for _ in range(30)]).astype(np.float64))
        counts = torch.from_numpy(np.stack(per_image)).permute(0, 1, 4, 2, 3)
        return {"counts": counts}, per_image
    if name == "speckle_noise":
        np.random.seed(seed)
        per_image = [np.random.standard_normal((30, *u.shape[2:], 3)) for _ in range(len(u))]
        noise = torch.from_numpy(np.stack(per_image)).permute(0, 1, 4, 2, 3)
        return {"noise": noise}, per_image
    if name in ("snow", "spatter"):
        np.random.seed(seed)
        per_image = [np.random.standard_normal(tuple(u.shape[2:])) for _ in range(len(u))]
        key = "snow_noise" if name == "snow" else "liquid_noise"
        return {key: torch.from_numpy(np.stack(per_image))}, per_image
    return {}, [None] * len(u)


def test_numpy_normal_is_scaled_standard_normal():
    """The speckle transcription relies on normal(scale=s) being 0 + s * standard_normal, draw for draw."""
    np.random.seed(3)
    a = np.random.normal(size=1000, scale=0.07)
    np.random.seed(3)
    assert np.array_equal(a, 0.0 + 0.07 * np.random.standard_normal(1000))
    np.random.seed(4)
    a = np.random.normal(size=(8, 8), loc=0.05, scale=0.3)
    np.random.seed(4)
    assert np.array_equal(a, 0.05 + 0.3 * np.random.standard_normal((8, 8)))


# ----------------------------------------------------------------------------- fidelity


def _compare(name, images: np.ndarray, variant, difficulty, seed=0):
    u = torch.from_numpy(images.copy()).permute(0, 3, 1, 2).contiguous()
    spec = get_spec(name)
    crop = {"imagenet": 224, "tinyimagenet": 64, "cifar": None}[variant]
    work = u if spec.geometric or crop is None else torch.stack([to_uint8_hwc_crop(im, crop) for im in images])
    params, draws = shared_draws(name, work, variant, difficulty, seed)
    frames = spec.apply(work, difficulty, variant, params)
    if spec.geometric and crop is not None:
        top, left = int(round((u.shape[2] - crop) / 2.0)), int(round((u.shape[3] - crop) / 2.0))
        frames = frames[..., top : top + crop, left : left + crop]
    for b, im in enumerate(images):
        ref = ref_frames(name, Image.fromarray(im), variant, difficulty, draws[b])
        got = frames[b].permute(0, 2, 3, 1).numpy()
        assert got.shape == ref.shape, (got.shape, ref.shape)
        diff = np.abs(got.astype(int) - ref.astype(int))
        assert diff.max() == 0, (
            f"{name}/{variant}/d{difficulty}: {int((diff > 0).sum())} values differ, max {diff.max()}"
        )


def to_uint8_hwc_crop(im: np.ndarray, crop: int) -> torch.Tensor:
    return torch.from_numpy(np.asarray(tv_center_crop(Image.fromarray(im), crop)).copy()).permute(2, 0, 1)


@pytest.mark.parametrize("name", IMPLEMENTED)
def test_fidelity_cifar(name):
    for difficulty in (1, 3) if "noise" in name else (1,):
        _compare(name, cifar_inputs(), "cifar", difficulty, seed=difficulty)


@pytest.mark.parametrize("name", IMPLEMENTED)
def test_fidelity_tinyimagenet(name):
    images = np.stack([photo("rocket", (64, 64))])  # Tiny-ImageNet images are 64 x 64 (Resize(64) keeps them)
    _compare(name, images, "tinyimagenet", 3 if "noise" in name else 1, seed=11)


@pytest.mark.parametrize("name", IMPLEMENTED)
def test_fidelity_imagenet(name):
    _compare(name, imagenet_input()[None], "imagenet", 2 if "noise" in name else 1, seed=7)


def test_tilt_against_installed_opencv():
    """The installed OpenCV: exact up to 4.10; 4.11+ interpolates in floating point (measured within 3 levels)."""
    img = imagenet_input()
    h, w = img.shape[:2]
    got = perturb(torch.from_numpy(img.copy()).permute(2, 0, 1)[None], "tilt", 1, variant="imagenet", crop=None)[0]
    worst = 0
    for i in (0, 7, 15, 22, 30):
        ref = cv2.warpPerspective(img, tilt_forward(w, h, i - 15), (w, h))
        worst = max(worst, int(np.abs(ref.astype(int) - got[i].permute(1, 2, 0).numpy().astype(int)).max()))
    major, minor = (int(v) for v in cv2.__version__.split(".")[:2])
    assert worst <= (0 if (major, minor) <= (4, 10) else 3), (cv2.__version__, worst)


# ----------------------------------------------------------------------------- shapes, seeding, errors


@pytest.mark.parametrize("name", IMPLEMENTED)
def test_shapes_and_frame_counts(name):
    expected = {
        "translate": {"imagenet": 41, "cifar": 16, "tinyimagenet": 31},
        "motion_blur": {"imagenet": 31, "cifar": 21, "tinyimagenet": 31},
    }.get(name, {})
    for variant, size, out in (("cifar", 32, 32), ("imagenet", 240, 224), ("tinyimagenet", 70, 64)):
        x = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8)
        frames = perturb(x, name, 1, variant=variant, generator=torch.Generator().manual_seed(0))
        t = expected.get(variant, 31)
        assert frame_count(name, variant) == t
        assert frames.shape == (2, t, 3, out, out) and frames.dtype == torch.uint8
        flt = perturb(x.float() / 255, name, 1, variant=variant, generator=torch.Generator().manual_seed(0))
        assert flt.dtype == torch.float32 and torch.equal((flt * 255).round().to(torch.uint8), frames)


def test_per_image_generators_do_not_depend_on_the_batch():
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    whole = perturb(
        x, "gaussian_noise", 1, variant="cifar", generator=perturbation_generators("gaussian_noise", 1, [0, 1, 2])
    )
    last = perturb(
        x[2:], "gaussian_noise", 1, variant="cifar", generator=perturbation_generators("gaussian_noise", 1, [2])
    )
    assert torch.equal(whole[2:], last)
    assert not torch.equal(whole[0, 1:], whole[1, 1:])


def test_errors():
    x = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    with pytest.raises(AugrobustValueError, match="unknown perturbation"):
        perturb(x, "fog", 1)
    with pytest.raises(AugrobustValueError, match="crop=None"):
        perturb(x, "rotate", 1, variant="imagenet")
    with pytest.raises(AugrobustValueError, match="difficulty"):
        perturb(x, "rotate", 4, variant="cifar")
    with pytest.raises(AugrobustValueError, match="RGB"):
        perturb(torch.zeros(1, 1, 32, 32), "rotate", 1, variant="cifar")


def test_pil_affine_nearest_against_pillow():
    """The general nearest path (translate uses a plain shift): Pillow's NEAREST affine, sub-pixel offsets too."""
    from augrobust.perturbations.spec import old_torchvision_affine_matrix, pil_affine

    img = photo("coffee", (40, 56))
    u = torch.from_numpy(img.copy()).permute(2, 0, 1)[None]
    cases = [(0.0, (-5, 0), 1.0, 0.0), (7.0, (3, 2), 1.1, 0.0), (0.0, (0, 0), 0.8, 9.0)]
    got = pil_affine(u, [old_torchvision_affine_matrix(56, 40, *c) for c in cases], bilinear=False)
    for t, c in enumerate(cases):
        ref = np.asarray(tv_affine(Image.fromarray(img), *c, resample=Image.NEAREST))
        assert np.array_equal(got[0, t].permute(1, 2, 0).numpy(), ref), c
