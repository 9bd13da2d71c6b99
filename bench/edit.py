"""Slider-edit latency of an engine (the fit is cached, as in the studio's slider loop).

    python bench/edit.py [PORTRAIT] [--engine geometry|pwm] [--weights DIR]

Prints median and 90th-percentile milliseconds per edit at 256 and 512 px, for the crop and for the
full-resolution photo, with the ratio to the targets: geometry 150 ms at 256 and 400 ms at 512; the learned
``pwm`` engine (which runs the geometry engine too) 300 ms at 256 (issue #12), 512 reported only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import devsamples  # noqa: F401  (GDPW_SAMPLES: the development samples by default)
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.animator import Animator  # noqa: E402
from core.assets import samples_dir  # noqa: E402
from core.face import load_face_model  # noqa: E402

TARGET_MS = {"geometry": {256: 150.0, 512: 400.0}, "pwm": {256: 300.0}}


def timed(fn, repeats: int) -> np.ndarray:
    out = []
    for i in range(repeats):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000.0)
    return np.asarray(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("portrait", nargs="?", type=Path)
    ap.add_argument("--engine", default="geometry", choices=["geometry", "pwm"])
    ap.add_argument("--weights", type=Path, help="pwm weights (default: the engine's search order, weights/ first)")
    args = ap.parse_args()
    portrait = args.portrait or samples_dir() / "images" / "assets__examples__source__s1.jpg"
    model = load_face_model("ict")
    targets = TARGET_MS[args.engine]
    print(f"engine: {args.engine}, torch threads: {torch.get_num_threads()}, portrait: {portrait.name}")
    print("| size | output | median ms | p90 ms | target ms | median / target |")
    print("|---|---|---|---|---|---|")
    for size in (256, 512):
        anim = Animator(engine=args.engine, model=model, size=size, weights=args.weights)
        anim.load_source(portrait)
        anim.render({"yaw": 1.0})  # warm-up
        for full in (False, True):
            ms = timed(
                lambda i, anim=anim, full=full: anim.render(
                    {"yaw": -20 + 2 * (i % 20), "jawOpen": 0.02 * (i % 20)}, full_resolution=full
                ),
                20,
            )
            med = float(np.median(ms))
            target = None if full else targets.get(size)  # full resolution and pwm at 512: reported only
            print(
                f"| {size} | {'full photo' if full else 'crop'} | {med:.1f} | {np.percentile(ms, 90):.1f} | "
                f"{'-' if target is None else f'{target:.0f}'} | {'-' if target is None else f'{med / target:.2f}'} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
