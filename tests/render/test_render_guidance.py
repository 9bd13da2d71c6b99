"""Displacement field (backward flow) and posed neural codes."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from render_helpers import grid_mesh, portrait_camera, project

from core.coords import flow_to_pixels, pixel_grid
from core.render import NeuralCodes, displacement_field, rasterize

SHIFT_PX = (7.3, -4.1)


def _texture(size: tuple[int, int], shift_px: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    """A smooth analytic RGB texture sampled at pixel centres (u, v) + shift, (1, 3, H, W)."""
    h, w = size
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    u, v = u + shift_px[0], v + shift_px[1]
    chans = [torch.sin(u / 9.0) * torch.cos(v / 13.0), torch.sin((u + v) / 11.0), torch.cos((u - 2 * v) / 17.0)]
    return torch.stack(chans)[None].float()


def _shift_norm(size: tuple[int, int]) -> torch.Tensor:
    h, w = size
    return torch.tensor([2 * SHIFT_PX[0] / w, 2 * SHIFT_PX[1] / h, 0.0])


def _check_translation(tgt: torch.Tensor, faces: torch.Tensor, size: tuple[int, int]) -> None:
    src = tgt + _shift_norm(size)  # the source face sits (7.3, -4.1) px away from the target face
    flow, mask = displacement_field(src, tgt, faces, size)
    assert flow.shape == (tgt.shape[0], 2, *size) and mask.shape == (tgt.shape[0], 1, *size)
    inside = mask[:, 0].bool()
    assert inside.float().mean() > 0.1
    flow_px = flow_to_pixels(flow)
    assert (flow_px[:, 0][inside] - SHIFT_PX[0]).abs().max() < 0.5
    assert (flow_px[:, 1][inside] - SHIFT_PX[1]).abs().max() < 0.5
    assert flow[~mask.bool().expand_as(flow)].abs().max() == 0
    # Backward warp: the target pixel p takes the source at p + flow, which is the texture at p + shift.
    source = _texture(size).expand(tgt.shape[0], -1, -1, -1)
    grid = pixel_grid(size)[None] + flow.permute(0, 2, 3, 1)
    warped = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
    expected = _texture(size, SHIFT_PX)
    # Stay clear of the image border, where the shifted sample leaves the source image.
    h, w = size
    border = torch.zeros(h, w, dtype=torch.bool)
    border[8 : h - 8, 8 : w - 8] = True
    sel = inside & border
    err = (warped - expected).abs().amax(1)[sel]
    # Bilinear interpolation of this smooth texture is accurate to ~1e-3; a 0.5 px error would be ~5e-2.
    assert err.max() < 1e-2


def test_translation_grid_mesh():
    verts, faces = grid_mesh(10, -0.6, 0.6)
    _check_translation(verts, faces, (96, 128))


def test_translation_ict_mesh(ict):
    cam = portrait_camera(2)
    angle = torch.tensor(0.3)
    rot = torch.tensor(
        [[math.cos(angle), 0.0, math.sin(angle)], [0.0, 1.0, 0.0], [-math.sin(angle), 0.0, math.cos(angle)]]
    )
    verts = torch.cat([project(ict.verts[None], cam[:1]), project((ict.verts @ rot.T)[None], cam[1:])])
    _check_translation(verts, ict.faces, (128, 128))


def test_flow_direction_and_channels():
    """Pure x motion fills channel 0 only, with the sign of source minus target."""
    verts, faces = grid_mesh(4, -0.5, 0.5)
    src = verts + torch.tensor([0.1, 0.0, 0.0])
    flow, mask = displacement_field(src, verts, faces, (32, 32))
    inside = mask[:, 0].bool()
    assert torch.allclose(flow[:, 0][inside], torch.tensor(0.1), atol=1e-6)
    assert flow[:, 1].abs().max() < 1e-7


def test_precomputed_fragments_and_target_mask():
    verts, faces = grid_mesh(4, -0.5, 0.5)
    src = verts * 0.5  # different silhouette: the mask must be the target's
    frag = rasterize(verts, faces, (32, 32))
    a, ma = displacement_field(src, verts, faces, (32, 32))
    b, mb = displacement_field(src, verts, faces, (32, 32), fragments=frag)
    assert torch.equal(a, b) and torch.equal(ma, mb) and torch.equal(ma, frag.mask)


def test_flow_gradient_reaches_vertices():
    verts, faces = grid_mesh(3, -0.5, 0.5)
    src = (verts + 0.05).requires_grad_()
    flow, _ = displacement_field(src, verts, faces, (16, 16))
    flow.sum().backward()
    assert src.grad is not None and src.grad[..., :2].abs().sum() > 0 and src.grad[..., 2].abs().sum() == 0


def test_neural_codes():
    torch.manual_seed(0)
    verts, faces = grid_mesh(5, -0.7, 0.7)
    codes = NeuralCodes(verts.shape[1])
    assert codes.codes.shape == (verts.shape[1], 16) and codes.dim == 16
    assert codes.codes.min() >= 0 and codes.codes.max() < 1
    size = (24, 24)
    frag = rasterize(verts, faces, size)
    out = codes(fragments=frag)
    assert out.shape == (1, 16, 24, 24)
    assert torch.equal(out, codes(verts, faces, size))
    mask = frag.mask.bool().expand_as(out)
    assert out[~mask].abs().max() == 0 and out[mask].min() >= 0
    out.sum().backward()
    assert codes.codes.grad is not None and codes.codes.grad.abs().sum() > 0
    assert NeuralCodes(10, dim=8)(verts[:, :10], faces[:0], size).shape == (1, 8, 24, 24)


def test_neural_codes_source_and_target_batch(ict):
    codes = NeuralCodes(ict.verts.shape[0])
    verts = project(ict.verts[None], portrait_camera(2))
    out = codes(verts, ict.faces, (64, 64))
    assert out.shape == (2, 16, 64, 64)
    assert torch.allclose(out[0], out[1])
