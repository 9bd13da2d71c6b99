"""The studio's Video tab: edit every frame of a clip (``Animator.edit_video``).

A clip (upload or example), offset sliders (added to each frame's own fitted values), an optional
preset, a small keyframe table (control, time, value, interpolation) and/or an uploaded ``keys.json``,
a preview of the first frame (before | after) and the full render with progress and a download.

Which face: when a clip is chosen its first frame is shown with every face boxed and numbered by size
(1 = the largest); a click on a face (on either half of the before | after preview too) or its number in
*Face to edit* chooses it, the chosen box is highlighted, and preview and render edit that face (tracked
from where it is in the first frame; frames where it is lost pass through unchanged).

API names: ``/video_preview`` and ``/video_render`` (inputs: clip, preset, keys file, keyframe rows, seconds,
the offsets in ``VideoTab.names`` order, then the face number, 1 by default), ``/video_pick_face`` (clip,
x, y in the first frame's pixels: the annotated first frame, the chosen face number and a status line).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from core.edits import EditPlan, PresetError, load_keyframes, shipped_names
from studio.face_picker import draw_faces, face_at

log = logging.getLogger(__name__)

NO_CLIP = "Choose a video first (upload one or pick an example), then click a face on its first frame."

# The controls offered as offsets (those the model has), with their slider half-ranges.
OFFSET_CONTROLS = (
    "yaw",
    "pitch",
    "roll",
    "gaze_yaw",
    "gaze_pitch",
    "blink",
    "smile",
    "jawOpen",
    "mouthFrown_L",
    "mouthFrown_R",
    "browInnerUp_L",
    "browInnerUp_R",
    "eyeWide_L",
    "eyeWide_R",
)
KEY_COLUMNS = ["control", "time_s", "value", "interpolation"]
NO_PRESET = "(none)"


def rows_to_keys(rows: Any) -> dict | None:
    """The keyframe table (rows of control, time_s, value, interpolation) as ``gdpw-keys/1`` offsets; empty
    rows are skipped, each control's keys sorted by time. None when the table is empty."""
    if rows is None:
        return None
    values = rows.values.tolist() if hasattr(rows, "values") else list(rows)
    controls: dict[str, dict] = {}
    for i, row in enumerate(values):
        row = list(row) + [None] * (4 - len(row))
        name = str(row[0] or "").strip()
        if not name:
            continue
        try:
            t, v = float(row[1]), float(row[2])
        except (TypeError, ValueError):
            raise PresetError(
                f"keyframe row {i + 1} ({name}): time and value must be numbers, got {row[1]!r}, {row[2]!r}"
            ) from None
        entry = controls.setdefault(name, {"interpolation": str(row[3] or "smooth").strip(), "keys": []})
        entry["keys"].append([t, v])
    for entry in controls.values():
        entry["keys"].sort(key=lambda k: k[0])
    return {"format": "gdpw-keys/1", "mode": "offset", "controls": controls} if controls else None


class VideoTab:
    """Components and callbacks of the Video tab; ``studio`` is the owning ``studio.app.Studio``."""

    def __init__(self, studio: Any) -> None:
        self.studio = studio
        self.model = studio.shared.model
        controls = self.model.controls()
        self.names = [n for n in OFFSET_CONTROLS if n in controls]
        self.sliders: dict[str, gr.Slider] = {}

    def build(self) -> None:
        st = self.studio
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                self.clip = gr.Video(label="Video to edit", sources=["upload"], height=220, elem_id="gdpw-vclip")
                clips = [c.label for c in st.examples.clips]
                self.clip_choice = gr.Dropdown(clips, value=None, label="Or an example clip") if clips else None
                with gr.Row():
                    self.preset = gr.Dropdown([NO_PRESET, *shipped_names()], value=NO_PRESET, label="Preset")
                    self.seconds = gr.Slider(1, 30, value=4, step=1, label="Use the first seconds")
                with gr.Accordion("Offsets (added to every frame's own values)", open=True):
                    for name in self.names:
                        c = self.model.controls()[name]
                        half = (c.maximum - c.minimum) / (2 if c.maximum - c.minimum > 2 else 1)
                        self.sliders[name] = gr.Slider(
                            -half,
                            half,
                            value=0.0,
                            step=0.5 if half > 2 else 0.01,
                            label=f"{name} offset",
                            elem_id=f"vctl-{name}",
                            min_width=180,
                        )
                with gr.Accordion("Keyframes (offsets over time)", open=False):
                    self.keys_table = gr.Dataframe(
                        headers=KEY_COLUMNS,
                        datatype=["str", "number", "number", "str"],
                        value=[["", None, None, "smooth"]],
                        row_count=(3, "dynamic"),
                        column_count=(4, "fixed"),
                        label="control, time (s), value, interpolation (hold / linear / smooth)",
                        elem_id="gdpw-keys",
                    )
                    self.keys_file = gr.File(label="Or a keys.json", file_types=[".json"], type="filepath", height=80)
            with gr.Column(scale=1):
                with gr.Row():
                    self.preview_btn = gr.Button("Preview the first frame", elem_id="gdpw-vpreview")
                    self.render_btn = gr.Button("Render the video", variant="primary", elem_id="gdpw-vrender")
                self.preview_img = gr.Image(
                    label="First frame: its faces (click one to edit it) · after a preview: before | after",
                    interactive=False,
                    height=240,
                    elem_id="gdpw-vpreview-img",
                )
                self.face_num = gr.Number(
                    value=1,
                    precision=0,
                    minimum=1,
                    step=1,
                    label="Face to edit (its number on the first frame; 1 = the largest)",
                    elem_id="gdpw-vface",
                )
                self.pick_x = gr.Number(visible=False)
                self.pick_y = gr.Number(visible=False)
                self.pick_btn = gr.Button(visible=False)
                self.result = gr.Video(
                    label="Edited video (keeps size, fps and audio)",
                    interactive=False,
                    height=300,
                    elem_id="gdpw-vresult",
                )
                self.download = gr.DownloadButton("Download the video", visible=False)
                self.summary = gr.Markdown(elem_classes="gdpw-small", elem_id="gdpw-vsummary")

    # ------------------------------------------------------------------ plan and runs
    def plan(self, preset: str | None, keys_file: str | None, rows: Any, values: tuple) -> EditPlan:
        """The validated plan of the page's inputs (``PresetError`` naming what is wrong)."""
        offsets = {n: float(v) for n, v in zip(self.names, values) if v is not None and abs(float(v)) > 1e-9}
        keys = [load_keyframes(Path(keys_file), self.model)] if keys_file else []
        table = rows_to_keys(rows)
        if table is not None:
            keys.append(load_keyframes(table, self.model))
        return EditPlan.build(
            self.model,
            offsets,
            mode="offset",
            keys=keys or None,
            preset=None if not preset or preset == NO_PRESET else preset,
        )

    def _engine(self, request: gr.Request):
        """This session and the shared engine it uses."""
        s = self.studio.session_for(request)
        return s, self.studio.shared.engine(s.engine_name)

    def on_preview(
        self,
        request: gr.Request,
        clip: str | None,
        preset: str,
        keys_file: str | None,
        rows: Any,
        seconds: float,
        *values: float,
    ) -> dict:
        if not clip:
            raise ValueError("choose a video first (upload one or pick an example)")
        from core.edits.video import edit_video

        offsets, number = values[: len(self.names)], values[len(self.names) :]
        plan = self.plan(preset, keys_file, rows, offsets)
        _, engine = self._engine(request)
        before = first_frame(clip)
        face, note = self.face_index(before, number[0] if number else 1)
        after = edit_video(
            self.model, engine, clip, plan, size=self.studio.shared.size, max_frames=1, progress=False, face=face
        )
        return {
            self.preview_img: np.concatenate([before, after.frames[0]], axis=1),
            self.summary: f"Preview of the first frame ({', '.join(plan.controls) or 'no edit'}{note}).",
        }

    def on_render(
        self,
        request: gr.Request,
        progress=gr.Progress(track_tqdm=True),
        clip: str | None = None,
        preset: str = NO_PRESET,
        keys_file: str | None = None,
        rows: Any = None,
        seconds: float = 4.0,
        *values: float,
    ) -> dict:
        if not clip:
            raise ValueError("choose a video first (upload one or pick an example)")
        from core.edits.video import edit_video
        from core.io.video import probe_video

        offsets, number = values[: len(self.names)], values[len(self.names) :]
        plan = self.plan(preset, keys_file, rows, offsets)
        face, note = self.face_index(first_frame(clip), number[0] if number else 1)
        s, engine = self._engine(request)
        info = probe_video(clip)
        out = s.new_file("video_edit", "mp4", stem="gdpw-video-edit")
        t0 = time.perf_counter()
        progress(0, desc="tracking the face")
        result = edit_video(
            self.model,
            engine,
            clip,
            plan,
            out=out,
            size=self.studio.shared.size,
            max_frames=round(float(seconds) * info.fps),
            face=face,
        )
        r = result.summary()
        text = (
            f"Edited {r['frames']} frames ({r['size'][1]}×{r['size'][0]}, {r['fps']:g} fps"
            f"{', audio kept' if r['audio'] else ''}{note}) in {time.perf_counter() - t0:.1f} s; "
            f"{r['faceless_frames']} without {'that' if face else 'a'} face passed through. "
            f"Controls: {', '.join(r['controls']) or 'none'}."
        )
        return {
            self.result: str(out),
            self.download: gr.DownloadButton(value=str(out), visible=True),
            self.summary: text,
        }

    # ------------------------------------------------------------------ which face
    def face_index(self, frame: np.ndarray, number: Any) -> tuple[int, str]:
        """The 0-based face index (by size) for the face ``number`` (1-based, as drawn) of the clip's first
        ``frame``, and a note for the status line. ``ValueError`` for a number that is no face there."""
        try:
            n = int(number) if number is not None else 1
        except (TypeError, ValueError):
            raise ValueError(f"the face to edit must be a number, got {number!r}") from None
        if n < 1:
            raise ValueError(f"faces are numbered from 1 (the largest), got {n}")
        if n == 1:
            return 0, ""
        from core.fit.api import face_boxes

        count = len(face_boxes(frame))
        if n > count:
            raise ValueError(
                f"face {n} asked for, but the clip's first frame shows {count} face(s): choose 1 to {max(count, 1)}"
            )
        return n - 1, f", face {n} of {count}"

    def show_faces(self, clip: str | None, x: float | None = None, y: float | None = None) -> dict:
        """The first frame with its faces boxed and numbered; the face at (x, y) (first-frame pixels) is
        chosen, else the largest. Outputs: the preview, the face number and the status line."""
        if not clip:
            return {self.preview_img: gr.skip(), self.face_num: gr.skip(), self.summary: NO_CLIP}
        from core.fit.api import face_boxes

        frame = first_frame(clip)
        boxes = face_boxes(frame)
        if not boxes:
            text = "No face found in the clip's first frame: every frame without a face passes through unchanged."
            return {self.preview_img: frame, self.face_num: 1, self.summary: text}
        chosen = 0 if x is None or y is None else face_at(boxes, float(x), float(y))
        if len(boxes) == 1:
            text = "Only one face in the clip's first frame: it is the one edited."
        else:
            text = (
                f"Face {chosen + 1} of {len(boxes)} chosen (numbered by size): preview and render edit it. "
                "Click another face to change."
            )
        return {self.preview_img: draw_faces(frame, boxes, chosen), self.face_num: chosen + 1, self.summary: text}

    def on_pick(self, clip: str | None, x: float | None, y: float | None) -> dict:
        """``/video_pick_face``: choose the face at (x, y) in the first frame's pixels."""
        if x is None or y is None:
            raise ValueError("give the x, y of a face in the clip's first frame (pixels)")
        return self.show_faces(clip, x, y)

    def on_select(self, evt: gr.SelectData, clip: str | None) -> dict:
        """A click on the preview (``evt.index``: pixels of the image shown, which is the first frame or
        before | after side by side at the frame's size): the face under it is chosen."""
        if not clip or evt.index is None:
            return self.show_faces(None)
        x, y = evt.index[:2]
        return self.show_faces(clip, float(x) % first_frame(clip).shape[1], float(y))

    def on_face_num(self, clip: str | None, number: Any) -> dict:
        """The face number typed in: highlight that face."""
        if not clip:
            return self.show_faces(None)
        from core.fit.api import face_boxes

        frame = first_frame(clip)
        boxes = face_boxes(frame)
        face, _ = self.face_index(frame, number)
        x0, y0, x1, y1 = boxes[face] if boxes else (0.0, 0.0, 0.0, 0.0)
        return self.show_faces(clip, (x0 + x1) / 2, (y0 + y1) / 2)

    def on_clip(self, label: str | None) -> Any:
        st = self.studio
        ex = st.examples.clip(label) if label else None
        return str(st.examples.staged(ex)) if ex else gr.skip()

    # ------------------------------------------------------------------ wiring
    def wire(self) -> None:
        guard = self.studio.guard(lambda: self.summary)
        inputs = [
            self.clip,
            self.preset,
            self.keys_file,
            self.keys_table,
            self.seconds,
            *[self.sliders[n] for n in self.names],
            self.face_num,
        ]
        self.preview_btn.click(
            guard(self.on_preview),
            inputs=inputs,
            outputs=[self.preview_img, self.summary],
            api_name="video_preview",
            show_progress_on=[self.preview_img],
            concurrency_id="video",
            concurrency_limit=1,
        )
        self.render_btn.click(
            guard(self.on_render),
            inputs=inputs,
            outputs=[self.result, self.download, self.summary],
            api_name="video_render",
            show_progress_on=[self.result],
            concurrency_id="video",
            concurrency_limit=1,
        )
        self._wire_faces(guard)
        if self.clip_choice is not None:
            self.clip_choice.change(
                self.on_clip, inputs=[self.clip_choice], outputs=[self.clip], api_visibility="private", queue=False
            )

    def _wire_faces(self, guard: Any) -> None:
        """A new clip shows its faces; a click on the preview, the number field or the API choose one."""
        outputs = [self.preview_img, self.face_num, self.summary]
        common = {"outputs": outputs, "concurrency_id": "video", "concurrency_limit": 1}
        self.clip.change(guard(self.show_faces), inputs=[self.clip], api_visibility="private", **common)
        self.preview_img.select(guard(self.on_select), inputs=[self.clip], api_visibility="private", **common)
        self.face_num.input(
            guard(self.on_face_num), inputs=[self.clip, self.face_num], api_visibility="private", **common
        )
        self.pick_btn.click(
            guard(self.on_pick), inputs=[self.clip, self.pick_x, self.pick_y], api_name="video_pick_face", **common
        )


def first_frame(clip: str | Path) -> np.ndarray:
    """The clip's first frame ``(H, W, 3)`` uint8 (``VideoError`` for an unreadable clip)."""
    from core.io.video import iter_frames

    for frame in iter_frames(clip, 1):
        return frame
    raise ValueError(f"no frames in the video {Path(clip).name}")
