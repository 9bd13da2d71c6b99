"""Barycentric interpolation: exactness on affine attributes, background, batching and gradients."""

from __future__ import annotations

import torch
from render_helpers import grid_mesh, random_mesh

from core.coords import pixel_grid
from core.render import interpolate, rasterize


def test_affine_attribute_is_exact():
    """Interpolating the vertex positions gives back the pixel centre wherever a triangle is drawn."""
    verts, faces = random_mesh(1, n_tri=80, batch=2)
    frag = rasterize(verts, faces, (40, 48))
    xy = interpolate(verts[..., :2], frag)  # (B, 2, H, W)
    grid = pixel_grid((40, 48)).permute(2, 0, 1)
    mask = frag.mask.bool().expand_as(xy)
    assert mask.any()
    err = (xy - grid)[mask].abs().max()
    assert err < 1e-4  # float32 barycentrics of triangles up to a few image widths
    assert xy[~mask].abs().max() == 0


def test_shared_and_batched_attributes():
    verts, faces = random_mesh(2, n_tri=50, batch=3)
    frag = rasterize(verts, faces, (24, 24))
    attrs = torch.randn(verts.shape[1], 5)
    shared = interpolate(attrs, frag)
    batched = interpolate(attrs.expand(3, -1, -1), frag)
    single = interpolate(attrs[None], frag)
    assert shared.shape == (3, 5, 24, 24)
    assert shared.is_contiguous(memory_format=torch.channels_last)  # documented layout, no transpose copy
    assert torch.allclose(shared, batched, atol=1e-6) and torch.allclose(shared, single, atol=1e-6)


def test_constant_attribute_and_background():
    verts, faces = grid_mesh(6, -0.5, 0.5)
    frag = rasterize(verts, faces, (32, 32))
    out = interpolate(torch.full((verts.shape[1], 2), 3.0), frag)
    inside = frag.mask.bool().expand_as(out)
    assert torch.allclose(out[inside], torch.tensor(3.0), atol=1e-5)
    assert out[~inside].abs().max() == 0


def test_gradcheck_float64():
    verts, faces = random_mesh(3, n_tri=12, batch=2)
    frag = rasterize(verts.double(), faces, (12, 12), cull_backfaces=False)
    assert frag.mask.sum() > 10
    attrs = torch.randn(2, verts.shape[1], 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: interpolate(a, frag), (attrs,))
    shared = torch.randn(verts.shape[1], 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: interpolate(a, frag), (shared,))
