"""Per-browser-session state of the studio, and the heavy objects all sessions share.

- ``Shared``: per face model offered (ICT, and FLAME when its file is given) a ``ModelKit``: the model,
  its engines (their per-source state lives in each ``Source``), the slider book, the mesh subset of the
  3D view and a small cache of prepared sources (keyed by the photo's bytes, so the default portrait or an
  example is fitted once per process). Read-only after construction, apart from the caches, which have
  their own locks.
- ``EditSession``: one user's ``Animator`` (sharing the model and engine), the current edit as
  ``FaceParams``, the slider values the page shows, and their output files. Every method takes the
  session's lock, so two requests of one user never interleave.
- ``SessionStore``: sessions keyed by Gradio's session hash, least recently used dropped beyond a
  capacity (and on page unload).

No Gradio here: ``studio.app`` turns these into callbacks.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.animator import PRESETS, Animator, Source
from core.edits import large_edit_warning
from core.engines import Inspection, make_engine
from core.face import FaceModel, FaceParams, load_face_model
from core.io.image import limit_size, save_image
from core.io.video import VideoLimits
from studio.controls import ControlBook, build_specs, random_edits
from studio.history import History
from studio.views import MeshView, mesh_view

log = logging.getLogger(__name__)

PREVIEW_SIDE = 1024  # the source photo shown on the page is at most this large
FULL_PREVIEW_SIDE = 1600  # the full-resolution result shown on the page (the download is full size)
CACHE_MAX_PIXELS = 16_000_000  # sources larger than this are not kept in the shared cache


def weights_available() -> list[Path]:
    """The learned engine's weights config (``pwm.json`` beside ``pwm.safetensors``) where
    ``core.engines.pwm`` looks for it (``$GDPW_PWM_WEIGHTS``, ``weights/``, the user cache), or []."""
    from core.engines.registry import find_engine_weights

    found = find_engine_weights("pwm")
    return [found] if found is not None else []


class SourceCache:
    """A few prepared ``Source`` objects, least recently used dropped."""

    def __init__(self, capacity: int = 6) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple, Source] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Source | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: tuple, source: Source) -> None:
        if source.original.shape[0] * source.original.shape[1] > CACHE_MAX_PIXELS:
            return
        with self._lock:
            self._items[key] = source
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)


class ModelKit:
    """What sessions share for one face model: the model, its slider book, its engines (built on first
    use), a cache of prepared sources and the 3D view's mesh subset."""

    def __init__(self, model: FaceModel, size: int) -> None:
        self.model = model
        self.kind = model.kind
        self.size = size
        self.book = ControlBook(model, build_specs(model))
        self.sources = SourceCache()
        self.engines: dict[str, Any] = {}
        self._engine_lock = threading.Lock()
        self._mesh: MeshView | None = None

    def engine(self, name: str):
        """The shared engine ``name``, built on first use (``ValueError`` when it cannot be)."""
        with self._engine_lock:
            if name not in self.engines:
                self.engines[name] = make_engine(name, self.model)
            return self.engines[name]

    @property
    def mesh(self) -> MeshView:
        if self._mesh is None:
            self._mesh = mesh_view(self.model)
        return self._mesh

    def prepared_source(
        self, image: str | Path | bytes | np.ndarray, engine: str, fit_lock: threading.Lock, face: int | None = None
    ) -> Source:
        """The fitted and prepared ``Source`` of ``image`` (cached by content; ``face``: which face by size).
        Raises ``core.io.image.ImageError`` / ``core.fit.NoFaceError`` (both ``ValueError``)."""
        if isinstance(image, bytes):
            data = image
        else:
            data = Path(image).read_bytes() if isinstance(image, (str, Path)) else np.ascontiguousarray(image).tobytes()
        key = (hashlib.sha1(data).hexdigest(), self.size, engine, face)
        source = self.sources.get(key)
        if source is not None:
            return source
        with fit_lock:
            source = self.sources.get(key)
            if source is None:
                anim = Animator(engine=self.engine(engine), model=self.model, size=self.size)
                anim.load_source(image, face=face)
                source = anim.source
                self.sources.put(key, source)
        return source


def _face_model(spec: str | Path | FaceModel) -> FaceModel:
    """A model from a kind (``ict``, ``flame``: FLAME's file from ``$GDPW_FLAME``), a FLAME file, or as is."""
    if isinstance(spec, FaceModel):
        return spec
    if str(spec) in ("ict", "flame"):
        return load_face_model(str(spec))
    return load_face_model("flame", spec)


class Shared:
    """Objects every session uses read-only: one ``ModelKit`` per face model offered (the first is the
    default; FLAME joins ICT when ``$GDPW_FLAME`` names its file, or when given), the crop size, the default
    engine and the lock that lets one fit run at a time."""

    def __init__(
        self,
        model: str | FaceModel = "ict",
        size: int = 256,
        engine: str = "geometry",
        extra_models: list[str | Path | FaceModel] | None = None,
    ) -> None:
        self.size = size
        self.engine_name = engine
        self.fit_lock = threading.Lock()
        first = _face_model(model)
        self.kits: dict[str, ModelKit] = {first.kind: ModelKit(first, size)}
        if extra_models is None:
            extra_models = ["flame"] if first.kind != "flame" and os.environ.get("GDPW_FLAME") else []
        for spec in extra_models:
            try:
                extra = _face_model(spec)
            except (OSError, ValueError) as exc:  # a bad FLAME file must not stop the studio
                log.warning("studio: face model %s not offered: %s", spec, exc)
                continue
            self.kits.setdefault(extra.kind, ModelKit(extra, size))
        self.default_kind = first.kind
        self.kit(self.default_kind).engine(engine)  # fail early when the default engine cannot be built

    def kit(self, kind: str | None = None) -> ModelKit:
        return self.kits[kind or self.default_kind]

    @property
    def model(self) -> FaceModel:
        """The default face model."""
        return self.kit().model

    @property
    def book(self) -> ControlBook:
        """The default face model's slider book."""
        return self.kit().book

    def engine(self, name: str, kind: str | None = None):
        return self.kit(kind).engine(name)

    def prepared_source(
        self, image: str | Path | bytes | np.ndarray, engine: str, kind: str | None = None, face: int | None = None
    ) -> Source:
        return self.kit(kind).prepared_source(image, engine, self.fit_lock, face=face)


@dataclass
class LoadInfo:
    """What the page says about the loaded portrait."""

    label: str
    quality: dict[str, Any]
    original_size: tuple[int, int]

    @property
    def fit_seconds(self) -> float:
        return float(self.quality.get("detect_s", 0.0)) + float(self.quality.get("fit_s", 0.0))


@dataclass
class EditSession:
    """One user's studio state."""

    shared: Shared
    key: str = "local"
    engine_name: str = "geometry"
    model_kind: str = ""
    lock: threading.RLock = field(default_factory=threading.RLock)
    animator: Animator | None = None
    params: FaceParams | None = None
    values: dict[str, float] = field(default_factory=dict)
    label: str = ""
    preview: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    view: str = "result"
    workdir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    last_used: float = field(default_factory=time.monotonic)
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    history: History = field(default_factory=History)
    image: str | Path | np.ndarray | None = None  # the loaded photo, to reload another of its faces

    def __post_init__(self) -> None:
        self.engine_name = self.shared.engine_name
        self.model_kind = self.shared.default_kind
        self.animator = Animator(engine=self.kit.engine(self.engine_name), model=self.kit.model, size=self.shared.size)

    @property
    def kit(self) -> ModelKit:
        """The face model this session edits with, and what goes with it."""
        return self.shared.kit(self.model_kind)

    # ------------------------------------------------------------------ source
    @property
    def loaded(self) -> bool:
        return self.animator is not None and self.animator.source is not None

    @property
    def source(self) -> Source:
        return self.animator.source

    def info(self) -> LoadInfo:
        source = self.source
        return LoadInfo(self.label, dict(source.fit.quality), tuple(source.original.shape[:2]))

    def load(self, image: str | Path | bytes | np.ndarray, label: str, face: int | None = None) -> LoadInfo:
        """Fit and prepare a new portrait (``face``: which face by size, 0 = the largest; default the largest
        plausible one). On any error the previous portrait and edits stay."""
        source = self.shared.prepared_source(image, self.engine_name, self.model_kind, face=face)
        with self.lock:
            self.image = image
            self.history.clear()
            return self._adopt(source, label)

    def _adopt(self, source: Source, label: str) -> LoadInfo:
        from studio.views import landmarks_image

        self.animator.use_source(source)
        self.params = source.params.clone()
        self.values = self.kit.book.read(self.params, source.params)
        self.label = label
        self.preview = limit_size(source.original, PREVIEW_SIDE)[0]
        fit = source.fit
        self.landmarks = landmarks_image(fit.crop_image, fit.landmarks, fit.fitted_landmarks)
        self.touch()
        return self.info()

    def set_engine(self, name: str) -> None:
        """Switch engine, preparing the current portrait for it (no refit; the edits stay). Raises
        ``ValueError`` if the engine cannot be built; the session keeps its engine then."""
        engine = self.kit.engine(name)
        with self.lock:
            self.animator.switch_engine(engine)
            self.engine_name = name

    def set_model(self, kind: str) -> LoadInfo | None:
        """Edit with another face model: the current portrait is fitted with it (its edits start afresh,
        as the controls differ). Returns the new fit's info (None before any portrait). On an error the
        session keeps its model, portrait and edits."""
        if kind not in self.shared.kits:
            raise ValueError(f"face model '{kind}' is not offered here; available: {', '.join(self.shared.kits)}")
        with self.lock:
            if kind == self.model_kind:
                return self.info() if self.loaded else None
            kit = self.shared.kit(kind)
            animator = Animator(engine=kit.engine(self.engine_name), model=kit.model, size=self.shared.size)
            source = None
            if self.loaded:
                source = self.shared.prepared_source(self.source.original, self.engine_name, kind)
            self.model_kind, self.animator = kind, animator
            self.history.clear()  # another model's parameters
            return self._adopt(source, self.label) if source is not None else None

    # ------------------------------------------------------------------ edits
    def apply(self, new_values: Mapping[str, float], link: bool) -> list[str]:
        """Apply the sliders that moved; returns the sliders whose shown value the page must update."""
        with self.lock:
            book = self.kit.book
            new_values = {k: v for k, v in new_values.items() if k in book.by_name}  # another model's sliders
            self.history.push(self.params, key=tuple(book.changed(self.values, new_values)))
            self.params, self.values, updates = book.apply(
                self.params, self.source.params, self.values, new_values, link
            )
            self.touch()
            return updates

    def reset(self) -> None:
        with self.lock:
            self.history.push(self.params)
            self.params = self.source.params.clone()
            self.values = self.kit.book.read(self.params, self.source.params)

    def randomise(self) -> dict[str, float]:
        with self.lock:
            book = self.kit.book
            edits = random_edits(book, self.rng, book.read(self.source.params, self.source.params))
            self.history.push(self.params)
            self.params = book.set_values(self.source.params.clone(), self.source.params, edits)
            self.values = book.read(self.params, self.source.params)
            return edits

    def apply_plan(self, plan) -> None:
        """Apply a ``core.edits.EditPlan`` (a preset, one-click edits) to the current edit, undoably."""
        with self.lock:
            self.history.push(self.params)
            self.params = plan.apply(self.kit.model, self.params, np.zeros(1))
            self.values = self.kit.book.read(self.params, self.source.params)

    def step_history(self, undo: bool) -> bool:
        """Undo (or redo) the last edit; False when there is nothing to undo (redo)."""
        with self.lock:
            params = self.history.undo(self.params) if undo else self.history.redo(self.params)
            if params is None:
                return False
            self.params = params
            self.values = self.kit.book.read(self.params, self.source.params)
            return True

    def current_controls(self) -> dict[str, float]:
        """Absolute values of every model control that differs from the fitted portrait (for presets)."""
        with self.lock:
            controls = self.kit.model.controls()
            out = {}
            for name, c in controls.items():
                now, fitted = float(c.read(self.params)[0]), float(c.read(self.source.params)[0])
                if abs(now - fitted) > 1e-4:
                    out[name] = round(now, 4)
            return out

    def large_edit_warning(self) -> str | None:
        """A sentence when the edit turns the face further from the photo's pose than the engines are measured
        on (``core.edits.extent``), else None."""
        with self.lock:
            return large_edit_warning(self.kit.model, self.source.params, self.params)

    def render(self, debug: bool = False) -> np.ndarray:
        """The edited crop ``(S, S, 3)`` uint8."""
        with self.lock:
            self.touch()
            return self.animator.render(self.params, debug=debug)

    def render_full(self) -> tuple[np.ndarray, Path]:
        """The edit pasted into the original photo: a preview (at most ``FULL_PREVIEW_SIDE``) and the
        full-size PNG written to this session's folder."""
        with self.lock:
            full = self.animator.render(self.params, full_resolution=True)
            path = self.new_file("full", "png", stem=f"gdpw-{_slug(self.label)}-edit")
            save_image(path, full)
            return limit_size(full, FULL_PREVIEW_SIDE)[0], path

    def side_animator(self) -> Animator:
        """An ``Animator`` on this session's portrait for long jobs (videos), so that the slider loop stays
        free while they run (the prepared source is shared read-only)."""
        with self.lock:
            return self.animator.fork()

    def animate(self, preset: str, seconds: float, fps: float = 25.0, limits: VideoLimits | None = None) -> Path:
        """A preset video; ``limits`` (frames and seconds) are checked before any work."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset '{preset}'")
        limits = limits or VideoLimits.from_env()
        n = Animator._preset_frames(seconds, fps)
        if limits.max_seconds is not None and seconds > limits.max_seconds:
            raise ValueError(f"at most {limits.max_seconds:g} seconds here, got {seconds:g}")
        if limits.max_frames is not None and n > limits.max_frames:
            raise ValueError(f"at most {limits.max_frames} frames here, got {n}")
        anim = self.side_animator()
        path = self.new_file("animate", "mp4", stem=f"gdpw-{preset}")
        return Path(anim.animate(preset, out=path, seconds=seconds, fps=fps))

    def reenact(
        self,
        driving: str | Path,
        mode: str,
        max_seconds: float | None,
        full_resolution: bool,
        limits: VideoLimits | None = None,
    ) -> Path:
        """Drive the portrait with a clip (its first ``max_seconds``), keeping the clip's fps and audio.
        The frames used (``max_seconds`` at the clip's real fps) must be within ``limits`` (default
        ``VideoLimits.from_env()``: 900 frames and 30 s): a longer clip is refused before any work."""
        from core.io.video import check_seconds, probe_video

        limits = limits or VideoLimits.from_env()
        info = probe_video(driving)
        max_frames = None
        if max_seconds:
            max_frames = int(round(check_seconds(max_seconds, 1e6, "the length to use") * info.fps))
        used = max_frames if info.n_frames is None else min(max_frames or info.n_frames, info.n_frames)
        limits.check(info, frames=used, label=Path(driving).name)
        out = self.new_file("reenact", "mp4", stem=f"gdpw-reenact-{mode}")
        anim = self.side_animator()
        return Path(anim.reenact(driving, mode=mode, out=out, full_resolution=full_resolution, max_frames=max_frames))

    # ------------------------------------------------------------------ views
    def mesh_positions(self) -> np.ndarray:
        with self.lock:
            with torch.no_grad():
                verts = self.kit.model(self.params)[0].cpu().numpy()
        return self.kit.mesh.positions(verts)

    def inspect(self) -> Inspection:
        """The current edit with the engine's debug layers (``core.engines.Inspection``)."""
        with self.lock:
            return self.animator.inspect(self.params)

    # ------------------------------------------------------------------ files
    def new_file(self, kind: str, ext: str, stem: str = "output") -> Path:
        """A fresh path in this session's folder; the previous file of the same kind is removed (Gradio
        has copied it into its own cache by then)."""
        with self.lock:
            if self.workdir is None:
                self.workdir = Path(tempfile.mkdtemp(prefix="gdpw-studio-session-"))
            old = self.files.get(kind)
            if old is not None:
                old.unlink(missing_ok=True)
            path = self.workdir / f"{stem}-{uuid.uuid4().hex[:8]}.{ext}"
            self.files[kind] = path
            return path

    def close(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def touch(self) -> None:
        self.last_used = time.monotonic()


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return "-".join(p for p in keep.split("-") if p)[:40] or "portrait"


class SessionStore:
    """``EditSession`` per Gradio session hash; the least recently used beyond ``capacity`` is dropped."""

    def __init__(
        self,
        shared: Shared,
        capacity: int = 16,
        factory: Callable[[Shared, str], EditSession] | None = None,
        idle_s: float = 1800.0,
    ) -> None:
        self.shared = shared
        self.capacity = capacity
        self.idle_s = idle_s  # sessions unused this long are dropped (their folder removed) on the next get
        self._factory = factory or (lambda sh, key: EditSession(sh, key))
        self._sessions: OrderedDict[str, EditSession] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str | None) -> EditSession:
        key = key or "local"
        dropped = []
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._factory(self.shared, key)
                self._sessions[key] = session
            self._sessions.move_to_end(key)
            while len(self._sessions) > self.capacity:
                dropped.append(self._sessions.popitem(last=False)[1])
            dropped += self._expire(time.monotonic() - self.idle_s, keep=key)
        for old in dropped:
            log.info("studio: dropping idle session %s", old.key[:8])
            old.close()
        return session

    def _expire(self, before: float, keep: str) -> list[EditSession]:
        """Remove (under the lock) and return the sessions last used before ``before``."""
        stale = [k for k, v in self._sessions.items() if v.last_used < before and k != keep]
        return [self._sessions.pop(k) for k in stale]

    def close_all(self) -> None:
        """Drop every session and remove its folder (shutdown)."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            session.close()

    def drop(self, key: str | None) -> None:
        with self._lock:
            session = self._sessions.pop(key or "local", None)
        if session is not None:
            session.close()

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._sessions)

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, key: str) -> bool:
        return key in self._sessions
