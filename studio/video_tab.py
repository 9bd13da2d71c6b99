"""The studio's Video tab: edit every frame of a clip (``Animator.edit_video``).

A clip (upload or example), offset sliders (added to each frame's own fitted values), an optional
preset, a small keyframe table (control, time, value, interpolation) and/or an uploaded ``keys.json``,
a preview of the first frame (before | after) and the full render with progress and a download.
API names: ``/video_preview`` and ``/video_render`` (inputs: clip, preset, keys file, keyframe rows, seconds,
then the offsets in ``VideoTab.names`` order).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from core.edits import EditPlan, PresetError, load_keyframes, shipped_names

log = logging.getLogger(__name__)

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
                    label="First frame: before | after", interactive=False, height=240, elem_id="gdpw-vpreview-img"
                )
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
        from core.io.video import iter_frames

        plan = self.plan(preset, keys_file, rows, values)
        _, engine = self._engine(request)
        before = next(iter_frames(clip, 1))
        after = edit_video(self.model, engine, clip, plan, size=self.studio.shared.size, max_frames=1, progress=False)
        return {
            self.preview_img: np.concatenate([before, after.frames[0]], axis=1),
            self.summary: f"Preview of the first frame ({', '.join(plan.controls) or 'no edit'}).",
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

        plan = self.plan(preset, keys_file, rows, values)
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
        )
        r = result.summary()
        text = (
            f"Edited {r['frames']} frames ({r['size'][1]}×{r['size'][0]}, {r['fps']:g} fps"
            f"{', audio kept' if r['audio'] else ''}) in {time.perf_counter() - t0:.1f} s; "
            f"{r['faceless_frames']} without a face passed through. "
            f"Controls: {', '.join(r['controls']) or 'none'}."
        )
        return {
            self.result: str(out),
            self.download: gr.DownloadButton(value=str(out), visible=True),
            self.summary: text,
        }

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
        if self.clip_choice is not None:
            self.clip_choice.change(
                self.on_clip, inputs=[self.clip_choice], outputs=[self.clip], api_visibility="private", queue=False
            )
