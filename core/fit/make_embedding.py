"""Make ``core/fit/data/ict_mediapipe_embedding.npz``: where MediaPipe's 478 landmarks sit on the ICT mesh.

Run ``python -m core.fit.make_embedding --model-path FULL_PRECISION.npz [--debug DIR]``. Reproducible: no
randomness, the same renders and MediaPipe's deterministic CPU inference give the same file. The committed file
was made from the full-precision conversion of the FaceKit (``python -m core assets convert --full``); the
compact float16 copy in ``weights/`` moves vertices by up to 0.01 mm, which changes a few rendered pixels and so
MediaPipe's detections: it gives an equivalent embedding, not the same bytes.

Method:
1. Render the neutral ICT mesh, painted and shaded (``core.render.shaded``: skin, darker lips and brows,
   irises of MediaPipe's assumed 11.7 mm, Lambert shading), at 512 x 512 from a grid of views (yaw
   -30..30, pitch -12..12) with the mouth closed and slightly open.
2. Run MediaPipe Face Mesh (the same ``LandmarkDetector`` the fitter uses) on every render.
3. Lift each detected point back onto the mesh: the rasteriser's triangle at that pixel, with exact
   barycentrics of the sub-pixel position; a point that falls just off the skin (an eyelid margin on the
   eyeball) takes the nearest skin pixel within 2 pixels. A lift counts only where the surface faces the
   camera (normal z > 0.3, which rejects silhouette and occluded points); the inner lip
   contour is taken only from the open-mouth renders (so upper and lower inner-lip points land on the
   upper and lower lip and separate when the mouth opens).
4. Combine the views per landmark in the neutral mesh's frame: the coordinate-wise median of the lifted
   3D points, then the lifted surface point closest to it (a medoid, so the result stays on a triangle
   that was actually seen). The median distance of the lifts to it is stored as ``spread_cm``.
5. Iris landmarks 468-477 are built geometrically on the eyeballs, so that gaze can be fitted: the centre
   on the eye's optical axis, the four rim points on the 5.85 mm circle around it, in the directions
   MediaPipe's rim points take in the frontal render, each at the front surface of the eyeball (cornea).

Stored arrays: ``face_ids (478,)`` (into ``model.faces``), ``bary (478, 3)``, ``landmark_indices (478,)``,
``groups (478,)`` (codes of ``core.fit.embedding.GROUPS``), ``spread_cm (478,)``, ``n_views (478,)``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.face.ict import REGION_RANGES
from core.fit.embedding import GROUPS, ICT_EMBEDDING
from core.render.shaded import IRIS_RADIUS_CM, Render, ShadedFace

log = logging.getLogger(__name__)

SIZE = 512
CAMERA = (0.072, 0.0, -0.02)  # s (normalised units per cm), tx, ty: the face fills ~70 %
YAWS = (-30.0, -15.0, 0.0, 15.0, 30.0)
PITCHES = (-12.0, 0.0, 12.0)
MOUTH_OPEN = 0.35  # jawOpen of the open-mouth renders
MIN_NORMAL_Z = 0.3

INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 95, 88, 178, 87, 14, 317, 402, 318, 324)
# MediaPipe's iris points: (centre, rim...) of the subject's left and right eye
IRIS_POINTS = {"left": (473, 474, 475, 476, 477), "right": (468, 469, 470, 471, 472)}


@dataclass
class View:
    yaw: float
    pitch: float
    mouth_open: float


def render_view(face: ShadedFace, view: View) -> Render:
    """Shaded render of the neutral ICT mesh in ``view`` (``core.render.shaded``)."""
    model = face.model
    params = model.apply_edits(model.neutral(), {"yaw": view.yaw, "pitch": view.pitch, "jawOpen": view.mouth_open})
    params.camera[:] = torch.tensor(CAMERA)
    return face.render(params, SIZE)


# ------------------------------------------------------------------------------------------ lifting
def lift(
    points: np.ndarray, render: Render, faces: np.ndarray, allowed: np.ndarray, radius: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detected pixels ``(L, 2)`` to (triangle ``(L,)``, barycentrics ``(L, 3)``, normal z ``(L,)``).

    The triangle is the one drawn at the nearest pixel whose triangle is ``allowed`` (a mask over
    ``faces``), searched up to ``radius`` pixels away: a point MediaPipe puts on an eyelid margin can fall
    on the eyeball by a pixel, and belongs to the lid. The barycentrics are those of the exact sub-pixel
    position in that triangle (clamped into it). Nothing allowed nearby gives triangle -1.
    """
    h, w = render.face_id.shape
    d = np.arange(-radius, radius + 1)
    offsets = np.stack(np.meshgrid(d, d, indexing="xy"), -1).reshape(-1, 2)  # (K, 2) (dc, dr)
    base = np.round(points).astype(int)
    cand = base[:, None, :] + offsets[None]  # (L, K, 2)
    c = np.clip(cand[..., 0], 0, w - 1)
    r = np.clip(cand[..., 1], 0, h - 1)
    tri = render.face_id[r, c]
    ok = (tri >= 0) & allowed[np.maximum(tri, 0)]
    dist = np.where(ok, np.linalg.norm(cand - points[:, None, :], axis=-1), np.inf)
    best = dist.argmin(1)
    rows = np.arange(len(points))
    found = np.isfinite(dist[rows, best])
    tri = np.where(found, tri[rows, best], -1)
    nz = np.where(found, render.normal_z[r[rows, best], c[rows, best]], 0.0)
    bary = np.zeros((len(points), 3))
    corners = render.pixels[faces[tri[found]]]  # (P, 3, 2)
    bary[found] = _barycentric(points[found], corners)
    return tri, bary, nz


def _barycentric(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Barycentrics of 2D points ``(P, 2)`` in triangles ``(P, 3, 2)``, clamped into the triangle."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    l1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    l2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    out = np.clip(np.stack([1.0 - l1 - l2, l1, l2], 1), 0.0, None)
    return out / out.sum(1, keepdims=True)


def group_codes() -> np.ndarray:
    """Group code of each of the 478 landmarks (``core.fit.embedding.GROUPS``)."""
    from mediapipe.python.solutions import face_mesh_connections as fmc

    def ids(conn) -> list[int]:
        return sorted({i for edge in conn for i in edge})

    codes = np.zeros(478, dtype=np.int64)
    for name, conn in (
        ("oval", fmc.FACEMESH_FACE_OVAL),
        ("nose", fmc.FACEMESH_NOSE),
        ("brows", fmc.FACEMESH_LEFT_EYEBROW | fmc.FACEMESH_RIGHT_EYEBROW),
        ("eyes", fmc.FACEMESH_LEFT_EYE | fmc.FACEMESH_RIGHT_EYE),
        ("lips_outer", fmc.FACEMESH_LIPS),
    ):
        codes[ids(conn)] = GROUPS.index(name)
    codes[list(INNER_LIPS)] = GROUPS.index("lips_inner")
    codes[468:478] = GROUPS.index("iris")
    return codes


def combine(cands: list[tuple[int, np.ndarray, np.ndarray]]) -> tuple[int, np.ndarray, float]:
    """Medoid of the lifted candidates (triangle, bary, rest point) around their coordinate-wise median."""
    pts = np.stack([c[2] for c in cands])
    med = np.median(pts, axis=0)
    dist = np.linalg.norm(pts - med, axis=1)
    best = int(np.argmin(dist))
    return cands[best][0], cands[best][1], float(np.median(dist))


# ------------------------------------------------------------------------------------------ irises
def front_hit(model, tri_ids: np.ndarray, xy: np.ndarray) -> tuple[int, np.ndarray]:
    """Front-most triangle (largest z) among ``tri_ids`` of the neutral mesh under the point ``xy`` (cm),
    looking along -z; returns (triangle, barycentrics)."""
    v = model.v_template.numpy().astype(np.float64)
    faces = model.faces.numpy()
    tri = v[faces[tri_ids]]  # (T, 3, 3)
    a, b, c = tri[:, 0, :2], tri[:, 1, :2], tri[:, 2, :2]
    v0, v1, v2 = b - a, c - a, xy[None] - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    ok = np.abs(den) > 1e-12
    den = np.where(ok, den, 1.0)
    l1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    l2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    bary = np.stack([1.0 - l1 - l2, l1, l2], 1)
    inside = ok & (bary >= -1e-9).all(1)
    if not inside.any():
        raise RuntimeError(f"no eyeball triangle under {xy}")
    z = (tri[:, :, 2] * bary).sum(1)
    k = int(np.argmax(np.where(inside, z, -np.inf)))
    return int(tri_ids[k]), np.clip(bary[k], 0.0, 1.0) / np.clip(bary[k], 0.0, 1.0).sum()


def iris_embedding(model, frontal: np.ndarray) -> dict[int, tuple[int, np.ndarray]]:
    """Surface points of landmarks 468-477 on the eyeballs, rim directions from the frontal detection."""
    centres = model.eye_centres(model.neutral())[0].numpy().astype(np.float64)
    faces = model.faces.numpy()
    out = {}
    for e, side in enumerate(("left", "right")):
        lo, hi = REGION_RANGES[f"sclera_{side}"]
        tri_ids = np.nonzero(((faces >= lo) & (faces <= hi)).all(1))[0]
        centre_id, *rim_ids = IRIS_POINTS[side]
        out[centre_id] = front_hit(model, tri_ids, centres[e, :2])
        for k in rim_ids:
            d = frontal[k, :2] - frontal[centre_id, :2]
            angle = np.degrees(np.arctan2(-d[1], d[0]))  # image v down -> model y up
            snapped = 90.0 * np.round(angle / 90.0)
            log.info("iris %d: rim direction %.1f deg in the frontal render, snapped to %.0f", k, angle, snapped)
            direction = np.array([np.cos(np.radians(snapped)), np.sin(np.radians(snapped))])
            out[k] = front_hit(model, tri_ids, centres[e, :2] + IRIS_RADIUS_CM * direction)
    return out


# ------------------------------------------------------------------------------------------ main
@dataclass
class _Lifting:
    """What lifting a detection onto the mesh needs: the render subset, its map into the full face list,
    the rest-pose vertices and which render faces lie on the skin."""

    faces: np.ndarray
    render_faces: np.ndarray
    to_full: np.ndarray
    rest: np.ndarray
    skin: np.ndarray
    inner: np.ndarray

    @classmethod
    def of(cls, model) -> _Lifting:
        faces = model.faces.numpy()
        render_faces = model.render_faces.numpy()
        # render face index -> index into model.faces (the embedding indexes the full face list)
        lookup = {tuple(f): i for i, f in enumerate(faces.tolist())}
        to_full = np.array([lookup[tuple(f)] for f in render_faces.tolist()])
        inner = np.zeros(478, dtype=bool)
        inner[list(INNER_LIPS)] = True
        return cls(
            faces,
            render_faces,
            to_full,
            model.v_template.numpy().astype(np.float64),
            render_faces.max(1) <= REGION_RANGES["face"][1],
            inner,
        )

    def candidates(self, points: np.ndarray, render, view: View, cands: list) -> int:
        """Append each visible landmark's (full face id, barycentrics, rest position); returns how many."""
        tri, bary, nz = lift(points[:, :2], render, self.render_faces, self.skin)
        n_ok = 0
        for k in range(468):
            if tri[k] < 0 or nz[k] < MIN_NORMAL_Z or (self.inner[k] and view.mouth_open == 0):
                continue
            full = self.to_full[tri[k]]
            cands[k].append((int(full), bary[k], (self.rest[self.faces[full]] * bary[k][:, None]).sum(0)))
            n_ok += 1
        return n_ok


def _detect_views(model, debug: Path | None) -> tuple[list, np.ndarray]:
    """Render every view, detect MediaPipe's points and lift them: per landmark the candidates, and the
    frontal detection (for the irises)."""
    from core.fit.landmarks import LandmarkDetector

    face = ShadedFace.of(model)
    lifting = _Lifting.of(model)
    views = [View(y, p, m) for m in (0.0, MOUTH_OPEN) for p in PITCHES for y in YAWS]
    cands: list[list[tuple[int, np.ndarray, np.ndarray]]] = [[] for _ in range(478)]
    frontal = None
    with LandmarkDetector(video=False, max_faces=1) as detector:
        for view in views:
            render = render_view(face, view)
            det = detector.detect(render.image)
            if det is None:
                log.warning(
                    "MediaPipe found no face in the render yaw=%g pitch=%g mouth=%g",
                    view.yaw,
                    view.pitch,
                    view.mouth_open,
                )
                continue
            if view.yaw == 0 and view.pitch == 0 and view.mouth_open == 0:
                frontal = det.points
            n_ok = lifting.candidates(det.points, render, view, cands)
            log.info(
                "view yaw=%+5.1f pitch=%+5.1f mouth=%.2f: %d of 468 points lifted",
                view.yaw,
                view.pitch,
                view.mouth_open,
                n_ok,
            )
            if debug is not None:
                _save_debug(debug, view, render.image, det.points)
    if frontal is None:
        raise RuntimeError("MediaPipe did not detect the frontal render; cannot place the iris points")
    return cands, frontal


def build(debug: Path | None = None, model_path: Path | None = None) -> dict[str, np.ndarray]:
    """Render, detect, lift and combine; returns the arrays of the embedding file."""
    from core.face import load_face_model

    model = load_face_model("ict", model_path)
    codes = group_codes()
    cands, frontal = _detect_views(model, debug)
    face_ids = np.zeros(478, dtype=np.int64)
    bary_out = np.zeros((478, 3))
    spread = np.full(478, np.nan)
    n_views = np.zeros(478, dtype=np.int64)
    for k in range(468):
        if not cands[k]:
            raise RuntimeError(f"landmark {k} was never seen on the face in any render")
        face_ids[k], bary_out[k], spread[k] = combine(cands[k])
        n_views[k] = len(cands[k])
    for k, (f, b) in iris_embedding(model, frontal).items():
        face_ids[k], bary_out[k], spread[k] = f, b, 0.0
        n_views[k] = 1
    log.info(
        "lifted views per landmark: min %d, median %d; spread median %.2f mm, max %.2f mm (landmark %d)",
        n_views[:468].min(),
        np.median(n_views[:468]),
        10 * np.nanmedian(spread[:468]),
        10 * np.nanmax(spread[:468]),
        int(np.nanargmax(spread[:468])),
    )
    return {
        "face_ids": face_ids,
        "bary": bary_out.astype(np.float32),
        "landmark_indices": np.arange(478),
        "groups": codes,
        "spread_cm": spread.astype(np.float32),
        "n_views": n_views,
    }


def _save_debug(folder: Path, view: View, image: np.ndarray, points: np.ndarray) -> None:
    import cv2

    from core.io.image import save_image

    folder.mkdir(parents=True, exist_ok=True)
    img = image.copy()
    for u, v in points[:, :2]:
        cv2.circle(img, (int(round(u)), int(round(v))), 1, (0, 255, 0), -1)
    save_image(folder / f"render_y{view.yaw:+.0f}_p{view.pitch:+.0f}_m{view.mouth_open:.2f}.png", img)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.fit.make_embedding", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ICT_EMBEDDING)
    parser.add_argument("--debug", type=Path, help="write the renders with the detected points here")
    parser.add_argument("--model-path", type=Path, help="the ICT model file (default: the shipped compact copy)")
    args = parser.parse_args(argv)
    from core.logs import setup_logging

    setup_logging()
    arrays = build(args.debug, args.model_path)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
