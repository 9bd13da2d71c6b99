"""``python -m core preprocess VIDEOS_DIR OUT_DIR``: turn talking-head videos into training clips.

Per video: ``core.fit.fit_video`` with one fixed crop for the clip (FOMM-like framing, the head moves in the
crop), every frame cropped at the working size, and the clip written in the layout of ``core.train.dataset``
(JPEG frames, float16 vertices in crop pixels, the fitted parameters, ``meta.json`` last). Properties:

- **resumable**: a clip whose folder has ``meta.json`` is skipped; a clip is written into a temporary folder
  and renamed, so an interrupted run leaves no half clip behind;
- **parallel**: ``--workers K`` processes (spawned; each loads MediaPipe and the face model once);
- **shardable**: ``--shard i/n`` takes every n-th video starting at i of the sorted list, so a cluster array
  job (``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``) splits a VoxCeleb-sized set without
  coordination;
- failures (no face, unreadable file) are logged to ``OUT_DIR/failed.jsonl`` and do not stop the run.

Output path of a video: ``OUT_DIR/<its path relative to VIDEOS_DIR, without extension>`` (VoxCeleb's
``id/video/clip.mp4`` nesting gives the identities used by the sampler).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["VIDEO_EXTENSIONS", "list_videos", "select_shard", "parse_shard", "preprocess_video", "preprocess_dir"]

log = logging.getLogger(__name__)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def list_videos(root: str | Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"videos folder {root} does not exist")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard expects i/n (e.g. 3/16), got '{text}'") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text}: need 0 <= i < n")
    return i, n


def select_shard(items: list[Path], shard: tuple[int, int]) -> list[Path]:
    i, n = shard
    return items[i::n]


def clip_dir(video: Path, videos_root: Path, out_root: Path) -> Path:
    return out_root / video.relative_to(videos_root).with_suffix("")


_MODEL = None


def _model():
    global _MODEL
    if _MODEL is None:
        from core.face import load_face_model

        _MODEL = load_face_model("ict")
    return _MODEL


def preprocess_video(
    video: str | Path, out_dir: str | Path, size: int = 256, max_frames: int | None = None
) -> dict[str, Any]:
    """Fit and write one clip; returns a summary (frames, detected fraction, seconds)."""
    from core.fit import fit_video
    from core.io.video import iter_frames
    from core.train.dataset import write_clip

    t0 = time.time()
    fit = fit_video(video, model=_model(), size=size, crop_mode="fixed", max_frames=max_frames, progress=False)
    if len(fit) < 2:
        raise ValueError(f"{video}: fewer than 2 frames")
    # second decoding pass: each frame is cropped and written as it comes (memory independent of length)
    crops = (fit.crop_frame(f, t) for t, f in enumerate(iter_frames(video, len(fit))))
    arrays = dict(fit.params.to_numpy())
    arrays.update(crops=fit.crops, detected=fit.detected)
    meta = {
        "fps": float(fit.fps),
        "face_model": "ict",
        "source": str(video),
        "detected_fraction": float(np.mean(fit.detected)),
    }
    write_clip(out_dir, crops, _vertex_chunks(fit), arrays, meta)
    return {
        "video": str(video),
        "frames": len(fit),
        "detected": meta["detected_fraction"],
        "seconds": round(time.time() - t0, 2),
    }


def _vertex_chunks(fit, chunk: int = 64):
    """The fit's vertices in crop pixels, ``(<=chunk, N, 3)`` numpy arrays in frame order."""
    import torch

    with torch.no_grad():
        for i in range(0, len(fit), chunk):
            yield fit.vertices(slice(i, i + chunk)).numpy()


def _work(job: tuple[str, str, int, int | None]) -> dict[str, Any]:
    video, out, size, max_frames = job
    try:
        import torch

        torch.set_num_threads(1)
        return {"ok": True, **preprocess_video(video, out, size, max_frames)}
    except Exception as exc:  # one bad video must not stop the run
        return {"ok": False, "video": video, "error": f"{type(exc).__name__}: {exc}"}


def preprocess_dir(
    videos_root: str | Path,
    out_root: str | Path,
    size: int = 256,
    shard: str | None = None,
    workers: int = 1,
    max_frames: int | None = None,
    progress: bool = True,
) -> dict[str, int]:
    """Preprocess every video of this shard that is not done yet; returns counts (done, skipped, failed)."""
    videos_root, out_root = Path(videos_root), Path(out_root)
    videos = select_shard(list_videos(videos_root), parse_shard(shard))
    todo, skipped = [], 0
    for v in videos:
        out = clip_dir(v, videos_root, out_root)
        if (out / "meta.json").is_file():
            skipped += 1
        else:
            todo.append((str(v), str(out), size, max_frames))
    out_root.mkdir(parents=True, exist_ok=True)
    log.info(
        "preprocess: %d videos in this shard, %d already done, %d to do, %d worker(s)",
        len(videos),
        skipped,
        len(todo),
        workers,
    )
    counts = {"done": 0, "skipped": skipped, "failed": 0}
    if workers > 1 and len(todo) > 1:
        import multiprocessing as mp

        pool = mp.get_context("spawn").Pool(workers)
        results = pool.imap_unordered(_work, todo)
    else:
        pool, results = None, map(_work, todo)
    try:
        from tqdm import tqdm

        for r in tqdm(results, total=len(todo), disable=not progress, desc="preprocess"):
            if r["ok"]:
                counts["done"] += 1
            else:
                counts["failed"] += 1
                log.warning("failed: %s: %s", r["video"], r["error"])
                with open(out_root / "failed.jsonl", "a") as f:
                    f.write(json.dumps({**r, "pid": os.getpid(), "time": time.time()}) + "\n")
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return counts
