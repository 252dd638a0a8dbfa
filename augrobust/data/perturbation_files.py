"""Files of ImageNet-P, Tiny-ImageNet-P and CIFAR-10-P: the layouts of hendrycks/robustness, written and read back.

The layouts (``ImageNet-P/create_p/make_{imagenet,tinyimagenet,cifar}_p.py``; read by ``ImageNet-P/test.py`` and
``cifar-p-eval.py``):

==================  ===========================================================================================
format              layout
==================  ===========================================================================================
``imagenet-p``      ``<set>/<wnid>/<stem>.mp4``: one H.264 video per image, 224 px frames, 1 frame per second,
                    ``libx264 -preset veryslow`` with ``-tune grain`` for the noise sequences and ``-crf 20``
                    otherwise, ``yuv444p`` (what ffmpeg picks for the scripts' RGB PNG frames)
``tinyimagenet-p``  as ``imagenet-p`` with 64 px frames
``cifar-p``         ``<set>.npy``: ``(N, T, 32, 32, 3)`` uint8, the frames themselves (lossless); augrobust adds
                    ``labels.npy`` (``(N,)``; the script collected the labels but did not save them)
==================  ===========================================================================================

``<set>`` is the perturbation name, with ``_2`` / ``_3`` appended for the noise sequences at difficulty 2 and 3
(the scripts' ``gaussian_noise_2`` folders, which ``test.py`` reads for ``--difficulty 2``); the other sequences
are the same at every difficulty (the difficulty is the stride) and have one set.

The MP4 writer and reader use PyAV (``pip install 'augrobust[video]'``), a maintained binding of FFmpeg's
libraries. H.264 is lossy: frames read back from MP4 differ from the generated frames; CIFAR-P arrays do not.

Example:
    >>> set_name("gaussian_noise", 2), set_name("rotate", 1), split_set_name("shot_noise_3")
    ('gaussian_noise_2', 'rotate', ('shot_noise', 3))
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from augrobust.errors import AugrobustValueError

__all__ = [
    "P_FORMATS",
    "P_VARIANTS",
    "encode_mp4",
    "is_noise",
    "read_cifar_p",
    "read_mp4",
    "require_av",
    "set_name",
    "split_set_name",
]

#: The P file layouts.
P_FORMATS: tuple[str, ...] = ("imagenet-p", "tinyimagenet-p", "cifar-p")
#: The perturbation variant (script) of each layout.
P_VARIANTS: dict[str, str] = {"imagenet-p": "imagenet", "tinyimagenet-p": "tinyimagenet", "cifar-p": "cifar"}


def is_noise(name: str) -> bool:
    """The noise sequences (test.py's ``'noise' in perturbation``): the difficulty picks the noise level.

    Example:
        >>> is_noise("speckle_noise"), is_noise("snow")
        (True, False)
    """
    return "noise" in name


def set_name(name: str, difficulty: int) -> str:
    """The folder / array name of a perturbation at a difficulty (``gaussian_noise_2``; ``rotate`` at any one)."""
    return f"{name}_{difficulty}" if is_noise(name) and difficulty > 1 else name


def split_set_name(stem: str) -> tuple[str, int]:
    """Inverse of :func:`set_name`: ``"gaussian_noise_3"`` -> ``("gaussian_noise", 3)``."""
    head, _, tail = stem.rpartition("_")
    if head and is_noise(head) and tail in ("2", "3"):
        return head, int(tail)
    return stem, 1


def require_av() -> Any:
    """Import PyAV, or raise a clear error naming the optional extra that provides it."""
    try:
        import av
    except ImportError as e:
        raise AugrobustValueError(
            "the ImageNet-P video layouts (imagenet-p, tinyimagenet-p) are written and read with PyAV, which is not "
            "installed: pip install 'augrobust[video]' (or pip install av). The cifar-p layout needs no extra."
        ) from e
    return av


def encode_mp4(frames: np.ndarray, *, noise: bool) -> bytes:
    """Encode ``(T, H, W, 3)`` uint8 frames as the scripts' ffmpeg command did; returns the MP4 bytes.

    ``ffmpeg -r 1 -framerate 1 -i img%01d.png -vcodec libx264 (-tune grain | -crf 20) -preset veryslow``: one
    frame per second, libx264 in ``yuv444p`` (ffmpeg's choice for RGB input when no ``-pix_fmt`` is given). One
    encoder thread, so that the bytes do not depend on the machine's core count.

    Example:
        >>> import numpy as np
        >>> data = encode_mp4(np.zeros((3, 16, 16, 3), np.uint8), noise=False)
        >>> read_mp4(data).shape
        (3, 16, 16, 3)
    """
    av = require_av()
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise AugrobustValueError(f"frames must be (T, H, W, 3) uint8, got shape {frames.shape}.")
    buf = io.BytesIO()
    options = {"preset": "veryslow", **({"tune": "grain"} if noise else {"crf": "20"})}
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1, options=options)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv444p"
        stream.codec_context.thread_count = 1
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def read_mp4(source: str | os.PathLike[str] | bytes) -> np.ndarray:
    """Decode an MP4 (path or bytes) to ``(T, H, W, 3)`` uint8 RGB frames."""
    av = require_av()
    handle: Any = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    with av.open(handle, mode="r") as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if not frames:
        raise AugrobustValueError(f"{source if not isinstance(source, bytes) else 'the video'} holds no frames.")
    return np.stack(frames)


def read_cifar_p(root: str | os.PathLike[str], name: str, difficulty: int = 1) -> np.ndarray:
    """The ``(N, T, H, W, 3)`` uint8 array of a CIFAR-P set, memory-mapped (``root/<set>.npy``)."""
    path = Path(root) / f"{set_name(name, difficulty)}.npy"
    if not path.is_file():
        have = sorted(p.stem for p in Path(root).glob("*.npy")) if Path(root).is_dir() else []
        raise AugrobustValueError(
            f"{str(path)!r} does not exist; {str(root)!r} holds {have or 'no .npy sets'}. Generate it with "
            f"augrobust generate --format cifar-p --perturbations {name} --difficulties {difficulty}."
        )
    arr = np.load(path, mmap_mode="r")
    if arr.ndim != 5 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise AugrobustValueError(f"{str(path)!r} is not a CIFAR-P set: shape {arr.shape} {arr.dtype}.")
    return arr
