"""Live webcam puppeteering speed: a recorded clip fed frame by frame through the studio's streaming
function (``studio.webcam_tab.process``, the one the Webcam tab calls for every webcam frame).

    python bench/live.py [--frames 60] [--clip PATH] [--portrait PATH] [--side 640]

Frames are scaled to ``--side`` px wide (a webcam's size) first. Prints frames per second end to end
(server side: detection, fit, render, encode of the output as the tab's JPEG), per-frame latency median
and p90, the split between parts, and the ratios to the aim (10 fps at 256 px on 2 cores, i.e. 100 ms).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import devsamples  # noqa: F401  (GDPW_SAMPLES: the development samples by default)
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.animator import Animator  # noqa: E402
from core.assets import samples_dir  # noqa: E402
from core.io.video import iter_frames  # noqa: E402
from core.live import LiveDriver  # noqa: E402
from studio.webcam_tab import process  # noqa: E402

AIM_FPS = 10.0
CLIP = "videos/samples__source_video__video__Obama_clip1.mp4"
PORTRAIT = "images/samples__source_video__image__KristiNoem.png"


def webcam_frames(path: Path, count: int, side: int) -> list[np.ndarray]:
    import cv2

    out = []
    for f in iter_frames(path, count):
        h, w = f.shape[:2]
        out.append(cv2.resize(f, (side, round(h * side / w)), interpolation=cv2.INTER_AREA))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--clip", type=Path, default=None)
    ap.add_argument("--portrait", type=Path, default=None)
    ap.add_argument("--side", type=int, default=640)
    args = ap.parse_args()
    root = samples_dir()
    clip = args.clip or root / CLIP
    portrait = args.portrait or root / PORTRAIT
    anim = Animator()
    anim.load_source(portrait)
    driver = LiveDriver(anim)
    frames = webcam_frames(clip, args.frames + 5, args.side)
    from PIL import Image

    for f in frames[:5]:  # warm-up (the first frame fits the identity)
        process(driver, f)
    latency, parts = [], {}
    t_all = time.perf_counter()
    for f in frames[5:]:
        t0 = time.perf_counter()
        image, _ = process(driver, f)
        Image.fromarray(image).save(io.BytesIO(), format="JPEG", quality=90)  # what the tab sends back
        latency.append(1e3 * (time.perf_counter() - t0))
        for k, v in driver.last_ms.items():
            parts.setdefault(k, []).append(v)
    total = time.perf_counter() - t_all
    lat = np.asarray(latency)
    fps = len(lat) / total
    med, p90 = float(np.median(lat)), float(np.percentile(lat, 90))
    print(
        f"torch threads: {torch.get_num_threads()}, cpus: {os.cpu_count()}, load: "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; {len(lat)} frames of {clip.name} at "
        f"{frames[0].shape[1]}x{frames[0].shape[0]} driving {portrait.name} at {anim.size} px"
    )
    print("| figure | value | aim | ratio (value / aim) |")
    print("|---|---|---|---|")
    print(f"| fps end to end | {fps:.1f} | {AIM_FPS:g} | {fps / AIM_FPS:.2f} |")
    print(f"| latency median ms | {med:.0f} | {1e3 / AIM_FPS:.0f} | {med / (1e3 / AIM_FPS):.2f} |")
    print(f"| latency p90 ms | {p90:.0f} | {1e3 / AIM_FPS:.0f} | {p90 / (1e3 / AIM_FPS):.2f} |")
    for k, v in parts.items():
        print(f"| {k} median ms | {np.median(v):.0f} | | |")
    driver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
