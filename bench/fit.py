"""Face-fitting speed and stability.

    python bench/fit.py [--frames 150] [--portraits]

1. Per-frame time on a 256-pixel talking-head clip (Obama_clip1, first 150 frames): MediaPipe tracking
   and our fitting separately (the identity fit on 12 frames is reported apart from the per-frame
   tracking), against the 60 ms per frame target; and the time to fit a single photo (target 1.5 s).
2. Jitter: the mean per-frame displacement of the face vertices (ICT face_narrow, crop pixels) with and
   without the one-euro smoothing, on a static-ish clip (MEAD W009, front, neutral) and on Obama_clip1,
   with the second difference (frame-to-frame acceleration: noise, not motion) and the landmark error.
3. ``--portraits``: the per-file landmark error table of every sample portrait.
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

from core.assets import samples_dir  # noqa: E402
from core.face.ict import REGION_RANGES  # noqa: E402
from core.fit import NoFaceError, fit_image, fit_video  # noqa: E402
from core.fit.api import default_model  # noqa: E402
from core.io.image import ImageError  # noqa: E402
from core.io.video import read_video  # noqa: E402

TIMING_CLIP = "samples__source_video__video__Obama_clip1.mp4"
STATIC_CLIP = "data__style_clip__video__W009_front_neutral_level1_001.mp4"
PHOTOS = ["examples__obama2.jpg", "assets__examples__source__s1.jpg", "assets__examples__driving__d12.jpg"]
FRAME_TARGET_MS, PHOTO_TARGET_S = 60.0, 1.5
FACE = slice(REGION_RANGES["face_narrow"][0], REGION_RANGES["face_narrow"][1] + 1)


def jitter(result) -> tuple[float, float]:
    """Mean per-frame displacement and mean second difference of the face vertices (crop pixels)."""
    v = result.vertices()[:, FACE, :2]
    disp = float((v[1:] - v[:-1]).norm(dim=-1).mean())
    acc = float((v[2:] - 2 * v[1:-1] + v[:-2]).norm(dim=-1).mean())
    return disp, acc


def timing(root: Path, n_frames: int, model) -> None:
    frames, info = read_video(root / "videos" / TIMING_CLIP, max_frames=n_frames)
    fit_video(frames[:5], model, fps=info.fps, progress=False)  # warm-up: MediaPipe graph, caches
    result = fit_video(frames, model, fps=info.fps, progress=False)
    q = result.quality
    n = q["frames"]
    rows = [
        ("MediaPipe landmarks (tracking mode)", 1000 * q["detect_s"] / n),
        ("our fit: per-frame tracking", 1000 * q["track_s"] / n),
        ("our fit: identity (12 frames), amortised", 1000 * q["identity_s"] / n),
        ("our fit: all (identity, tracking, smoothing)", 1000 * q["fit_s"] / n),
        ("total per frame", 1000 * (q["detect_s"] + q["fit_s"]) / n),
    ]
    print(
        f"\nVideo fitting speed: {TIMING_CLIP}, {n} frames of {info.size[1]}x{info.size[0]}, "
        f"torch {torch.__version__} on {torch.get_num_threads()} CPU threads available"
    )
    print(f"{'stage':48s} {'ms/frame':>9s} {'target':>7s} {'ratio':>6s}")
    for name, ms in rows:
        target = FRAME_TARGET_MS if name.startswith(("our fit: all", "total")) else None
        ratio = f"{ms / target:6.2f}" if target else ""
        print(f"{name:48s} {ms:9.1f} {target or '':>7} {ratio:>6s}")
    print(f"mean landmark error {100 * q['mean_error']:.2f} % of the inter-ocular distance")
    times = []
    for name in PHOTOS:
        fit = fit_image(root / "images" / name, model)
        times.append((name, fit.quality["detect_s"], fit.quality["fit_s"]))
    print(f"\nSingle photo: {'file':40s} {'MediaPipe s':>11s} {'fit s':>7s} {'target':>7s} {'ratio':>6s}")
    for name, det, fit_s in times:
        print(f"              {name:40s} {det:11.3f} {fit_s:7.3f} {PHOTO_TARGET_S:7.1f} {fit_s / PHOTO_TARGET_S:6.2f}")


def stability(root: Path, n_frames: int, model) -> None:
    print(f"\nJitter: mean per-frame vertex displacement of the face (crop pixels at 256), first {n_frames} frames")
    print(
        f"{'clip':58s} {'frames':>6s} {'smoothing':>9s} {'disp px':>8s} {'ratio':>6s} {'2nd diff':>8s} "
        f"{'ratio':>6s} {'lmk err %':>9s}"
    )
    for clip in (STATIC_CLIP, TIMING_CLIP):
        frames, info = read_video(root / "videos" / clip, max_frames=n_frames)
        base = None
        for smoothing in (False, True):
            result = fit_video(frames, model, fps=info.fps, smoothing=smoothing, progress=False)
            disp, acc = jitter(result)
            base = base or (disp, acc)
            print(
                f"{clip:58s} {len(result):6d} {'on' if smoothing else 'off':>9s} {disp:8.3f} {disp / base[0]:6.2f} "
                f"{acc:8.3f} {acc / base[1]:6.2f} {100 * result.quality['mean_error']:9.2f}"
            )


def portraits(root: Path, model) -> None:
    print("\nSample portraits: median landmark error / inter-ocular distance (target < 1.5 %)")
    errors = []
    for path in sorted((root / "images").iterdir()):
        try:
            q = fit_image(path, model).quality
        except (NoFaceError, ImageError) as exc:
            print(f"{path.name:58s} FAILED: {exc}")
            continue
        note = "" if q["faces_found"] == 1 else f"  ({q['faces_found']} faces: not counted)"
        if q["faces_found"] == 1:
            errors.append(q["landmark_error"])
        print(
            f"{path.name:58s} {100 * q['landmark_error']:5.2f} %  yaw {q['yaw']:6.1f} pitch {q['pitch']:6.1f} "
            f"roll {q['roll']:6.1f}{note}"
        )
    e = np.array(errors)
    print(
        f"{len(e)} one-face portraits: median {100 * np.median(e):.2f} %, max {100 * e.max():.2f} %, "
        f"{int((e >= 0.015).sum())} at or above 1.5 %"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--portraits", action="store_true", help="also print the per-portrait error table")
    args = ap.parse_args()
    root = samples_dir()
    if root is None:
        print("sample media absent (../shared/samples or $GDPW_SAMPLES): nothing to measure")
        return 1
    t = time.perf_counter()
    model = default_model()
    print(f"ICT model loaded in {time.perf_counter() - t:.1f} s")
    timing(root, args.frames, model)
    stability(root, args.frames, model)
    if args.portraits:
        portraits(root, model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
