"""Per-browser-session state of the studio, and the heavy objects all sessions share.

- ``Shared``: the face model, the engine (its per-source state lives in each ``Source``), the slider book,
  the mesh subset of the 3D view and a small cache of prepared sources (keyed by the photo's bytes,
  so the default portrait or an example is fitted once per process). Read-only after construction,
  apart from the cache, which has its own lock.
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
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from core.animator import PRESETS, Animator, Source, make_engine
from core.face import FaceModel, FaceParams, load_face_model
from core.io.image import limit_size, save_image
from studio.controls import ControlBook, build_specs, random_edits
from studio.history import History
from studio.views import MeshView, mesh_view

log = logging.getLogger(__name__)

PREVIEW_SIDE = 1024        # the source photo shown on the page is at most this large
FULL_PREVIEW_SIDE = 1600   # the full-resolution result shown on the page (the download is full size)
CACHE_MAX_PIXELS = 16_000_000  # sources larger than this are not kept in the shared cache


def weights_available() -> list[Path]:
    """The learned engine's weights config (``pwm.json`` beside ``pwm.safetensors``) where
    ``core.engines.pwm`` looks for it (``$GDPW_PWM_WEIGHTS``, ``weights/``, the user cache), or []."""
    from core.engines.pwm import PWMWeightsError, find_weights

    try:
        return [find_weights()]
    except PWMWeightsError:
        return []


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


class Shared:
    """Objects every session uses read-only."""

    def __init__(self, model: str | FaceModel = "ict", size: int = 256, engine: str = "geometry") -> None:
        self.model = load_face_model(model) if isinstance(model, str) else model
        self.size = size
        self.engine_name = engine
        self._engine_lock = threading.Lock()
        self.engines = {engine: make_engine(engine, self.model)}
        self.book = ControlBook(self.model, build_specs(self.model))
        self.sources = SourceCache()
        self.fit_lock = threading.Lock()
        self._mesh: MeshView | None = None
        self._codes = None

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

    @property
    def codes(self):
        """Per-vertex neural codes for the inspect view. With the geometry engine they are the untrained
        initialisation (uniform random, fixed seed): nothing has learned them."""
        if self._codes is None:
            from core.render.guidance import NeuralCodes

            with torch.random.fork_rng():
                torch.manual_seed(0)
                self._codes = NeuralCodes(self.model.n_vertices, 16).eval()
        return self._codes

    def prepared_source(self, image: str | Path | np.ndarray, engine: str, face: int | None = None) -> Source:
        """The fitted and prepared ``Source`` of ``image`` (cached by content; ``face``: which face by size).
        Raises ``core.io.image.ImageError`` / ``core.fit.NoFaceError`` (both ``ValueError``)."""
        data = Path(image).read_bytes() if isinstance(image, (str, Path)) else np.ascontiguousarray(image).tobytes()
        key = (hashlib.sha1(data).hexdigest(), self.size, engine, face)
        source = self.sources.get(key)
        if source is not None:
            return source
        with self.fit_lock:
            source = self.sources.get(key)
            if source is None:
                anim = Animator(engine=self.engine(engine), model=self.model, size=self.size)
                anim.load_source(image, face=face)
                source = anim.source
                self.sources.put(key, source)
        return source


@dataclass
class LoadInfo:
    label: str
    seconds: float
    quality: dict[str, Any]
    original_size: tuple[int, int]


@dataclass
class EditSession:
    """One user's studio state."""

    shared: Shared
    key: str = "local"
    engine_name: str = "geometry"
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
    image: str | Path | np.ndarray | None = None   # the loaded photo, to reload another of its faces

    def __post_init__(self) -> None:
        self.engine_name = self.shared.engine_name
        self.animator = Animator(engine=self.shared.engine(self.engine_name), model=self.shared.model,
                                 size=self.shared.size)

    # ------------------------------------------------------------------ source
    @property
    def loaded(self) -> bool:
        return self.animator is not None and self.animator.source is not None

    @property
    def source(self) -> Source:
        return self.animator.source

    def load(self, image: str | Path | np.ndarray, label: str, face: int | None = None) -> LoadInfo:
        """Fit and prepare a new portrait (``face``: which face by size, 0 = the largest; default the largest
        plausible one). On any error the previous portrait and edits stay."""
        from studio.views import landmarks_image

        t0 = time.perf_counter()
        source = self.shared.prepared_source(image, self.engine_name, face=face)
        with self.lock:
            self.image = image
            self.history.clear()
            self.animator.source = source
            self.animator.last_result = None
            self.params = source.params.clone()
            self.values = self.shared.book.read(self.params, source.params)
            self.label = label
            self.preview = limit_size(source.original, PREVIEW_SIDE)[0]
            fit = source.fit
            self.landmarks = landmarks_image(fit.crop_image, fit.landmarks, fit.fitted_landmarks)
            self.touch()
        return LoadInfo(label, time.perf_counter() - t0, dict(source.fit.quality),
                        tuple(source.original.shape[:2]))

    def set_engine(self, name: str) -> None:
        """Switch engine, preparing the current portrait for it (no refit; the edits stay). Raises
        ``ValueError`` if the engine cannot be built; the session keeps its engine then."""
        engine = self.shared.engine(name)
        with self.lock:
            old = self.source if self.loaded else None
            state = engine.prepare(old.fit.crop_image, old.fit.params) if old is not None else None
            self.engine_name = name
            self.animator = Animator(engine=engine, model=self.shared.model, size=self.shared.size)
            if old is not None:
                self.animator.source = Source(old.original, old.fit, state)

    # ------------------------------------------------------------------ edits
    def apply(self, new_values: Mapping[str, float], link: bool) -> list[str]:
        """Apply the sliders that moved; returns the sliders whose shown value the page must update."""
        with self.lock:
            self.history.push(self.params, key=tuple(self.shared.book.changed(self.values, new_values)))
            self.params, self.values, updates = self.shared.book.apply(
                self.params, self.source.params, self.values, new_values, link)
            self.touch()
            return updates

    def reset(self) -> None:
        with self.lock:
            self.history.push(self.params)
            self.params = self.source.params.clone()
            self.values = self.shared.book.read(self.params, self.source.params)

    def randomise(self) -> dict[str, float]:
        with self.lock:
            edits = random_edits(self.shared.book, self.rng)
            self.history.push(self.params)
            self.params = self.shared.book.set_values(self.source.params.clone(), self.source.params, edits)
            self.values = self.shared.book.read(self.params, self.source.params)
            return edits

    def apply_plan(self, plan) -> None:
        """Apply a ``core.edits.EditPlan`` (a preset, one-click edits) to the current edit, undoably."""
        with self.lock:
            self.history.push(self.params)
            self.params = plan.apply(self.shared.model, self.params, np.zeros(1))
            self.values = self.shared.book.read(self.params, self.source.params)

    def step_history(self, undo: bool) -> bool:
        """Undo (or redo) the last edit; False when there is nothing to undo (redo)."""
        with self.lock:
            params = self.history.undo(self.params) if undo else self.history.redo(self.params)
            if params is None:
                return False
            self.params = params
            self.values = self.shared.book.read(self.params, self.source.params)
            return True

    def current_controls(self) -> dict[str, float]:
        """Absolute values of every model control that differs from the fitted portrait (for presets)."""
        with self.lock:
            controls = self.shared.model.controls()
            out = {}
            for name, c in controls.items():
                now, fitted = float(c.read(self.params)[0]), float(c.read(self.source.params)[0])
                if abs(now - fitted) > 1e-4:
                    out[name] = round(now, 4)
            return out

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

    def _side_animator(self) -> Animator:
        """An ``Animator`` on this session's portrait for long jobs (videos), so that the slider loop stays
        free while they run (the prepared source is shared read-only)."""
        with self.lock:
            anim = Animator(engine=self.animator.engine, model=self.shared.model, size=self.shared.size)
            anim.source = self.source
            return anim

    def side_animator(self) -> Animator:
        """An ``Animator`` on this session's portrait for long or live jobs (video, webcam)."""
        return self._side_animator()

    def animate(self, preset: str, seconds: float, fps: float = 25.0) -> Path:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset '{preset}'")
        anim = self._side_animator()
        path = self.new_file("animate", "mp4", stem=f"gdpw-{preset}")
        return Path(anim.animate(preset, out=path, seconds=seconds, fps=fps))

    def reenact(self, driving: str | Path, mode: str, max_seconds: float | None, full_resolution: bool) -> Path:
        """Drive the portrait with a clip (its first ``max_seconds``), keeping the clip's fps and audio."""
        from core.io.video import probe_video

        info = probe_video(driving)
        max_frames = int(round(max_seconds * info.fps)) if max_seconds else None
        out = self.new_file("reenact", "mp4", stem=f"gdpw-reenact-{mode}")
        anim = self._side_animator()
        return Path(anim.reenact(driving, mode=mode, out=out, full_resolution=full_resolution, max_frames=max_frames))

    # ------------------------------------------------------------------ views
    def mesh_positions(self) -> np.ndarray:
        with self.lock:
            with torch.no_grad():
                verts = self.shared.model(self.params)[0].cpu().numpy()
        return self.shared.mesh.positions(verts)

    def inspect(self) -> dict[str, Any]:
        """Guidance maps of the current edit: the rendered crop, the flow it was made with, the engine's
        debug maps (geometry: mesh flow, coverage, person layer; pwm: per-level flows, coverage, blend
        mask) and the neural codes rasterised on the target mesh (``codes_trained`` says whose)."""
        from core.render.raster import rasterize

        with self.lock:
            image = self.animator.render(self.params, debug=True)
            result = self.animator.last_result
            engine = self.animator.engine
            debug = dict(result.debug)
            flow = result.flow if result.flow is not None else debug.get("flow")
            out = {"image": image, "flow": flow, "debug": debug}
            generator = getattr(engine, "generator", None)
            learned = getattr(generator, "embeds", None)
            codes = learned if learned is not None else (None if generator is not None else self.shared.codes)
            if codes is not None and hasattr(engine, "project"):
                faces = getattr(engine, "faces", self.shared.model.render_faces)
                with torch.no_grad():
                    proj = engine.project(self.params)
                    frags = rasterize(proj, faces.to(proj.device), (self.shared.size, self.shared.size))
                    out["codes"] = codes(fragments=frags).detach().cpu()
                    out["code_mask"] = frags.mask.cpu()
                    out["codes_trained"] = learned is not None
        return out

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

    def __init__(self, shared: Shared, capacity: int = 16,
                 factory: Callable[[Shared, str], EditSession] | None = None) -> None:
        self.shared = shared
        self.capacity = capacity
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
        for old in dropped:
            log.info("studio: dropping idle session %s", old.key[:8])
            old.close()
        return session

    def drop(self, key: str | None) -> None:
        with self._lock:
            session = self._sessions.pop(key or "local", None)
        if session is not None:
            session.close()

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, key: str) -> bool:
        return key in self._sessions
