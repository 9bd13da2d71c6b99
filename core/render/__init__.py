"""Rendering of geometric guidance: a pure-PyTorch rasteriser, barycentric interpolation, the displacement
field and posed neural codes, and the multi-scale pyramid (design doc ``gdpw-model.md`` sections 4 and 5);
``shaded``: a painted, shaded render of the ICT mesh whose pose is known exactly (the landmark embedding and
the edit protocol's ``floor`` are made from it).

All 2-D quantities follow ``core.coords``: normalised image coordinates (y down, pixel centres at
``(2c + 1) / W - 1``) and backward (target to source) flows ``(B, 2, H, W)`` in normalised units.
"""

from core.render.guidance import NeuralCodes, displacement_field
from core.render.interpolate import interpolate
from core.render.pyramid import gaussian_downsample, gaussian_kernel1d, guidance_pyramid
from core.render.raster import Fragments, face_orientation, rasterize

__all__ = [
    "Fragments",
    "rasterize",
    "face_orientation",
    "interpolate",
    "displacement_field",
    "NeuralCodes",
    "gaussian_kernel1d",
    "gaussian_downsample",
    "guidance_pyramid",
]
