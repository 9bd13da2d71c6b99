"""Time per evaluated frame of the evaluation harness on this CPU, with a breakdown.

Runs ``core.eval.evaluate`` (geometry engine and the copy baseline) on a handful of sample clips and reports
the wall time per evaluated pair (one engine output frame, plus the copy row, which costs no rendering) split
into rendering (engine prepare + render), dlib (68 landmarks + embedding), fitting (MediaPipe + ICT fit of the
clips' frames and of every analysed image), decoding and the rest. Setup (face model, dlib and MediaPipe
models) is timed separately. The CPU may be shared: the load average is printed beside the figures.

    python bench/eval.py [--clips DIR] [--protocol same-id] [--pairs 10] [--max-clips 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import devsamples  # noqa: F401  (GDPW_SAMPLES: the development samples by default)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.assets import samples_dir  # noqa: E402

TARGET_S = 1.5


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=Path, help="folder of clips (default: the samples' videos/)")
    ap.add_argument("--protocol", default="same-id", choices=["same-id", "cross-id"])
    ap.add_argument("--engine", default="geometry", choices=["geometry", "pwm"])
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--max-clips", type=int, default=5)
    ap.add_argument("--frames-per-clip", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    clips = args.clips
    if clips is None:
        root = samples_dir()
        if root is None:
            print("sample clips absent: pass --clips DIR")
            return 1
        clips = root / "videos"

    import torch

    from core.eval import FrameAnalyser, Timings, evaluate, markdown_table
    from core.fit.api import default_model

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    model = default_model()
    timings = Timings()
    analyser = FrameAnalyser(model, timings=timings)
    setup = time.perf_counter() - t0
    load0 = os.getloadavg()[0]
    t1 = time.perf_counter()
    try:
        result = evaluate(
            clips,
            protocol=args.protocol,
            engine=args.engine,
            pairs=args.pairs,
            seed=args.seed,
            frames_per_clip=args.frames_per_clip,
            max_clips=args.max_clips,
            model=model,
            progress=False,
            analyser=analyser,
        )
    finally:
        analyser.close()
    wall = time.perf_counter() - t1
    s = result.summary
    n = max(1, s["pairs_evaluated"])
    t = dict(timings)
    groups = {
        "rendering (engine prepare + render)": t.get("prepare", 0.0) + t.get("render", 0.0),
        "dlib (68 landmarks + embedding)": t.get("dlib", 0.0),
        "fitting (MediaPipe + ICT fit)": t.get("landmarks", 0.0) + t.get("fit", 0.0),
        "decoding and cropping the clips": t.get("decode", 0.0),
        "metrics (L1, PSNR, SSIM, ...)": t.get("metrics", 0.0),
    }
    groups["other (sampling, probing, bookkeeping)"] = max(0.0, wall - sum(groups.values()))
    print(
        f"{s['protocol']}, engine {args.engine}: {s['pairs_evaluated']} pairs from {s['clips']} clips; "
        f"{timings.calls['fit']} images fitted, {timings.calls['dlib']} through dlib, "
        f"{timings.calls['render']} renders; torch threads 1; load average {load0:.1f} -> "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n"
    )
    print("| stage | total s | s per evaluated frame |")
    print("|---|---|---|")
    for name, sec in groups.items():
        print(f"| {name} | {sec:.2f} | {sec / n:.3f} |")
    per = wall / n
    print(f"| **total** | {wall:.2f} | **{per:.3f}** |")
    print(f"\nsetup (face model, dlib, MediaPipe): {setup:.2f} s, once per run")
    print(f"time per evaluated frame: {per:.3f} s ({'within' if per <= TARGET_S else 'ABOVE'} the {TARGET_S} s aim)\n")
    print(markdown_table(s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
