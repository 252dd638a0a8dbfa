"""Load the reference implementation (``imagecorruptions`` 1.1.2) on current stacks, for fidelity tests
and speed comparisons only. The library never imports this module.

Shims (process-local monkeypatches, applied on first use):

* NumPy 2 removed ``np.float_``, which ``fog`` uses;
* scikit-image removed ``multichannel=``; ``glass_blur`` and ``gaussian_blur`` call ``gaussian`` with
  ``multichannel=True``, meaning ``channel_axis=-1``;
* ``pkg_resources`` (frost textures) comes from ``setuptools<81``, a dev dependency.
"""

from __future__ import annotations

import functools
from types import ModuleType

__all__ = ["load_imagecorruptions"]

_LOADED: ModuleType | None = None


def load_imagecorruptions() -> ModuleType:
    """Import ``imagecorruptions`` with the shims; raises ``ImportError`` if it is not installed."""
    global _LOADED
    if _LOADED is not None:
        return _LOADED
    import numpy as np

    if not hasattr(np, "float_"):
        np.float_ = np.float64  # type: ignore[attr-defined]
    import skimage.filters

    original = getattr(skimage.filters.gaussian, "__wrapped__", skimage.filters.gaussian)

    @functools.wraps(original)
    def gaussian(*args, multichannel=None, **kwargs):  # type: ignore[no-untyped-def]
        if multichannel is not None and "channel_axis" not in kwargs:
            kwargs["channel_axis"] = -1 if multichannel else None
        return original(*args, **kwargs)

    skimage.filters.gaussian = gaussian
    import warnings

    with warnings.catch_warnings():  # its pkg_resources import warns on every current setuptools
        warnings.simplefilter("ignore")
        import imagecorruptions
        from imagecorruptions import corruptions

    corruptions.gaussian = gaussian  # the module bound the name before the shim
    _LOADED = imagecorruptions
    return imagecorruptions
