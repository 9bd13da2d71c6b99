"""Tracked video edits: each frame is its own source, edited by an ``EditPlan`` at that frame's time.

Two passes over the clip, so that nothing here holds the whole clip in memory:

1. ``fit_video`` (smoothed a little more than by default, see ``edit_smoothing``; one fixed crop for the
   clip): per-frame fitted parameters, the base;
   ``plan.apply`` turns them into per-frame targets (offsets added, absolute values set, keyframes
   evaluated at ``t = frame / fps``).
2. The frames are read again (``core.io.video.iter_frames``); a frame with a face is cropped, prepared and
   rendered towards its target, and the crop flow is applied to the full-resolution frame (only the face's
   footprint changes, its flow fading to zero at the crop border: no seam, and one crop for the clip: no
   seam flicker); frames without a detected face, and frames whose target equals their base, pass through
   unchanged. Frames stream into ``write_video`` with the input's fps and audio.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.composite import around_crop, compose_result, crop_view
from core.edits.extent import large_edit_warning
from core.edits.plan import EditPlan
from core.engines.base import prepare_around
from core.face.base import FaceModel
from core.face.params import FIELD_NAMES, FaceParams

log = logging.getLogger(__name__)


@dataclass
class VideoEditResult:
    """What ``edit_video`` did. ``frames``: the edited frames when no output path was given."""

    out: Path | None
    n_frames: int
    faceless_frames: int
    unchanged_frames: int
    fps: float
    size: tuple[int, int]
    seconds: float
    controls: list[str]
    audio: bool = False
    frames: list[np.ndarray] | None = field(default=None, repr=False)
    fit_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (the CLI prints it)."""
        render_s = max(self.seconds - self.fit_seconds, 1e-9)
        return {
            "out": str(self.out) if self.out else None,
            "frames": self.n_frames,
            "faceless_frames": self.faceless_frames,
            "unchanged_frames": self.unchanged_frames,
            "fps": round(self.fps, 3),
            "size": list(self.size),
            "audio": self.audio,
            "controls": self.controls,
            "seconds": round(self.seconds, 2),
            "fit_seconds": round(self.fit_seconds, 2),
            "render_fps": round(self.n_frames / render_s, 2),
        }


def edit_smoothing() -> dict:
    """``fit_video`` smoothing for edits: its default one-euro settings with half the cutoff and speed
    coefficient. The edit's displacement is computed from each frame's fitted base, so the base's own jitter
    becomes jitter of the edited face; smoothing it more (zero-phase, so without lag) measured 1.25 -> 1.08
    times the input's landmark acceleration for a smile + yaw offset (``bench/video_edit.py``)."""
    from core.fit.tracking import DEFAULT_SMOOTHING, OneEuro

    return {
        k: OneEuro(min_cutoff=0.5 * f.min_cutoff, beta=0.5 * f.beta, d_cutoff=f.d_cutoff, unit=f.unit)
        for k, f in DEFAULT_SMOOTHING.items()
    }


def _same(a: FaceParams, b: FaceParams) -> bool:
    return all(bool((getattr(a, n) == getattr(b, n)).all()) for n in FIELD_NAMES)


def _frames(video: str | Path | Sequence[np.ndarray], max_frames: int | None) -> Iterator[np.ndarray]:
    """Pass 2's frames: read again from the file, or the given list."""
    if isinstance(video, (str, Path)):
        from core.io.video import iter_frames

        yield from iter_frames(video, max_frames)
    else:
        yield from (video if max_frames is None else video[:max_frames])


class FrameEditor:
    """Renders one frame of a fitted clip towards its target (pass 2's per-frame work).

    ``single_thread``: torch on one thread for each frame (default). One frame is small work; several
    intra-op threads spin and wait when the CPUs are shared (the same finding as ``core.fit``'s fitter).
    """

    def __init__(
        self,
        engine: Any,
        fit: Any,
        targets: FaceParams,
        full_resolution: bool = True,
        single_thread: bool = True,
        crops: np.ndarray | None = None,
    ) -> None:
        self.engine, self.fit, self.targets = engine, fit, targets
        self.crops = fit.crops if crops is None else crops  # (T, 3, 3) crop <- frame pixels
        self.full_resolution = full_resolution
        self.single_thread = single_thread
        self.faceless = 0
        self.unchanged = 0
        self._lock = threading.Lock()  # frames may be edited from several threads

    def __call__(self, t: int, frame: np.ndarray) -> np.ndarray:
        if not self.single_thread:
            return self._edit(t, frame)
        from core.fit.fitter import single_thread

        with single_thread():
            return self._edit(t, frame)

    def _edit(self, t: int, frame: np.ndarray) -> np.ndarray:
        fit = self.fit
        if t >= len(fit) or not fit.detected[t]:
            with self._lock:
                self.faceless += 1
            return frame if self.full_resolution else self._crop(frame, min(t, len(fit) - 1))
        base, target = fit.params[t : t + 1], self.targets[t : t + 1]
        crop = self._crop(frame, t)
        if _same(base, target):
            with self._lock:
                self.unchanged += 1
            return frame if self.full_resolution else crop
        # where the frame ends around the crop, and what the flow reads beyond the crop comes from the frame
        # around it, as for a photo (core.animator)
        around, inside = around_crop(frame, self.crops[t], self.fit.size)
        # (the photo around the crop is layered as the crop is for full resolution only: the crop view does not
        # show it)
        state = prepare_around(self.engine, crop, base, inside, around if self.full_resolution else None)
        result = self.engine.render(state, target)
        if result.flow is None:
            return compose_result(frame, result, 0, self.crops[t]) if self.full_resolution else result.images[0]
        if not self.full_resolution:
            return crop_view(result, 0, around, inside)
        return compose_result(frame, result, 0, self.crops[t], inside=inside)

    def _crop(self, frame: np.ndarray, t: int) -> np.ndarray:
        from core.fit.crop import warp_image

        return warp_image(frame, self.crops[t], self.fit.size, "replicate")


def edit_video(
    model: FaceModel,
    engine: Any,
    video: str | Path | Sequence[np.ndarray],
    plan: EditPlan,
    out: str | Path | None = None,
    size: int = 256,
    full_resolution: bool = True,
    fps: float | None = None,
    max_frames: int | None = None,
    progress: bool = True,
    workers: int | None = None,
    smoothing: bool | dict | None = None,
    face: int | None = None,
) -> VideoEditResult:
    """Edit every frame of ``video`` (a path or RGB uint8 frames) with ``plan``; see the module docstring.

    ``out``: the mp4 to write (keeps fps and audio), or None to return the frames. ``full_resolution``:
    frames of the input's size (default) or the ``size`` px face crops. ``workers``: frames edited at once
    (default ``default_workers()``: the idle cores), each on one torch thread. ``smoothing``: ``fit_video``'s
    temporal smoothing of the base (default ``edit_smoothing()``; True: ``fit_video``'s default). ``face``:
    which face by size in the first frame (0 or None: the largest; see ``face_region_frames``). Raises
    ``NoFaceError`` when no frame has a face, ``VideoError`` for an unreadable clip.
    """
    from tqdm import tqdm

    from core.fit import fit_video

    t0 = time.perf_counter()
    smoothing = edit_smoothing() if smoothing is None else smoothing
    source, shift, full_size = video, np.eye(3), None
    if face:
        source, shift, fps, full_size = face_region_frames(video, int(face), max_frames, fps)
    fit = fit_video(
        source, model=model, size=size, fps=fps, max_frames=max_frames, progress=progress, smoothing=smoothing
    )
    fps = fit.fps
    targets = plan.apply(model, fit.params, np.arange(len(fit)) / fps)
    warning = large_edit_warning(model, fit.params, targets)
    if warning:
        log.warning(warning)
    t_fit = time.perf_counter() - t0
    editor = FrameEditor(engine, fit, targets, full_resolution, single_thread=False, crops=fit.crops @ shift)
    frames = tqdm(_frames(video, max_frames), total=len(fit), desc="editing", unit="frame", disable=not progress)
    edited = edit_frames(editor, frames, workers)
    audio_from = Path(video) if isinstance(video, (str, Path)) else None
    if out is None:
        result_frames, path = list(edited), None
    else:
        from core.io.video import write_video

        result_frames, path = None, Path(write_video(out, edited, fps, audio_from=audio_from))
    h, w = (full_size or fit.original_size) if full_resolution else (size, size)
    result = VideoEditResult(
        path,
        len(fit),
        editor.faceless,
        editor.unchanged,
        fps,
        (h, w),
        time.perf_counter() - t0,
        plan.controls,
        audio=_has_audio(audio_from),
        frames=result_frames,
        fit_seconds=t_fit,
    )
    if editor.faceless:
        log.info("%d of %d frames had no face and were passed through unchanged", editor.faceless, len(fit))
    return result


def face_region_frames(
    video: str | Path | Sequence[np.ndarray], face: int, max_frames: int | None, fps: float | None, margin: float = 1.0
) -> tuple[list[np.ndarray], np.ndarray, float, tuple[int, int]]:
    """Frames cut to a fixed region around face number ``face`` (by size, 0 = the largest) of the first
    frame, so that the tracker follows that face: the region is its landmark box grown by ``margin`` times
    its size on every side (a face that leaves the region is lost). Returns the cut frames, the 3x3
    transform region <- frame pixels, the frame rate and the frames' ``(H, W)``. ``NoFaceError`` if the
    first frame has no such face.
    """
    from core.fit.api import face_boxes
    from core.fit.landmarks import NoFaceError

    frames = _frames(video, max_frames)
    first = next(frames)
    boxes = face_boxes(first)
    if not 0 <= face < len(boxes):
        raise NoFaceError(
            f"face {face} asked for, but the first frame has {len(boxes)} face(s) "
            f"(0 = the largest, up to {len(boxes) - 1})"
        )
    left, top, right, bottom = boxes[face]
    h, w = first.shape[:2]
    x0, y0 = max(0, int(left - margin * (right - left))), max(0, int(top - margin * (bottom - top)))
    x1 = min(w, int(np.ceil(right + margin * (right - left))))
    y1 = min(h, int(np.ceil(bottom + margin * (bottom - top))))
    cut = [f[y0:y1, x0:x1] for f in (first, *frames)]
    if isinstance(video, (str, Path)) and fps is None:
        from core.io.video import probe_video

        fps = probe_video(video).fps
    log.info("tracking face %d of %d in the region x %d-%d, y %d-%d", face, len(boxes), x0, x1, y0, y1)
    return cut, np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]]), fps or 25.0, (h, w)


def default_workers() -> int:
    """Frames to edit at once: the idle CPU cores (at most 4, at least 1). On a busy machine parallel frames
    only contend (measured on a 2-core machine at load 7: 3.6-3.9 fps with one, 2.8-3.1 with two)."""
    import os

    cores = os.cpu_count() or 1
    try:
        busy = int(os.getloadavg()[0])
    except OSError:  # not available on this platform
        busy = 0
    return max(1, min(4, cores - busy))


def edit_frames(editor: FrameEditor, frames: Iterator[np.ndarray], workers: int | None = None) -> Iterator[np.ndarray]:
    """The edited frames in order. Frames are edited ``workers`` at a time, each on one torch thread: the
    engine's per-frame work is too small for intra-op threads, and whole frames in parallel use every core.

    A sliding window: at most ``2 * workers`` frames are read ahead and in flight (never the whole clip),
    and a new frame is submitted as soon as the oldest is handed on, so no worker waits for the slowest
    frame of a batch (fixed batches left cores idle at every batch end)."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    import torch

    workers = workers or default_workers()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gdpw-edit") as pool:
            pending: deque[Future] = deque()
            for t, frame in enumerate(frames):
                pending.append(pool.submit(editor, t, frame))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        torch.set_num_threads(before)


def _has_audio(path: Path | None) -> bool:
    if path is None:
        return False
    from core.io.video import probe_video

    return probe_video(path).has_audio
