"""Which face: click a face on the source photo to edit it instead of the largest one.

The click position (``gr.SelectData.index``, pixels of the photo as shown, which may be a smaller
preview) is mapped to the original, the faces are detected (``core.fit.api.face_boxes``, largest first)
and the one under the click (else the nearest) is fitted and loaded like a new portrait. API:
``/pick_face`` (x, y in the original photo's pixels) for clients and tests. ``face_at`` and ``draw_faces``
(numbered boxes) serve the Video tab's choice of face too.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr
import numpy as np

log = logging.getLogger(__name__)


def face_at(boxes: list[tuple[float, float, float, float]], x: float, y: float) -> int:
    """Index of the box containing (x, y), else of the box whose centre is nearest; -1 without boxes."""
    if not boxes:
        return -1
    inside = [i for i, (x0, y0, x1, y1) in enumerate(boxes) if x0 <= x <= x1 and y0 <= y <= y1]
    if inside:
        return min(inside, key=lambda i: (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1]))
    centres = np.array([((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in boxes])
    return int(np.argmin(np.hypot(centres[:, 0] - x, centres[:, 1] - y)))


def draw_faces(image: np.ndarray, boxes: list[tuple[float, float, float, float]], chosen: int) -> np.ndarray:
    """A copy of ``image (H, W, 3)`` uint8 with every face box outlined and numbered 1, 2, ... (by size, as
    ``face_boxes`` orders them); box ``chosen`` (0-based) is drawn thicker in yellow, the others in white."""
    import cv2

    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 300))
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        colour, t = ((255, 220, 0), 2 * thick) if i == chosen else ((255, 255, 255), thick)
        p0, p1 = (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1)))
        cv2.rectangle(out, p0, p1, colour, t)
        scale = max(0.5, (y1 - y0) / 160)
        label = (p0[0] + t, max(int(24 * scale), p0[1] - t - 2))
        cv2.putText(out, str(i + 1), label, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), t + 2, cv2.LINE_AA)
        cv2.putText(out, str(i + 1), label, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, t, cv2.LINE_AA)
    return out


class FacePicker:
    """Wires the source photo's select (click) event of ``studio`` (a ``studio.app.Studio``)."""

    def __init__(self, studio: Any) -> None:
        self.studio = studio

    def build(self) -> None:
        self.x = gr.Number(visible=False)
        self.y = gr.Number(visible=False)
        self.button = gr.Button(visible=False)

    def pick(self, x: float, y: float, request: gr.Request) -> dict:
        """Load the face nearest to (x, y) (original pixels) of the session's photo."""
        from core.fit.api import face_boxes

        st = self.studio
        s = st.session_for(request)
        st.ensure_source(s)
        boxes = face_boxes(s.image if s.image is not None else s.source.original)
        if len(boxes) < 2:
            return {st.status: "Only one face in this photo."}
        face = face_at(boxes, float(x), float(y))
        info = s.load(s.image, s.label, face=face)
        return st.load_update(s, info, note=f"Editing face {face + 1} of {len(boxes)} (by size).")

    def on_select(self, evt: gr.SelectData, request: gr.Request) -> dict:
        s = self.studio.session_for(request)
        if not s.loaded or evt.index is None:
            return {self.studio.status: gr.skip()}
        shown_w = s.preview.shape[1] if s.preview is not None else s.source.original.shape[1]
        scale = s.source.original.shape[1] / shown_w
        x, y = evt.index[:2]
        return self.pick(x * scale, y * scale, request)

    def wire(self) -> None:
        st = self.studio
        guard = st.guard(lambda: st.status)
        st.source_img.select(
            guard(self.on_select),
            outputs=st.load_outputs,
            api_visibility="private",
            show_progress="minimal",
            show_progress_on=[st.result_img],
            concurrency_id="fit",
            concurrency_limit=1,
        )
        self.button.click(
            guard(self.pick),
            inputs=[self.x, self.y],
            outputs=st.load_outputs,
            api_name="pick_face",
            concurrency_id="fit",
            concurrency_limit=1,
        )
