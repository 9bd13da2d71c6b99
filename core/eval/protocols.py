"""The paper's evaluation protocols (design/gdpw-model.md §11.1) over a folder of talking-head clips.

**same-id** (self-reenactment): source and driving frames come from one clip. Frame pairs {a, b} are
sampled at random (fixed seed) and evaluated in both directions, a -> b (``forward``) and b -> a
(``backward``). Every frame of a clip is cut with one fixed crop (the paper's crop of the median landmark
box of the clip's frames in use) and the clip's frames are fitted together with one identity, so the target
is the driving frame's fit and the ground truth is the driving frame in the same crop. Metrics: L1, PSNR,
SSIM against the ground truth; CSIM of output and ground truth; AKD, AED, APD against the driving frame.

**cross-id**: the source frame comes from one clip and the driving frame from a clip of another identity
(MANIFEST.csv's ``identity`` column when the folder or its parent has one, else every file is its own
identity). Each frame is cut with its own crop (the paper's demo, §10.2) and the target is the source's
identity and framing with the driving frame's expression, pose, jaw and gaze (absolute motion, as the
``Animator``'s absolute mode: ``core.motion``). No ground
truth: CSIM against the source, AED and APD against the driving frame.

Both: frames are drawn from ``frames_per_clip`` candidates spread evenly over each clip; clips are visited in
a seeded random order (``max_clips`` keeps the first M of it). The ``copy`` baseline (output = the source
crop) is always evaluated beside the engine. ``fd_dlib`` is the Fréchet distance between the dlib
embeddings of the outputs and of the real frames (the ground truths for same-id, the sources for cross-id).

    from core.eval import evaluate
    result = evaluate("clips/", protocol="same-id", engine="geometry", pairs=20)
    result.rows        # one dict per (pair, engine)
    result.summary     # means, fd_dlib, FID status, timings
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.engines.registry import make_engine
from core.eval import metrics as M
from core.eval.analysis import FrameAnalyser, FrameAnalysis, Timings
from core.face.params import FaceParams
from core.io.video import VIDEO_SUFFIXES
from core.motion import absolute_motion

log = logging.getLogger(__name__)

PROTOCOLS = ("same-id", "cross-id")
METRICS = ("l1", "psnr", "ssim", "csim", "akd", "aed", "apd")
EXTRA_METRICS = ("id_dist",)  # Euclidean distance of the dlib embeddings (dlib's own metric: < 0.6 same person)
PROTOCOL_METRICS = {"same-id": METRICS + EXTRA_METRICS, "cross-id": ("csim", "aed", "apd") + EXTRA_METRICS}


# ------------------------------------------------------------------------------------------ clips
@dataclass(frozen=True)
class Clip:
    path: Path
    identity: str

    @property
    def name(self) -> str:
        return self.path.stem


def read_manifest(path: str | Path) -> dict[str, str]:
    """``file`` -> ``identity`` of a MANIFEST.csv, keyed by the resolved path and by the file name."""
    path = Path(path)
    out: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "file" not in reader.fieldnames or "identity" not in reader.fieldnames:
            log.warning("%s has no 'file' and 'identity' columns; every clip is its own identity", path)
            return out
        for row in reader:
            ident = (row.get("identity") or "").strip()
            if not ident:
                continue
            f = row["file"].strip()
            out[str((path.parent / f).resolve())] = ident
            out.setdefault(Path(f).name, ident)
            out.setdefault(Path(f).stem, ident)  # manifests may name clips without their extension
    return out


def find_manifest(folder: Path) -> Path | None:
    for candidate in (folder / "MANIFEST.csv", folder.parent / "MANIFEST.csv"):
        if candidate.is_file():
            return candidate
    return None


def find_clips(folder: str | Path, manifest: str | Path | None = None) -> list[Clip]:
    """Video files of ``folder`` (sorted) with their identities (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of clips")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not paths:
        raise ValueError(f"{folder}: no video clips ({', '.join(sorted(VIDEO_SUFFIXES))})")
    manifest = Path(manifest) if manifest else find_manifest(folder)
    ids = read_manifest(manifest) if manifest else {}
    if manifest:
        log.info("identities from %s", manifest)
    clips = []
    for p in paths:
        ident = ids.get(str(p.resolve())) or ids.get(p.name) or ids.get(p.stem) or p.stem
        clips.append(Clip(p, ident))
    return clips


def keep_identities(clips: list[Clip], identities: Sequence[str]) -> list[Clip]:
    """The clips of ``identities`` (for example a training run's held-out ones); ``ValueError`` naming the
    known identities when one of them has no clip."""
    known = sorted({c.identity for c in clips})
    missing = [i for i in identities if i not in known]
    if missing:
        raise ValueError(f"no clips of identity {', '.join(missing)}; known: {', '.join(known)}")
    wanted = set(identities)
    return [c for c in clips if c.identity in wanted]


# ------------------------------------------------------------------------------------------ pairs
@dataclass(frozen=True)
class FrameRef:
    clip: Clip
    frame: int  # index in the clip's decoded frames


@dataclass(frozen=True)
class Pair:
    index: int  # pair id (a forward and its backward pair share it)
    direction: str  # "forward", "backward" (same-id) or "cross"
    source: FrameRef
    driving: FrameRef


def candidate_frames(n_frames: int, k: int) -> np.ndarray:
    """``k`` frame indices spread evenly over a clip of ``n_frames`` (all of them when shorter)."""
    if n_frames <= 0:
        return np.zeros(0, dtype=int)
    return np.unique(np.round(np.linspace(0, n_frames - 1, min(k, n_frames))).astype(int))


def count_frames(clip: Clip) -> int:
    """Frames of a clip (from the container's header, else by decoding it)."""
    from core.io.video import probe_video

    n = probe_video(clip.path).n_frames
    if n is None:
        from core.io.video import iter_frames

        n = sum(1 for _ in iter_frames(clip.path))
    return int(n)


def sample_pairs(
    clips: Sequence[Clip],
    protocol: str,
    n_pairs: int,
    frames_per_clip: int = 50,
    seed: int = 0,
    max_clips: int | None = None,
    count_frames: Callable[[Clip], int] = count_frames,
) -> list[Pair]:
    """The evaluated (source, driving) pairs, ``n_pairs`` of them, reproducible from ``seed``.

    same-id: ``ceil(n_pairs / 2)`` frame pairs, one clip after another in the seeded order, each evaluated
    forward and backward (the last one forward only when ``n_pairs`` is odd). cross-id: source clips in
    the seeded order, each with a random driving clip of another identity.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got '{protocol}'")
    if n_pairs < 1:
        raise ValueError(f"--pairs must be at least 1, got {n_pairs}")
    if frames_per_clip < 2:
        raise ValueError(f"--frames-per-clip must be at least 2, got {frames_per_clip}")
    rng = np.random.default_rng(seed)
    order = [clips[i] for i in rng.permutation(len(clips))]
    if max_clips is not None:
        if max_clips < 1:
            raise ValueError(f"--max-clips must be at least 1, got {max_clips}")
        order = order[:max_clips]
    counts: dict[Clip, np.ndarray] = {}

    def frames_of(clip: Clip) -> np.ndarray:
        if clip not in counts:
            counts[clip] = candidate_frames(count_frames(clip), frames_per_clip)
        return counts[clip]

    pairs: list[Pair] = []
    if protocol == "same-id":
        j, pair_id, short = 0, 0, set()
        while len(pairs) < n_pairs:
            if len(short) == len(order):
                raise ValueError("same-id needs a clip with at least two frames")
            clip = order[j % len(order)]
            j += 1
            if clip in short:
                continue
            cand = frames_of(clip)
            if len(cand) < 2:
                short.add(clip)
                continue
            a, b = (int(x) for x in rng.choice(cand, 2, replace=False))
            pairs.append(Pair(pair_id, "forward", FrameRef(clip, a), FrameRef(clip, b)))
            if len(pairs) < n_pairs:
                pairs.append(Pair(pair_id, "backward", FrameRef(clip, b), FrameRef(clip, a)))
            pair_id += 1
    else:
        if len({c.identity for c in order}) < 2:
            raise ValueError(
                f"cross-id needs clips of at least two identities (found {len(order)} clip(s) of one identity)"
            )
        for j in range(n_pairs):
            src = order[j % len(order)]
            others = [c for c in order if c.identity != src.identity]
            drv = others[int(rng.integers(len(others)))]
            fs, fd = frames_of(src), frames_of(drv)
            pairs.append(Pair(j, "cross", FrameRef(src, int(rng.choice(fs))), FrameRef(drv, int(rng.choice(fd)))))
    return pairs


# ------------------------------------------------------------------------------------------ frames
@dataclass
class PreparedFrame:
    """A real frame ready for the engines: its crop ``(S, S, 3)`` uint8, fit (B = 1) and crop transform."""

    image: np.ndarray
    params: FaceParams
    crop: np.ndarray


def decode_frames(path: Path, indices: Iterable[int]) -> dict[int, np.ndarray]:
    """The frames ``indices`` of a clip (decoding stops after the last one)."""
    from core.io.video import iter_frames

    wanted = set(int(i) for i in indices)
    out: dict[int, np.ndarray] = {}
    if not wanted:
        return out
    last = max(wanted)
    for i, frame in enumerate(iter_frames(path, last + 1)):
        if i in wanted:
            out[i] = frame
    return out


def prepare_frames(
    clip: Clip, indices: Iterable[int], crop_mode: str, model, size: int, detector, timings: Timings
) -> dict[int, PreparedFrame]:
    """Decode, detect (MediaPipe), crop and fit the frames ``indices`` of a clip.

    ``crop_mode="fixed"``: one crop for all of them (the paper's crop of the median landmark box) and one
    identity (same-id); ``"per_frame"``: each frame its own crop and fit (cross-id). Frames without a
    face are left out (logged).
    """
    from core.fit.api import fit_landmarks, landmarks_to_crop
    from core.fit.crop import crop_square, face_crop, square_transform, warp_image
    from core.fit.landmarks import NoFaceError, detect_landmarks

    with timings.span("decode"):
        frames = decode_frames(clip.path, indices)
    points: dict[int, np.ndarray] = {}
    with timings.span("landmarks"):
        for i in sorted(frames):
            try:
                points[i] = detect_landmarks(frames[i], f"{clip.name} frame {i}", detector).points
            except NoFaceError:
                log.warning("%s frame %d: no face; pairs using it are skipped", clip.name, i)
    missing = set(int(i) for i in indices) - set(frames)
    if missing:
        log.warning("%s: frames %s could not be decoded; pairs using them are skipped", clip.name, sorted(missing))
    if not points:
        return {}
    ids = sorted(points)
    if crop_mode == "fixed":
        boxes = np.array([[*c, s] for c, s in (crop_square(points[i]) for i in ids)])
        centre_side = np.median(boxes, axis=0)
        crops = {i: square_transform(centre_side[:2], float(centre_side[2]), size) for i in ids}
    elif crop_mode == "per_frame":
        crops = {i: face_crop(points[i], size) for i in ids}
    else:
        raise ValueError(f"crop_mode must be 'fixed' or 'per_frame', got '{crop_mode}'")
    with timings.span("fit"):
        lmk = np.stack([landmarks_to_crop(points[i], crops[i]) for i in ids])
        params, _ = fit_landmarks(lmk, size, model, shared_shape=crop_mode == "fixed")
    with timings.span("decode"):
        images = {i: warp_image(frames[i], crops[i], size) for i in ids}
    return {i: PreparedFrame(images[i], params[k], crops[i]) for k, i in enumerate(ids)}


# ------------------------------------------------------------------------------------------ targets
def target_params(source: FaceParams, driving: FaceParams, protocol: str) -> FaceParams:
    """same-id: the driving fit (same clip, same identity, same crop). cross-id: the source identity and
    framing with the driving expression, pose, jaw and gaze (absolute motion, ``core.motion``, §10.2)."""
    if protocol == "same-id":
        return driving.clone()
    return absolute_motion(source, driving)


# ------------------------------------------------------------------------------------------ metrics
def pair_metrics(
    protocol: str,
    output: np.ndarray,
    out: FrameAnalysis,
    source: FrameAnalysis,
    truth: np.ndarray | None,
    driving: FrameAnalysis,
) -> tuple[dict[str, float], list[str]]:
    """The row's metrics (NaN where not applicable or not measurable) and notes on what was missing."""
    row = {m: math.nan for m in METRICS + EXTRA_METRICS}
    notes: list[str] = []
    if protocol == "same-id":
        row["l1"], row["psnr"], row["ssim"] = M.l1(output, truth), M.psnr(output, truth), M.ssim(output, truth)
        ref = driving
    else:
        ref = source
    if out.embedding is not None and ref.embedding is not None:
        row["csim"] = M.cosine_similarity(out.embedding, ref.embedding)
        row["id_dist"] = float(np.linalg.norm(out.embedding - ref.embedding))
    else:
        notes.append("csim: no dlib face")
    if protocol == "same-id":
        if out.landmarks68 is not None and driving.landmarks68 is not None:
            row["akd"] = M.keypoint_distance(out.landmarks68, driving.landmarks68)
        else:
            notes.append("akd: no dlib landmarks")
    if out.expression is not None and driving.expression is not None:
        row["aed"] = M.expression_distance(out.expression, driving.expression)
        row["apd"] = M.pose_distance(out.head, driving.head)
    else:
        notes.append("aed/apd: no fit")
    return row, notes


# ------------------------------------------------------------------------------------------ run
@dataclass
class Evaluation:
    """Rows (one per pair and engine), the summary (means, fd_dlib, FID status, timings) and timings."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    timings: Timings = field(default_factory=Timings)


def evaluate(
    clips: str | Path | Sequence[Clip],
    protocol: str = "same-id",
    engine: str = "geometry",
    pairs: int = 20,
    seed: int = 0,
    frames_per_clip: int = 50,
    max_clips: int | None = None,
    model=None,
    size: int = 256,
    progress: bool = True,
    inception_weights: str | Path | None = None,
    manifest: str | Path | None = None,
    analyser: FrameAnalyser | None = None,
    weights: str | Path | None = None,
    threads: int | None = 1,
    identities: Sequence[str] | None = None,
) -> Evaluation:
    """Run a protocol on a folder of clips (or ``Clip`` objects) with an engine and the copy baseline:
    ``sample_pairs`` then ``evaluate_pairs`` (see there for ``threads`` and the errors). ``identities``
    keeps only the clips of those identities (``keep_identities``)."""
    from core.fit.api import default_model

    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got '{protocol}'")
    model = model if model is not None else default_model()
    engines = _engines(engine, model, weights)  # fails early for pwm without weights
    clip_list = find_clips(clips, manifest) if isinstance(clips, (str, Path)) else list(clips)
    if identities:
        clip_list = keep_identities(clip_list, identities)
    t0 = time.perf_counter()
    pair_list = sample_pairs(clip_list, protocol, pairs, frames_per_clip, seed, max_clips)
    sampling = time.perf_counter() - t0  # mostly probing the clips' frame counts
    result = evaluate_pairs(
        pair_list,
        protocol,
        engines,
        model=model,
        size=size,
        progress=progress,
        inception_weights=inception_weights,
        analyser=analyser,
        threads=threads,
    )
    result.timings.add("sampling", sampling)
    s = result.summary
    s["timings"]["sampling"] = round(sampling, 3)
    s["seconds"] = round(s["seconds"] + sampling, 2)
    s["seconds_per_pair"] = round(s["seconds"] / max(1, s["pairs_evaluated"]), 3)
    s.update(engine=engine, seed=seed, pairs_requested=pairs, frames_per_clip=frames_per_clip, max_clips=max_clips)
    return result


def _engines(engine: str, model, weights=None) -> dict[str, Any]:
    """The engine under test beside the ``copy`` baseline, from ``core.engines.registry``."""
    engines: dict[str, Any] = {"copy": make_engine("copy", model)}
    if engine != "copy":
        engines[engine] = make_engine(engine, model, weights)
    return engines


def evaluate_pairs(
    pairs: Sequence[Pair],
    protocol: str,
    engine: str | dict[str, Any] = "geometry",
    model=None,
    size: int = 256,
    progress: bool = True,
    inception_weights: str | Path | None = None,
    analyser: FrameAnalyser | None = None,
    weights: str | Path | None = None,
    threads: int | None = 1,
) -> Evaluation:
    """Evaluate explicit (source, driving) pairs with an engine and the copy baseline.

    ``engine``: a name (``copy``, ``geometry``, ``pwm``) or a dict name -> engine object (include ``copy``
    for the baseline). ``threads``: torch intra-op threads during the run (default 1: the per-image work is
    small, and extra threads spin and wait on a shared CPU, measured 10-20 x slower for the geometry engine;
    None keeps torch's setting). Raises ``ValueError`` for a bad protocol or engine (``pwm`` without
    weights) before any heavy work.
    """
    import torch

    from core.fit.api import default_model

    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got '{protocol}'")
    model = model if model is not None else default_model()
    engines = _engines(engine, model, weights) if isinstance(engine, str) else dict(engine)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run(list(pairs), protocol, engines, model, size, progress, inception_weights, analyser)
    finally:
        torch.set_num_threads(before)


def _prepare_pairs(
    pair_list: list[Pair], protocol: str, model, size: int, timings: Timings, progress: bool
) -> tuple[dict[FrameRef, PreparedFrame], set[Clip], list[Pair]]:
    """Crop and fit every frame the pairs use, clip by clip; returns the frames, the clips and the usable pairs
    (both frames with a face)."""
    from tqdm import tqdm

    from core.fit.landmarks import LandmarkDetector

    needed: dict[Clip, set[int]] = {}
    for p in pair_list:
        for ref in (p.source, p.driving):
            needed.setdefault(ref.clip, set()).add(ref.frame)
    crop_mode = "fixed" if protocol == "same-id" else "per_frame"
    prepared: dict[FrameRef, PreparedFrame] = {}
    with LandmarkDetector(video=False) as detector:
        for clip, idx in tqdm(needed.items(), desc="clips", unit="clip", disable=not progress):
            for i, pf in prepare_frames(clip, idx, crop_mode, model, size, detector, timings).items():
                prepared[FrameRef(clip, i)] = pf
    usable = [p for p in pair_list if p.source in prepared and p.driving in prepared]
    if len(usable) < len(pair_list):
        log.warning(
            "%d of %d pairs skipped (frames without a face or beyond the clip's end)",
            len(pair_list) - len(usable),
            len(pair_list),
        )
    return prepared, set(needed), usable


@dataclass
class _PairRunner:
    """Renders each pair with every engine and measures the outputs (engine states of recent sources are
    kept: a source frame is often used by several pairs)."""

    protocol: str
    engines: dict[str, Any]
    analyser: FrameAnalyser
    timings: Timings
    rows: list[dict[str, Any]] = field(default_factory=list)
    embeddings: dict[str, list[np.ndarray]] = field(default_factory=dict)
    reference: dict[FrameRef, np.ndarray] = field(default_factory=dict)
    states: dict[tuple[str, FrameRef], Any] = field(default_factory=dict)

    def output(self, name: str, eng: Any, p: Pair, src: PreparedFrame, target: FaceParams) -> np.ndarray:
        key = (name, p.source)
        with self.timings.span("prepare"):
            if key not in self.states:
                if len(self.states) >= 8:
                    self.states.pop(next(iter(self.states)))
                self.states[key] = eng.prepare(src.image, src.params)
        with self.timings.span("render"):
            return np.ascontiguousarray(eng.render(self.states[key], target).images[0])

    def run(self, p: Pair, src: PreparedFrame, drv: PreparedFrame) -> None:
        an = self.analyser
        src_an = an.analyse(src.image, key=p.source, name=f"{p.source.clip.name}#{p.source.frame}")
        drv_an = an.analyse(drv.image, key=p.driving, name=f"{p.driving.clip.name}#{p.driving.frame}")
        ref_ref, ref_an = (p.driving, drv_an) if self.protocol == "same-id" else (p.source, src_an)
        if ref_an.embedding is not None:
            self.reference[ref_ref] = ref_an.embedding
        target = target_params(src.params, drv.params, self.protocol)
        for name, eng in self.engines.items():
            if name == "copy":
                output, out_an = src.image, src_an
            else:
                output = self.output(name, eng, p, src, target)
                out_an = an.analyse(output, name=f"{name} output of pair {p.index} {p.direction}")
            with self.timings.span("metrics"):
                values, notes = pair_metrics(self.protocol, output, out_an, src_an, drv.image, drv_an)
            if out_an.embedding is not None:
                self.embeddings.setdefault(name, []).append(out_an.embedding)
            self.rows.append(
                {
                    "protocol": self.protocol,
                    "engine": name,
                    "pair": p.index,
                    "direction": p.direction,
                    "source_clip": p.source.clip.name,
                    "source_frame": p.source.frame,
                    "source_identity": p.source.clip.identity,
                    "driving_clip": p.driving.clip.name,
                    "driving_frame": p.driving.frame,
                    "driving_identity": p.driving.clip.identity,
                    **values,
                    "box_output": out_an.box_source,
                    "box_driving": drv_an.box_source,
                    "notes": "; ".join(out_an.notes + notes),
                }
            )


def _run(
    pair_list: list[Pair],
    protocol: str,
    engines: dict[str, Any],
    model,
    size: int,
    progress: bool,
    inception_weights,
    analyser: FrameAnalyser | None,
) -> Evaluation:
    from tqdm import tqdm

    from core.eval.inception import inception_status
    from core.eval.report import summarise

    timings = analyser.timings if analyser is not None else Timings()
    t_start = time.perf_counter()
    prepared, clips, usable = _prepare_pairs(pair_list, protocol, model, size, timings, progress)
    own_analyser = analyser is None
    runner = _PairRunner(
        protocol,
        engines,
        analyser or FrameAnalyser(model, timings=timings, size=size),
        timings,
        embeddings={name: [] for name in engines},
    )
    try:
        for p in tqdm(usable, desc="pairs", unit="pair", disable=not progress):
            runner.run(p, prepared[p.source], prepared[p.driving])
    finally:
        if own_analyser:
            runner.analyser.close()
    elapsed = time.perf_counter() - t_start
    _, fid_line = inception_status(inception_weights)
    summary = summarise(runner.rows, protocol, list(engines), runner.embeddings, list(runner.reference.values()))
    summary.update(
        engine=next((n for n in engines if n != "copy"), "copy"),
        pairs_requested=len(pair_list),
        pairs_evaluated=len(usable),
        pairs_skipped=len(pair_list) - len(usable),
        clips=len(clips),
        identities=len({c.identity for c in clips}),
        size=size,
        fid_inception=None,
        fid_status=fid_line,
        timings={k: round(v, 3) for k, v in timings.items()},
        seconds=round(elapsed, 2),
        seconds_per_pair=round(elapsed / max(1, len(usable)), 3),
    )
    return Evaluation(runner.rows, summary, timings)
