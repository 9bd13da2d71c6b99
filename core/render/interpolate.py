"""Barycentric interpolation of per-vertex attributes over rasterised fragments (spec section 4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.render.raster import Fragments

__all__ = ["interpolate"]


def interpolate(attrs: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Perspective-free barycentric interpolation of vertex attributes, zero on background.

    Args:
        attrs: ``(B, N, C)`` per-mesh or ``(N, C)`` shared per-vertex attributes (any units).
        fragments: output of ``rasterize`` for ``B`` meshes with ``N`` vertices.

    Returns:
        ``(B, C, H, W)`` in the units of ``attrs``; 0 wherever no triangle is drawn. Differentiable with
        respect to ``attrs`` (not to the fragments, which carry no gradient). The tensor is in
        ``torch.channels_last`` memory format (a permuted ``(B, H, W, C)`` buffer): convolutions and
        ``grid_sample`` take it as is, and a ``.contiguous()`` transpose would cost more than the
        interpolation itself; use ``reshape`` rather than ``view`` on it.
    """
    b, h, w = fragments.face_id.shape
    if attrs.dim() == 2:
        table, offset = attrs, None
    elif attrs.dim() == 3:
        if attrs.shape[0] not in (1, b):
            raise ValueError(f"attrs batch {attrs.shape[0]} does not match fragments batch {b}")
        if attrs.shape[0] == 1:
            table, offset = attrs[0], None
        else:
            table, offset = attrs.reshape(-1, attrs.shape[-1]), attrs.shape[1]
    else:
        raise ValueError(f"attrs must be (N, C) or (B, N, C), got {tuple(attrs.shape)}")
    if fragments.faces.shape[0] == 0:
        return table.new_zeros(b, table.shape[-1], h, w)
    # Background pixels point at face 0 with zero weights, so they come out as exactly 0 without a mask.
    vid = fragments.faces.index_select(0, fragments.face_id.clamp(min=0).view(-1))  # (B*H*W, 3)
    if offset is not None:
        batch = torch.arange(b, device=vid.device).repeat_interleave(h * w)
        vid = vid + (batch * offset)[:, None]
    weights = fragments.bary.view(-1, 3).to(table.dtype)
    # embedding_bag: one fused weighted gather-sum per pixel, differentiable w.r.t. the table.
    out = F.embedding_bag(vid, table, mode="sum", per_sample_weights=weights)  # (B*H*W, C)
    return out.view(b, h, w, -1).permute(0, 3, 1, 2)
