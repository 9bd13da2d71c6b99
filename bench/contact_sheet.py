"""Contact sheet of small and large edits on sample portraits, per engine, for looking at with one's own eyes.

    python bench/contact_sheet.py [--engine geometry,pwm] [--large] [--out contact_sheet.png] [PORTRAIT ...]

Rows: portraits (one per engine); columns: source crop, then yaw +-20, jawOpen 0.5, gaze, blink (or, with
``--large``, the large edits of ``python -m core contact-sheet``). A thin wrapper over
``core.eval.contact_sheet`` with the development samples as default portraits.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import devsamples  # noqa: F401  (GDPW_SAMPLES: the development samples by default)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.assets import samples_dir  # noqa: E402
from core.eval.contact_sheet import LARGE_EDITS, contact_sheet  # noqa: E402
from core.eval.edits import EditCase  # noqa: E402
from core.io.image import save_image  # noqa: E402

PORTRAITS = [
    "assets__examples__source__s1.jpg",
    "assets__examples__source__s11.jpg",
    "assets__examples__source__s2.jpg",
    "samples__source_video__image__Obama_clip1.png",
    "examples__knn_examples__train__rose_leslie__img1.jpg",
]
SMALL_EDITS = (
    EditCase("yaw+20", {"yaw": 20.0}, offset=True),
    EditCase("yaw-20", {"yaw": -20.0}, offset=True),
    EditCase("jawOpen 0.5", {"jawOpen": 0.5}),
    EditCase("gaze", {"gaze_yaw": 20.0, "gaze_pitch": -10.0}),
    EditCase("blink 1", {"blink": 1.0}),
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("portraits", nargs="*")
    ap.add_argument("--engine", default="geometry", help="engines separated by commas")
    ap.add_argument("--large", action="store_true", help="the large edits instead of the small ones")
    ap.add_argument("--out", default="contact_sheet.png")
    args = ap.parse_args()
    paths = [Path(p) for p in args.portraits] or [samples_dir() / "images" / p for p in PORTRAITS]
    engines = [e.strip() for e in args.engine.split(",") if e.strip()]
    sheet = contact_sheet(paths, engines, LARGE_EDITS if args.large else SMALL_EDITS)
    save_image(args.out, sheet)
    print(f"wrote {args.out}: {len(paths)} portraits, engines {', '.join(engines)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
