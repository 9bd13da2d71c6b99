"""The README's before/after strip of a video edit (keyframed smile, eased yaw range), to look at.

    python bench/video_strip.py [--clip PATH] [--out docs/video_edit_strip.png] [--seconds 2.4]

Top row: input frames; bottom row: the same frames edited with ``--keys`` below (offsets on every frame's
own tracked values). The edited clip is also written beside the PNG (``.mp4``) unless ``--no-video``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.animator import Animator  # noqa: E402
from core.assets import samples_dir  # noqa: E402
from core.io.image import save_image  # noqa: E402
from core.io.video import iter_frames, probe_video  # noqa: E402

KEYS = {
    "format": "gdpw-keys/1",
    "mode": "offset",
    "interpolation": "smooth",
    "controls": {
        "smile": [[0.0, 0.0], [1.2, 0.6]],
        "browInnerUp_L": [[0.0, 0.0], [1.2, 0.3]],
        "browInnerUp_R": [[0.0, 0.0], [1.2, 0.3]],
    },
    "ranges": [{"start": 0.4, "end": 2.4, "ease": 0.6, "controls": {"yaw": 9.0}}],
}


def label(tile: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = tile.copy()
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> int:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("docs/video_edit_strip.png"))
    ap.add_argument("--seconds", type=float, default=2.4)
    ap.add_argument("--columns", type=int, default=5)
    ap.add_argument("--tile", type=int, default=160)
    ap.add_argument("--no-video", action="store_true")
    args = ap.parse_args()
    clip = args.clip or samples_dir() / "videos" / "assets__examples__driving__d20.mp4"
    fps = probe_video(clip).fps
    n = round(args.seconds * fps)
    anim = Animator()
    video_out = None if args.no_video else args.out.with_suffix(".mp4")
    result = anim.edit_video(clip, keys=KEYS, max_frames=n, out=video_out)
    edited = list(iter_frames(video_out)) if video_out else result.frames
    frames = list(iter_frames(clip, n))
    picks = np.linspace(0, n - 1, args.columns).round().astype(int)
    rows = []
    for name, source in (("input", frames), ("edited", edited)):
        tiles = [
            label(
                cv2.resize(source[i], (args.tile, args.tile), interpolation=cv2.INTER_AREA), f"{name} {i / fps:.1f} s"
            )
            for i in picks
        ]
        rows.append(np.concatenate(tiles, axis=1))
    save_image(args.out, np.concatenate(rows, axis=0))
    print(json.dumps({"strip": str(args.out), "video": str(video_out) if video_out else None, **result.summary()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
