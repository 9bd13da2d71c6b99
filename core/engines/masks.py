"""Morphology of ``(B, 1, H, W)`` masks in [0, 1], at a cost that does not grow with the radius."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def box_sum(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Sum of ``x (B, C, H, W)`` over the ``(2r + 1)``-square around each pixel (zeros outside), from
    summed-area tables: O(1) per pixel whatever the radius."""
    if radius <= 0:
        return x
    k = 2 * radius + 1
    # float32 sums of 0/1 masks stay exact below 2**24 pixels; for other values the rounding is ~1e-7 of the total
    p = F.pad(x.float(), (radius + 1, radius, radius + 1, radius))
    c = p.cumsum(-1).cumsum(-2)
    return (c[..., k:, k:] - c[..., :-k, k:] - c[..., k:, :-k] + c[..., :-k, :-k]).to(x.dtype)


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Square dilation (the max over the ``(2r + 1)``-square) of a 0/1 mask ``(B, 1, H, W)``."""
    if radius <= 0:
        return mask
    return (box_sum((mask > 0.5).to(mask.dtype), radius) > 0.5).to(mask.dtype)


def erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Square erosion of a 0/1 mask; pixels beyond the image border count as inside."""
    if radius <= 0:
        return mask
    return 1.0 - dilate(1.0 - mask, radius)


def box_blur(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the square around each pixel, counting only pixels inside the image."""
    if radius <= 0:
        return x
    ones = torch.ones_like(x[:, :1])
    return box_sum(x, radius) / box_sum(ones, radius)


def soft_edge(mask: torch.Tensor) -> torch.Tensor:
    """A 0/1 mask ``(B, 1, H, W)`` with a one-pixel soft rim outside it, so that a replaced region meets its
    surroundings without a seam."""
    return torch.maximum(mask, F.avg_pool2d(mask, 3, stride=1, padding=1, count_include_pad=False))
