"""Geometric guidance patterns (spec section 5): the displacement field and the posed neural codes."""

from __future__ import annotations

import torch
from torch import nn

from core.render.interpolate import interpolate
from core.render.raster import Fragments, rasterize

__all__ = ["displacement_field", "NeuralCodes"]


def displacement_field(
    verts_src: torch.Tensor,
    verts_tgt: torch.Tensor,
    faces: torch.Tensor,
    size: tuple[int, int],
    fragments: Fragments | None = None,
    cull_backfaces: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Geometric displacement field ``F_geo`` (spec section 5.1): a backward, target-to-source flow.

    The per-vertex attribute ``src.xy - tgt.xy`` is rasterised with the *target* mesh, so a target pixel at
    normalised position ``p`` covered by the face corresponds to ``p + flow(p)`` in the source image; the
    flow is directly a ``grid_sample`` offset (``core.coords`` convention).

    Args:
        verts_src, verts_tgt: ``(B, N, 3)`` projected vertices (x, y normalised, y down; z depth, smaller
            = nearer) of the same mesh in the source and target poses.
        faces: ``(F, 3)`` long.
        size: ``(H, W)`` in pixels.
        fragments: optional precomputed ``rasterize(verts_tgt, faces, size)`` to avoid rasterising again.
        cull_backfaces: passed to ``rasterize`` when ``fragments`` is not given.

    Returns:
        ``flow (B, 2, H, W)`` in normalised units (channel 0 = x), 0 on background, differentiable w.r.t.
        the vertex x, y (through the attribute, not through visibility); ``mask (B, 1, H, W)`` float.
    """
    if verts_src.shape != verts_tgt.shape:
        raise ValueError(f"source and target shapes differ: {tuple(verts_src.shape)} vs {tuple(verts_tgt.shape)}")
    if fragments is None:
        fragments = rasterize(verts_tgt, faces, size, cull_backfaces=cull_backfaces)
    elif fragments.size != (int(size[0]), int(size[1])):
        raise ValueError(f"fragments are {fragments.size}, expected {tuple(size)}")
    flow = interpolate(verts_src[..., :2] - verts_tgt[..., :2], fragments)
    return flow, fragments.mask


class NeuralCodes(nn.Module):
    """Posed neural codes (spec section 5.2): a learned per-vertex code table rasterised on a posed mesh.

    The table ``E`` is ``(num_vertices, dim)``, initialised U[0, 1) as in the paper, with no regulariser.
    Gradients reach it only through the barycentric interpolation; vertex positions are constants. The same
    module serves the source pose (``C_s``, encoder input) and the driving pose (``C_d``, SPADE input).
    """

    def __init__(self, num_vertices: int, dim: int = 16) -> None:
        super().__init__()
        self.codes = nn.Parameter(torch.rand(num_vertices, dim))

    @property
    def dim(self) -> int:
        """Number of code channels."""
        return int(self.codes.shape[1])

    def forward(
        self,
        verts: torch.Tensor | None = None,
        faces: torch.Tensor | None = None,
        size: tuple[int, int] | None = None,
        fragments: Fragments | None = None,
    ) -> torch.Tensor:
        """Codes interpolated over the mesh, ``(B, dim, H, W)``, 0 on background.

        Either pass ``fragments`` (from ``rasterize``), or ``verts (B, N, 3)`` projected vertices,
        ``faces (F, 3)`` and ``size (H, W)`` to rasterise here (with back-face culling).
        """
        if fragments is None:
            if verts is None or faces is None or size is None:
                raise ValueError("pass fragments, or verts, faces and size")
            fragments = rasterize(verts, faces, size)
        return interpolate(self.codes, fragments)

    def extra_repr(self) -> str:
        return f"num_vertices={self.codes.shape[0]}, dim={self.dim}"
