"""What the metrics measure on one image: dlib's 68 landmarks and face embedding, and a face-model fit.

``FrameAnalyser.analyse(image)`` on a face crop (256 x 256 in the paper's protocol):

1. ``core.fit.fit_image`` (MediaPipe landmarks, then the ICT fit): the expression coefficients (ICT's 53
   blendshape weights) for AED and the head (yaw, pitch, roll) in degrees for APD. The output frame and the
   real frame are fitted the same way, each on its own, so the comparison is symmetric.
2. dlib: the 68 landmarks (AKD) in dlib's own box, or, when dlib's detector misses the face, in a box made
   from the MediaPipe landmarks of step 1 (``box_source`` says which); then the 128-d embedding (CSIM, fd_dlib).

Missing pieces are None and ``notes`` says why; the analyser never raises for a face it cannot find.
Results can be cached by a key (real frames are analysed once however many pairs use them).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from core.eval.faces import DlibFaces

log = logging.getLogger(__name__)


class Timings(defaultdict):
    """Seconds per stage (``decode``, ``landmarks``, ``fit``, ``prepare``, ``render``, ``dlib``, ``metrics``)."""

    def __init__(self) -> None:
        super().__init__(float)
        self.calls: defaultdict[str, int] = defaultdict(int)

    def add(self, stage: str, seconds: float) -> None:
        self[stage] += seconds
        self.calls[stage] += 1

    class _Span:
        def __init__(self, owner: Timings, stage: str) -> None:
            self.owner, self.stage = owner, stage

        def __enter__(self):
            self.t0 = time.perf_counter()
            return self

        def __exit__(self, *exc) -> None:
            self.owner.add(self.stage, time.perf_counter() - self.t0)

    def span(self, stage: str) -> Timings._Span:
        """``with timings.span("render"): ...`` adds the block's wall time to ``render``."""
        return Timings._Span(self, stage)


@dataclass
class FrameAnalysis:
    """Measurements of one image (None where they could not be made; ``notes`` say why).

    - ``landmarks68``: ``(68, 2)`` dlib landmarks in pixels of the image; ``box_source``: ``"dlib"``,
      ``"mediapipe"`` or ``"none"``.
    - ``embedding``: ``(128,)`` dlib face-recognition embedding.
    - ``expression``: ``(E,)`` fitted expression coefficients; ``head``: ``(3,)`` yaw, pitch, roll (degrees).
    - ``mediapipe``: ``(478, 3)`` MediaPipe landmarks in pixels of the image (from the fit).
    """

    landmarks68: np.ndarray | None = None
    box_source: str = "none"
    embedding: np.ndarray | None = None
    expression: np.ndarray | None = None
    head: np.ndarray | None = None
    mediapipe: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


class FrameAnalyser:
    """Analyse images with one MediaPipe detector, one dlib model set and one face model.

    Args:
        model: the face model for the fits (default: ICT, loaded once).
        faces: a ``DlibFaces`` (default: built here).
        timings: a ``Timings`` to add ``fit`` and ``dlib`` seconds to.
        size: the fit's crop side.
        cache_size: how many keyed analyses to keep.
    """

    def __init__(
        self,
        model=None,
        faces: DlibFaces | None = None,
        timings: Timings | None = None,
        size: int = 256,
        cache_size: int = 4096,
    ) -> None:
        from core.fit.api import default_model
        from core.fit.landmarks import LandmarkDetector

        self.model = model if model is not None else default_model()
        self.faces = faces or DlibFaces()
        self.timings = timings if timings is not None else Timings()
        self.size = size
        self.detector = LandmarkDetector(video=False)
        self._cache: dict[Hashable, FrameAnalysis] = {}
        self._cache_size = cache_size

    def close(self) -> None:
        self.detector.close()

    def __enter__(self) -> FrameAnalyser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def analyse(self, image: np.ndarray, key: Hashable | None = None, name: str = "<image>") -> FrameAnalysis:
        """Measure one RGB uint8 image (cached under ``key`` when given)."""
        if key is not None and key in self._cache:
            return self._cache[key]
        image = np.ascontiguousarray(image)
        out = FrameAnalysis()
        with self.timings.span("fit"):
            self._fit(image, out, name)
        with self.timings.span("dlib"):
            self._dlib(image, out)
        if key is not None:
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = out
        return out

    def _fit(self, image: np.ndarray, out: FrameAnalysis, name: str) -> None:
        from core.fit import NoFaceError, fit_image
        from core.fit.crop import transform_points

        try:
            fit = fit_image(image, model=self.model, size=self.size, detector=self.detector, name=name)
        except NoFaceError:
            out.notes.append("no face for the fit (MediaPipe)")
            return
        out.expression = fit.params.expression[0].double().numpy()
        out.head = fit.params.head[0].double().numpy()
        mp = fit.landmarks.astype(np.float64).copy()
        mp[:, :2] = transform_points(np.linalg.inv(fit.crop), mp[:, :2])
        out.mediapipe = mp

    def _dlib(self, image: np.ndarray, out: FrameAnalysis) -> None:
        lmk = self.faces.landmarks(image, out.mediapipe)
        if lmk is None:
            out.notes.append("no face for dlib (detector and MediaPipe)")
            return
        out.landmarks68, out.box_source = lmk.points, lmk.box_source
        out.embedding = self.faces.embedding(image, lmk)
