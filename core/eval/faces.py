"""dlib's face detector, 68-point shape predictor and ResNet face-recognition embedding (128-d).

Model files come from the ``face_recognition_models`` wheel (installed by requirements.txt), located without
importing that package (its ``__init__`` needs ``pkg_resources``, gone from recent setuptools):
``shape_predictor_68_face_landmarks.dat`` and ``dlib_face_recognition_resnet_model_v1.dat``.
``$GDPW_DLIB_MODELS`` may name another folder holding the same files. Nothing is downloaded.

Boxes: dlib's HOG frontal-face detector on the image as given; the largest box wins. When it misses the face
(strong profile, artefacts), a box is made from MediaPipe landmarks of the same image, mapped to the size
and position of dlib's boxes (calibrated on 77 sample crops: dlib's side ~ 1.05 x the width and ~ 0.88 x the
height of MediaPipe's 478-point box, same centre to 1 %). Each result says which box it used.

ArcFace (``load_arcface``) is a documented hook only in this version.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
RESNET = "dlib_face_recognition_resnet_model_v1.dat"
EMBEDDING_DIM = 128

# MediaPipe 478-point box -> dlib-like box (see the module docstring).
MP_BOX_WIDTH_SCALE = 1.046
MP_BOX_HEIGHT_SCALE = 0.878
MP_BOX_CENTRE_DY = 0.010


class MetricUnavailable(RuntimeError):
    """A metric's model or library is missing; the message says what is needed."""


def dlib_model_dir() -> Path:
    """Folder with dlib's model files: ``$GDPW_DLIB_MODELS``, else ``face_recognition_models/models``."""
    env = os.environ.get("GDPW_DLIB_MODELS")
    if env:
        folder = Path(env).expanduser()
    else:
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or spec.origin is None:
            raise MetricUnavailable(
                "dlib's model files are missing: pip install -r requirements.txt "
                "(face_recognition_models), or set GDPW_DLIB_MODELS to a folder with "
                f"{PREDICTOR_68} and {RESNET}"
            )
        folder = Path(spec.origin).parent / "models"
    for name in (PREDICTOR_68, RESNET):
        if not (folder / name).is_file():
            raise MetricUnavailable(f"{folder / name} is missing (dlib's models: face_recognition_models)")
    return folder


def mediapipe_box(points: np.ndarray) -> tuple[float, float, float, float]:
    """A dlib-like box (left, top, right, bottom) from MediaPipe landmarks ``(478, 2+)`` in pixels."""
    p = np.asarray(points, dtype=np.float64)[:, :2]
    lo, hi = p.min(0), p.max(0)
    w, h = hi - lo
    side = 0.5 * (MP_BOX_WIDTH_SCALE * w + MP_BOX_HEIGHT_SCALE * h)
    cx, cy = (lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0 + MP_BOX_CENTRE_DY * h
    return cx - side / 2.0, cy - side / 2.0, cx + side / 2.0, cy + side / 2.0


@dataclass
class Landmarks68:
    """dlib's 68 landmarks of one face: ``points (68, 2)`` float pixels (x, y), the ``box`` (left, top, right,
    bottom) they were predicted in, and ``box_source``: ``"dlib"`` (detector) or ``"mediapipe"`` (fallback)."""

    points: np.ndarray
    box: tuple[float, float, float, float]
    box_source: str
    shape: object = None  # the dlib.full_object_detection (for the embedding)


class DlibFaces:
    """dlib's detector, 68-point predictor and face-recognition ResNet, loaded once.

    Args:
        model_dir: folder of the ``.dat`` files (default ``dlib_model_dir()``).
        upsample: detector upsampling (0 suits the 256 crops, where faces are large).
    """

    def __init__(self, model_dir: str | Path | None = None, upsample: int = 0) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise MetricUnavailable(
                f"dlib is not installed ({exc}): pip install -r requirements.txt (dlib-bin)"
            ) from None
        folder = Path(model_dir) if model_dir else dlib_model_dir()
        self._dlib = dlib
        self.upsample = upsample
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(folder / PREDICTOR_68))
        self.recogniser = dlib.face_recognition_model_v1(str(folder / RESNET))

    @staticmethod
    def _rgb(image: np.ndarray) -> np.ndarray:
        img = np.asarray(image)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"dlib needs an RGB uint8 (H, W, 3) image, got {img.dtype} {img.shape}")
        return np.ascontiguousarray(img)  # dlib misreads strided views (e.g. engine outputs)

    def detect(self, image: np.ndarray) -> tuple[float, float, float, float] | None:
        """The largest face box (left, top, right, bottom) of dlib's HOG detector, or None."""
        rects = self.detector(self._rgb(image), self.upsample)
        if len(rects) == 0:
            return None
        r = max(rects, key=lambda r: r.width() * r.height())
        return float(r.left()), float(r.top()), float(r.right()), float(r.bottom())

    def landmarks(self, image: np.ndarray, fallback_points: np.ndarray | None = None) -> Landmarks68 | None:
        """68 landmarks in dlib's box, or in a box from ``fallback_points`` (MediaPipe ``(478, 2+)``) when the
        detector finds no face; None when neither gives a box."""
        img = self._rgb(image)
        box, source = self.detect(img), "dlib"
        if box is None:
            if fallback_points is None:
                return None
            box, source = mediapipe_box(fallback_points), "mediapipe"
        rect = self._dlib.rectangle(*(int(round(v)) for v in box))
        shape = self.predictor(img, rect)
        points = np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], dtype=np.float64)
        return Landmarks68(points, box, source, shape)

    def embedding(self, image: np.ndarray, landmarks: Landmarks68) -> np.ndarray:
        """The 128-d face-recognition embedding (dlib's ResNet on the face aligned with the 68 points)."""
        vec = self.recogniser.compute_face_descriptor(self._rgb(image), landmarks.shape, 0, 0.25)
        return np.asarray(vec, dtype=np.float64)

    def identity(self, image: np.ndarray, fallback_points: np.ndarray | None = None) -> np.ndarray | None:
        """The embedding of the face in ``image``, found as ``landmarks`` finds it (``fallback_points``:
        MediaPipe ``(478, 2+)`` for when the detector misses), or None when there is no face."""
        points = None if fallback_points is None else np.asarray(fallback_points, dtype=np.float64)
        lmk = self.landmarks(image, points)
        return None if lmk is None else self.embedding(image, lmk)


# ------------------------------------------------------------------------------------------ hooks
ARCFACE_EXPECTED = (
    "an ArcFace backbone as a PyTorch state dict: insightface's iresnet100 trained on MS1MV3 "
    "('ms1mv3_arcface_r100_fp16/backbone.pth', 112 x 112 faces aligned to the standard 5-point ArcFace "
    "template, 512-d output)"
)


def load_arcface(path: str | Path):
    """Hook for ArcFace identity embeddings (the paper's CSIM presumably uses ArcFace).

    Expects ``path`` to be {expected}. This version has no iresnet100 network to load it into, so it
    raises ``MetricUnavailable``; CSIM uses dlib's ResNet embeddings instead.
    """
    path = Path(path)
    if not path.is_file():
        raise MetricUnavailable(f"ArcFace weights {path}: no such file (expected {ARCFACE_EXPECTED})")
    raise MetricUnavailable(
        f"ArcFace CSIM is not supported in this version: {path} would need to be "
        f"{ARCFACE_EXPECTED}, and the network to load it into is not implemented yet; "
        "CSIM uses dlib's ResNet face embeddings"
    )


load_arcface.__doc__ = load_arcface.__doc__.format(expected=ARCFACE_EXPECTED)
