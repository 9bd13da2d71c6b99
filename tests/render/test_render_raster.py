"""Rasteriser: brute-force agreement, edge cases, culling semantics and the ICT mesh."""

from __future__ import annotations

import pytest
import torch
from render_helpers import grid_mesh, portrait_camera, project, random_mesh, reference_raster

from core.coords import pixel_to_norm
from core.render import face_orientation, rasterize


def _compare(verts, faces, size, cull, **kw):
    frag = rasterize(verts, faces, size, cull_backfaces=cull, **kw)
    ref = reference_raster(verts, faces, size, cull)
    ok = ref.reliable
    assert ok.float().mean() > 0.9, "test mesh too ambiguous to be useful"
    assert torch.equal(frag.face_id[ok], ref.face_id[ok])
    same = ok & (ref.face_id >= 0)
    assert (frag.bary[same].double() - ref.bary[same]).abs().max() < 1e-5
    assert (frag.depth[same].double() - ref.depth[same]).abs().max() < 1e-5
    bg = frag.face_id < 0
    assert frag.bary[bg].abs().max() == 0 if bg.any() else True
    return frag, ref


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("cull", [True, False])
def test_matches_bruteforce(seed, cull):
    size = [(32, 32), (48, 64), (64, 40), (64, 64)][seed]
    verts, faces = random_mesh(seed, n_tri=[60, 120, 200, 150][seed], batch=2)
    _compare(verts, faces, size, cull)


def test_matches_bruteforce_small_chunks():
    """Tiny chunks force every bucket through the chunk loop."""
    verts, faces = random_mesh(7, n_tri=150, batch=2)
    frag, _ = _compare(verts, faces, (48, 48), True, max_candidates=64)
    full = rasterize(verts, faces, (48, 48))
    assert torch.equal(frag.face_id, full.face_id)


def test_gpu_work_sizes_on_cpu(monkeypatch):
    """The large chunks and whole-batch groups used on GPUs give the same result."""
    from core.render import raster

    verts, faces = random_mesh(8, n_tri=150, batch=3)
    small = rasterize(verts, faces, (48, 40))
    monkeypatch.setattr(raster, "_CPU_SIZES", raster._GPU_SIZES)
    frag, _ = _compare(verts, faces, (48, 40), True)
    assert torch.equal(frag.face_id, small.face_id)
    assert torch.allclose(frag.bary, small.bary)


def test_tiny_triangles():
    """Sub-pixel triangles: only those containing a pixel centre are drawn."""
    g = torch.Generator().manual_seed(3)
    n = 400
    centre = torch.rand(n, 1, 2, generator=g) * 1.8 - 0.9
    xy = centre + (torch.rand(n, 3, 2, generator=g) - 0.5) * 0.08  # ~1 px at 32 px
    verts = torch.cat([xy, torch.rand(n, 1, 1, generator=g).expand(n, 3, 1)], -1).view(1, -1, 3)
    faces = torch.arange(3 * n).view(n, 3)
    _compare(verts, faces, (32, 32), False)


def test_huge_triangle_covers_image():
    """A triangle far bigger than the image covers every pixel with exact barycentrics."""
    verts = torch.tensor([[[-30.0, -30.0, 1.0], [-30.0, 40.0, 2.0], [45.0, -20.0, 3.0]]])
    faces = torch.tensor([[0, 1, 2]])
    assert face_orientation(verts, faces).item() < 0
    _compare(verts, faces, (64, 64), True)
    frag = rasterize(verts, faces, (512, 512))
    assert bool((frag.face_id == 0).all())
    # Barycentrics reproduce the pixel position: sum_k bary_k * v_k == pixel centre (float32 barycentrics
    # times vertex coordinates of ~40 give ~1e-6 error).
    recon = torch.einsum("bhwk,kc->bhwc", frag.bary.double(), verts[0, :, :2].double())
    rows, cols = torch.meshgrid(torch.arange(512.0), torch.arange(512.0), indexing="ij")
    centres = pixel_to_norm(torch.stack([cols, rows], -1).double(), (512, 512))
    assert (recon[0] - centres).abs().max() < 1e-5


def test_close_up_mixed_sizes_batch():
    """A batch mixing a huge close-up triangle with small ones, different per mesh."""
    big = torch.tensor([[-3.0, -3.0, 0.9], [-3.0, 5.0, 0.9], [5.0, -3.0, 0.9]])
    verts, faces = random_mesh(11, n_tri=80, batch=2)
    verts = torch.cat([verts, big.expand(2, 3, 3)], 1)
    faces = torch.cat([faces, torch.tensor([[240, 241, 242]])])
    _compare(verts, faces, (40, 40), True)


def test_watertight_shared_edges():
    """Grid vertices on pixel centres put edges exactly through pixel centres: no cracks anywhere."""
    size = (32, 32)
    # Pixel centres of columns 4 and 28 are at (2c + 1) / 32 - 1.
    lo, hi = 9 / 32 - 1, 57 / 32 - 1
    verts, faces = grid_mesh(12, lo, hi)
    frag = rasterize(verts, faces, size)
    covered = frag.face_id[0] >= 0
    assert bool(covered[4:29, 4:29].all()), "crack inside the grid"
    assert not bool(covered[:4].any() or covered[29:].any() or covered[:, :4].any() or covered[:, 29:].any())
    # Barycentrics are valid for the chosen face at every pixel.
    assert frag.bary[0][covered].min() > -1e-9


def test_backface_wrong_winding_disappears():
    front = torch.tensor([[[-0.5, -0.5, 0.0], [-0.5, 0.5, 0.0], [0.5, -0.5, 0.0]]])
    faces = torch.tensor([[0, 1, 2]])
    assert face_orientation(front, faces).item() < 0
    assert rasterize(front, faces, (16, 16)).mask.sum() > 0
    flipped = faces[:, [0, 2, 1]]
    assert face_orientation(front, flipped).item() > 0
    assert rasterize(front, flipped, (16, 16)).mask.sum() == 0
    assert rasterize(front, flipped, (16, 16), cull_backfaces=False).mask.sum() > 0


def test_culling_happens_after_depth_test():
    """A back face in front of a front face hides it: the pixel becomes background, no fall-back."""
    tri = [[-0.8, -0.8], [-0.8, 0.8], [0.8, -0.8]]
    verts = torch.tensor([[[*p, 0.5] for p in tri] + [[*p, 0.1] for p in tri]])
    faces = torch.tensor([[0, 1, 2], [3, 5, 4]])  # second: nearer and back-facing
    frag = rasterize(verts, faces, (16, 16))
    assert frag.mask.sum() == 0
    frag = rasterize(verts, faces, (16, 16), cull_backfaces=False)
    assert set(frag.face_id.unique().tolist()) == {-1, 1}


def test_background_and_invalid_input():
    verts = torch.tensor(
        [
            [
                [2.0, 2.0, 0.0],
                [3.0, 2.0, 0.0],
                [2.0, 3.0, 0.0],  # outside the image
                [float("nan"), 0.0, 0.0],
                [0.5, 0.0, 0.0],
                [0.0, 0.5, 0.0],  # NaN vertex
                [0.0, 0.0, 0.0],
                [0.5, 0.5, 0.0],
                [-0.5, -0.5, 0.0],
            ]
        ]
    )  # degenerate (collinear)
    faces = torch.arange(9).view(3, 3)
    frag = rasterize(verts, faces, (20, 30))
    assert frag.face_id.shape == (1, 20, 30) and frag.bary.shape == (1, 20, 30, 3)
    assert frag.mask.shape == (1, 1, 20, 30) and frag.mask.sum() == 0
    assert torch.isfinite(frag.bary).all() and torch.isfinite(frag.depth).all()
    assert rasterize(verts[:, :0], faces[:0], (8, 8)).mask.sum() == 0


def test_flat_triangles_through_pixel_centres():
    """Collinear corners on a row of pixel centres (and a near-flat sliver): no NaN, nothing drawn."""
    y = 9 / 16 - 1  # centre of row 4 at 16 px
    verts = torch.tensor(
        [[[-0.9, y, 0.0], [0.1, y, 0.0], [0.9, y, 0.0], [-0.9, y, 0.0], [0.9, y + 1e-7, 0.0], [0.1, y, 0.0]]]
    )
    frag = rasterize(verts, torch.arange(6).view(2, 3), (16, 16), cull_backfaces=False)
    assert torch.isfinite(frag.bary).all()
    assert frag.mask.sum() <= 16  # at most the sliver's own row


def test_float64_input_keeps_dtype():
    verts, faces = random_mesh(5, n_tri=30)
    frag = rasterize(verts.double(), faces, (16, 16))
    assert frag.bary.dtype == torch.float64 and frag.depth.dtype == torch.float64


def test_ict_front_faces_have_negative_k(ict):
    """Model frame x right, y up, z to camera, projected with project_weak_perspective (flips y and z):
    the visible surface of a frontal head is made of faces with k < 0, so k > 0 is back-facing."""
    verts = project(ict.verts[None], portrait_camera())
    frag = rasterize(verts, ict.faces, (128, 128), cull_backfaces=False)
    k = face_orientation(verts, ict.faces)[0]
    visible = frag.face_id[frag.face_id >= 0]
    assert (k[visible] < 0).float().mean() > 0.98


def test_ict_inside_of_head_is_culled(ict):
    """Without the face surface, a frontal view looks into the back of the head: back faces, not drawn.

    Only the small front-facing inner walls of the eye and mouth sockets remain."""
    verts = project(ict.verts[None], portrait_camera())
    back_head = ict.faces[ict.material == ict.materials.index("M_BackHead")]
    size = (48, 48)
    no_cull = rasterize(verts, back_head, size, cull_backfaces=False).mask[0, 0]
    culled = rasterize(verts, back_head, size).mask[0, 0]
    centre = (slice(6, 30), slice(10, 38))  # forehead to nose tip
    assert no_cull[centre].mean() > 0.99
    assert culled[centre].mean() < 0.06
    # The full render subset, frontal: the face region is drawn, closed mouth included.
    full = rasterize(verts, ict.faces, size).mask[0, 0]
    assert full[centre].mean() > 0.99


def test_ict_culled_pixels_are_exactly_back_winners(ict):
    cam = portrait_camera()
    angle = torch.tensor(0.6)  # yaw, so the neck opening and the inner mouth socket face the camera partly
    rot = torch.tensor([[torch.cos(angle), 0, torch.sin(angle)], [0, 1, 0], [-torch.sin(angle), 0, torch.cos(angle)]])
    verts = project((ict.verts @ rot.T)[None], cam)
    a = rasterize(verts, ict.faces, (64, 64), cull_backfaces=False)
    b = rasterize(verts, ict.faces, (64, 64))
    k = face_orientation(verts, ict.faces)[0]
    back = (a.face_id >= 0) & (k[a.face_id.clamp(min=0)] > 0)
    assert torch.equal(b.face_id, torch.where(back, -1, a.face_id))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda_matches_cpu():
    verts, faces = random_mesh(4, n_tri=200, batch=3)
    cpu = rasterize(verts, faces, (64, 48))
    gpu = rasterize(verts.cuda(), faces.cuda(), (64, 48))
    ref = reference_raster(verts, faces, (64, 48), True)
    ok = ref.reliable
    assert torch.equal(gpu.face_id.cpu()[ok], cpu.face_id[ok])
    assert (gpu.bary.cpu() - cpu.bary).abs().max() < 1e-5
