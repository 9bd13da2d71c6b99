"""The turns protocol: do an engine's turned renders read like real turns? No ground truth needed.

The edit protocol's accuracy compares the refit pose of an edited photo with the requested pose, so it mixes
two things: how far the render really turns, and how the fitter (MediaPipe's landmarks) reads a turned face.
This protocol separates them with real head turns from talking-head clips, read by the same fitter:

for each clip, the frame nearest to frontal is the source ``a``; for each direction (yaw +/-, pitch +/-) the
frame ``b`` of the clip turned furthest that way, when it is at least ``min_change`` degrees from ``a``.
Frames ``a`` and ``b`` are fitted as photos (each with its own crop), the source is rendered at ``a``'s fit
with yaw, pitch and roll changed by ``b - a``, and the render is fitted the same way. Per case:

- ``real``: the change of the direction's control from ``a`` to ``b`` (degrees);
- ``render``: its change from ``a`` to the render;
- ``ratio``: ``render / real``: 1 when the engine's turn reads like the real one; below 1, the render reads
  as turned less than a real face turned by the same fitted amount;
- ``id_real``, ``id_render``: distance of the dlib face embeddings of ``a``'s crop and ``b``'s, and of ``a``'s
  and the render's: the edit protocol's ``id_dist``, with what a real turn of the same person costs beside
  it (a face embedding is not blind to pose, so a truer turn reads as further from the source).

``evaluate_turns(folder, engine="geometry")`` returns the rows and a per-control summary (mean ratio, cases);
clips are taken in name order (``max_clips`` keeps the first M);
``python -m core evaluate --protocol turns --clips DIR --out turns.csv`` writes them like the other protocols.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

POSE = ("yaw", "pitch", "roll")
DIRECTIONS = (("yaw", 1), ("yaw", -1), ("pitch", 1), ("pitch", -1))
ROW_COLUMNS = (
    "clip",
    "control",
    "direction",
    "source_frame",
    "turned_frame",
    "real",
    "render",
    "ratio",
    "id_real",
    "id_render",
    "engine",
)


def pose_of(model, params) -> dict[str, float]:
    """Yaw, pitch and roll (degrees) of a fit ``params`` (B = 1)."""
    controls = model.controls()
    return {n: float(controls[n].read(params)[0]) for n in POSE}


def pick_turns(poses: dict[int, dict[str, float]], min_change: float) -> tuple[int, list[tuple[str, int, int]]]:
    """The frame nearest to frontal and, per direction of ``DIRECTIONS``, ``(control, sign, frame)`` of the
    frame turned furthest that way from it, when by at least ``min_change`` degrees."""
    frames = sorted(poses)
    source = min(frames, key=lambda i: abs(poses[i]["yaw"]) + abs(poses[i]["pitch"]))
    turns = []
    for control, sign in DIRECTIONS:
        best = max(frames, key=lambda i: sign * (poses[i][control] - poses[source][control]))
        if sign * (poses[best][control] - poses[source][control]) >= min_change:
            turns.append((control, sign, best))
    return source, turns


@dataclass
class TurnSource:
    """A clip's source frame, made ready once for each of its turns."""

    fit: Any  # core.fit.api.FaceFit, the photo fit of the frame
    state: Any  # the engine's state for it
    identity: np.ndarray | None  # its dlib embedding (None: not measured, or no face for dlib)


@dataclass
class TurnRunner:
    """Renders and fits the turns of the clips with a shared engine, face model and still-image detector."""

    engine: Any
    model: Any  # core.face.FaceModel
    detector: Any  # core.fit.landmarks.LandmarkDetector (still images)
    size: int = 256
    faces: Any = None  # core.eval.faces.DlibFaces for the identity distances (None: not measured)

    def fit(self, image: np.ndarray, name: str):
        """The photo fit (``core.fit.api.FaceFit``) of ``image``."""
        from core.fit import fit_image

        return fit_image(image, model=self.model, size=self.size, detector=self.detector, name=name)

    def identity(self, fit) -> np.ndarray | None:
        """The dlib embedding of a fit's crop (its landmarks help dlib find the face), or None."""
        return None if self.faces is None else self.faces.identity(fit.crop_image, fit.landmarks)

    def prepare(self, fit) -> TurnSource:
        """The source fit (``FaceFit``) with the engine's state and its embedding, made once for its turns."""
        return TurnSource(fit, self.engine.prepare(fit.crop_image, fit.params), self.identity(fit))

    def render_turn(self, source: TurnSource, real_change: dict[str, float]) -> np.ndarray:
        """The source rendered with its pose changed by ``real_change`` (degrees)."""
        params = source.fit.params
        start = pose_of(self.model, params)
        target = self.model.apply_edits(params, {n: start[n] + real_change[n] for n in POSE})
        return self.engine.render(source.state, target).images[0]


def evaluate_turns(
    clips: str | Path,
    engine: str = "geometry",
    frames_per_clip: int = 30,
    min_change: float = 12.0,
    size: int = 256,
    max_clips: int | None = None,
    model=None,
    weights: str | Path | None = None,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows (one per clip and direction with a large enough real turn) and the per-control summary."""
    from tqdm import tqdm

    from core.engines.registry import make_engine
    from core.eval.analysis import Timings
    from core.eval.faces import DlibFaces
    from core.eval.protocols import candidate_frames, count_frames, find_clips, prepare_frames
    from core.fit import NoFaceError
    from core.fit.api import default_model
    from core.fit.landmarks import LandmarkDetector

    model = model or default_model()
    eng = make_engine(engine, model, weights)
    found = find_clips(clips)[:max_clips] if max_clips else find_clips(clips)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with LandmarkDetector(video=False) as detector:
        runner = TurnRunner(eng, model, detector, size, DlibFaces())
        for clip in tqdm(found, desc="clips", unit="clip", disable=not progress):
            indices = candidate_frames(count_frames(clip), frames_per_clip)
            frames = prepare_frames(clip, indices, "per_frame", model, size, detector, Timings())
            if not frames:
                continue
            source_frame, turns = pick_turns({i: pose_of(model, f.params) for i, f in frames.items()}, min_change)
            if not turns:
                continue
            try:
                fit = runner.fit(frames[source_frame].image, f"{clip.name} frame {source_frame}")
            except NoFaceError as exc:
                log.warning("%s skipped: its most frontal frame has no face in a photo fit: %s", clip.name, exc)
                continue
            source = runner.prepare(fit)
            for control, sign, turned_frame in turns:
                rows.extend(
                    measure_turn(
                        runner,
                        clip.name,
                        source,
                        frames[turned_frame].image,
                        control,
                        sign,
                        (source_frame, turned_frame),
                        engine,
                    )
                )
    summary = summarise_turns(rows, engine)
    summary.update(clips=len(found), min_change=min_change, size=size, seconds=round(time.perf_counter() - t0, 1))
    return rows, summary


def measure_turn(
    runner: TurnRunner,
    clip: str,
    source: TurnSource,
    turned_image: np.ndarray,
    control: str,
    sign: int,
    frames: tuple[int, int],
    engine: str,
) -> list[dict[str, Any]]:
    """The row of one real turn (``turned_image``, a frame turned by ``sign`` along ``control`` from the
    prepared ``source``; ``frames``: their indices), or none when the turned frame or the render has no face."""
    from core.fit import NoFaceError

    model = runner.model
    start = pose_of(model, source.fit.params)
    try:
        turned_fit = runner.fit(turned_image, f"{clip} frame {frames[1]}")
        turned = pose_of(model, turned_fit.params)
        real_change = {n: turned[n] - start[n] for n in POSE}
        render_fit = runner.fit(runner.render_turn(source, real_change), f"{clip} render")
    except NoFaceError as exc:
        log.warning("%s %s%s skipped: %s", clip, control, "+" if sign > 0 else "-", exc)
        return []
    real, render = real_change[control], pose_of(model, render_fit.params)[control] - start[control]

    def id_dist(fit) -> float:
        emb = runner.identity(fit)
        return float("nan") if emb is None or source.identity is None else float(np.linalg.norm(emb - source.identity))

    return [
        {
            "clip": clip,
            "control": control,
            "direction": "+" if sign > 0 else "-",
            "source_frame": frames[0],
            "turned_frame": frames[1],
            "real": real,
            "render": render,
            "ratio": render / real if real else float("nan"),  # a photo fit may read no change
            "id_real": id_dist(turned_fit),
            "id_render": id_dist(render_fit),
            "engine": engine,
        }
    ]


def summarise_turns(rows: list[dict[str, Any]], engine: str) -> dict[str, Any]:
    """Per control (and over all): cases, mean real and render changes (absolute), mean ratio, mean identity
    distances of the real turned frames and of the renders (where measured)."""

    def mean(values: list[float]) -> float | None:
        values = [v for v in values if not np.isnan(v)]
        return float(np.mean(values)) if values else None

    per: dict[str, dict[str, float | int | None]] = {}
    for name in ("yaw", "pitch", "all"):
        sel = [r for r in rows if name == "all" or r["control"] == name]
        per[name] = {
            "n": len(sel),
            "real": mean([abs(r["real"]) for r in sel]),
            "render": mean([abs(r["render"]) for r in sel]),
            "ratio": mean([r["ratio"] for r in sel]),
            "id_real": mean([r.get("id_real", float("nan")) for r in sel]),
            "id_render": mean([r.get("id_render", float("nan")) for r in sel]),
        }
    return {"protocol": "turns", "engine": engine, "controls": per}


def turns_table(summary: dict[str, Any]) -> str:
    """The per-control means as a markdown table."""

    def fmt(v: float | None, digits: int) -> str:
        return "-" if v is None else f"{v:.{digits}f}"

    lines = [
        "| control | cases | real change (deg) | render change (deg) | ratio | id_dist real | id_dist render |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in summary["controls"].items():
        lines.append(
            f"| {name} | {m['n']} | {fmt(m['real'], 1)} | {fmt(m['render'], 1)} | {fmt(m['ratio'], 3)} "
            f"| {fmt(m['id_real'], 3)} | {fmt(m['id_render'], 3)} |"
        )
    return "\n".join(lines)
