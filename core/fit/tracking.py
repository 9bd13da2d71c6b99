"""``fit_video``: one identity for a whole clip, then per-frame pose, expression and gaze, smoothed.

Steps:
1. MediaPipe in tracking mode on every frame (``LandmarkDetector(video=True)``).
2. Crops: by default one square for the whole clip (``crop_mode="fixed"``: median centre and side of the
   per-frame crops of the paper's formula), which keeps the head's motion in the crop like FOMM's
   preprocessing; ``"smooth"`` follows the face with one-euro-filtered per-frame crops; ``"per_frame"``
   uses each frame's own crop.
3. Identity: fitted jointly on up to ``identity_frames`` detected frames spread over the clip (one shared
   identity, per-frame pose and expression). The prior is scaled by the number of frames so the identity is
   as regularised as a single photo's (MediaPipe's errors are correlated between frames: more frames
   average the expressions and poses, they do not make the landmarks more trustworthy).
4. Tracking: every detected frame with the identity fixed, warm-started from the previous frame (its
   expression and gaze; the pose restarts from a closed-form fit of the previous frame's 3D landmarks), a
   few Levenberg-Marquardt iterations.
5. Frames without a detection get parameters interpolated linearly from the nearest detected neighbours
   (held at the ends) and ``detected[t] = False``.
6. Smoothing (on by default): a one-euro filter (Casiez et al. 2012) on pose, camera, expressions and gaze,
   run forwards and backwards and averaged so that it adds no lag to an offline clip.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.face.params import FIELD_NAMES, FaceParams
from core.fit.api import (
    crop_vertices,
    default_model,
    get_fitter,
    landmark_errors,
    landmarks_to_crop,
    obs_to_pixels,
    pixels_to_obs,
)
from core.fit.crop import crop_square, square_transform, warp_image
from core.fit.fitter import FitOptions
from core.fit.landmarks import LandmarkDetector, NoFaceError, inter_ocular

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ one-euro filter
@dataclass(frozen=True)
class OneEuro:
    """One-euro filter settings for a signal in units of ``unit`` (so one setting suits several fields).

    ``min_cutoff`` (Hz) sets the smoothing of slow motion, ``beta`` how fast the cutoff rises with speed
    (per unit/s), ``d_cutoff`` (Hz) the smoothing of the speed estimate.
    """

    min_cutoff: float = 1.0
    beta: float = 0.05
    d_cutoff: float = 1.0
    unit: float = 1.0


def _alpha(cutoff: np.ndarray | float, fps: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * fps)


def one_euro(x: np.ndarray, fps: float, f: OneEuro) -> np.ndarray:
    """Causal one-euro filter along the first axis of ``x (T, ...)``; each column independently."""
    x = np.asarray(x, dtype=np.float64) / f.unit
    out = np.empty_like(x)
    out[0] = x[0]
    dx = np.zeros_like(x[0])
    a_d = _alpha(f.d_cutoff, fps)
    for t in range(1, len(x)):
        dx = a_d * (x[t] - out[t - 1]) * fps + (1.0 - a_d) * dx
        a = _alpha(f.min_cutoff + f.beta * np.abs(dx), fps)
        out[t] = a * x[t] + (1.0 - a) * out[t - 1]
    return out * f.unit


def smooth_zero_phase(x: np.ndarray, fps: float, f: OneEuro) -> np.ndarray:
    """Average of the filter run forwards and backwards: the same smoothing without the lag."""
    return 0.5 * (one_euro(x, fps, f) + one_euro(x[::-1], fps, f)[::-1])


# Per-field settings: units chosen so that "1" is a just-visible change at 256 pixels.
DEFAULT_SMOOTHING: dict[str, OneEuro] = {
    "head": OneEuro(min_cutoff=1.0, beta=0.3, unit=1.0),  # degrees
    "camera": OneEuro(min_cutoff=1.0, beta=0.3, unit=0.004),  # s (per cm), face position (normalised)
    "expression": OneEuro(min_cutoff=1.0, beta=0.5, unit=0.05),  # blendshape weight: fast for the lips
    "gaze": OneEuro(min_cutoff=1.0, beta=0.3, unit=1.0),  # degrees
}


def smooth_params(
    params: FaceParams,
    fps: float,
    settings: dict[str, OneEuro] | None = None,
    anchor: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> FaceParams:
    """One-euro (zero-phase) smoothing of the per-frame fields of a clip's ``FaceParams`` (B = frames).

    ``anchor = (pivot, point)`` (cm, model frame): the camera translation is smoothed as the image position
    of ``point`` (a point of the face) instead of (tx, ty). The head turns about a pivot in the neck, so a
    small rotation also shifts the face, and the fit trades the two off from frame to frame; smoothing
    angles and (tx, ty) separately would move the face off its landmarks, smoothing the face's own image
    position keeps it on them.
    """
    from core.face.rotation import euler_to_matrix

    settings = DEFAULT_SMOOTHING if settings is None else settings
    data = params.to_numpy()

    def anchor_xy(head: np.ndarray, camera: np.ndarray) -> np.ndarray:
        pivot, point = (a.double() for a in anchor)
        rot = euler_to_matrix(torch.as_tensor(head, dtype=torch.float64))
        q = (rot @ (point - pivot)) + pivot  # (T, 3)
        s = torch.as_tensor(camera[:, :1], dtype=torch.float64)
        return (s * q[:, :2] * q.new_tensor([1.0, -1.0])).numpy()

    if anchor is not None and "camera" in settings:
        centre = camera_xy = anchor_xy(data["head"], data["camera"]) + data["camera"][:, 1:]
    for name, f in settings.items():
        arr = data[name]
        if len(arr) > 1:
            data[name] = smooth_zero_phase(arr.reshape(len(arr), -1), fps, f).reshape(arr.shape)
    if anchor is not None and "camera" in settings and len(data["camera"]) > 1:
        centre = smooth_zero_phase(camera_xy, fps, settings["camera"])
        data["camera"][:, 1:] = centre - anchor_xy(data["head"], data["camera"])
    if "expression" in settings:
        data["expression"] = np.clip(data["expression"], 0.0, None if params.expression.min() < 0 else 1.0)
    return FaceParams.from_dict(data)


def interpolate_missing(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill rows of ``values (T, ...)`` where ``known`` is False by linear interpolation in time (held at
    the ends)."""
    values = np.array(values, dtype=np.float64, copy=True)
    t_known = np.nonzero(known)[0]
    t_all = np.arange(len(values))
    flat = values.reshape(len(values), -1)
    for c in range(flat.shape[1]):
        flat[:, c] = np.interp(t_all, t_known, flat[t_known, c])
    return flat.reshape(values.shape)


# ------------------------------------------------------------------------------------------ result
@dataclass(eq=False)
class VideoFit:
    """A fitted clip.

    Attributes:
        params: ``FaceParams`` with B = T frames (one identity; camera per frame for that frame's crop).
        crops: ``(T, 3, 3)`` crop pixels <- original pixels per frame.
        detected: ``(T,)`` bool, False where the parameters were interpolated.
        landmarks: ``(T, 478, 3)`` detected landmarks in crop pixels (NaN where not detected).
        fitted_landmarks: ``(T, L, 3)`` the model's landmarks in crop pixels.
        fps: frame rate (from the file, or as given).
        size: crop side; original_size: ``(H, W)`` of the frames.
        quality: ``frames``, ``detected_frames``, ``mean_error`` (landmark error / inter-ocular distance,
            mean over detected frames of the per-frame median), ``errors`` (per frame), ``faces_found``
            (max over frames), timings in seconds: ``detect_s`` (MediaPipe), ``fit_s`` (all of the fitting),
            ``identity_s`` and ``track_s`` (its identity and per-frame parts).
    """

    params: FaceParams
    crops: np.ndarray
    detected: np.ndarray
    landmarks: np.ndarray
    fitted_landmarks: np.ndarray
    fps: float
    size: int
    original_size: tuple[int, int]
    quality: dict[str, Any]
    model: Any = field(default=None, repr=False)

    def __len__(self) -> int:
        return self.params.batch_size

    def vertices(self, index: int | slice | None = None, chunk: int = 64) -> torch.Tensor:
        """Model vertices in crop pixels ``(T', N, 3)`` (u, v, depth) for a frame, a slice or all, computed
        on demand in chunks."""
        model = self.model if self.model is not None else default_model()
        params = self.params if index is None else self.params[index]
        parts = [crop_vertices(model, params[i : i + chunk], self.size) for i in range(0, params.batch_size, chunk)]
        return torch.cat(parts, 0)

    def crop_frame(self, frame: np.ndarray, index: int, border: str = "replicate") -> np.ndarray:
        """The crop ``(size, size, 3)`` of an original frame ``index``."""
        return warp_image(frame, self.crops[index], self.size, border)

    def to_numpy(self) -> dict[str, np.ndarray]:
        out = dict(self.params.to_numpy())
        q = {k: v for k, v in self.quality.items() if k != "errors"}
        out.update(
            crops=self.crops,
            detected=self.detected,
            landmarks=self.landmarks,
            fitted_landmarks=self.fitted_landmarks,
            fps=np.asarray(self.fps),
            size=np.asarray(self.size),
            original_size=np.asarray(self.original_size),
            errors=np.asarray(self.quality["errors"]),
            quality=np.asarray(json.dumps(q)),
        )
        return out

    def save(self, path: str | Path) -> Path:
        """Write an npz (``to_numpy``) atomically."""
        from core.io.atomic import save_npz

        return save_npz(path, self.to_numpy())


# ------------------------------------------------------------------------------------------ steps
def detect_clip(
    frames: Iterable[np.ndarray],
    detector: LandmarkDetector | None = None,
    progress: bool = True,
    total: int | None = None,
) -> tuple[list[np.ndarray | None], int]:
    """Tracked landmarks of every frame (None where no face) in original pixels, and the most faces seen.

    ``frames`` may be any iterable (a decoder streaming a file): each frame is dropped once detected.
    """
    points, most, _ = _detect_stream(frames, detector, progress, total)
    return points, most


def _detect_stream(
    frames: Iterable[np.ndarray], detector: LandmarkDetector | None, progress: bool, total: int | None
) -> tuple[list[np.ndarray | None], int, tuple[int, int]]:
    """``detect_clip`` plus the frames' ``(H, W)``; keeps only the ``(478, 3)`` float32 landmarks."""
    from tqdm import tqdm

    own = detector is None
    det = detector or LandmarkDetector(video=True)
    points: list[np.ndarray | None] = []
    most, shape = 0, (0, 0)
    try:
        for frame in tqdm(frames, desc="landmarks", unit="frame", total=total, disable=not progress):
            frame = np.asarray(frame)
            shape = (int(frame.shape[0]), int(frame.shape[1]))
            d = det.detect(frame)
            points.append(None if d is None else d.points.astype(np.float32))
            most = max(most, 0 if d is None else d.faces_found)
    finally:
        if own:
            det.close()
    return points, most, shape


def clip_crops(points: np.ndarray, known: np.ndarray, size: int, mode: str, fps: float) -> np.ndarray:
    """Per-frame crop transforms ``(T, 3, 3)`` from landmarks ``(T, 478, 3)`` (rows where ``known``)."""
    if mode not in ("fixed", "smooth", "per_frame"):
        raise ValueError(f"crop_mode must be 'fixed', 'smooth' or 'per_frame', got '{mode}'")
    boxes = np.full((len(points), 3), np.nan)
    for t in np.nonzero(known)[0]:
        centre, side = crop_square(points[t])
        boxes[t] = (centre[0], centre[1], side)
    boxes = interpolate_missing(boxes, known)
    if mode == "fixed":
        boxes[:] = np.median(boxes[known], axis=0)
    elif mode == "smooth":
        boxes = smooth_zero_phase(boxes, fps, OneEuro(min_cutoff=0.5, beta=0.01, unit=1.0))
    return np.stack([square_transform(b[:2], b[2], size) for b in boxes])


def _anchor(fitter, params: FaceParams) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(head pivot, centroid of the face's landmarks) for ``smooth_params``; None for non-ICT fitters."""
    lm = getattr(fitter, "lm", None)
    if lm is None:
        return None
    shape = params.shape[:1, : lm.n_shape].double()
    return lm.pivot, lm.rest(shape, torch.zeros(1, lm.n_expression, dtype=torch.float64))[0].mean(0)


def _identity_subset(known: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` detected frame indices spread evenly over the clip."""
    idx = np.nonzero(known)[0]
    if len(idx) <= count:
        return idx
    return idx[np.round(np.linspace(0, len(idx) - 1, count)).astype(int)]


def _frame_source(
    video: str | Path | Iterable[np.ndarray], fps: float | None, max_frames: int | None
) -> tuple[Iterable[np.ndarray], str, float, int | None]:
    """(frames, name, fps, expected count): a file is streamed by ``core.io.video.iter_frames``."""
    from core.io.video import check_fps, iter_frames, probe_video

    if isinstance(video, (str, Path)):
        info = probe_video(video)
        total = info.n_frames if max_frames is None or info.n_frames is None else min(max_frames, info.n_frames)
        return iter_frames(video, max_frames), str(video), check_fps(fps or info.fps), total
    if max_frames is not None:
        video = itertools.islice(video, max_frames)
    total = len(video) if hasattr(video, "__len__") else None
    return video, "<frames>", check_fps(fps or 25.0), total


def fit_video(
    video: str | Path | Iterable[np.ndarray],
    model=None,
    size: int = 256,
    options: FitOptions | None = None,
    smoothing: bool | dict[str, OneEuro] = True,
    identity_frames: int = 12,
    crop_mode: str = "fixed",
    fps: float | None = None,
    max_frames: int | None = None,
    embedding: str | Path | None = None,
    progress: bool = True,
) -> VideoFit:
    """Fit a talking-head clip: a path (streamed: frames are decoded, detected and dropped, so memory grows
    only by the per-frame landmarks and parameters, a few kB a frame) or any iterable of RGB uint8 frames.

    Args:
        video: a video file or frames ``(H, W, 3)`` uint8 (a list or a generator).
        model: face model (default ICT).
        size: crop side (256 or 512).
        options: ``FitOptions`` (``track_iterations`` per frame).
        smoothing: True for the default one-euro settings, False for none, or per-field ``OneEuro`` settings.
        identity_frames: frames used to fit the identity.
        crop_mode: ``"fixed"``, ``"smooth"`` or ``"per_frame"`` (see the module docstring).
        fps: frame rate (default: the file's, or 25 for frames).
        max_frames: use at most this many frames.
    """
    frames, name, fps, total = _frame_source(video, fps, max_frames)
    model = model if model is not None else default_model()
    options = options or FitOptions()
    t0 = time.perf_counter()
    raw, most, (h, w) = _detect_stream(frames, None, progress, total)
    t1 = time.perf_counter()
    if not raw:
        raise ValueError(f"{name}: no frames")
    known = np.array([p is not None for p in raw])
    if not known.any():
        raise NoFaceError(f"{name}: no face found in any of the {len(raw)} frames")
    if most > 1:
        log.warning("%s: up to %d faces in a frame; tracking the largest", name, most)
    pts = np.full((len(raw), 478, 3), np.nan, dtype=np.float32)
    pts[known] = np.stack([p for p in raw if p is not None])
    del raw
    crops = clip_crops(pts, known, size, crop_mode, fps)
    landmarks = pts  # to crop pixels in place: one (T, 478, 3) float32 array
    for t in np.nonzero(known)[0]:
        landmarks[t] = landmarks_to_crop(pts[t].astype(np.float64), crops[t])
    params, timing = _fit_frames(landmarks, known, size, model, options, identity_frames, embedding, progress)
    fitter = get_fitter(model, options, embedding)
    if smoothing:
        params = smooth_params(params, fps, None if smoothing is True else smoothing, _anchor(fitter, params))
    fitted, errors = _fitted_and_errors(fitter, params, landmarks, known, size)
    quality = {
        "frames": len(known),
        "detected_frames": int(known.sum()),
        "mean_error": float(np.nanmean(errors)),
        "faces_found": most,
        "errors": errors.tolist(),
        "detect_s": t1 - t0,
        "fit_s": time.perf_counter() - t1,
        **timing,
        "smoothing": bool(smoothing),
        "crop_mode": crop_mode,
    }
    log.info(
        "%s: %d frames, %d with a face, mean landmark error %.2f %% of the inter-ocular distance",
        name,
        len(known),
        known.sum(),
        100 * quality["mean_error"],
    )
    return VideoFit(
        params, crops, known, landmarks, fitted.astype(np.float32), float(fps), size, (h, w), quality, model
    )


def _fitted_and_errors(
    fitter, params: FaceParams, landmarks: np.ndarray, known: np.ndarray, size: int, chunk: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """The model's landmarks in crop pixels ``(T, L, 3)`` (in chunks of frames) and the per-frame median
    landmark error over the inter-ocular distance ``(T,)`` (NaN where not detected)."""
    parts = []
    with torch.no_grad():
        for i in range(0, params.batch_size, chunk):
            state = fitter.state_from_params(params[i : i + chunk])
            parts.append(np.asarray(obs_to_pixels(fitter.project(state), size), dtype=np.float32))
    fitted = np.concatenate(parts, 0)
    ids = fitter.lmap.landmark_ids.numpy()
    errors = np.full(len(known), np.nan)
    det_idx = np.nonzero(known)[0]
    err = landmark_errors(landmarks[det_idx][:, ids], fitted[det_idx])
    errors[det_idx] = np.median(err, axis=1) / inter_ocular(landmarks[det_idx])
    return fitted, errors


def _fit_frames(
    landmarks: np.ndarray,
    known: np.ndarray,
    size: int,
    model,
    options: FitOptions,
    identity_frames: int,
    embedding,
    progress: bool,
) -> tuple[FaceParams, dict[str, float]]:
    """Identity on a subset, then per-frame tracking; missing frames interpolated. Returns B = T params and
    the seconds spent on the identity (``identity_s``) and on the per-frame tracking (``track_s``)."""
    from tqdm import tqdm

    fitter = get_fitter(model, options, embedding)
    ids = fitter.lmap.landmark_ids.numpy()
    subset = _identity_subset(known, identity_frames)
    id_fitter = get_fitter(model, replace(options, shape_prior=options.shape_prior * len(subset)), embedding)
    obs_all = pixels_to_obs(np.nan_to_num(landmarks[:, ids]), size)
    t0 = time.perf_counter()
    with torch.no_grad():
        ident = id_fitter.fit(obs_all[subset], shared_shape=True)
    state = ident.select(slice(0, 1))
    t1 = time.perf_counter()
    rows: dict[str, list[np.ndarray]] = {name_: [] for name_ in FIELD_NAMES}
    det_idx = np.nonzero(known)[0]
    for t in tqdm(det_idx, desc="fitting", unit="frame", disable=not progress):
        state = fitter.track(obs_all[t : t + 1], state)
        for name_, value in fitter.to_params(state).to_numpy().items():  # small rows, no tensors kept
            rows[name_].append(value[0])
    t2 = time.perf_counter()
    data = {}
    for name_ in FIELD_NAMES:
        detected = np.stack(rows[name_])
        full = np.zeros((len(known), *detected.shape[1:]), dtype=detected.dtype)
        full[det_idx] = detected
        data[name_] = interpolate_missing(full, known) if not known.all() else full
    return FaceParams.from_dict(data), {"identity_s": t1 - t0, "track_s": t2 - t1}
