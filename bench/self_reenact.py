"""Self-reenactment check of the geometry engine against the copy-the-source baseline.

For each clip: frame 0 is the source; later frames drive it (their fitted pose and expression, in the
clip's fixed crop) and are also the ground truth. Reports mean L1 (RGB in [0, 1]) and the mean distance of
MediaPipe's 478 landmarks (pixels of the 256 crop) for the engine and for copying the source.

    python bench/self_reenact.py [--frames 120] [--step 10] [CLIP ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.assets import samples_dir  # noqa: E402
from core.engines.geometry import GeometryEngine  # noqa: E402
from core.face import load_face_model  # noqa: E402
from core.fit import fit_video  # noqa: E402
from core.fit.crop import warp_image  # noqa: E402
from core.fit.landmarks import LandmarkDetector, NoFaceError, detect_landmarks  # noqa: E402
from core.io.video import read_video  # noqa: E402

DEFAULT_CLIPS = [
    "samples__source_video__video__KristiNoem.mp4",
    "samples__source_video__video__Obama_clip1.mp4",
    "samples__source_video__video__andrew_clip_1.mp4",
    "samples__source_video__video__feifeili_clip1.mp4",
    "samples__source_video__video__reagan_clip1.mp4",
    "assets__examples__driving__d3.mp4",
]


def landmark_distance(detector: LandmarkDetector, a: np.ndarray, b: np.ndarray) -> float:
    try:
        pa = detect_landmarks(a, "output", detector).points[:, :2]
        pb = detect_landmarks(b, "truth", detector).points[:, :2]
    except NoFaceError:
        return float("nan")
    return float(np.linalg.norm(pa - pb, axis=1).mean())


def evaluate_clip(path: Path, model, engine: GeometryEngine, detector: LandmarkDetector, frames_max: int,
                  step: int) -> dict[str, float]:
    frames, _ = read_video(path, max_frames=frames_max)
    fit = fit_video(frames, model=model, crop_mode="fixed", progress=False)
    crops = [warp_image(f, fit.crops[k], fit.size) for k, f in enumerate(frames)]
    state = engine.prepare(crops[0], fit.params[0])
    ids = list(range(step, len(frames), step))
    rows = {"l1_geometry": [], "l1_copy": [], "lmk_geometry": [], "lmk_copy": []}
    for start in range(0, len(ids), 8):
        chunk = ids[start:start + 8]
        from core.face import FaceParams

        out = engine.render(state, FaceParams.cat([fit.params[k] for k in chunk])).images
        for img, k in zip(out, chunk):
            truth = crops[k]
            rows["l1_geometry"].append(np.abs(img / 255.0 - truth / 255.0).mean())
            rows["l1_copy"].append(np.abs(crops[0] / 255.0 - truth / 255.0).mean())
            rows["lmk_geometry"].append(landmark_distance(detector, img, truth))
            rows["lmk_copy"].append(landmark_distance(detector, crops[0], truth))
    return {k: float(np.nanmean(v)) for k, v in rows.items()} | {"pairs": len(ids)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="*")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--step", type=int, default=10)
    args = ap.parse_args()
    root = samples_dir()
    if root is None and not args.clips:
        print("sample clips absent: pass clip paths")
        return 1
    clips = [Path(c) for c in args.clips] or [root / "videos" / c for c in DEFAULT_CLIPS]
    model = load_face_model("ict")
    engine = GeometryEngine(model)
    detector = LandmarkDetector(video=False)
    print("| clip | pairs | L1 geometry | L1 copy | landmarks geometry (px) | landmarks copy (px) |")
    print("|---|---|---|---|---|---|")
    results = []
    for clip in clips:
        r = evaluate_clip(clip, model, engine, detector, args.frames, args.step)
        results.append(r)
        print(f"| {clip.stem} | {r['pairs']} | {r['l1_geometry']:.4f} | {r['l1_copy']:.4f} | "
              f"{r['lmk_geometry']:.2f} | {r['lmk_copy']:.2f} |", flush=True)
    mean = {k: float(np.mean([r[k] for r in results])) for k in results[0] if k != "pairs"}
    print(f"| **mean** | {sum(r['pairs'] for r in results)} | {mean['l1_geometry']:.4f} | {mean['l1_copy']:.4f} | "
          f"{mean['lmk_geometry']:.2f} | {mean['lmk_copy']:.2f} |")
    print(f"\nratio geometry/copy: L1 {mean['l1_geometry'] / mean['l1_copy']:.2f}, "
          f"landmarks {mean['lmk_geometry'] / mean['lmk_copy']:.2f}")
    detector.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
