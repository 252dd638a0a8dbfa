"""The names of the 19 ImageNet-C corruptions and their subsets, with no heavy import.

They live apart from the registry (:mod:`augrobust.corruptions`, which imports torch and every kernel) so
that the ``augrobust`` command can list them in its help without loading torch.

Example:
    >>> SUBSETS["noise"]
    ('gaussian_noise', 'shot_noise', 'impulse_noise')
    >>> len(CORRUPTION_ORDER), len(SUBSETS["common"])
    (19, 15)
"""

from __future__ import annotations

__all__ = ["CORRUPTION_ORDER", "SUBSETS"]

#: The order of ``imagecorruptions`` (``corruption_number`` indexes it): 15 benchmark, then 4 hold-out.
CORRUPTION_ORDER: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression", "speckle_noise", "gaussian_blur", "spatter", "saturate",
)  # fmt: skip

#: Subsets as ``imagecorruptions.get_corruption_names`` defines them (slices of the order above).
SUBSETS: dict[str, tuple[str, ...]] = {
    "common": CORRUPTION_ORDER[:15],
    "validation": CORRUPTION_ORDER[15:],
    "all": CORRUPTION_ORDER,
    "noise": CORRUPTION_ORDER[0:3],
    "blur": CORRUPTION_ORDER[3:7],
    "weather": CORRUPTION_ORDER[7:11],
    "digital": CORRUPTION_ORDER[11:15],
}
