"""Video edit speed and jitter on the sample clips.

    python bench/video_edit.py [--clips 2] [--frames 40] [--no-720p] [--no-jitter] [--workers N]

For each clip (its first ``--frames`` frames), an offset edit (smile +0.4, yaw +8) is run:
- at 256 px crop output: pass 2 (read, crop, prepare, render, encode) frames per second, against the aim
  of 8 fps;
- at 720p full resolution (the clip upscaled onto a 1280 x 720 canvas): frames per second (reported);
- jitter: mean frame-to-frame landmark acceleration (``core.edits.jitter``) of the input and of the
  full-resolution output, and their ratio (aim: <= 1, the edit adds no jitter);
- with ``--still-control``, how much of that is MediaPipe's own: the clip's first frame moved smoothly
  (sub-pixel sinusoidal shifts) as a clip of its own, edited by the pipeline, against the same frame edited
  once and then moved the same way (no per-frame fit or render: what the detector alone makes of the edited
  face).
The fit (pass 1) is timed separately; a 3-frame edit first warms the detectors up, untimed. Torch threads
and the machine's load are printed with the figures: on a shared 2-core machine the numbers move with the
neighbours' load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import devsamples  # noqa: F401  (GDPW_SAMPLES: the development samples by default)
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.animator import Animator  # noqa: E402
from core.assets import samples_dir  # noqa: E402
from core.edits import EditPlan  # noqa: E402
from core.edits.jitter import landmark_jitter, landmark_tracks  # noqa: E402
from core.edits.video import edit_video  # noqa: E402
from core.face import load_face_model  # noqa: E402
from core.io.video import iter_frames, write_video  # noqa: E402

AIM_CROP_FPS = 8.0
CLIPS = [
    "samples__source_video__video__KristiNoem.mp4",
    "samples__source_video__video__Obama_clip1.mp4",
    "samples__source_video__video__feifeili_clip1.mp4",
    "samples__source_video__video__andrew_clip_1.mp4",
]


def to_720p(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Each frame scaled to 720 px high and centred on a 1280 x 720 grey canvas."""
    import cv2

    out = []
    for f in frames:
        h, w = f.shape[:2]
        big = cv2.resize(f, (round(w * 720 / h), 720), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((720, 1280, 3), 110, np.uint8)
        x0 = (1280 - big.shape[1]) // 2
        canvas[:, x0 : x0 + big.shape[1]] = big[:, :1280]
        out.append(canvas)
    return out


def run(
    model, engine, path: Path, plan: EditPlan, crop: bool, tmp: Path, workers: int | None = None
) -> tuple[dict, Path]:
    out = tmp / f"{path.stem}-{'crop' if crop else 'full'}.mp4"
    result = edit_video(model, engine, path, plan, out=out, full_resolution=not crop, progress=False, workers=workers)
    return result.summary(), out


def warm_up(model, engine, plan: EditPlan, tmp: Path) -> None:
    """Edit 3 frames once, untimed: the first edit builds the detectors and the segmenter (about a second),
    which would otherwise be charged to the first clip's fps."""
    frames = list(iter_frames(samples_dir() / "videos" / CLIPS[0], 3))
    edit_video(
        model, engine, write_video(tmp / "warm-up.mp4", frames, 30.0), plan, full_resolution=False, progress=False
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=2)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--no-720p", action="store_true")
    ap.add_argument("--no-jitter", action="store_true")
    ap.add_argument("--workers", type=int, help="frames edited at once (default: one per core, at most 4)")
    ap.add_argument("--still-control", action="store_true", help="also the moved-still jitter control")
    args = ap.parse_args()
    model = load_face_model("ict")
    engine = Animator(engine="geometry", model=model).engine
    plan = EditPlan.build(model, {"smile": 0.4, "yaw": 8.0}, mode="offset")
    print(
        f"torch threads: {torch.get_num_threads()}, cpus: {os.cpu_count()}, load: "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, frames per clip: {args.frames}"
    )
    print("| clip | output | fit s | edit fps | aim fps | ratio | jitter in px | jitter out px | out / in |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        warm_up(model, engine, plan, tmp)
        for name in CLIPS[: args.clips]:
            frames = list(iter_frames(samples_dir() / "videos" / name, args.frames))
            short = write_video(tmp / name, frames, 30.0)
            summary, _ = run(model, engine, short, plan, True, tmp, args.workers)
            print(
                f"| {name[28:-4]} | 256 crop | {summary['fit_seconds']:.1f} | {summary['render_fps']:.2f} | "
                f"{AIM_CROP_FPS:g} | {summary['render_fps'] / AIM_CROP_FPS:.2f} | | | |",
                flush=True,
            )
            summary, out = run(model, engine, short, plan, False, tmp, args.workers)
            j_in = j_out = float("nan")
            if not args.no_jitter:
                j_in = landmark_jitter(landmark_tracks(frames))
                j_out = landmark_jitter(landmark_tracks(iter_frames(out)))
            print(
                f"| {name[28:-4]} | full {frames[0].shape[1]}x{frames[0].shape[0]} | {summary['fit_seconds']:.1f} | "
                f"{summary['render_fps']:.2f} | | | {j_in:.3f} | {j_out:.3f} | {j_out / j_in:.2f} |",
                flush=True,
            )
            if not args.no_720p:
                big = write_video(tmp / f"{name}-720p.mp4", to_720p(frames), 30.0)
                summary, _ = run(model, engine, big, plan, False, tmp, args.workers)
                print(
                    f"| {name[28:-4]} | full 1280x720 | {summary['fit_seconds']:.1f} | {summary['render_fps']:.2f} "
                    "| (report) | | | | |",
                    flush=True,
                )
        if args.still_control:
            still_control(model, engine, plan, tmp, args.clips, args.frames)
    return 0


def moved(image: np.ndarray, frames: int) -> list[np.ndarray]:
    """``image`` shifted smoothly by sub-pixel amounts (6 and 3 px sinusoids), one frame per step."""
    import cv2

    h, w = image.shape[:2]
    out = []
    for t in range(frames):
        dx, dy = 6.0 * np.sin(2 * np.pi * t / 75), 3.0 * np.sin(2 * np.pi * t / 50)
        shift = np.float32([[1, 0, dx], [0, 1, dy]])
        out.append(cv2.warpAffine(image, shift, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    return out


def still_control(model, engine, plan: EditPlan, tmp: Path, clips: int, frames: int) -> None:
    """Jitter of a moved still: input, the pipeline's edit of it, and the still edited once then moved."""
    print("\n| clip (first frame, moved) | jitter in px | pipeline px | ratio | edited once, then moved px | ratio |")
    print("|---|---|---|---|---|---|")
    for name in CLIPS[:clips]:
        first = next(iter(iter_frames(samples_dir() / "videos" / name, 1)))
        clip = write_video(tmp / f"{name}-still.mp4", moved(first, frames), 30.0)
        _, out = run(model, engine, clip, plan, False, tmp)
        anim = Animator(engine=engine, model=model)
        anim.load_source(first)
        edited = anim.render(plan.apply(model, anim.source.params, np.zeros(1)), full_resolution=True)
        j_in = landmark_jitter(landmark_tracks(iter_frames(clip)))
        j_out = landmark_jitter(landmark_tracks(iter_frames(out)))
        j_once = landmark_jitter(landmark_tracks(moved(edited, frames)))
        print(
            f"| {name[28:-4]} | {j_in:.3f} | {j_out:.3f} | {j_out / j_in:.2f} | {j_once:.3f} | {j_once / j_in:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    t0 = time.perf_counter()
    code = main()
    print(f"total {time.perf_counter() - t0:.0f} s")
    sys.exit(code)
