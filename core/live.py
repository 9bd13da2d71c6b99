"""Live puppeteering: webcam frames drive a loaded portrait with relative motion, one frame at a time.

``LiveDriver(animator)`` keeps a MediaPipe tracker (video mode) and a face fit warm-started from the
previous frame. The first frame with a face is the reference (its identity is fitted then and kept);
every later frame's change from it (pose, expression, jaw, gaze) is added to the portrait's own
parameters (``Animator.motion_params``, relative mode) and rendered at the animator's crop size. A light
exponential smoothing (``smoothing``: the weight of the previous output's parameters) steadies the
webcam's jitter at no latency cost worth the name.

``step(frame) -> LiveFrame``: the rendered crop (the portrait unchanged while no face is seen) and the
time each part took. The studio's Webcam tab and ``bench/live.py`` both go through ``step``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from core.face.params import FIELD_NAMES, FaceParams

log = logging.getLogger(__name__)

MOTION_FIELDS = ("expression", "head", "neck", "jaw", "gaze")


def downscale(frame: np.ndarray, side: int) -> np.ndarray:
    """``frame (H, W, 3)`` with its longer side at most ``side`` px (area filter; contiguous uint8).

    cv2's area filter took 2.6 ms for a 640 px webcam frame where PIL's Lanczos (``limit_size``) took
    11.5 ms (one thread, load 6), a tenth of the live frame budget; the detector's landmarks on the two
    differ by 0.09 px on average.
    """
    import cv2

    frame = np.ascontiguousarray(frame)
    h, w = frame.shape[:2]
    scale = side / max(h, w)
    if scale >= 1.0:
        return frame
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


@dataclass
class LiveFrame:
    """One streamed result: ``image (S, S, 3)`` uint8, whether a face drove it, per-part milliseconds."""

    image: np.ndarray
    face: bool
    ms: dict[str, float] = field(default_factory=dict)


class LiveDriver:
    """Relative-motion driver of ``animator``'s loaded portrait (see the module docstring).

    Args:
        animator: an ``Animator`` with a source loaded.
        smoothing: weight in [0, 1) of the previous frame's driving parameters (0: none).
        detect_side: webcam frames are scaled so that their longer side is at most this (pixels).
        single_thread: run torch on one thread per frame (default): a 256 px frame is small work, and
            several intra-op threads spin and wait when the server's CPUs are busy (measured on a loaded
            2-core machine: ~90 ms per render on one thread against seconds on two).
        fast: with the geometry engine, render with its live variant (no mirror completion, no canvas
            beyond the crop: ``GeometryEngine.variant``), on a fork of ``animator`` (which is left as it
            is). Webcam motion is relative and moderate and the output is the crop, so those serve little
            and would cost ~40 % of the frame.
    """

    def __init__(
        self,
        animator: Any,
        smoothing: float = 0.4,
        detect_side: int = 480,
        single_thread: bool = True,
        fast: bool = True,
    ) -> None:
        from core.fit.api import get_fitter
        from core.fit.landmarks import LandmarkDetector

        if fast and hasattr(animator.engine, "variant"):
            light = animator.fork()
            light.switch_engine(animator.engine.variant(completion=False, margin=0.0))
            animator = light
        self.animator = animator
        self.size = animator.size
        self.smoothing = smoothing
        self.detect_side = detect_side
        self.single_thread = single_thread
        self.fitter = get_fitter(animator.model)
        self.ids = self.fitter.lmap.landmark_ids.numpy()
        self.detector = LandmarkDetector(video=True)
        self.reset()

    def reset(self) -> None:
        """Forget the reference: the next frame with a face becomes it."""
        self.state = None
        self.reference: FaceParams | None = None
        self.driving: FaceParams | None = None
        self.last_ms: dict[str, float] = {}

    def close(self) -> None:
        self.detector.close()

    def _observe(self, frame: np.ndarray) -> torch.Tensor | None:
        """The fitter's observations ``(1, L, 3)`` of the frame's face, or None without a face."""
        from core.fit.api import landmarks_to_crop, pixels_to_obs
        from core.fit.crop import face_crop

        det = self.detector.detect(downscale(frame, self.detect_side))
        if det is None:
            return None
        crop = face_crop(det.points, self.size)
        return pixels_to_obs(landmarks_to_crop(det.points, crop)[None, self.ids], self.size)

    def _track(self, obs: torch.Tensor) -> FaceParams:
        if self.state is None:
            with torch.no_grad():
                self.state = self.fitter.fit(obs, shared_shape=True)
        else:
            self.state = self.fitter.track(obs, self.state)
        params = self.fitter.to_params(self.state)
        if self.driving is not None and self.smoothing > 0:
            a = self.smoothing
            params = FaceParams(
                **{
                    n: getattr(params, n)
                    if n not in MOTION_FIELDS
                    else a * getattr(self.driving, n) + (1 - a) * getattr(params, n)
                    for n in FIELD_NAMES
                }
            )
        self.driving = params
        if self.reference is None:
            self.reference = params.clone()
        return params

    def step(self, frame: np.ndarray) -> LiveFrame:
        """Drive the portrait with one RGB uint8 webcam frame ``(H, W, 3)``; ``last_ms`` keeps the timings."""
        from core.fit.fitter import single_thread

        if self.single_thread:
            with single_thread():
                result = self._step(frame)
        else:
            result = self._step(frame)
        self.last_ms = result.ms
        return result

    def _step(self, frame: np.ndarray) -> LiveFrame:
        t0 = time.perf_counter()
        obs = self._observe(frame)
        t1 = time.perf_counter()
        if obs is None:
            image = self.animator.render(self.animator.params_for() if self.driving is None else self._target())
            return LiveFrame(image, False, {"detect": 1e3 * (t1 - t0), "render": 1e3 * (time.perf_counter() - t1)})
        self._track(obs)
        t2 = time.perf_counter()
        image = self.animator.render(self._target())
        t3 = time.perf_counter()
        return LiveFrame(image, True, {"detect": 1e3 * (t1 - t0), "fit": 1e3 * (t2 - t1), "render": 1e3 * (t3 - t2)})

    def _target(self) -> FaceParams:
        """The portrait's parameters moved by the last driving frame's change from the reference."""
        pair = FaceParams.cat([self.reference, self.driving])
        return self.animator.motion_params(pair, "relative")[1:2]
