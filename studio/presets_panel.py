"""The Edit tab's presets and history panel: undo/redo, one-click "look at the camera" and "neutral
expression", shipped presets, and saving/loading edits as readable ``gdpw-edits/1`` JSON.

Built inside ``Studio._edit_tab`` (``PresetsPanel(studio).build()``) and wired in ``Studio._wire``
(``.wire()``); every callback updates the same outputs as a slider move (``studio.edit_outputs``).
API names: ``/undo``, ``/redo``, ``/look_at_camera``, ``/neutral``, ``/apply_preset`` (a shipped name),
``/load_preset`` (a JSON file), ``/save_preset``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from core.edits import EditPlan, EditPreset, load_preset, neutral_values, save_preset, shipped_names

log = logging.getLogger(__name__)


class PresetsPanel:
    """Components and callbacks; ``studio`` is the ``studio.app.Studio`` that owns the page."""

    def __init__(self, studio: Any) -> None:
        self.studio = studio

    def build(self) -> None:
        with gr.Accordion("Presets & history", open=True, elem_id="gdpw-presets"):
            with gr.Row():
                self.undo_btn = gr.Button("↶ Undo", size="sm", elem_id="gdpw-undo")
                self.redo_btn = gr.Button("↷ Redo", size="sm", elem_id="gdpw-redo")
                self.camera_btn = gr.Button("Look at the camera", size="sm", elem_id="gdpw-look")
                self.neutral_btn = gr.Button("Neutral expression", size="sm", elem_id="gdpw-neutral")
            with gr.Row(equal_height=True):
                names = shipped_names()
                self.choice = gr.Dropdown(
                    names, value=names[0] if names else None, label="Preset", scale=2, min_width=140
                )
                self.apply_btn = gr.Button("Apply preset", size="sm", scale=1)
            with gr.Row(equal_height=True):
                self.upload = gr.File(
                    label="Load a preset (.json)", file_types=[".json"], type="filepath", height=90, scale=2
                )
                with gr.Column(scale=1, min_width=120):
                    self.save_btn = gr.Button("Save edits as a preset", size="sm")
                    self.download = gr.DownloadButton("Download preset", visible=False, size="sm")
            gr.Markdown(
                "Presets are readable JSON (`gdpw-edits/1`): absolute values, or offsets added to the "
                "photo's own. The same files work with `python -m core edit DIR --preset`.",
                elem_classes="gdpw-small",
            )

    # ------------------------------------------------------------------ callbacks
    def _apply(self, plan: Callable[[Any], EditPlan], note: str, request: gr.Request) -> dict:
        """Apply ``plan(model)`` (built for the session's face model) to the session's edit, undoably."""
        st = self.studio
        s = st.session_for(request)
        st.ensure_source(s)
        s.apply_plan(plan(s.kit.model))
        return st.edit_update(s, st.names, note=note)

    def on_look(self, request: gr.Request) -> dict:
        return self._apply(
            lambda model: EditPlan(look_at_camera=True),
            "Eyes on the camera (per-eye gaze set against the head pose).",
            request,
        )

    def on_neutral(self, request: gr.Request) -> dict:
        return self._apply(lambda model: EditPlan(absolute=neutral_values(model)), "Neutral expression.", request)

    def on_apply(self, name: str, request: gr.Request) -> dict:
        return self._apply(
            lambda model: EditPlan.build(model, preset=load_preset(name, model)), f"Preset '{name}'.", request
        )

    def on_load(self, path: str | None, request: gr.Request) -> dict:
        if not path:
            return {self.studio.status: gr.skip()}

        def plan(model) -> EditPlan:
            try:
                preset = load_preset(Path(path), model)
            except ValueError as exc:  # name the file as the user knows it
                exc.args = (str(exc).replace(str(path), Path(path).name),)
                raise
            return EditPlan.build(model, preset=preset)

        return self._apply(plan, f"Loaded preset {Path(path).name}.", request)

    def on_save(self, request: gr.Request) -> dict:
        st = self.studio
        s = st.session_for(request)
        st.ensure_source(s)
        preset = EditPreset(
            s.current_controls(),
            "absolute",
            name=f"{s.label} edit",
            description="Saved from GDPW Studio: absolute control values.",
        )
        path = save_preset(preset, s.new_file("preset", "json", stem="gdpw-preset"), s.kit.model)
        return {
            self.download: gr.DownloadButton(value=str(path), visible=True),
            st.status: f"Preset with {len(preset.controls)} controls ready to download.",
        }

    def _history(self, undo: bool, request: gr.Request) -> dict:
        st = self.studio
        s = st.session_for(request)
        st.ensure_source(s)
        if not s.step_history(undo):
            return {st.status: f"Nothing to {'undo' if undo else 'redo'}."}
        left, right = s.history.depth
        return st.edit_update(
            s, st.names, note=f"{'Undone' if undo else 'Redone'} ({left} more to undo, {right} to redo)."
        )

    def on_undo(self, request: gr.Request) -> dict:
        return self._history(True, request)

    def on_redo(self, request: gr.Request) -> dict:
        return self._history(False, request)

    # ------------------------------------------------------------------ wiring
    def wire(self) -> None:
        st = self.studio
        guard = st.guard(lambda: st.status)
        common = {
            "outputs": st.edit_outputs,
            "show_progress": "hidden",
            "concurrency_id": "render",
            "concurrency_limit": 2,
        }
        self.undo_btn.click(guard(self.on_undo), api_name="undo", **common)
        self.redo_btn.click(guard(self.on_redo), api_name="redo", **common)
        self.camera_btn.click(guard(self.on_look), api_name="look_at_camera", **common)
        self.neutral_btn.click(guard(self.on_neutral), api_name="neutral", **common)
        self.apply_btn.click(guard(self.on_apply), inputs=[self.choice], api_name="apply_preset", **common)
        self.upload.upload(guard(self.on_load), inputs=[self.upload], api_name="load_preset", **common)
        self.save_btn.click(
            guard(self.on_save),
            outputs=[self.download, st.status],
            api_name="save_preset",
            concurrency_id="render",
            concurrency_limit=2,
        )
