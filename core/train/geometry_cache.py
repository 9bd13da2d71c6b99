"""Precomputed geometry-engine results for training a ``geometry_init`` PWM model.

A geometry-initialised generator (``GeneratorConfig.geometry_init``) takes the training-free geometry engine's
complete flow and image for every (source, driving) pair. Computing them on the fly costs about 0.3 s to
prepare a source and 0.12 s per target at 256 px on one core, several times the data loading, so each clip
gets a fixed pool of pairs whose results are computed once and stored beside the clip::

    <clip>/geometry/
        pairs.npy    (P, 2) int32 source and driving frame indices
        flow.npy     (P, 2, S, S) float16 complete backward flow (normalised units, core.coords)
        image.npy    (P, S, S, 3) uint8 the geometry engine's image
        cache.json   written last: pairs, sources, seed, size, engine fingerprint, seconds (not
                     meta.json, which marks a clip folder)

The pool: ``sources`` source frames spread over the clip, each driven by ``pairs / sources`` other frames
drawn at random (one ``prepare`` serves several targets). The choice is a pure function of the seed and the
clip's name. The sampler (``core.train.dataset.PairDataset(geometry=True)``) then draws pairs from the pool.

The engine is used only through its public interface (``prepare``, ``render``). The fingerprint is a hash
of the geometry engine's source files: a cache made by another version of the engine is reported (a
warning) and rebuilt with ``rebuild=True`` (``python -m core geometry-cache DATA --rebuild``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CACHE_DIR",
    "GeometryCacheConfig",
    "GeometryCache",
    "engine_fingerprint",
    "plan_pairs",
    "build_clip_cache",
    "build_geometry_cache",
]

log = logging.getLogger(__name__)
CACHE_DIR = "geometry"
CACHE_VERSION = 1
CACHE_META = "cache.json"


@dataclass
class GeometryCacheConfig:
    """``pairs``: cached (source, driving) pairs per clip; ``sources``: distinct source frames among them;
    ``seed``: the pool's seed (with the clip's name)."""

    pairs: int = 32
    sources: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.pairs < 1 or not 1 <= self.sources <= self.pairs:
            raise ValueError(f"need pairs >= sources >= 1, got pairs={self.pairs}, sources={self.sources}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def engine_fingerprint() -> str:
    """Short hash of the geometry engine's source files (geometry, completion, fill, masks and person in
    ``core/engines``)."""
    import core.engines

    h = hashlib.sha1()
    for name in ("geometry.py", "completion.py", "fill.py", "masks.py", "person.py"):
        path = Path(core.engines.__file__).with_name(name)
        h.update(path.read_bytes() if path.is_file() else name.encode())
    return h.hexdigest()[:12]


def plan_pairs(frames: int, config: GeometryCacheConfig, name: str) -> np.ndarray:
    """``(P, 2)`` int32 (source, driving) frame pairs for a clip of ``frames`` frames (>= 2), source != driving,
    grouped by source. Deterministic in ``(config.seed, name)``."""
    if frames < 2:
        raise ValueError(f"a clip needs >= 2 frames for pairs, got {frames}")
    rng = np.random.default_rng([config.seed, zlib.crc32(name.encode())])
    n_src = min(config.sources, frames)
    sources = np.unique(np.linspace(0, frames - 1, n_src).round().astype(int))
    per = np.diff(np.linspace(0, config.pairs, len(sources) + 1).round().astype(int))
    rows = []
    for s, n in zip(sources, per):
        others = np.delete(np.arange(frames), s)
        drv = rng.choice(others, size=int(n), replace=len(others) < n)
        rows += [(int(s), int(d)) for d in drv]
    return np.asarray(rows, dtype=np.int32)


def _clip_params(clip_dir: Path):
    from core.face.params import FaceParams

    with np.load(clip_dir / "params.npz") as z:
        return FaceParams.from_dict({k: z[k] for k in z.files})


def _read_meta(clip_dir: Path) -> dict[str, Any] | None:
    path = clip_dir / CACHE_DIR / CACHE_META
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _is_current(meta: dict[str, Any] | None, config: GeometryCacheConfig, size: int) -> bool:
    return (
        meta is not None
        and meta.get("version") == CACHE_VERSION
        and meta.get("size") == size
        and all(meta.get(k) == v for k, v in config.to_dict().items())
    )


def build_clip_cache(clip, engine, config: GeometryCacheConfig, chunk: int = 8) -> Path:
    """Compute and write the cache of one ``core.train.dataset.Clip`` with ``engine`` (a ``GeometryEngine``).
    Written into a temporary folder and renamed: an interrupted build leaves no partial cache."""
    from core.face.params import FaceParams

    t0 = time.perf_counter()
    params = _clip_params(clip.path)
    pairs = plan_pairs(clip.frames, config, clip.path.name)
    s = clip.size
    tmp = clip.path / f".tmp-{CACHE_DIR}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        flow = np.lib.format.open_memmap(tmp / "flow.npy", mode="w+", dtype=np.float16, shape=(len(pairs), 2, s, s))
        image = np.lib.format.open_memmap(tmp / "image.npy", mode="w+", dtype=np.uint8, shape=(len(pairs), s, s, 3))
        for src in np.unique(pairs[:, 0]):
            rows = np.flatnonzero(pairs[:, 0] == src)
            state = engine.prepare(clip.image(int(src)), params[int(src)])
            for i in range(0, len(rows), chunk):
                part = rows[i : i + chunk]
                target = FaceParams.cat([params[int(d)] for d in pairs[part, 1]])
                result = engine.render(state, target)
                flow[part] = result.flow.numpy().astype(np.float16)
                image[part] = result.images
        flow.flush()
        image.flush()
        del flow, image
        np.save(tmp / "pairs.npy", pairs)
        meta = dict(
            version=CACHE_VERSION,
            size=s,
            engine=engine_fingerprint(),
            seconds=round(time.perf_counter() - t0, 2),
            **config.to_dict(),
        )
        (tmp / CACHE_META).write_text(json.dumps(meta, indent=1))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    final = clip.path / CACHE_DIR
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def build_geometry_cache(
    clips: list, config: GeometryCacheConfig | None = None, rebuild: bool = False, engine=None, progress: bool = False
) -> dict[str, Any]:
    """Build the missing (or, with ``rebuild``, every) cache of ``clips`` (``Clip`` objects); returns counts
    and the seconds spent. Caches of another engine version are kept and reported unless ``rebuild``."""
    config = config or GeometryCacheConfig()
    todo, stale = [], 0
    fingerprint = engine_fingerprint()
    for clip in clips:
        meta = _read_meta(clip.path)
        if rebuild or not _is_current(meta, config, clip.size):
            todo.append(clip)
        elif meta.get("engine") != fingerprint:
            stale += 1
    if stale:
        log.warning(
            "%d geometry cache(s) were made by another version of the geometry engine; "
            "rebuild them with 'python -m core geometry-cache DATA --rebuild'",
            stale,
        )
    t0 = time.perf_counter()
    if todo:
        if engine is None:
            from core.engines.geometry import GeometryEngine
            from core.face import load_face_model

            engine = GeometryEngine(load_face_model("ict"))
        log.info("geometry cache: %d of %d clips to compute (%d pairs each)", len(todo), len(clips), config.pairs)
        from tqdm import tqdm

        with torch.no_grad():
            for clip in tqdm(todo, disable=not progress, desc="geometry cache"):
                build_clip_cache(clip, engine, config)
    return {"built": len(todo), "kept": len(clips) - len(todo), "stale": stale, "seconds": time.perf_counter() - t0}


class GeometryCache:
    """Reader of one clip's cache: ``pairs (P, 2)`` and ``read(k)`` -> flow ``(2, S, S)`` float32 and image
    ``(3, S, S)`` float in [0, 1] (memory-mapped, so a read touches one pair)."""

    def __init__(self, clip_dir: str | Path) -> None:
        folder = Path(clip_dir) / CACHE_DIR
        meta = _read_meta(Path(clip_dir))
        if meta is None:
            raise FileNotFoundError(
                f"{clip_dir} has no geometry cache ({folder}/{CACHE_META}); build it with "
                f"'python -m core geometry-cache DATA_DIR' (the trainer builds missing ones itself)"
            )
        self.meta = meta
        self.pairs = np.load(folder / "pairs.npy")
        self.folder = folder

    def __len__(self) -> int:
        return len(self.pairs)

    def read(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        flow = np.load(self.folder / "flow.npy", mmap_mode="r")[k].astype(np.float32)
        image = np.array(np.load(self.folder / "image.npy", mmap_mode="r")[k])  # a writable copy
        img = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0
        return torch.from_numpy(flow), img
