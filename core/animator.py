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

import functools
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.composite import around_crop, compose_result, crop_view, fill_beyond_crop
from core.engines.base import Engine, EngineResult, Inspection, prepare_around
from core.engines.registry import make_engine
from core.face import FaceModel, FaceParams, load_face_model
from core.io.image import ImageInput, load_working_image
from core.motion import check_mode, transfer

log = logging.getLogger(__name__)

Edits = Mapping[str, float]


@dataclass(frozen=True)
class Source:
    """A loaded source photo: the original, its fit and the prepared state of the engine named ``engine``.

    Read-only once made: the studio shares one between sessions and between a session's side jobs.
    """

    original: np.ndarray  # (H, W, 3) uint8, as decoded (reduced to the working-resolution limit)
    fit: Any  # core.fit.FaceFit
    state: Any  # engine state
    engine: str = ""  # the name of the engine that prepared ``state``
    note: str = ""  # what loading changed, for the user (a photo reduced to the working limit)

    @property
    def params(self) -> FaceParams:
        return self.fit.params

    @functools.cached_property
    def around(self) -> tuple[np.ndarray, np.ndarray]:
        """The photo around the crop at the crop's scale and where it lies in the photo
        (``core.composite.around_crop``), made on first use."""
        return around_crop(self.original, self.fit.crop, self.fit.crop_image.shape[0])


# ------------------------------------------------------------------------------------------ presets
def _wave(t: float, cycles: float = 1.0) -> float:
    return math.sin(2.0 * math.pi * cycles * t)


PRESETS: dict[str, Callable[[float], dict[str, float]]] = {
    "nod": lambda t: {"pitch": 12.0 * _wave(t, 2)},
    "shake": lambda t: {"yaw": 20.0 * _wave(t, 2)},
    "talk": lambda t: {
        "jawOpen": 0.22 * (1 + _wave(t, 6)) * (0.6 + 0.4 * abs(_wave(t, 1.3))),
        "mouthFunnel": 0.15 * max(0.0, _wave(t, 2.1)),
        "yaw": 4.0 * _wave(t, 1),
        "pitch": 2.5 * _wave(t, 1.7),
    },
    "smile": lambda t: {
        "mouthSmile_L": 0.8 * math.sin(math.pi * t) ** 2,
        "mouthSmile_R": 0.8 * math.sin(math.pi * t) ** 2,
        "cheekSquint_L": 0.4 * math.sin(math.pi * t) ** 2,
        "cheekSquint_R": 0.4 * math.sin(math.pi * t) ** 2,
    },
    "blink": lambda t: {"blink": max(0.0, math.cos(2.0 * math.pi * 3 * t)) ** 8},
    "look_around": lambda t: {
        "gaze_yaw": 20.0 * _wave(t, 1),
        "gaze_pitch": 10.0 * _wave(t + 0.25, 1),
        "yaw": 6.0 * _wave(t, 1),
    },
}


ANIMATE_MAX_SECONDS = 600.0  # preset animations: at most 10 minutes ...
ANIMATE_MAX_FPS = 120.0  # ... at up to 120 frames per second


class Animator:
    """Fit, edit, reenact and frontalise one source portrait with a chosen engine.

    Args:
        engine: a name of ``core.engines.registry`` (``geometry``, training-free; ``pwm``, learned, needs
            weights; ``copy``) or an engine object.
        model: a ``FaceModel`` or a kind for ``load_face_model`` (``ict``, the default, or ``flame``).
        size: working crop size (256 or 512).
        weights: for engines that need weights, a folder or config file (default: their search order).
        model_path: the face model's file (FLAME's ``generic_model.pkl``; ICT is found by ``core.assets``).
    """

    def __init__(
        self,
        engine: str | Engine = "geometry",
        model: str | FaceModel = "ict",
        size: int = 256,
        weights: str | Path | None = None,
        model_path: str | Path | None = None,
    ) -> None:
        self.model = load_face_model(model, model_path) if isinstance(model, str) else model
        self.size = size
        self.engine = make_engine(engine, self.model, weights) if isinstance(engine, str) else engine
        self._source: Source | None = None

    @property
    def engine_name(self) -> str:
        return str(getattr(self.engine, "name", type(self.engine).__name__))

    # ------------------------------------------------------------------ source
    @property
    def source(self) -> Source | None:
        """The loaded source (None before ``load_source``)."""
        return self._source

    def load_source(self, image: ImageInput, face: int | None = None) -> Any:
        """Decode, fit and prepare a source portrait; returns its ``FaceFit``. ``face``: which face when
        there are several, by size (0 = the largest; default the largest plausible one). Photos above the
        working resolution (``core.io.image.working_pixels``, 24 MP) are reduced first (``source.note`` says so)."""
        from core.fit import fit_image

        original, note = load_working_image(image)
        name = str(image) if isinstance(image, (str, Path)) else None
        fit = fit_image(original, model=self.model, size=self.size, name=name, face=face)
        self._source = self.prepare_source(original, fit, note)
        return fit

    def prepare_source(self, original: np.ndarray, fit: Any, note: str = "") -> Source:
        """A ``Source`` of an already fitted photo, prepared for this Animator's engine (no refit)."""
        return Source(original, fit, self._prepare(self.engine, original, fit), self.engine_name, note)

    @staticmethod
    def _prepare(engine: Engine, original: np.ndarray, fit: Any) -> Any:
        """``engine``'s state for a fitted photo, told where the photo ends around the crop."""
        around, photo = around_crop(original, fit.crop, fit.crop_image.shape[0])
        return prepare_around(engine, fit.crop_image, fit.params, photo, around)

    def use_source(self, source: Source) -> None:
        """Adopt a source prepared elsewhere (a cache); re-prepared if another engine prepared it."""
        if source.engine != self.engine_name:
            source = self.prepare_source(source.original, source.fit, source.note)
        self._source = source

    def switch_engine(self, engine: str | Engine, weights: str | Path | None = None) -> None:
        """Use another engine; the loaded source is prepared for it (no refit). On an error (e.g. no
        weights) the Animator keeps its engine."""
        new = make_engine(engine, self.model, weights) if isinstance(engine, str) else engine
        state = None
        if self._source is not None:
            state = self._prepare(new, self._source.original, self._source.fit)
        self.engine = new
        if self._source is not None:
            self._source = Source(self._source.original, self._source.fit, state, self.engine_name, self._source.note)

    def fork(self) -> Animator:
        """Another Animator on the same model, engine and source, for a long job (a video) that must not
        hold this one: the source and engine are shared read-only."""
        twin = Animator(engine=self.engine, model=self.model, size=self.size)
        twin._source = self._source
        return twin

    def _require_source(self) -> Source:
        if self._source is None:
            raise RuntimeError("no source portrait: call load_source(image) first")
        return self._source

    def controls(self):
        return self.model.controls()

    # ------------------------------------------------------------------ parameters
    def params_for(self, edits: Edits | None = None) -> FaceParams:
        """The source's parameters with ``edits`` applied (absolute control values, checked by
        ``FaceModel.check_edits``: an ``EditError`` names an unknown control or the valid range)."""
        return self.model.apply_edits(self._require_source().params, self.model.check_edits(edits or {}))

    def frontal_params(self) -> FaceParams:
        """Source parameters with head and neck turned to face the camera."""
        params = self.params_for()
        params.head.zero_()
        params.neck.zero_()
        return params

    # ------------------------------------------------------------------ rendering
    def render_params(
        self, params: FaceParams, full_resolution: bool = False, debug: bool = False
    ) -> np.ndarray | list[np.ndarray]:
        """Images for a batch of target parameters: crops ``(S, S, 3)`` or full photos."""
        src = self._require_source()
        result = self.engine.render(src.state, params, debug=debug)
        view = self._compose if full_resolution else self._crop_view
        images = [view(result, i) for i in range(len(result.images))]
        return images[0] if params.batch_size == 1 else images

    def _crop_view(self, result: EngineResult, i: int) -> np.ndarray:
        """Result ``i`` as a crop, with what the flow brings in from beyond the crop's edge taken from the
        photo around it (``core.composite.crop_view``), as at full resolution."""
        src = self._require_source()
        return result.images[i] if src.fit.crop_image is None else crop_view(result, i, *src.around)

    def _compose(self, result: EngineResult, i: int) -> np.ndarray:
        src = self._require_source()
        inside = None if result.flow is None or src.fit.crop_image is None else src.around[1]
        return compose_result(src.original, result, i, src.fit.crop, inside=inside)

    def render(
        self, edits: Edits | FaceParams | None = None, full_resolution: bool = False, debug: bool = False
    ) -> np.ndarray:
        """One edited image: ``edits`` are control values (or a ``FaceParams`` of B = 1)."""
        params = edits if isinstance(edits, FaceParams) else self.params_for(edits)
        return self.render_params(params, full_resolution=full_resolution, debug=debug)

    def inspect(self, edits: Edits | FaceParams | None = None) -> Inspection:
        """One edited crop with the engine's debug layers (flows, coverage, per-level flows, codes); its image
        is the crop view, as ``render`` gives it."""
        params = edits if isinstance(edits, FaceParams) else self.params_for(edits)
        src = self._require_source()
        look = self.engine.inspect(src.state, params)
        s = look.image.shape[0]
        if look.flow is not None and look.flow.shape[-1] == s and src.fit.crop_image is not None:
            keep = None if look.synthesised is None else look.synthesised[0, 0].numpy()
            look.image = fill_beyond_crop(look.image, look.flow[0], keep, *src.around)
        return look

    def frontalize(self, full_resolution: bool = True) -> np.ndarray:
        return self.render_params(self.frontal_params(), full_resolution=full_resolution)

    # ------------------------------------------------------------------ sequences
    def _render_sequence(
        self,
        params: Iterable[FaceParams],
        full_resolution: bool,
        batch: int = 8,
        total: int | None = None,
        desc: str = "rendering",
    ) -> Iterator[np.ndarray]:
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

    def preset_params(
        self, preset: str, seconds: float = 3.0, fps: float = 25.0, edits: Edits | None = None
    ) -> list[FaceParams]:
        """Per-frame parameters of a named preset (``PRESETS``) around the source's pose with ``edits``."""
        return list(self._preset_iter(preset, self._preset_frames(seconds, fps), edits))

    @staticmethod
    def _preset_frames(seconds: float, fps: float) -> int:
        """Frame count of a preset animation; refuses (``ValueError``) durations and rates out of range."""
        from core.io.video import check_fps, check_seconds

        fps = check_fps(fps)
        if fps > ANIMATE_MAX_FPS:
            raise ValueError(f"fps must be a frame rate in (0, {ANIMATE_MAX_FPS:g}], got {fps:g}")
        return max(2, int(round(check_seconds(seconds, ANIMATE_MAX_SECONDS) * fps)))

    def _preset_iter(self, preset: str, n: int, edits: Edits | None) -> Iterator[FaceParams]:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset '{preset}'; available: {', '.join(PRESETS)}")
        base = self.params_for(edits)
        controls = self.model.controls()
        for k in range(n):
            offsets = PRESETS[preset](k / n)  # t in [0, 1): the cyclic presets loop seamlessly
            values = {name: float(controls[name].read(base)[0]) + v for name, v in offsets.items() if name in controls}
            yield self.model.apply_edits(base, values)

    def animate(
        self,
        preset: str,
        out: str | Path | None = None,
        seconds: float = 3.0,
        fps: float = 25.0,
        full_resolution: bool = False,
        edits: Edits | None = None,
    ) -> list[np.ndarray] | Path:
        """Render a preset (nod, shake, talk, smile, blink, look_around) on top of ``edits``; writes ``out``
        if given. ``seconds`` in (0, ``ANIMATE_MAX_SECONDS``], ``fps`` in (0, ``ANIMATE_MAX_FPS``]; frames
        are rendered and encoded as they go."""
        n = self._preset_frames(seconds, fps)
        if preset not in PRESETS:
            raise ValueError(f"unknown preset '{preset}'; available: {', '.join(PRESETS)}")
        frames = self._render_sequence(self._preset_iter(preset, n, edits), full_resolution, total=n, desc=preset)
        return self._emit(frames, out, fps)

    def reenact(
        self,
        driving: str | Path | Sequence[np.ndarray],
        mode: str = "relative",
        out: str | Path | None = None,
        fps: float | None = None,
        full_resolution: bool = False,
        max_frames: int | None = None,
    ) -> list[np.ndarray] | Path:
        """Drive the source with a video (path or frames); ``max_frames`` uses only the start of it.

        ``relative``: the source's parameters plus each driving frame's change from the driving clip's
        first frame (pose, expression, jaw, gaze). ``absolute``: the driving pose, expression, jaw and
        gaze with the source's identity and camera. The output keeps the driving fps and its audio.
        """
        from core.fit import fit_video
        from core.io.atomic import check_output_path
        from core.io.video import check_fps, probe_video

        check_mode(mode)
        audio = None
        if isinstance(driving, (str, Path)):  # streamed: decoded once to fit, never held whole
            fps, audio = check_fps(fps or probe_video(driving).fps), Path(driving)
        elif fps is not None:
            fps = check_fps(fps)
        if out is not None:
            check_output_path(out)  # before the work, not after it
        drive = fit_video(driving, model=self.model, size=self.size, fps=fps, max_frames=max_frames)
        params = self.motion_params(drive.params, mode)
        out_frames = self._render_sequence(
            (params[i] for i in range(params.batch_size)), full_resolution, total=params.batch_size, desc="reenact"
        )
        return self._emit(out_frames, out, fps or 25.0, audio)

    def motion_params(self, driving: FaceParams, mode: str = "relative") -> FaceParams:
        """Target parameters (B = driving frames) from fitted driving parameters (``core.motion``)."""
        target = transfer(self.params_for(), driving, mode)
        if self.model.kind == "ict":
            target.expression.clamp_(0.0, 1.0)  # ICT blendshape weights live in [0, 1]
        return target

    # ------------------------------------------------------------------ video edits
    def edit_video(
        self,
        video: str | Path | Sequence[np.ndarray],
        edits: Edits | None = None,
        mode: str = "offset",
        keys: Any = None,
        preset: Any = None,
        out: str | Path | None = None,
        full_resolution: bool = True,
        max_frames: int | None = None,
        fps: float | None = None,
        progress: bool = True,
        look_at_camera: bool = False,
        face: int | None = None,
    ):
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
        return edit_video(
            self.model,
            self.engine,
            video,
            plan,
            out=out,
            size=self.size,
            full_resolution=full_resolution,
            fps=fps,
            max_frames=max_frames,
            progress=progress,
            face=face,
        )

    @staticmethod
    def _emit(
        frames: Iterable[np.ndarray], out: str | Path | None, fps: float, audio: Path | None = None
    ) -> list[np.ndarray] | Path:
        if out is None:
            return list(frames)
        from core.io.video import write_video

        return write_video(out, frames, fps, audio_from=audio)
