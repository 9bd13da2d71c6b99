"""A painted, Lambert-shaded render of the ICT mesh: a face whose pose, shape and expression are known exactly.

``core.fit.make_embedding`` runs MediaPipe on such renders to place its landmarks on the mesh, and the edit
protocol (``core.eval.edits``) fits them to measure how well the fitter itself reads a pose: the floor
under what any engine's edits can be measured at. Paint: skin albedo, darker lips and brows (from the
mesh's 68 Multi-PIE landmark vertices), white sclera with a brown iris of MediaPipe's assumed 11.7 mm and
a black pupil, a dark mouth interior; shading: Lambert from interpolated vertex normals plus ambient, on a
plain grey background. ICT only (the paint uses its regions and landmark vertices).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.coords import norm_to_pixel
from core.face.base import FaceModel, vertex_normals
from core.face.ict import REGION_RANGES
from core.face.params import FaceParams
from core.render.raster import rasterize

IRIS_RADIUS_CM = 0.585  # MediaPipe Iris assumes an 11.7 mm horizontal iris diameter
PUPIL_RADIUS_CM = 0.2
SKIN = np.array([0.86, 0.66, 0.55])
LIPS = np.array([0.72, 0.36, 0.36])
BROWS = np.array([0.22, 0.15, 0.10])
SCLERA = np.array([0.93, 0.91, 0.89])
IRIS = np.array([0.36, 0.23, 0.13])
PUPIL = np.array([0.03, 0.03, 0.03])
MOUTH = np.array([0.18, 0.05, 0.05])
BACKGROUND = np.array([0.55, 0.57, 0.60])
LIGHT = np.array([0.25, 0.35, 1.0]) / np.linalg.norm([0.25, 0.35, 1.0])  # model frame, from the camera side


@dataclass
class Render:
    """A shaded render and what lifting points off it needs."""

    image: np.ndarray  # (H, W, 3) uint8
    face_id: np.ndarray  # (H, W) into the rendered faces, -1 background
    normal_z: np.ndarray  # (H, W) camera-facing component of the shading normal
    pixels: np.ndarray  # (N, 2) vertex pixel positions (u, v)


def _polyline_distance(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Distance of 2D ``points (N, 2)`` to a polyline ``(K, 2)``."""
    best = np.full(len(points), np.inf)
    for a, b in zip(line[:-1], line[1:]):
        ab = b - a
        t = np.clip(((points - a) @ ab) / (ab @ ab), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(points - (a + t[:, None] * ab), axis=1))
    return best


def _inside_polygon(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule point-in-polygon for ``points (N, 2)``."""
    inside = np.zeros(len(points), dtype=bool)
    x, y = points[:, 0], points[:, 1]
    for (x1, y1), (x2, y2) in zip(poly, np.roll(poly, -1, axis=0)):
        crosses = (y1 > y) != (y2 > y)
        xi = x1 + (y - y1) * (x2 - x1) / np.where(y2 == y1, 1e-12, y2 - y1)
        inside ^= crosses & (x < xi)
    return inside


def vertex_albedo(model) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex albedo ``(N, 3)`` and an eyeball mask ``(N,)`` (eyes are painted per pixel)."""
    v = model.v_template.numpy().astype(np.float64)
    n = len(v)
    lmk = np.asarray(model.vertex_indices["idx_to_landmark_verts"])
    albedo = np.tile(SKIN, (n, 1))
    face = np.zeros(n, dtype=bool)
    face[: REGION_RANGES["face"][1] + 1] = True
    front = face & (v[:, 2] > 5.0)
    lips = front & _inside_polygon(v[:, :2], v[lmk[48:60], :2])
    albedo[lips] = LIPS
    brow_line_l, brow_line_r = v[lmk[17:22], :2], v[lmk[22:27], :2]
    # Multi-PIE brow points run along the brow's upper edge: paint a band mostly below the line
    for line in (brow_line_l, brow_line_r):
        shifted = line - np.array([0.0, 0.25])
        brow = front & (_polyline_distance(v[:, :2], shifted) < 0.38)
        albedo[brow] = BROWS
    lo, hi = REGION_RANGES["mouth_socket"]
    albedo[lo : hi + 1] = MOUTH
    eyes = np.zeros(n, dtype=bool)
    eyes[REGION_RANGES["eyeball_left"][0] : REGION_RANGES["eyeball_right"][1] + 1] = True
    return albedo, eyes


@dataclass
class ShadedFace:
    """The paint of one ICT model: per-vertex ``albedo (N, 3)``, ``eyes (N,)`` (eyeball vertices, painted per
    pixel) and the neutral eye ``centres (2, 3)`` the irises are drawn around."""

    model: FaceModel
    albedo: np.ndarray
    eyes: np.ndarray
    centres: np.ndarray

    @classmethod
    def of(cls, model: FaceModel) -> ShadedFace:
        """Raises ``ValueError`` for a model other than ICT."""
        if getattr(model, "kind", None) != "ict":
            raise ValueError(f"the shaded face is painted on the ICT model, not {getattr(model, 'kind', model)!r}")
        albedo, eyes = vertex_albedo(model)
        centres = model.eye_centres(model.neutral())[0].numpy().astype(np.float64)
        return cls(model, albedo, eyes, centres)

    def render(self, params: FaceParams, size: int) -> Render:
        """The ``size``-pixel render of the mesh posed by ``params`` (B = 1; its camera for the square image)."""
        model = self.model
        with torch.no_grad():
            verts = model(params)
            proj = model.project(verts, params.camera)
        faces = model.render_faces
        frag = rasterize(proj, faces, (size, size))
        fid = frag.face_id[0].numpy()
        bary = frag.bary[0].numpy().astype(np.float64)
        hit = fid >= 0
        f = faces.numpy()[fid[hit]]  # (P, 3)
        b = bary[hit][:, :, None]
        vn = vertex_normals(verts[0].numpy().astype(np.float64), model.faces.numpy())
        normal = (vn[f] * b).sum(1)
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
        colour = (self.albedo[f] * b).sum(1)
        # eyes: iris and pupil painted by the distance from the eye's optical axis in the rest pose
        rest = (model.v_template.numpy()[f] * b).sum(1)
        on_eye = self.eyes[f].all(1)
        side = (rest[:, 0] < 0).astype(int)  # 0: subject's left (x > 0), 1: right
        rho = np.linalg.norm(rest[:, :2] - self.centres[side, :2], axis=1)
        eye_colour = np.where(
            (rho < PUPIL_RADIUS_CM)[:, None], PUPIL, np.where((rho < IRIS_RADIUS_CM)[:, None], IRIS, SCLERA)
        )
        colour = np.where(on_eye[:, None], eye_colour, colour)
        shade = 0.35 + 0.65 * np.clip(normal @ LIGHT, 0.0, None)
        image = np.tile(BACKGROUND, (size, size, 1))
        image[hit] = colour * shade[:, None]
        normal_z = np.zeros((size, size))
        normal_z[hit] = normal[:, 2]
        pixels = norm_to_pixel(proj[0, :, :2], (size, size)).numpy().astype(np.float64)
        return Render((np.clip(image, 0, 1) * 255).round().astype(np.uint8), fid, normal_z, pixels)
