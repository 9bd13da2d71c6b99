"""Pictures for the studio: the 3D mesh (plotly), landmarks over the photo, the displacement field as a
colour wheel with its legend, the mesh coverage and person layer, and neural codes through PCA.

Pure functions of arrays and tensors (no Gradio), so notebooks can use them too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from core.coords import flow_to_pixels
from core.render.flowviz import flow_colours

# ----------------------------------------------------------------------------------------------- colour


def _to_u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _upscale(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.NEAREST))


# ----------------------------------------------------------------------------------------------- flow
def flow_legend(size: int = 96) -> np.ndarray:
    """The colour wheel: the colour of a flow pointing from the centre to that spot, full saturation at
    the rim (``scale`` of ``flow_wheel``); outside the disc white."""
    c = (size - 1) / 2.0
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = (u - c) / c, (v - c) / c
    rgb = flow_colours(np.stack([dx, dy]), 1.0)
    outside = np.hypot(dx, dy) > 1.0
    rgb[outside] = 255
    return rgb


def flow_wheel(flow: torch.Tensor, scale_px: float | None = None, legend: bool = True) -> tuple[np.ndarray, float]:
    """A backward flow ``(2, H, W)`` or ``(1, 2, H, W)`` in normalised units (``core.coords``) as a colour
    image, with the legend wheel in the bottom-right corner. Returns the image and the magnitude (pixels)
    that shows at full saturation (the 99th percentile unless ``scale_px`` is given)."""
    if flow.dim() == 4:
        flow = flow[0]
    px = flow_to_pixels(flow[None].float())[0].cpu().numpy()
    mag = np.hypot(px[0], px[1])
    scale = float(scale_px) if scale_px else float(max(np.percentile(mag, 99), 0.5))
    rgb = flow_colours(px, scale)
    if legend:
        h = rgb.shape[0]
        k = max(24, h // 5)
        wheel = flow_legend(k)
        m = max(2, h // 64)
        patch = rgb[h - k - m : h - m, rgb.shape[1] - k - m : rgb.shape[1] - m]
        disc = (wheel != 255).any(-1)
        patch[disc] = wheel[disc]
        ring = _ring(k)
        patch[ring] = 60
    return rgb, scale


def levels_montage(flows: dict[int, torch.Tensor], tile: int = 128) -> tuple[np.ndarray, float]:
    """Flows per pyramid level ``{stride: (B, 2, h, w)}`` (normalised units) side by side, coarse to fine,
    each as a colour wheel on one common scale (pixels of the finest level), labelled ``1/stride``."""
    strides = sorted(flows, reverse=True)
    finest = flows[min(strides)]
    px = flow_to_pixels(finest[:1].float())[0].cpu().numpy()
    scale = float(max(np.percentile(np.hypot(px[0], px[1]), 99), 0.5))
    w = finest.shape[-1]
    tiles = []
    for st in strides:
        f = flows[st][:1].float()
        # express every level in pixels of the finest grid so one colour means one motion
        p = (f * f.new_tensor([w / 2.0, w / 2.0]).view(1, 2, 1, 1))[0].cpu().numpy()
        rgb = flow_colours(p, scale)
        img = Image.fromarray(rgb).resize((tile, tile), Image.Resampling.NEAREST)
        ImageDraw.Draw(img).text((4, 2), f"1/{st}" if st > 1 else "full", fill=(20, 20, 20))
        tiles.append(np.asarray(img))
    gap = np.full((tile, 4, 3), 255, np.uint8)
    row = [t for pair in zip(tiles, [gap] * len(tiles)) for t in pair][:-1]
    return np.concatenate(row, 1), scale


def _ring(k: int) -> np.ndarray:
    c = (k - 1) / 2.0
    v, u = np.mgrid[0:k, 0:k]
    r = np.hypot(u - c, v - c) / c
    return (r > 0.94) & (r <= 1.03)


# ----------------------------------------------------------------------------------------------- layers
def layers_image(image: np.ndarray, coverage: torch.Tensor, person: torch.Tensor) -> np.ndarray:
    """The rendered crop, dimmed, with the mesh coverage (blue) and the person layer beyond the mesh
    (orange) over it. ``coverage``/``person``: ``(H, W)`` or ``(1, 1, H, W)`` in [0, 1]."""
    h, w = image.shape[:2]

    def plane(mask: torch.Tensor) -> np.ndarray:  # (H, W) at the image's size (engines may work smaller)
        m = mask.reshape(1, 1, *mask.shape[-2:]).float().cpu()
        if m.shape[-2:] != (h, w):
            m = torch.nn.functional.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
        return m[0, 0].clamp(0, 1).numpy()

    cov, per = plane(coverage), plane(person)
    grey = image.astype(np.float32).mean(-1, keepdims=True) / 255.0
    base = 0.35 + 0.45 * grey
    out = np.repeat(base, 3, -1)
    blue = np.array([0.25, 0.55, 1.0])
    orange = np.array([1.0, 0.6, 0.15])
    out = out * (1 - 0.55 * cov[..., None]) + 0.55 * cov[..., None] * blue * (0.5 + grey)
    only = np.clip(per - cov, 0, 1)[..., None]
    out = out * (1 - 0.55 * only) + 0.55 * only * orange * (0.5 + grey)
    return _to_u8(out)


# ----------------------------------------------------------------------------------------------- codes
def codes_pca(codes: torch.Tensor, mask: torch.Tensor, background: float = 0.12) -> np.ndarray:
    """Per-pixel codes ``(C, H, W)`` (or ``(1, C, H, W)``) to RGB through their first 3 principal
    components over the ``mask`` pixels (robustly stretched to [0, 1]); the rest is dark grey."""
    if codes.dim() == 4:
        codes = codes[0]
    c, h, w = codes.shape
    m = mask.reshape(h, w).cpu().numpy() > 0.5
    out = np.full((h, w, 3), background, np.float64)
    if m.sum() < 4:
        return _to_u8(out)
    x = codes.permute(1, 2, 0).reshape(-1, c).double().cpu().numpy()[m.reshape(-1)]
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    k = min(3, vt.shape[0])
    y = x @ vt[:k].T
    if k < 3:
        y = np.concatenate([y, np.zeros((len(y), 3 - k))], 1)
    lo, hi = np.percentile(y, 1, axis=0), np.percentile(y, 99, axis=0)
    y = np.clip((y - lo) / np.maximum(hi - lo, 1e-9), 0, 1)
    out[m] = y
    return _to_u8(out)


# ----------------------------------------------------------------------------------------------- landmarks
def landmarks_image(
    crop: np.ndarray, detected: np.ndarray | None, fitted: np.ndarray | None = None, size: int = 512
) -> np.ndarray:
    """The crop (upscaled to ``size``) with the detected MediaPipe landmarks (green) and the fitted model's
    landmarks (orange). Points ``(L, 2+)`` in crop pixels (``core.coords`` pixel convention)."""
    s = crop.shape[0]
    img = Image.fromarray(crop).resize((size, size), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(img)
    k = size / s
    r = max(1.0, size / 256)

    def dots(points: np.ndarray, colour: tuple[int, int, int], radius: float) -> None:
        for u, v in np.asarray(points)[:, :2]:
            x, y = (u + 0.5) * k - 0.5, (v + 0.5) * k - 0.5
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)

    if detected is not None:
        dots(detected, (40, 230, 90), r)
    if fitted is not None:
        dots(fitted, (255, 140, 30), r * 0.8)
    return np.asarray(img)


# ----------------------------------------------------------------------------------------------- mesh
@dataclass
class MeshView:
    """The part of a face mesh the 3D view shows (face, head and neck, eyeballs), by material.

    ``vertices (K,)``: model vertex ids shown; ``parts``: per material (RGB colour, triangles ``(F, 3)``
    indexing ``vertices``).
    """

    vertices: np.ndarray
    parts: list[tuple[tuple[int, int, int], np.ndarray]]

    @property
    def n_faces(self) -> int:
        return sum(len(f) for _, f in self.parts)

    def positions(self, vertices: np.ndarray) -> np.ndarray:
        """Shown positions ``(K, 3)`` from all model vertices ``(N, 3)``."""
        return np.asarray(vertices)[self.vertices]


SKIN = (222, 184, 160)
IRIS = (62, 48, 40)
EYE_WHITE = (236, 234, 228)
IRIS_HALF_ANGLE = 28.0  # degrees: the iris disc on the eyeball, seen from the eyeball's centre


def mesh_view(model, regions: tuple[str, ...] = ("face", "head_neck", "eyes")) -> MeshView:
    """The triangles of ``model.render_faces`` inside ``regions`` at full resolution (about 25k for ICT:
    light enough for WebGL, and vertex clustering would merge the lips and the eyelids), by material.

    ICT's eyeball is an inner sphere (``iris_*``) inside a clear outer one (``sclera_*``, the cornea): the
    outer one is left out and the inner one coloured, iris in front (the template looks along +z) and
    white around it, so the view shows where the eyes look."""
    n = model.n_vertices
    template = model.v_template.detach().cpu().numpy()
    mask = np.zeros(n, bool)
    for r in regions:
        if r in model.regions:
            mask |= model.regions[r].cpu().numpy().astype(bool)
    part = np.zeros(n, np.int64)  # 0 skin, 1 iris, 2 eye white
    for side in ("left", "right"):
        inner, outer = model.regions.get(f"iris_{side}"), model.regions.get(f"sclera_{side}")
        if inner is None:
            continue
        inner = inner.cpu().numpy().astype(bool)
        if outer is not None:
            mask &= ~outer.cpu().numpy().astype(bool)
        pts = template[inner]
        centre = 0.5 * (pts.min(0) + pts.max(0))
        d = pts - centre
        front = d[:, 2] / np.maximum(np.linalg.norm(d, axis=1), 1e-9) > math.cos(math.radians(IRIS_HALF_ANGLE))
        part[np.where(inner)[0]] = np.where(front, 1, 2)
    faces = model.render_faces.cpu().numpy()
    faces = faces[mask[faces].all(1)]
    used, local = np.unique(faces, return_inverse=True)
    local = local.reshape(-1, 3).astype(np.int32)
    fp = part[faces]
    face_part = np.where((fp == 1).all(1), 1, fp.max(1))
    parts = [
        (colour, local[face_part == p]) for p, colour in enumerate((SKIN, IRIS, EYE_WHITE)) if (face_part == p).any()
    ]
    return MeshView(used, parts)


def mesh_figure(positions: np.ndarray, mesh: MeshView, height: int = 420):
    """A plotly figure of the mesh view (model frame: cm, x = subject's left, y up, z towards the viewer):
    one trace, materials as a per-triangle discrete colour scale, arrays sent as compact binary; the
    camera the user set is kept across updates."""
    import plotly.graph_objects as go

    pos = np.asarray(positions, np.float32)
    faces = np.concatenate([f for _, f in mesh.parts])
    index_type = np.int16 if len(pos) < 32768 else np.int32
    material = np.concatenate([np.full(len(f), k, np.uint8) for k, (_, f) in enumerate(mesh.parts)])
    n = max(1, len(mesh.parts) - 1)
    scale = []
    for k, (colour, _) in enumerate(mesh.parts):
        rgb = "rgb({},{},{})".format(*colour)
        scale += [[max(0.0, (k - 0.5) / n), rgb], [min(1.0, (k + 0.5) / n), rgb]]
    if len(mesh.parts) == 1:
        scale = [[0.0, scale[0][1]], [1.0, scale[0][1]]]
    trace = go.Mesh3d(
        x=pos[:, 0],
        y=pos[:, 1],
        z=pos[:, 2],
        i=faces[:, 0].astype(index_type),
        j=faces[:, 1].astype(index_type),
        k=faces[:, 2].astype(index_type),
        intensity=material,
        intensitymode="cell",
        colorscale=scale,
        cmin=0,
        cmax=n,
        showscale=False,
        flatshading=False,
        hoverinfo="skip",
        lighting=dict(ambient=0.45, diffuse=0.8, specular=0.15, roughness=0.7, fresnel=0.1),
        lightposition=dict(x=40, y=80, z=200),
    )
    fig = go.Figure(trace)
    axis = dict(visible=False, showbackground=False)
    fig.update_layout(
        scene=dict(
            xaxis=axis,
            yaxis=axis,
            zaxis=axis,
            aspectmode="data",
            camera=dict(up=dict(x=0, y=1, z=0), eye=dict(x=0.0, y=0.0, z=1.6), projection=dict(type="perspective")),
        ),
        margin=dict(l=0, r=0, t=0, b=0),
        height=height,
        showlegend=False,
        paper_bgcolor="rgba(0,0,0,0)",
        uirevision="keep-camera",
    )
    return fig
