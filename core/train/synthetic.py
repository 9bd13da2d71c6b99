"""Synthetic clips in the preprocessed layout, for tests, smoke runs and benchmarks without video data.

Each frame renders the ICT mesh (random identity, head turning and jaw opening over the clip) with smooth
per-vertex colours over a gradient background: real geometry and exact vertices, no fitting needed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from core.coords import norm_to_pixel
from core.train.dataset import write_clip

__all__ = ["make_synthetic_clip"]


def make_synthetic_clip(
    out_dir: str | Path, frames: int = 8, size: int = 64, seed: int = 0, model=None, yaw: float = 25.0
) -> Path:
    """Write a clip of ``frames`` frames at ``size`` px to ``out_dir``; returns the folder."""
    from core.face import load_face_model
    from core.render import interpolate, rasterize

    model = model or load_face_model("ict")
    g = torch.Generator().manual_seed(seed)
    params = model.neutral(frames)
    params.shape[:] = torch.randn(1, params.shape.shape[1], generator=g) * 0.8
    t = torch.linspace(0, 1, frames)
    params.head[:, 0] = yaw * torch.sin(2 * math.pi * t + seed)
    params.head[:, 1] = 8.0 * torch.sin(4 * math.pi * t)
    names = list(getattr(model, "expression_names", []))
    if "jawOpen" in names:
        params.expression[:, names.index("jawOpen")] = 0.4 * (0.5 + 0.5 * torch.sin(6 * math.pi * t))
    params.camera[:] = torch.tensor([1.2 / 14.7, 0.0, 0.12])
    with torch.no_grad():
        template = model(model.neutral(1))[0]
        proj = model.project(model(params), params.camera)
        frags = rasterize(proj, model.render_faces, (size, size))
        phase = torch.rand(3, generator=g) * 6.0
        colour = 0.5 + 0.35 * torch.sin(template[:, [0, 1, 2]] * 0.45 + phase) * torch.tensor([1.0, 0.8, 0.6])
        img = interpolate(colour, frags)
        yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
        bg = torch.stack([0.2 + 0.5 * xx, 0.3 + 0.3 * yy, 0.6 - 0.3 * xx])[None]
        mask = frags.mask
        img = img * mask + bg * (1 - mask)
    images = (img.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    verts = torch.cat([norm_to_pixel(proj[..., :2], (size, size)), proj[..., 2:] * (size / 2.0)], -1)
    arrays = {k: v for k, v in params.to_numpy().items()}
    arrays.update(detected=np.ones(frames, dtype=bool), crops=np.tile(np.eye(3), (frames, 1, 1)))
    return write_clip(
        out_dir, images, verts.numpy(), arrays, {"fps": 25.0, "face_model": "ict", "source": f"synthetic seed {seed}"}
    )
