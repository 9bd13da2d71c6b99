"""``Animator``: the one high-level API behind the CLI, the studio and the notebooks.

    anim = Animator(engine="geometry")
    anim.load_source("portrait.jpg")                 # fit once (cached), prepare the engine
    crop = anim.render({"yaw": 15, "jawOpen": 0.4})  # (S, S, 3) uint8, fast: the slider loop
    photo = anim.render({"yaw": 15}, full_resolution=True)   # pasted into the original photo
    anim.frontalize(); anim.animate("talk", out="talk.mp4"); anim.reenact("driving.mp4", out="out.mp4")

Edits are absolute values of the model's named controls (``anim.controls()``), applied on top of the
source's fitted parameters: ``{"yaw": 15}`` sets the head yaw to 15 degrees whatever the photo had.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from core.composite import compose_result
from core.engines.base import Engine, EngineResult
from core.face import FaceModel, FaceParams, load_face_model
from core.io.image import ImageInput, load_image

log = logging.getLogger(__name__)

Edits = Mapping[str, float]


@dataclass
class Source:
    """A loaded source photo: the original, its fit and the engine's prepared state."""

    original: np.ndarray   # (H, W, 3) uint8, as decoded
    fit: Any               # core.fit.FaceFit
    state: Any             # engine state

    @property
    def params(self) -> FaceParams:
        return self.fit.params


# ------------------------------------------------------------------------------------------ presets
def _wave(t: float, cycles: float = 1.0) -> float:
    return math.sin(2.0 * math.pi * cycles * t)


PRESETS: dict[str, Callable[[float], dict[str, float]]] = {
    "nod": lambda t: {"pitch": 12.0 * _wave(t, 2)},
    "shake": lambda t: {"yaw": 20.0 * _wave(t, 2)},
    "talk": lambda t: {"jawOpen": 0.22 * (1 + _wave(t, 6)) * (0.6 + 0.4 * abs(_wave(t, 1.3))),
                       "mouthFunnel": 0.15 * max(0.0, _wave(t, 2.1)), "yaw": 4.0 * _wave(t, 1),
                       "pitch": 2.5 * _wave(t, 1.7)},
    "smile": lambda t: {"mouthSmile_L": 0.8 * math.sin(math.pi * t) ** 2,
                        "mouthSmile_R": 0.8 * math.sin(math.pi * t) ** 2,
                        "cheekSquint_L": 0.4 * math.sin(math.pi * t) ** 2,
                        "cheekSquint_R": 0.4 * math.sin(math.pi * t) ** 2},
    "blink": lambda t: {"blink": max(0.0, math.cos(2.0 * math.pi * 3 * t)) ** 8},
    "look_around": lambda t: {"gaze_yaw": 20.0 * _wave(t, 1), "gaze_pitch": 10.0 * _wave(t + 0.25, 1),
                              "yaw": 6.0 * _wave(t, 1)},
}


def make_engine(name: str, model: FaceModel, weights: str | Path | None = None) -> Engine:
    """The engine called ``name`` ("geometry" or "pwm") for ``model``; ``weights``: the pwm weights
    (default: its search order).

    ``pwm`` raises ``PWMWeightsError`` (a ``ValueError``) naming where it looked when there are no weights.
    """
    if name == "geometry":
        from core.engines.geometry import GeometryEngine

        return GeometryEngine(model)
    if name == "pwm":
        from core.engines.pwm import PWMEngine

        return PWMEngine(model, weights=weights)
    raise ValueError(f"unknown engine '{name}'; available: geometry, pwm")


class Animator:
    """Fit, edit, reenact and frontalise one source portrait with a chosen engine.

    Args:
        engine: ``"geometry"`` (training-free) or ``"pwm"`` (learned; needs weights), or an engine object.
        model: a ``FaceModel`` or a kind for ``load_face_model`` (default the ICT model).
        size: working crop size (256 or 512).
    """

    def __init__(self, engine: str | Engine = "geometry", model: str | FaceModel = "ict", size: int = 256) -> None:
        self.model = load_face_model(model) if isinstance(model, str) else model
        self.size = size
        self.engine = make_engine(engine, self.model) if isinstance(engine, str) else engine
        self.source: Source | None = None
        self.last_result: EngineResult | None = None  # for the studio's inspect tab

    # ------------------------------------------------------------------ source
    def load_source(self, image: ImageInput, face: int | None = None) -> Any:
        """Decode, fit and prepare a source portrait; returns its ``FaceFit``. ``face``: which face when
        there are several, by size (0 = the largest; default the largest plausible one)."""
        from core.fit import fit_image

        original = load_image(image)
        name = str(image) if isinstance(image, (str, Path)) else None
        fit = fit_image(original, model=self.model, size=self.size, name=name, face=face)
        state = self.engine.prepare(fit.crop_image, fit.params)
        self.source = Source(original, fit, state)
        return fit

    def _require_source(self) -> Source:
        if self.source is None:
            raise RuntimeError("no source portrait: call load_source(image) first")
        return self.source

    def controls(self):
        return self.model.controls()

    # ------------------------------------------------------------------ parameters
    def params_for(self, edits: Edits | None = None) -> FaceParams:
        """The source's parameters with ``edits`` applied (absolute control values)."""
        return self.model.apply_edits(self._require_source().params, edits or {})

    def frontal_params(self) -> FaceParams:
        """Source parameters with head and neck turned to face the camera."""
        params = self.params_for()
        params.head.zero_()
        params.neck.zero_()
        return params

    # ------------------------------------------------------------------ rendering
    def render_params(self, params: FaceParams, full_resolution: bool = False,
                      debug: bool = False) -> np.ndarray | list[np.ndarray]:
        """Images for a batch of target parameters: crops ``(S, S, 3)`` or full photos."""
        src = self._require_source()
        result = self.engine.render(src.state, params, debug=debug)
        self.last_result = result
        images = [self._compose(result, i) if full_resolution else result.images[i]
                  for i in range(len(result.images))]
        return images[0] if params.batch_size == 1 else images

    def _compose(self, result: EngineResult, i: int) -> np.ndarray:
        src = self._require_source()
        return compose_result(src.original, result.images, result.flow, result.synthesised, i, src.fit.crop)

    def render(self, edits: Edits | FaceParams | None = None, full_resolution: bool = False,
               debug: bool = False) -> np.ndarray:
        """One edited image: ``edits`` are control values (or a ``FaceParams`` of B = 1)."""
        params = edits if isinstance(edits, FaceParams) else self.params_for(edits)
        return self.render_params(params, full_resolution=full_resolution, debug=debug)

    def frontalize(self, full_resolution: bool = True) -> np.ndarray:
        return self.render_params(self.frontal_params(), full_resolution=full_resolution)

    # ------------------------------------------------------------------ sequences
    def _render_sequence(self, params: Iterable[FaceParams], full_resolution: bool, batch: int = 8,
                         total: int | None = None, desc: str = "rendering") -> Iterator[np.ndarray]:
        from tqdm import tqdm

        pending: list[FaceParams] = []
        with tqdm(total=total, desc=desc, unit="frame", disable=total is not None and total < 2) as bar:
            for p in params:
                pending.append(p)
                if len(pending) == batch:
                    yield from self._flush(pending, full_resolution, bar)
            if pending:
                yield from self._flush(pending, full_resolution, bar)

    def _flush(self, pending: list[FaceParams], full_resolution: bool, bar) -> Iterator[np.ndarray]:
        out = self.render_params(FaceParams.cat(pending), full_resolution=full_resolution)
        frames = out if isinstance(out, list) else [out]
        bar.update(len(frames))
        pending.clear()
        yield from frames

    def preset_params(self, preset: str, seconds: float = 3.0, fps: float = 25.0,
                      edits: Edits | None = None) -> list[FaceParams]:
        """Per-frame parameters of a named preset (``PRESETS``) around the source's pose with ``edits``."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset '{preset}'; available: {', '.join(PRESETS)}")
        base = self.params_for(edits)
        controls = self.model.controls()
        n = max(2, int(round(seconds * fps)))
        frames = []
        for k in range(n):
            offsets = PRESETS[preset](k / n)  # t in [0, 1): the cyclic presets loop seamlessly
            values = {name: float(controls[name].read(base)[0]) + v for name, v in offsets.items()
                      if name in controls}
            frames.append(self.model.apply_edits(base, values))
        return frames

    def animate(self, preset: str, out: str | Path | None = None, seconds: float = 3.0, fps: float = 25.0,
                full_resolution: bool = False, edits: Edits | None = None) -> list[np.ndarray] | Path:
        """Render a preset (nod, shake, talk, smile, blink, look_around) on top of ``edits``; writes ``out``
        if given."""
        params = self.preset_params(preset, seconds, fps, edits)
        frames = self._render_sequence(params, full_resolution, total=len(params), desc=preset)
        return self._emit(frames, out, fps)

    def reenact(self, driving: str | Path | Sequence[np.ndarray], mode: str = "relative",
                out: str | Path | None = None, fps: float | None = None,
                full_resolution: bool = False, max_frames: int | None = None) -> list[np.ndarray] | Path:
        """Drive the source with a video (path or frames); ``max_frames`` uses only the start of it.

        ``relative``: the source's parameters plus each driving frame's change from the driving clip's
        first frame (pose, expression, jaw, gaze). ``absolute``: the driving pose, expression, jaw and
        gaze with the source's identity and camera. The output keeps the driving fps and its audio.
        """
        from core.fit import fit_video
        from core.io.video import read_video

        self._check_mode(mode)
        audio = None
        if isinstance(driving, (str, Path)):
            frames, info = read_video(driving, max_frames=max_frames)
            fps, audio = fps or info.fps, Path(driving)
        else:
            frames = list(driving)[:max_frames]
        drive = fit_video(frames, model=self.model, size=self.size)
        params = self.motion_params(drive.params, mode)
        out_frames = self._render_sequence((params[i] for i in range(params.batch_size)), full_resolution,
                                           total=params.batch_size, desc="reenact")
        return self._emit(out_frames, out, fps or 25.0, audio)

    def motion_params(self, driving: FaceParams, mode: str = "relative") -> FaceParams:
        """Target parameters (B = driving frames) from fitted driving parameters."""
        self._check_mode(mode)
        src = self.params_for()
        n = driving.batch_size
        target = src.expand(n)
        if mode == "absolute":
            for name in ("expression", "head", "neck", "jaw", "gaze"):
                setattr(target, name, getattr(driving, name).clone())
        else:
            for name in ("expression", "head", "neck", "jaw", "gaze"):
                delta = getattr(driving, name) - getattr(driving, name)[:1]
                setattr(target, name, getattr(target, name) + delta)
        if self.model.kind == "ict":
            target.expression.clamp_(0.0, 1.0)
        return target

    # ------------------------------------------------------------------ video edits
    def edit_video(self, video: str | Path | Sequence[np.ndarray], edits: Edits | None = None,
                   mode: str = "offset", keys: Any = None, preset: Any = None, out: str | Path | None = None,
                   full_resolution: bool = True, max_frames: int | None = None, fps: float | None = None,
                   progress: bool = True, look_at_camera: bool = False, face: int | None = None):
        """Edit every frame of a video (no source portrait needed: each frame is its own source).

        The face is tracked (``fit_video``, smoothed) and each frame's fitted parameters are the base.
        ``edits``: control values, offsets added to each frame's own values (``mode="offset"``, the default)
        or absolute overrides (``mode="absolute"``); ``preset``: a ``gdpw-edits/1`` file, name or
        ``EditPreset`` (its own mode); ``keys``: a keyframe file or ``Keyframes`` (``core.edits.keyframes``).
        ``look_at_camera``: both eyes on the camera on every frame; ``face``: which face by size in the first
        frame (default the largest). Everything is validated before any frame is read. Returns a
        ``core.edits.video.VideoEditResult`` (``out`` written with the input's size, frame count, fps and
        audio; or ``frames`` when ``out`` is None).
        """
        from core.edits import EditPlan
        from core.edits.video import edit_video

        plan = EditPlan.build(self.model, edits, mode=mode, preset=preset, keys=keys, look_at_camera=look_at_camera)
        return edit_video(self.model, self.engine, video, plan, out=out, size=self.size,
                          full_resolution=full_resolution, fps=fps, max_frames=max_frames, progress=progress,
                          face=face)

    @staticmethod
    def _check_mode(mode: str) -> None:
        if mode not in ("relative", "absolute"):
            raise ValueError(f"mode must be 'relative' or 'absolute', got '{mode}'")

    @staticmethod
    def _emit(frames: Iterable[np.ndarray], out: str | Path | None, fps: float,
              audio: Path | None = None) -> list[np.ndarray] | Path:
        if out is None:
            return list(frames)
        from core.io.video import write_video

        return write_video(out, frames, fps, audio_from=audio)
