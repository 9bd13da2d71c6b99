"""Helpers for the render tests: a brute-force float64 rasteriser, random meshes, the ICT mesh loader.

A plain module (not conftest) so the tests can import it by a name no other test folder uses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.coords import pixel_grid, project_weak_perspective

# Materials kept for rendering (see the asset README): face, back of head, scleras and irises.
ICT_KEEP_MATERIALS = ("M_Face", "M_BackHead", "M_ScleraLeft", "M_IrisLeft", "M_ScleraRight", "M_IrisRight")


def ict_path() -> Path:
    """The ICT npz the package finds (the copy shipped in weights/ first); a missing path when absent."""
    from core.assets import AssetNotFoundError, find_ict_model

    try:
        return find_ict_model()
    except AssetNotFoundError:
        return Path("weights/ict-facekit/ict_face_model.npz (absent)")


@dataclass
class IctMesh:
    verts: torch.Tensor  # (N, 3) model frame, cm: x to the subject's left (image right), y up, z to camera
    faces: torch.Tensor  # (F, 3) long, render subset
    material: torch.Tensor  # (F,) long, material index per kept face
    materials: list[str]


def load_ict(path: Path) -> IctMesh:
    """The ICT template and its render subset (face, head, eyes), straight from the npz."""
    data = np.load(path)
    materials = [str(m) for m in data["materials"]]
    face_mat = data["quad_material"][data["face_to_quad"]].astype(np.int64)
    keep = np.isin(face_mat, [materials.index(m) for m in ICT_KEEP_MATERIALS])
    return IctMesh(
        verts=torch.from_numpy(data["v_template"].astype(np.float32)),
        faces=torch.from_numpy(data["faces"][keep].astype(np.int64)),
        material=torch.from_numpy(face_mat[keep]),
        materials=materials,
    )


def portrait_camera(batch: int = 1, scale: float = 1.2 / 14.0) -> torch.Tensor:
    """Weak-perspective camera (s, tx, ty) placing the ICT face at ~60 % of the image width."""
    return torch.tensor([[scale, 0.0, 0.1]]).repeat(batch, 1)


def project(verts: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    return project_weak_perspective(verts.expand(camera.shape[0], -1, -1), camera)


@dataclass
class Reference:
    face_id: torch.Tensor  # (B, H, W) long, -1 background
    bary: torch.Tensor  # (B, H, W, 3) float64
    depth: torch.Tensor  # (B, H, W) float64
    reliable: torch.Tensor  # (B, H, W) bool: no near-edge or near-tie ambiguity at this pixel


def reference_raster(
    verts: torch.Tensor,
    faces: torch.Tensor,
    size: tuple[int, int],
    cull: bool,
    edge_tol: float = 1e-5,
    depth_tol: float = 1e-6,
) -> Reference:
    """Every pixel against every triangle in float64, straight from the spec's definitions."""
    v = verts.to(torch.float64)
    h, w = size
    p = pixel_grid(size, dtype=torch.float64).view(-1, 1, 2)  # (P, 1, 2) pixel centres
    out_id, out_bary, out_depth, out_ok = [], [], [], []
    for vb in v:
        tri = vb[faces]  # (F, 3, 3)
        x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]
        k = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0])
        bary = []
        for i in range(3):
            a, b = (i + 1) % 3, (i + 2) % 3
            e = (x[:, b] - x[:, a]) * (p[..., 1] - y[:, a]) - (y[:, b] - y[:, a]) * (p[..., 0] - x[:, a])
            bary.append(e / k)
        bary = torch.stack(bary, -1)  # (P, F, 3)
        low = bary.amin(-1)
        inside = (low >= 0) & (k != 0)
        depth = (bary * z).sum(-1)
        d = torch.where(inside, depth, torch.full_like(depth, float("inf")))
        best, win = d.min(1)
        second = d.scatter(1, win[:, None], float("inf")).amin(1)
        hit = torch.isfinite(best)
        zrange = float(z.max() - z.min()) or 1.0
        near_edge = ((low.abs() < edge_tol) & (k != 0)).any(1)
        ok = ~near_edge & (~hit | (second - best > depth_tol * zrange))
        fid = torch.where(hit, win, torch.full_like(win, -1))
        if cull:
            fid = torch.where(hit & (k[win] > 0), torch.full_like(fid, -1), fid)
        drawn = fid >= 0
        out_id.append(fid.view(h, w))
        out_bary.append(torch.where(drawn[:, None], bary[torch.arange(len(win)), win], 0.0).view(h, w, 3))
        out_depth.append(torch.where(drawn, best, 0.0).view(h, w))
        out_ok.append(ok.view(h, w))
    return Reference(torch.stack(out_id), torch.stack(out_bary), torch.stack(out_depth), torch.stack(out_ok))


def random_mesh(seed: int, n_tri: int = 120, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Random triangle soup in normalised coordinates: tiny, medium and huge triangles, some partly or wholly
    outside the image, random windings and depths. Returns verts (B, 3F, 3) float32 and faces (F, 3)."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(batch, n_tri, 1, 2, generator=g) * 2.6 - 1.3
    # Triangle sizes spanning ~0.1 px to several image widths (at 32-64 px).
    scale = 10 ** (torch.rand(batch, n_tri, 1, 1, generator=g) * 3.2 - 2.5)
    xy = centre + (torch.rand(batch, n_tri, 3, 2, generator=g) - 0.5) * scale
    z = torch.rand(batch, n_tri, 1, 1, generator=g) + (torch.rand(batch, n_tri, 3, 1, generator=g) - 0.5) * 0.3
    verts = torch.cat([xy, z], -1).reshape(batch, n_tri * 3, 3).float()
    faces = torch.arange(n_tri * 3).view(n_tri, 3)
    return verts, faces


def grid_mesh(n: int, lo: float, hi: float, z: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """A regular (n+1) x (n+1) vertex grid on [lo, hi]^2, two front-facing (k < 0) triangles per cell."""
    t = torch.linspace(lo, hi, n + 1)
    gy, gx = torch.meshgrid(t, t, indexing="ij")
    verts = torch.stack([gx, gy, torch.full_like(gx, z)], -1).view(1, -1, 3)
    idx = torch.arange((n + 1) ** 2).view(n + 1, n + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    # (a, c, b) goes down then up-right: in y-down coordinates k = (xc-xa)(yb-ya) - (yc-ya)(xb-xa) < 0.
    faces = torch.cat([torch.stack([a, c, b], -1).view(-1, 3), torch.stack([b, c, d], -1).view(-1, 3)])
    return verts, faces
