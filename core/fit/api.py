"""``fit_image``: a portrait to a ``FaceFit`` (face model parameters for the paper's square crop).

Pipeline: ``core.io.image.load_image`` -> MediaPipe landmarks (``landmarks.py``) -> the paper's crop
(``crop.py``) -> robust fit of the face model to the landmarks mapped into the crop (``fitter.py``).
Everything the fit returns is expressed for the crop: ``params.camera`` projects model vertices to the
crop's normalised coordinates, ``vertices`` and ``landmarks`` are crop pixels, ``crop`` maps original
pixels to crop pixels so results can be pasted back.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.face.params import FaceParams
from core.fit.crop import face_crop, outside_fraction, transform_points, warp_image
from core.fit.fitter import FitOptions, LandmarkFitter
from core.fit.landmarks import Detection, LandmarkDetector, NoFaceError, detect_landmarks, inter_ocular

log = logging.getLogger(__name__)

__all__ = [
    "FaceFit",
    "face_boxes",
    "fit_image",
    "fit_landmarks",
    "get_fitter",
    "default_model",
    "landmarks_to_crop",
    "crop_vertices",
    "NoFaceError",
]


@lru_cache(maxsize=1)
def default_model():
    """The ICT model, loaded once per process."""
    from core.face import load_face_model

    return load_face_model("ict")


# Fitters are cached per (model, options, embedding): building one gathers the landmark bases (~0.1 s).
# A fitter holds its model, so the key's id() cannot be reused while cached; a few entries are kept.
_FITTERS: OrderedDict[tuple[int, str, str], Any] = OrderedDict()
_MAX_FITTERS = 6


def get_fitter(model=None, options: FitOptions | None = None, embedding: str | Path | None = None):
    """A fitter for ``model`` (cached per model, options and embedding file): ``LandmarkFitter`` for ICT,
    ``AutogradFitter`` for other models (FLAME)."""
    from core.fit.embedding import default_landmark_map

    model = model if model is not None else default_model()
    options = options or FitOptions()
    key = (id(model), repr(options), str(embedding))
    if key in _FITTERS:
        _FITTERS.move_to_end(key)
        return _FITTERS[key]
    lmap = default_landmark_map(model, embedding)
    if model.kind == "ict":
        fitter = LandmarkFitter(model, lmap, options)
    else:
        from core.fit.generic import AutogradFitter

        fitter = AutogradFitter(model, lmap, options)
    _FITTERS[key] = fitter
    while len(_FITTERS) > _MAX_FITTERS:
        _FITTERS.popitem(last=False)
    return fitter


@dataclass(eq=False)
class FaceFit:
    """A fitted face, everything expressed for the square crop.

    Attributes:
        params: ``FaceParams`` with B = 1; ``model.project(model(params), params.camera)`` gives the crop's
            normalised coordinates.
        vertices: ``(1, N, 3)`` float32 model vertices in crop pixels: u, v and depth (``-s Z`` in the same
            pixel units, smaller = nearer).
        crop: ``(3, 3)`` float64, crop pixels <- original pixels.
        original_size: ``(H, W)`` of the original image.
        size: side of the crop in pixels.
        landmarks: ``(478, 3)`` float32 detected MediaPipe landmarks in crop pixels (u, v, relative depth).
        fitted_landmarks: ``(L, 3)`` the model's landmarks (``landmark_ids`` of the map) in crop pixels.
        quality: ``faces_found``, ``landmark_error`` (median 2D landmark error / inter-ocular distance),
            ``landmark_error_mean``, ``inter_ocular_px``, ``yaw``/``pitch``/``roll`` (deg), ``crop_outside``
            (fraction of the crop padded), timings.
        crop_image: ``(size, size, 3)`` uint8, the crop of the original image.
    """

    params: FaceParams
    vertices: torch.Tensor
    crop: np.ndarray
    original_size: tuple[int, int]
    size: int
    landmarks: np.ndarray
    fitted_landmarks: np.ndarray
    quality: dict[str, Any]
    crop_image: np.ndarray | None = None
    model_kind: str = "ict"
    landmark_ids: np.ndarray = field(default_factory=lambda: np.arange(478))

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Arrays for ``np.savez``: the params fields, crop, landmarks, sizes and quality (JSON)."""
        out = dict(self.params.to_numpy())
        out.update(
            crop=self.crop,
            original_size=np.asarray(self.original_size),
            size=np.asarray(self.size),
            landmarks=self.landmarks,
            fitted_landmarks=self.fitted_landmarks,
            landmark_ids=self.landmark_ids,
            model_kind=np.asarray(self.model_kind),
            quality=np.asarray(json.dumps(self.quality)),
        )
        return out

    @classmethod
    def load(cls, path: str | Path, model=None) -> FaceFit:
        """Read a file written by ``save`` (vertices recomputed with ``model`` when not stored)."""
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        params = FaceParams.from_dict(arrays)
        size = int(arrays["size"])
        if "vertices" in arrays:
            vertices = torch.from_numpy(arrays["vertices"])
        else:
            vertices = crop_vertices(model if model is not None else default_model(), params, size)
        return cls(
            params=params,
            vertices=vertices,
            crop=arrays["crop"],
            original_size=tuple(int(x) for x in arrays["original_size"]),
            size=size,
            landmarks=arrays["landmarks"],
            fitted_landmarks=arrays["fitted_landmarks"],
            quality=json.loads(str(arrays["quality"])),
            crop_image=arrays.get("crop_image"),
            model_kind=str(arrays["model_kind"]),
            landmark_ids=arrays["landmark_ids"],
        )

    def save(self, path: str | Path, with_vertices: bool = False, with_image: bool = False) -> Path:
        """Write an npz (``to_numpy``, optionally the vertices and the crop image)."""
        data = self.to_numpy()
        if with_vertices:
            data["vertices"] = self.vertices.numpy()
        if with_image and self.crop_image is not None:
            data["crop_image"] = self.crop_image
        from core.io.atomic import save_npz

        return save_npz(path, data)


def landmarks_to_crop(points: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """Original-image landmarks ``(..., 478, 3)`` (u, v, z pixels) to crop pixels (z scaled like u)."""
    out = np.empty_like(points)
    out[..., :2] = transform_points(crop, points[..., :2])
    out[..., 2] = points[..., 2] * crop[0, 0]
    return out


def pixels_to_obs(points: np.ndarray, size: int) -> torch.Tensor:
    """Crop pixels ``(..., 3)`` to the fitter's normalised observations (x, y, z scaled like x)."""
    t = torch.as_tensor(np.asarray(points), dtype=torch.float64)
    return torch.cat([(2.0 * t[..., :2] + 1.0) / size - 1.0, t[..., 2:3] * (2.0 / size)], -1)


def obs_to_pixels(obs: torch.Tensor, size: int) -> np.ndarray:
    """Inverse of ``pixels_to_obs``."""
    t = obs.detach().to(torch.float64)
    return torch.cat([((t[..., :2] + 1.0) * size - 1.0) / 2.0, t[..., 2:3] * (size / 2.0)], -1).numpy()


def crop_vertices(model, params: FaceParams, size: int) -> torch.Tensor:
    """Model vertices ``(B, N, 3)`` in crop pixels: u, v, depth (normalised depth times size / 2)."""
    with torch.no_grad():
        proj = model.project(model(params), params.camera)
    scale = proj.new_tensor([size / 2.0, size / 2.0, size / 2.0])
    shift = proj.new_tensor([(size - 1) / 2.0, (size - 1) / 2.0, 0.0])
    return proj * scale + shift


def landmark_errors(detected_px: np.ndarray, fitted_px: np.ndarray) -> np.ndarray:
    """Per-landmark 2D distances ``(..., L)`` in pixels."""
    return np.linalg.norm(detected_px[..., :2] - fitted_px[..., :2], axis=-1)


def fit_quality(landmarks: np.ndarray, fitted: np.ndarray, ids: np.ndarray, params: FaceParams) -> dict[str, Any]:
    """Landmark error figures (fractions of the inter-ocular distance) and head angles of one fit."""
    iod = float(inter_ocular(landmarks))
    err = landmark_errors(landmarks[ids], fitted)
    head = params.head[0].tolist()
    return {
        "landmark_error": float(np.median(err) / iod),
        "landmark_error_mean": float(err.mean() / iod),
        "inter_ocular_px": iod,
        "yaw": head[0],
        "pitch": head[1],
        "roll": head[2],
    }


def fit_landmarks(
    landmarks_px: np.ndarray,
    size: int = 256,
    model=None,
    options: FitOptions | None = None,
    shared_shape: bool = True,
    embedding: str | Path | None = None,
) -> tuple[FaceParams, np.ndarray]:
    """Fit to MediaPipe landmarks already in crop pixels ``(478, 3)`` or ``(B, 478, 3)``.

    Returns ``FaceParams`` (B) and the fitted landmarks in crop pixels ``(B, L, 3)``. ``shared_shape``: one
    identity for all B (one person).
    """
    fitter = get_fitter(model, options, embedding)
    pts = np.asarray(landmarks_px, dtype=np.float64)
    if pts.ndim == 2:
        pts = pts[None]
    obs = pixels_to_obs(pts[:, fitter.lmap.landmark_ids.numpy()], size)
    with torch.no_grad():
        state = fitter.fit(obs, shared_shape=shared_shape)
        fitted = obs_to_pixels(fitter.project(state), size)
    return fitter.to_params(state), fitted


def fit_image(
    image,
    model=None,
    size: int = 256,
    options: FitOptions | None = None,
    detector: LandmarkDetector | None = None,
    border: str = "replicate",
    embedding: str | Path | None = None,
    name: str | None = None,
    face: int | None = None,
) -> FaceFit:
    """Fit the face model to the largest face of a portrait.

    Args:
        image: a path, bytes, PIL image or array (anything ``core.io.image.load_image`` takes).
        model: a ``FaceModel`` (default: ICT, loaded once).
        size: crop side in pixels (256, or 512).
        options: ``FitOptions``.
        detector: a still-image ``LandmarkDetector`` to reuse (else one is made and closed).
        border: how crop pixels outside the image are filled: ``"replicate"`` or ``"zeros"``.
        embedding: landmark embedding file (FLAME's ``mediapipe_landmark_embedding.npz`` for FLAME).
        name: how errors name the input (default: the path).
        face: which face when there are several, by size (0 = the largest); None: the largest plausible one.

    Raises ``NoFaceError`` (a ``ValueError``) when there is no face, ``core.io.image.ImageError`` for an
    unreadable image.
    """
    from core.io.image import load_image

    model = model if model is not None else default_model()
    name = name or (str(image) if isinstance(image, (str, Path)) else f"<{type(image).__name__}>")
    img = load_image(image)
    t0 = time.perf_counter()
    own = detector is None
    detector = detector or LandmarkDetector(video=False)
    try:
        det: Detection = detect_landmarks(img, name, detector)
        t1 = time.perf_counter()
        if face:
            det = _choose_face(img, det, int(face), detector, name)
        fit = _fit_points(img, det.points, model, size, options, border, embedding)
        if face is not None:
            fit.quality["face_rank"] = int(face) + 1
        if det.faces_found > 1 and face is None:
            fit = _pick_plausible(img, det, fit, detector, model, size, options, border, embedding, name)
    finally:
        if own:
            detector.close()
    fit.quality.update(faces_found=det.faces_found, detect_s=t1 - t0, fit_s=time.perf_counter() - t1)
    q = fit.quality
    log.info(
        "%s: yaw %.1f pitch %.1f roll %.1f, landmark error %.2f %% of the inter-ocular distance",
        name,
        q["yaw"],
        q["pitch"],
        q["roll"],
        100 * q["landmark_error"],
    )
    return fit


def _choose_face(img: np.ndarray, det: Detection, face: int, detector: LandmarkDetector, name: str) -> Detection:
    """The detection of face number ``face`` by size (0 = the largest), refined; ``NoFaceError`` if absent."""
    if not 0 <= face < det.faces_found:
        raise NoFaceError(
            f"{name}: face {face} asked for, but {det.faces_found} face(s) found "
            f"(0 = the largest, up to {det.faces_found - 1})"
        )
    points = detector.refine(img, det.others[face - 1])
    others = [det.points] + [p for i, p in enumerate(det.others) if i != face - 1]
    log.info("%s: using face %d of %d (by size)", name, face, det.faces_found)
    return Detection(points, det.faces_found, others)


def face_boxes(image, detector: LandmarkDetector | None = None) -> list[tuple[float, float, float, float]]:
    """Landmark boxes ``(left, top, right, bottom)`` in pixels of every face of a still image, in the order
    ``fit_image(face=i)`` numbers them (largest first); [] when there is none."""
    from core.io.image import load_image

    img = load_image(image)
    own = detector is None
    detector = detector or LandmarkDetector(video=False)
    try:
        det = detector.detect(img)
    finally:
        if own:
            detector.close()
    if det is None:
        return []
    return [Detection(p, 1).box for p in [det.points, *det.others]]


# A real face fits MediaPipe's landmarks to about 1 % of the inter-ocular distance; false detections
# (patterns in the background) fit far worse.
PLAUSIBLE_ERROR = 0.02


def _pick_plausible(
    img: np.ndarray,
    det: Detection,
    first: FaceFit,
    detector: LandmarkDetector,
    model,
    size: int,
    options: FitOptions | None,
    border: str,
    embedding,
    name: str,
) -> FaceFit:
    """With several faces: the largest one whose fit is plausible, else the best fitting one."""
    fits = [first]
    for points in det.others:
        if fits[-1].quality["landmark_error"] < PLAUSIBLE_ERROR:
            break
        fits.append(_fit_points(img, detector.refine(img, points), model, size, options, border, embedding))
    good = [f for f in fits if f.quality["landmark_error"] < PLAUSIBLE_ERROR]
    errors = [f.quality["landmark_error"] for f in fits]
    rank = 1 + (next(i for i, e in enumerate(errors) if e < PLAUSIBLE_ERROR) if good else int(np.argmin(errors)))
    chosen = fits[rank - 1]
    log.warning(
        "%s: %d faces found; using the %s",
        name,
        det.faces_found,
        "largest" if rank == 1 else f"largest plausible one (size rank {rank}; larger ones fit badly)",
    )
    chosen.quality["face_rank"] = rank
    return chosen


def _fit_points(
    img: np.ndarray, points: np.ndarray, model, size: int, options: FitOptions | None, border: str, embedding
) -> FaceFit:
    """Crop around landmarks ``(478, 3)`` in original pixels and fit the model in that crop."""
    crop = face_crop(points, size)
    landmarks = landmarks_to_crop(points, crop).astype(np.float32)
    params, fitted = fit_landmarks(landmarks, size, model, options, embedding=embedding)
    ids = get_fitter(model, options, embedding).lmap.landmark_ids.numpy()
    quality = {
        **fit_quality(landmarks, fitted[0], ids, params),
        "crop_outside": outside_fraction(crop, img.shape[:2], size),
    }
    return FaceFit(
        params=params,
        vertices=crop_vertices(model, params, size),
        crop=crop,
        original_size=(int(img.shape[0]), int(img.shape[1])),
        size=size,
        landmarks=landmarks,
        fitted_landmarks=fitted[0].astype(np.float32),
        quality=quality,
        crop_image=warp_image(img, crop, size, border),
        model_kind=model.kind,
        landmark_ids=ids,
    )
