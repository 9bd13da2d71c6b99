"""The edit protocol: how well an engine makes slider edits, large ones included. No ground truth needed.

For each portrait of a folder and each edit of ``EDIT_GRID`` (pose changes relative to the fitted pose,
expressions, gaze, blink and face shape as absolute values), the edit is rendered at full resolution and:

- ``accuracy``: the edited photo is fitted again (the face over the source's face when there are several:
  a pattern in the background taken for a face is not measured) and the fitted value of each edited
  control is compared with the requested one (the largest error of the case, in the control's units:
  degrees for pose and gaze, coefficients for expressions and shape);
- ``floor``: the same accuracy measured on exact renders of the fitted mesh (``core.render.shaded``: the
  source's fitted face drawn plain and shaded, before and after the edit; the change the fitter reads
  against the change asked for): how well the fitter itself reads this edit, the floor under what any
  engine's ``accuracy`` can show (ICT only; NaN for other models);
- ``detected``: MediaPipe finds the face in the edited photo (1 or 0);
- ``id_dist``: distance of the dlib face embeddings of the source crop and the edited crop;
- ``stretch``: the fraction of the moved pixels of the crop (flow over 0.5 px) whose backward warp
  stretches area more than 3 times or folds (Jacobian determinant of the map below 1/3, or not positive);
  pixels the engine made up rather than warped (its ``synthesised`` layer) are not warped, so not counted;
- ``synth``: the fraction of the changed pixels (moved or made up) that were made up: the other side of
  ``stretch``, so that replacing warped pixels by invented ones shows;
- ``cycle_l1``: the edited photo is loaded as a new source (with its own fit) and edited back to the
  source's fitted values of the edited controls; mean absolute difference (RGB in [0, 1]) with the
  original photo inside the face's box, at full resolution.

``evaluate_edits(folder, engine="geometry")`` returns rows and a per-edit summary (means, detection rate);
``python -m core evaluate --protocol edit --images DIR --out edits.csv`` writes them like the other
protocols (CSV, ``.summary.json``, a markdown table).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.eval.metrics import l1

log = logging.getLogger(__name__)

STRETCH_LIMIT = 3.0  # area stretched more than this many times counts as stretched
MOVED_PX = 0.5  # pixels that move less than this are not "changed"
COLUMNS = ("accuracy", "floor", "detected", "id_dist", "stretch", "synth", "cycle_l1")
ROW_COLUMNS = ("portrait", "edit", "engine", *COLUMNS)  # a row of the CSV


@dataclass(frozen=True)
class EditCase:
    """One edit of the grid: ``values`` per control; ``offset``: changes from the fitted values."""

    name: str
    values: dict[str, float]
    offset: bool = False


def _pose(name: str, control: str, value: float) -> EditCase:
    return EditCase(f"{name}{value:+g}", {control: value}, offset=True)


EDIT_GRID: tuple[EditCase, ...] = (
    *(_pose("yaw", "yaw", v) for v in (-30, -20, -10, 10, 20, 30)),
    *(_pose("pitch", "pitch", v) for v in (-20, -10, 10, 20)),
    *(_pose("roll", "roll", v) for v in (-15, 15)),
    EditCase("jawOpen 0.7", {"jawOpen": 0.7}),
    EditCase("smile 0.9", {"mouthSmile_L": 0.9, "mouthSmile_R": 0.9}),
    EditCase("gaze -25", {"gaze_yaw": -25.0}),
    EditCase("gaze +25", {"gaze_yaw": 25.0}),
    EditCase("blink 1", {"blink": 1.0}),
    EditCase("shape000 -3", {"shape000": -3.0}),
    EditCase("shape000 +3", {"shape000": 3.0}),
)


POSE_STEP = re.compile(r"^(yaw|pitch|roll)([+-]\d+(?:\.\d+)?)$")  # "yaw+25": a change of the fitted pose
SET_VALUE = re.compile(r"^(\w+) ([+-]?\d+(?:\.\d+)?)$")  # "jawOpen 0.7", "shape000 +2": a control set to a value


def parse_edit(name: str) -> EditCase | None:
    """An edit written as ``yaw+25`` / ``pitch-15`` / ``roll+10`` (degrees from the fitted pose) or as
    ``CONTROL VALUE`` (e.g. ``jawOpen 0.7``: the control set to that value), or None. Control names are
    checked where the edit is applied (``FaceModel.apply_edits``)."""
    m = POSE_STEP.match(name)
    if m:
        return EditCase(name, {m.group(1): float(m.group(2))}, offset=True)
    m = SET_VALUE.match(name)
    if m:
        return EditCase(name, {m.group(1): float(m.group(2))})
    return None


def select_edits(
    spec: str | None, cases: Sequence[EditCase], default: Sequence[EditCase], model=None
) -> tuple[EditCase, ...]:
    """The cases named in ``spec`` (comma-separated, in that order): names of ``cases``, else edits written as
    ``parse_edit`` reads them; ``default`` when ``spec`` is empty. ``ValueError`` names what it cannot read,
    the known names and the two written forms; with a face ``model``, an edit of an unknown control or out of
    its range is refused too (``FaceModel.check_edits``), before any photo is touched."""
    if not spec:
        return tuple(default)
    known = {c.name: c for c in cases}
    names = [n.strip() for n in spec.split(",") if n.strip()]
    chosen = {n: known.get(n) or parse_edit(n) for n in names}
    unknown = [n for n, case in chosen.items() if case is None]
    if unknown:
        raise ValueError(
            f"unknown edit(s) {', '.join(unknown)}; known: {', '.join(known)}; or write a pose change as "
            "'yaw+25' / 'pitch-15' / 'roll+10', or a control's value as 'jawOpen 0.7'"
        )
    if model is not None:
        for case in chosen.values():
            model.check_edits(case.values, offset=case.offset)
    return tuple(chosen[n] for n in names)


def requested_values(model, params, case: EditCase) -> dict[str, float]:
    """Absolute control values the case asks for, given the source's fitted ``params``."""
    controls = model.controls()
    if not case.offset:
        return dict(case.values)
    return {n: float(controls[n].read(params)[0]) + v for n, v in case.values.items()}


def stretch_fraction(flow: torch.Tensor | None, synthesised: torch.Tensor | None = None) -> tuple[float, float]:
    """``(stretch, synth)`` of one render: the fraction of the warped moved pixels whose backward map
    ``x -> x + flow(x)`` (``(1, 2, H, W)``, normalised units) stretches area more than ``STRETCH_LIMIT`` times
    or folds, and the fraction of changed pixels that ``synthesised (1, 1, H, W)`` (> 0.5) says were made up
    instead. Both 0 when nothing changes."""
    from core.coords import flow_to_pixels

    if flow is None:
        return 0.0, 0.0
    f = flow_to_pixels(flow[:1].double())[0].cpu().numpy()
    made = np.zeros(f.shape[1:], bool) if synthesised is None else synthesised[0, 0].cpu().numpy() > 0.5
    moved = (np.hypot(f[0], f[1]) > MOVED_PX) & ~made
    changed = int(moved.sum() + made.sum())
    if changed == 0:
        return 0.0, 0.0
    dfx_dy, dfx_dx = np.gradient(f[0])
    dfy_dy, dfy_dx = np.gradient(f[1])
    det = (1.0 + dfx_dx) * (1.0 + dfy_dy) - dfx_dy * dfy_dx  # source area per target area
    bad = det < 1.0 / STRETCH_LIMIT  # includes folds (det <= 0)
    stretch = float(bad[moved].mean()) if moved.any() else 0.0
    return stretch, float(made.sum() / changed)


def face_box(fit, margin: float = 0.1) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the fitted landmarks in the original photo, grown by ``margin``, clipped."""
    from core.fit.crop import transform_points

    pts = transform_points(np.linalg.inv(fit.crop), fit.landmarks[:, :2].astype(np.float64))
    lo, hi = pts.min(0), pts.max(0)
    pad = margin * (hi - lo)
    h, w = fit.original_size
    x0, y0 = np.clip(np.floor(lo - pad), 0, [w - 1, h - 1]).astype(int)
    x1, y1 = np.clip(np.ceil(hi + pad), 1, [w, h]).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def box_overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes ``(left, top, right, bottom)``."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class EditRunner:
    """Measures the edits of one loaded portrait (an ``Animator`` with its source) with shared tools."""

    anim: Any
    faces: Any  # core.eval.faces.DlibFaces
    detector: Any  # core.fit.landmarks.LandmarkDetector (still images)
    timings: dict[str, float] = field(default_factory=dict)
    shaded: Any = None  # core.render.shaded.ShadedFace of the model, for ``floor`` (None: not measured)
    _shaded_source: tuple[Any, Any] | None = field(default=None, repr=False)  # (source, its render's fit)

    def measure(self, case: EditCase, source_embedding: np.ndarray | None) -> dict[str, float]:
        """The metrics of one edit (NaN where not measurable)."""
        from core.fit import NoFaceError

        anim, model = self.anim, self.anim.model
        src = anim.source
        wanted = requested_values(model, src.params, case)
        row = {c: math.nan for c in COLUMNS}
        params = model.apply_edits(src.params, wanted)
        look = anim.inspect(params)
        row["stretch"], row["synth"] = stretch_fraction(look.flow, look.synthesised)
        edited = anim.render(params, full_resolution=True)
        try:
            refit = self.refit(edited, case.name)
        except NoFaceError:
            row["detected"] = 0.0
            return row
        row["detected"] = 1.0
        controls = model.controls()
        row["accuracy"] = (
            max(abs(float(controls[n].read(refit.params)[0]) - v) for n, v in wanted.items()) if wanted else 0.0
        )
        row["floor"] = self.floor(wanted)
        emb = self.faces.identity(refit.crop_image, refit.landmarks)
        if emb is not None and source_embedding is not None:
            row["id_dist"] = float(np.linalg.norm(emb - source_embedding))
        row["cycle_l1"] = self._cycle(edited, refit, case)
        return row

    def floor(self, wanted: dict[str, float]) -> float:
        """``accuracy`` of the edit ``wanted`` on exact shaded renders of the source's fitted mesh: the largest
        error of the change the fitter reads between the renders before and after the edit against the
        change asked for (the photo's own fit is the source's values by construction, so the change is what
        compares). NaN without ``shaded`` or where the fitter finds no face in a render."""
        from core.fit import NoFaceError

        if not wanted:
            return 0.0
        if self.shaded is None:
            return math.nan
        src, controls = self.anim.source, self.anim.model.controls()
        try:
            if self._shaded_source is None or self._shaded_source[0] is not src:
                self._shaded_source = (src, self._read_shaded(src.params))
            before = self._shaded_source[1]
            after = self._read_shaded(self.anim.model.apply_edits(src.params, wanted))
        except NoFaceError:
            return math.nan

        def change(params, n: str) -> float:
            return float(controls[n].read(params)[0]) - float(controls[n].read(before)[0])

        return max(abs(change(after, n) - (v - float(controls[n].read(src.params)[0]))) for n, v in wanted.items())

    def _read_shaded(self, params):
        """The fitted parameters of the shaded render of ``params``."""
        from core.fit import fit_image

        image = self.shaded.render(params, self.anim.size).image
        return fit_image(
            image, model=self.anim.model, size=self.anim.size, detector=self.detector, name="shaded render"
        ).params

    def refit(self, edited: np.ndarray, name: str):
        """The fit of the edited face: with several faces in the photo (a pattern in the background
        detected as one), the one whose box overlaps the source face's box most, not the largest."""
        from core.fit import fit_image
        from core.fit.api import face_boxes

        model, size = self.anim.model, self.anim.size
        refit = fit_image(edited, model=model, size=size, detector=self.detector, name=name)
        if refit.quality.get("faces_found", 1) <= 1:
            return refit
        source_box = face_box(self.anim.source.fit, margin=0.0)
        overlaps = [box_overlap(b, source_box) for b in face_boxes(edited, self.detector)]
        best = int(np.argmax(overlaps)) if overlaps else 0
        if best == refit.quality.get("face_rank", 1) - 1:
            return refit
        log.info(
            "%s: %d faces in the edited photo; measuring face %d, over the source's face", name, len(overlaps), best
        )
        return fit_image(edited, model=model, size=size, detector=self.detector, name=name, face=best)

    def _cycle(self, edited: np.ndarray, refit, case: EditCase) -> float:
        """Edit the edited photo back to the source's values; L1 with the original in the face box."""
        from core.animator import Animator

        src = self.anim.source
        back = Animator(engine=self.anim.engine, model=self.anim.model, size=self.anim.size)
        back.use_source(back.prepare_source(edited, refit))
        controls = self.anim.model.controls()
        restore = {n: float(controls[n].read(src.params)[0]) for n in case.values}
        restored = back.render(back.model.apply_edits(refit.params, restore), full_resolution=True)
        x0, y0, x1, y1 = face_box(src.fit)
        return l1(restored[y0:y1, x0:x1], src.original[y0:y1, x0:x1])


def evaluate_edits(
    images: str | Path | Sequence[Path],
    engine: str = "geometry",
    grid: Sequence[EditCase] = EDIT_GRID,
    model=None,
    size: int = 256,
    max_images: int | None = None,
    progress: bool = True,
    weights: str | Path | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows (one per portrait and edit) and the per-edit summary; portraits without a face are skipped
    (counted in the summary)."""
    from tqdm import tqdm

    from core.animator import Animator
    from core.eval.faces import DlibFaces
    from core.fit import NoFaceError
    from core.fit.landmarks import LandmarkDetector
    from core.io.image import list_images
    from core.render.shaded import ShadedFace

    paths = list_images(images, "portraits") if isinstance(images, (str, Path)) else list(images)
    paths = paths[:max_images] if max_images else paths
    anim = Animator(engine=engine, model=model or "ict", size=size, weights=weights)
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    t0 = time.perf_counter()
    with LandmarkDetector(video=False) as detector:
        shaded = ShadedFace.of(anim.model) if anim.model.kind == "ict" else None
        runner = EditRunner(anim, DlibFaces(), detector, shaded=shaded)
        for path in tqdm(paths, desc="portraits", unit="portrait", disable=not progress):
            try:
                anim.load_source(path)
            except (NoFaceError, ValueError) as exc:
                log.warning("%s skipped: %s", path.name, exc)
                skipped.append(path.name)
                continue
            src_emb = runner.faces.identity(anim.source.fit.crop_image, anim.source.fit.landmarks)
            for case in grid:
                rows.append(
                    {"portrait": path.name, "edit": case.name, "engine": engine, **runner.measure(case, src_emb)}
                )
    summary = summarise_edits(rows, engine, [c.name for c in grid])
    summary.update(
        portraits=len(paths) - len(skipped), skipped=skipped, size=size, seconds=round(time.perf_counter() - t0, 1)
    )
    return rows, summary


def summarise_edits(rows: list[dict[str, Any]], engine: str, edits: Sequence[str]) -> dict[str, Any]:
    """Means per edit (NaN ignored; ``detected`` becomes the detection rate)."""
    per_edit: dict[str, dict[str, float | None]] = {}
    for name in edits:
        sel = [r for r in rows if r["edit"] == name]
        means: dict[str, float | None] = {}
        for col in COLUMNS:
            vals = [float(r[col]) for r in sel if not math.isnan(float(r[col]))]
            means[col] = float(np.mean(vals)) if vals else None
        means["n"] = len(sel)
        per_edit[name] = means
    return {"protocol": "edit", "engine": engine, "edits": per_edit}


def edits_table(summary: dict[str, Any]) -> str:
    """The per-edit means as a markdown table."""
    head = "| edit | n | accuracy | floor | detected | id_dist | stretch | synth | cycle_l1 |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]

    def fmt(v: float | None, digits: int) -> str:
        return "-" if v is None else f"{v:.{digits}f}"

    for name, m in summary["edits"].items():
        lines.append(
            f"| {name} | {m['n']} | {fmt(m['accuracy'], 2)} | {fmt(m.get('floor'), 2)} | {fmt(m['detected'], 2)} | "
            f"{fmt(m['id_dist'], 3)} | {fmt(m['stretch'], 4)} | {fmt(m.get('synth'), 4)} | {fmt(m['cycle_l1'], 4)} |"
        )
    return "\n".join(lines)
