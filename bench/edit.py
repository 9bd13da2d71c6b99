"""Slider-edit latency of the geometry engine (the fit is cached, as in the studio's slider loop).

    python bench/edit.py [PORTRAIT]

Prints median and 90th-percentile milliseconds per edit at 256 and 512 px, for the crop and for the
full-resolution photo, with the ratio to the targets (150 ms at 256, 400 ms at 512).
"""

from __future__ import annotations

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

TARGET_MS = {256: 150.0, 512: 400.0}


def timed(fn, repeats: int) -> np.ndarray:
    out = []
    for i in range(repeats):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000.0)
    return np.asarray(out)


def main() -> int:
    portrait = Path(sys.argv[1]) if len(sys.argv) > 1 else samples_dir() / "images" / "assets__examples__source__s1.jpg"
    model = load_face_model("ict")
    print(f"torch threads: {torch.get_num_threads()}, portrait: {portrait.name}")
    print("| size | output | median ms | p90 ms | target ms | median / target |")
    print("|---|---|---|---|---|---|")
    for size in (256, 512):
        anim = Animator(model=model, size=size)
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
            target = TARGET_MS[size] if not full else float("nan")
            ratio = f"{med / target:.2f}" if not full else "-"
            print(
                f"| {size} | {'full photo' if full else 'crop'} | {med:.1f} | {np.percentile(ms, 90):.1f} | "
                f"{'-' if full else f'{target:.0f}'} | {ratio} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
