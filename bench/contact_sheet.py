"""Contact sheet of geometry-engine edits on sample portraits, for looking at with one's own eyes.

    python bench/contact_sheet.py [--out contact_sheet.png] [PORTRAIT ...]

Rows: portraits; columns: source crop, yaw +20, yaw -20, jawOpen 0.5, gaze yaw +20 / pitch -10, blink.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import devsamples  # noqa: F401  (GDPW_SAMPLES: the development samples by default)
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.animator import Animator  # noqa: E402
from core.assets import samples_dir  # noqa: E402
from core.io.image import save_image  # noqa: E402

PORTRAITS = [
    "assets__examples__source__s1.jpg",
    "assets__examples__source__s11.jpg",
    "assets__examples__source__s2.jpg",
    "samples__source_video__image__Obama_clip1.png",
    "examples__knn_examples__train__rose_leslie__img1.jpg",
]
EDITS = [{}, {"yaw": 20}, {"yaw": -20}, {"jawOpen": 0.5}, {"gaze_yaw": 20, "gaze_pitch": -10}, {"blink": 1.0}]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("portraits", nargs="*")
    ap.add_argument("--out", default="contact_sheet.png")
    args = ap.parse_args()
    root = samples_dir()
    paths = [Path(p) for p in args.portraits] or [root / "images" / p for p in PORTRAITS]
    anim = Animator()
    rows = []
    for path in paths:
        try:
            anim.load_source(path)
        except ValueError as exc:
            print(f"skipped {path.name}: {exc}")
            continue
        rows.append(np.concatenate([anim.render(e) for e in EDITS], axis=1))
        print(f"{path.name}: yaw {anim.source.fit.quality['yaw']:.1f}")
    save_image(args.out, np.concatenate(rows, axis=0))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
