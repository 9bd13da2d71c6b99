"""Self-reenactment check of the geometry engine against the copy-the-source baseline (via ``core.eval``).

For each clip: frame 0 is the source; every ``step``-th later frame (up to ``frames``) drives it and is also
the ground truth. ``core.eval.evaluate_pairs`` does the work with the same-id protocol: the clip's frames in
use share one fixed crop and one fitted identity, each target is its driving frame's fit. Reports per clip
the mean L1 (RGB in [0, 1]) and AKD (dlib's 68 landmarks, pixels of the 256 crop) for the engine and for
copying the source.

    python bench/self_reenact.py [--frames 120] [--step 10] [CLIP ...]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import devsamples  # noqa: F401  (GDPW_SAMPLES: the development samples by default)
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.assets import samples_dir  # noqa: E402
from core.eval import Clip, FrameRef, Pair, evaluate_pairs  # noqa: E402

DEFAULT_CLIPS = [
    "samples__source_video__video__KristiNoem.mp4",
    "samples__source_video__video__Obama_clip1.mp4",
    "samples__source_video__video__andrew_clip_1.mp4",
    "samples__source_video__video__feifeili_clip1.mp4",
    "samples__source_video__video__reagan_clip1.mp4",
    "assets__examples__driving__d3.mp4",
]


def clip_pairs(clip: Clip, frames_max: int, step: int, first_index: int = 0) -> list[Pair]:
    """Frame 0 drives frames ``step, 2 step, ...`` below ``frames_max`` (and below the clip's length)."""
    from core.io.video import probe_video

    n = probe_video(clip.path).n_frames or frames_max
    return [
        Pair(first_index + k, "forward", FrameRef(clip, 0), FrameRef(clip, f))
        for k, f in enumerate(range(step, min(frames_max, n), step))
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="*")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--step", type=int, default=10)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    root = samples_dir()
    if root is None and not args.clips:
        print("sample clips absent: pass clip paths")
        return 1
    paths = [Path(c) for c in args.clips] or [root / "videos" / c for c in DEFAULT_CLIPS]
    pairs: list[Pair] = []
    for path in paths:
        pairs += clip_pairs(Clip(path, path.stem), args.frames, args.step, len(pairs))
    result = evaluate_pairs(pairs, "same-id", "geometry", progress=True)

    print("| clip | pairs | L1 geometry | L1 copy | AKD geometry (px) | AKD copy (px) |")
    print("|---|---|---|---|---|---|")
    means = []
    for path in paths:
        rows = [r for r in result.rows if r["source_clip"] == path.stem]
        if not rows:
            print(f"| {path.stem} | 0 | | | | |")
            continue
        m = {
            f"{k}_{e}": float(np.nanmean([r[k] for r in rows if r["engine"] == e]))
            for k in ("l1", "akd")
            for e in ("geometry", "copy")
        }
        means.append(m)
        print(
            f"| {path.stem} | {len(rows) // 2} | {m['l1_geometry']:.4f} | {m['l1_copy']:.4f} | "
            f"{m['akd_geometry']:.2f} | {m['akd_copy']:.2f} |",
            flush=True,
        )
    mean = {k: float(np.mean([m[k] for m in means])) for k in means[0]}
    print(
        f"| **mean** | {result.summary['pairs_evaluated']} | {mean['l1_geometry']:.4f} | {mean['l1_copy']:.4f} | "
        f"{mean['akd_geometry']:.2f} | {mean['akd_copy']:.2f} |"
    )
    print(
        f"\nratio geometry/copy: L1 {mean['l1_geometry'] / mean['l1_copy']:.2f}, "
        f"AKD {mean['akd_geometry'] / mean['akd_copy']:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
