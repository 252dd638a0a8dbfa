"""Canonical per-image seeds: the randomness of a generated dataset, independent of how it was computed.

A generated file's bytes must depend only on *what* is generated (the dataset seed, the image, the corruption
and the severity), never on batch size, worker count, device order, sharding or resumption. Each image's
random parameters are therefore drawn from its own ``torch.Generator``, seeded with :func:`canonical_seed`:

1. the text ``"augrobust-generate/v1|{seed}|{key}|{corruption}|{severity}"`` (``seed`` and ``severity`` in
   decimal, ``key`` the image's stable key: its path relative to the source folder with ``/`` separators, or
   ``"{split}/{index:06d}"`` for indexed sources), encoded as UTF-8;
2. its SHA-256 digest; the first 8 bytes read as a big-endian unsigned integer;
3. masked to 63 bits (``& (2**63 - 1)``), so that it is a valid non-negative ``torch.Generator`` seed.

Another tool reproduces a seed with ``hashlib`` alone (see the example). The draws themselves come from a CPU
``torch.Generator`` (``torch.Generator().manual_seed(seed)``) whatever the device, so a CUDA run draws the same
numbers as a CPU run.

Example:
    >>> import hashlib
    >>> s = canonical_seed(0, "n01440764/ILSVRC2012_val_00000293.JPEG", "glass_blur", 3)
    >>> text = "augrobust-generate/v1|0|n01440764/ILSVRC2012_val_00000293.JPEG|glass_blur|3"
    >>> s == int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") & (2**63 - 1)
    True
    >>> canonical_generator(0, "test/000007", "fog", 1).initial_seed() == canonical_seed(0, "test/000007", "fog", 1)
    True
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from augrobust._checks import check_count, check_severity
from augrobust.errors import AugrobustTypeError, AugrobustValueError

if TYPE_CHECKING:
    import torch

__all__ = ["SEED_RULE", "SEED_RULE_VERSION", "canonical_generator", "canonical_seed"]

#: Bumped if the derivation ever changes (it is part of the hashed text and of every manifest).
SEED_RULE_VERSION = "augrobust-generate/v1"

#: The derivation in words, as written into every manifest.
SEED_RULE = (
    f"seed = int.from_bytes(sha256(f'{SEED_RULE_VERSION}|{{seed}}|{{key}}|{{corruption}}|{{severity}}'.encode('utf-8'))"
    ".digest()[:8], 'big') & (2**63 - 1); params = sample_corruption_params(corruption, (1, 3, H, W), severity, "
    "preset=, reference=, generator=torch.Generator('cpu').manual_seed(seed)) per image, stacked along dim 0"
)


def canonical_seed(seed: int, key: str, corruption: str, severity: int) -> int:
    """The 63-bit seed of one image's draw for one corruption and severity (see the module's rule).

    Args:
        seed: the dataset seed (``>= 0``).
        key: the image's stable key (relative path with ``/``, or ``"{split}/{index:06d}"``).
        corruption: the corruption (or perturbation) name.
        severity: 1..5.

    Example:
        >>> canonical_seed(0, "a/b.png", "fog", 1) == canonical_seed(0, "a/b.png", "fog", 1) != canonical_seed(
        ...     1, "a/b.png", "fog", 1)
        True
    """
    seed = check_count(seed, "seed")
    severity = check_severity(severity)
    for value, name in ((key, "key"), (corruption, "corruption")):
        if not isinstance(value, str):
            raise AugrobustTypeError(f"{name} must be a string, got {type(value).__name__}: {value!r}.")
        if "|" in value:
            raise AugrobustValueError(f"{name} must not contain '|' (the field separator of the seed rule): {value!r}.")
    text = f"{SEED_RULE_VERSION}|{seed}|{key}|{corruption}|{severity}"
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") & (2**63 - 1)


def canonical_generator(seed: int, key: str, corruption: str, severity: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`canonical_seed` of the same arguments."""
    import torch

    return torch.Generator(device="cpu").manual_seed(canonical_seed(seed, key, corruption, severity))
