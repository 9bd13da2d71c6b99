"""The one coordinate convention of GDPW Studio. Every module uses these helpers; none re-derives them.

Three frames appear in the code:

1. **Model frame (3D)**, what a face model returns: centimetres; x points to the subject's left (which
   is the image's right), y up, z towards the camera. Both backends (ICT and FLAME) output this frame;
   FLAME's metres are converted on load.

2. **Normalised image coordinates (2D)**, what the renderer, flows and ``grid_sample`` use:
   x right, y **down**, both in [-1, 1] where -1 and +1 are the *outer edges* of the image (not the
   centres of the border pixels). The centre of pixel column ``c`` of an image ``W`` wide is at
   ``x = (2c + 1) / W - 1``. This is ``torch.nn.functional.grid_sample(..., align_corners=False)``.

3. **Pixel coordinates (2D)**: continuous ``(u, v)`` with the centre of pixel (row r, column c) at
   ``(u, v) = (c, r)`` (OpenCV's convention); pixel c spans [c - 0.5, c + 0.5).

Projection (weak perspective, the paper's camera): with ``camera = (s, tx, ty)`` (s in normalised units
per cm), a model-frame point (X, Y, Z) maps to ``x = s*X + tx``, ``y = -s*Y + ty`` and depth
``z = -s*Z``, so that smaller depth means nearer to the camera.

Flows are **backward** (target to source) offsets in normalised units: a target pixel at normalised
position ``p`` takes its value from the source at ``p + flow(p)``. Two units span the image width (x) or
height (y); multiply by ``W / 2`` (x) or ``H / 2`` (y) for pixels. Flow tensors are ``(B, 2, H, W)`` with
channel 0 = x offset and channel 1 = y offset.
"""

from __future__ import annotations

import torch

__all__ = [
    "pixel_to_norm",
    "norm_to_pixel",
    "pixel_grid",
    "flow_to_pixels",
    "flow_from_pixels",
    "project_weak_perspective",
]


def pixel_to_norm(uv: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pixel coordinates ``(..., 2)`` (u = column, v = row) to normalised ``(..., 2)``.

    ``size`` is ``(H, W)``.
    """
    h, w = size
    scale = uv.new_tensor([2.0 / w, 2.0 / h])
    return (uv + 0.5) * scale - 1.0


def norm_to_pixel(xy: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Normalised coordinates ``(..., 2)`` to pixel coordinates ``(..., 2)``; inverse of ``pixel_to_norm``."""
    h, w = size
    scale = xy.new_tensor([w / 2.0, h / 2.0])
    return (xy + 1.0) * scale - 0.5


def pixel_grid(
    size: tuple[int, int], device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Normalised coordinates of every pixel centre, ``(H, W, 2)`` with ``[..., 0] = x``, ``[..., 1] = y``.

    Adding a flow (permuted to ``(B, H, W, 2)``) to this grid gives a ``grid_sample`` grid.
    """
    h, w = size
    xs = (2.0 * torch.arange(w, device=device, dtype=dtype) + 1.0) / w - 1.0
    ys = (2.0 * torch.arange(h, device=device, dtype=dtype) + 1.0) / h - 1.0
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)


def flow_to_pixels(flow: torch.Tensor) -> torch.Tensor:
    """Normalised flow ``(B, 2, H, W)`` to the same flow in pixels of that grid."""
    h, w = flow.shape[-2:]
    return flow * flow.new_tensor([w / 2.0, h / 2.0]).view(1, 2, 1, 1)


def flow_from_pixels(flow_px: torch.Tensor) -> torch.Tensor:
    """Pixel flow ``(B, 2, H, W)`` to normalised units; inverse of ``flow_to_pixels``."""
    h, w = flow_px.shape[-2:]
    return flow_px * flow_px.new_tensor([2.0 / w, 2.0 / h]).view(1, 2, 1, 1)


def project_weak_perspective(vertices: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """Model-frame vertices ``(B, N, 3)`` in cm to ``(B, N, 3)`` = (x, y normalised, depth).

    ``camera`` is ``(B, 3)`` = (s, tx, ty); see the module docstring for the formula. Depth is ``-s*Z``:
    smaller is nearer, in the same normalised units as x and y.
    """
    s = camera[:, 0].view(-1, 1)
    x = s * vertices[..., 0] + camera[:, 1].view(-1, 1)
    y = -s * vertices[..., 1] + camera[:, 2].view(-1, 1)
    z = -s * vertices[..., 2]
    return torch.stack([x, y, z], dim=-1)
