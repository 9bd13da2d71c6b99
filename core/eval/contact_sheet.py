"""Contact sheets: every portrait of a set under each large edit, side by side, to look at with one's own eyes.

``contact_sheet(portraits, engines=("geometry",))`` returns one image: a header row naming the edits, then
one row per portrait and engine (the source, then each edit of ``LARGE_EDITS``, as crops or at full
resolution). Pose edits are changes from the portrait's fitted pose, like the edit protocol's
(``core.eval.edits``), so that every portrait turns by the same amount. The command line:
``python -m core contact-sheet PHOTO_OR_DIR ... --engine geometry --out sheet.png``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.eval.edits import EditCase, requested_values

log = logging.getLogger(__name__)

LARGE_EDITS: tuple[EditCase, ...] = (
    EditCase("yaw+30", {"yaw": 30.0}, offset=True),
    EditCase("yaw-30", {"yaw": -30.0}, offset=True),
    EditCase("pitch+20", {"pitch": 20.0}, offset=True),
    EditCase("pitch-20", {"pitch": -20.0}, offset=True),
    EditCase("roll+15", {"roll": 15.0}, offset=True),
    EditCase("shape000 +3", {"shape000": 3.0}),
    EditCase("jawOpen 0.7", {"jawOpen": 0.7}),
    EditCase("smile 0.9", {"mouthSmile_L": 0.9, "mouthSmile_R": 0.9}),
)
HEADER_PX = 22


def _label(text: str, width: int, height: int = HEADER_PX) -> np.ndarray:
    """A white strip ``(height, width, 3)`` with ``text`` in black."""
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(strip).text((4, 4), text, fill="black")
    return np.asarray(strip)


def _fit_tile(image: np.ndarray, tile: int) -> np.ndarray:
    """``image`` scaled to ``tile`` pixels wide and padded or cut to ``tile`` high (white)."""
    from PIL import Image

    h, w = image.shape[:2]
    scaled = np.asarray(Image.fromarray(image).resize((tile, max(1, round(h * tile / w))), Image.LANCZOS))
    out = np.full((tile, tile, 3), 255, np.uint8)
    n = min(tile, scaled.shape[0])
    out[:n] = scaled[:n]
    return out


def sheet_rows(anim, edits: Sequence[EditCase], full_resolution: bool, tile: int) -> np.ndarray:
    """One row ``(tile, tile * (1 + len(edits)), 3)``: the loaded portrait, then each edit."""
    src = anim.source
    first = src.original if full_resolution else src.fit.crop_image
    tiles = [_fit_tile(first, tile)]
    for case in edits:
        params = anim.model.apply_edits(src.params, requested_values(anim.model, src.params, case))
        tiles.append(_fit_tile(anim.render(params, full_resolution=full_resolution), tile))
    return np.concatenate(tiles, axis=1)


def contact_sheet(
    portraits: Sequence[str | Path],
    engines: Sequence[str] = ("geometry",),
    edits: Sequence[EditCase] = LARGE_EDITS,
    full_resolution: bool = False,
    tile: int = 256,
    model=None,
    weights: str | Path | None = None,
) -> np.ndarray:
    """The sheet as one RGB uint8 image (see the module docstring); portraits without a face are skipped
    with a warning, and if none is left ``ValueError`` says so."""
    from core.animator import Animator
    from core.fit import NoFaceError

    names = ["source", *(c.name for c in edits)]
    rows = [np.concatenate([_label(n, tile) for n in names], axis=1)]
    animators = {e: Animator(engine=e, model=model or "ict", weights=weights) for e in engines}
    for path in portraits:
        for engine, anim in animators.items():
            try:
                anim.load_source(path)
            except (NoFaceError, ValueError) as exc:
                log.warning("%s skipped: %s", Path(path).name, exc)
                break
            rows.append(_label(f"{Path(path).name} - {engine}", tile * len(names), 16))
            rows.append(sheet_rows(anim, edits, full_resolution, tile))
    if len(rows) == 1:
        raise ValueError("no portrait with a face to show")
    return np.concatenate(rows, axis=0)
