"""Example inputs that ship with the installed packages, so demos work with nothing downloaded."""

from __future__ import annotations

import numpy as np

DEFAULT_NAME = "DEFAULT"


def default_portrait() -> np.ndarray:
    """scikit-image's astronaut photo (public domain, NASA), RGB uint8 ``(512, 512, 3)``."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())
