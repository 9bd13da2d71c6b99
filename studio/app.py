"""The Gradio editing studio: ``build_app() -> gr.Blocks``.

Layout (Edit tab): source photo and examples | result views (edited crop, full photo, 3D mesh,
landmarks, inspect) | sliders in accordions. A Reenact tab drives the portrait with a video; an About tab
says what is what.

Events: each slider fires its own light callback (the link checkbox and its value in; the views and the
sliders it can move out) on ``.input`` (while dragging) and ``.release``, with
``trigger_mode="always_last"`` so a drag never queues more than one pending render, under a concurrency
limit shared by all renders. Each browser session has its own ``EditSession`` (``studio.session``), looked up
by Gradio's session hash; the face model and engine are shared. Expected failures (an unreadable file, no
face, a bad video) come back as a warning toast and a status line, and the previous portrait and edits
stay; unexpected ones are logged and reported the same way, and the app keeps serving.

API (``gradio_client``): ``/upload`` (an image file), ``/example`` (an index), ``/render`` (the link
checkbox, then every slider value in ``slider_names()`` order; the values that moved are applied), and per
slider ``/slide_<name>`` (link, value: what the page's sliders call). Outputs: ``Studio.load_outputs``,
``Studio.edit_outputs`` and ``Studio.view_outputs`` (+ the related sliders).
"""

from __future__ import annotations

import atexit
import base64
import binascii
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import torch

from core.animator import PRESETS
from core.engines.registry import ENGINES, engine_names, find_engine_weights
from core.io.video import VideoLimits
from studio import views
from studio.controls import SECTIONS, ZOOM, SliderSpec, union_specs
from studio.examples import ExampleStore
from studio.face_picker import FacePicker
from studio.presets_panel import PresetsPanel
from studio.session import EditSession, LoadInfo, SessionStore, Shared, weights_available
from studio.video_tab import VideoTab
from studio.webcam_tab import WebcamTab

log = logging.getLogger(__name__)

TITLE = "GDPW Studio"
CSS = """
#gdpw-controls {max-height: 84vh; overflow-y: auto; flex-wrap: nowrap !important; padding-right: 4px;}
#gdpw-controls > * {flex-shrink: 0;}
#gdpw-controls .gr-accordion {overflow: visible !important;}
#gdpw-status {min-height: 1.6em;}
#gdpw-status p {margin: 0;}
#gdpw-header p {margin-top: 0; opacity: 0.85;}
#gdpw-examples .caption-label {font-size: 0.75em;}
.gdpw-small p {font-size: 0.85em; opacity: 0.85; margin: 0;}
"""

HELP = """
**How to use.** Pick an example or drop a portrait on *Source photo*; the face is fitted with a 3D face
model (a few seconds). Move the sliders: the preview updates while you drag and settles when you let go.
Values are absolute (the head yaw slider starts at the fitted yaw). *Link L/R* moves both sides of a paired
expression together; untick it for winks and one-sided smiles. *Full photo* pastes the edit back into the
original photo and gives a PNG download.

**Views.** *3D* shows the fitted face model with your edits (drag to orbit). *Landmarks* shows the
detected MediaPipe landmarks (green) and the fitted model's (orange). *Inspect* shows the guidance the
engine uses: the displacement field as a colour wheel, the mesh coverage and person layer, and the
neural codes.

**Engines.** `geometry` warps the photo's pixels along the 3D displacement field: training-free, fast on
a CPU, no new detail (the inside of an opened mouth is drawn simply). `pwm` is the paper's learned
generator with the shipped weights (`weights/pwm.json`, see `weights/README.md`): it starts from the
geometry engine's warp and corrects it level by level (slower, about 0.2 s an edit); *Inspect* then shows
its flow at every pyramid level, its blend mask and its trained neural codes.

**Reenact.** Drives the loaded portrait with a talking-head video: *relative* adds the video's changes
from its first frame to the portrait's own pose and expression; *absolute* copies the video's pose and
expression. The result keeps the video's frame rate and audio. Slider edits are not applied to it.

**Presets & history.** Undo/redo your slider edits, put the eyes on the camera or the face back to a
neutral expression in one click, apply a shipped preset, or save your edit as a readable JSON preset (and
load one). With several faces in a photo, click the one to edit.

**Video.** Edits every frame of a clip: the face is tracked, the sliders are *offsets* on each frame's own
values, the keyframe table changes them over time (hold, linear or smooth between keys). Preview the first
frame, then render; the result keeps the clip's size, frame rate and audio. With several faces, click the
one to edit on the first frame (or type its number): it is highlighted and tracked through the clip.

**Webcam.** Your webcam drives the loaded portrait live (relative motion from your first frame;
*Re-centre* to take your current pose as the reference).

Photos and videos stay on this server for your session only; they are cleared when you close the page
(results) or within about two hours (uploads).
"""


class StudioBlocks(gr.Blocks):
    """``gr.Blocks`` whose ``launch`` brings the studio's theme and CSS (Gradio 6 takes them there)."""

    studio: Studio

    def launch(self, *args, **kwargs):  # type: ignore[override]
        kwargs.setdefault("theme", gr.themes.Soft(primary_hue="indigo", neutral_hue="slate"))
        kwargs.setdefault("css", CSS)
        kwargs.setdefault("show_error", True)
        kwargs.setdefault("max_file_size", upload_limit())
        return super().launch(*args, **kwargs)


UPLOAD_MB = 200  # largest upload, any route (GDPW_MAX_UPLOAD_MB changes it)


def upload_limit() -> int:
    """The upload limit in bytes: ``$GDPW_MAX_UPLOAD_MB`` megabytes, default ``UPLOAD_MB``."""
    raw = os.environ.get("GDPW_MAX_UPLOAD_MB", str(UPLOAD_MB))
    try:
        mb = float(raw)
    except ValueError:
        raise ValueError(f"GDPW_MAX_UPLOAD_MB must be a number of megabytes, got {raw!r}") from None
    if not 0 < mb <= 10_000:
        raise ValueError(f"GDPW_MAX_UPLOAD_MB must be in (0, 10000], got {raw}")
    return int(mb * 1_000_000)


def decode_data_url(url: str, limit: int | None = None) -> bytes:
    """The bytes of a base64 ``data:`` URL, refused (``ValueError``) before decoding when they would exceed
    ``limit`` bytes (default ``upload_limit()``). Nothing is written to disk."""
    limit = upload_limit() if limit is None else limit
    head, sep, body = url.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        raise ValueError("the upload is not a base64 data URL; upload the file itself")
    size = len(body) * 3 // 4
    if size > limit:
        raise ValueError(
            f"the upload is {size / 1e6:.0f} MB, more than the {limit / 1e6:g} MB accepted; use a smaller file"
        )
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the upload is damaged (not valid base64); upload the file again") from None


HINTS = {
    "NoFaceError": "Use a photo with one clearly visible face (at least about 80 px wide).",
    "ImageError": "Use a JPEG, PNG or WebP photo.",
    "VideoError": "Use an MP4, MOV or WebM video.",
}


def _message(exc: BaseException, replace: dict[str, str] | None = None) -> str:
    """A one-line message for the page: the exception's text (server paths replaced), a full stop and a
    hint for the usual failures."""
    text = str(exc).strip().strip("'\"") or type(exc).__name__
    for old, new in (replace or {}).items():
        if old:
            text = text.replace(old, new)
    if text[-1:] not in ".!?":
        text += "."
    hint = HINTS.get(type(exc).__name__)
    return f"{text} {hint}" if hint and hint not in text else text


class Studio:
    """Builds the page and holds the callbacks; state lives in ``SessionStore``."""

    def __init__(
        self,
        shared: Shared | None = None,
        examples: ExampleStore | None = None,
        samples: bool | None = None,
        capacity: int = 16,
    ) -> None:
        self.shared = shared or Shared()
        self.examples = examples or ExampleStore(samples=samples)
        self.store = SessionStore(self.shared, capacity=capacity)
        self.specs: list[SliderSpec] = union_specs([kit.book for kit in self.shared.kits.values()])
        self.names = [s.name for s in self.specs]
        self.sliders: dict[str, gr.Slider] = {}
        self.accordions: dict[str, gr.Accordion] = {}
        self.weights = weights_available()
        self.limits = VideoLimits.from_env()  # clip length limit (frames and seconds), before any work

    def close(self) -> None:
        """Remove every session's folder and the staged examples (shutdown; also run at exit)."""
        self.store.close_all()
        self.examples.close()

    # ================================================================== layout
    def build(self) -> StudioBlocks:
        with StudioBlocks(title=TITLE, fill_width=True, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
            demo.studio = self
            gr.Markdown(
                f"## {TITLE}\nOne-shot portrait editing with a 3D face model "
                "(Geometry Driven Progressive Warping). Pick or drop a portrait, then move the sliders.",
                elem_id="gdpw-header",
            )
            with gr.Tabs():
                with gr.Tab("Edit", id="edit"):
                    self._edit_tab()
                with gr.Tab("Reenact", id="reenact") as self.tab_reenact:
                    self._reenact_tab()
                with gr.Tab("Video", id="video"):
                    self.video_tab = VideoTab(self)
                    self.video_tab.build()
                with gr.Tab("Webcam", id="webcam"):
                    self.webcam_tab = WebcamTab(self)
                    self.webcam_tab.build()
                with gr.Tab("About", id="about"):
                    gr.Markdown(HELP)
            self._wire(demo)
        demo.queue(default_concurrency_limit=1, max_size=64)
        return demo

    def _edit_tab(self) -> None:
        with gr.Row(equal_height=False):
            self._source_column()
            self._views_column()
            self._controls_column()

    def _source_column(self) -> None:
        """The photo, the examples, the fit summary and the engine and face-model choices."""
        with gr.Column(scale=3, min_width=280):
            self.source_img = gr.Image(
                label="Source photo",
                type="filepath",
                sources=["upload", "clipboard"],
                height=340,
                elem_id="gdpw-source",
                buttons=["fullscreen"],
            )
            self.gallery = gr.Dataset(
                components=[gr.Image(visible=False, render=False)],
                samples=[[str(p)] for p in self.examples.thumbnail_files()],
                type="index",
                label="Examples (click one to load it)",
                samples_per_page=12,
                elem_id="gdpw-examples",
            )
            self.fit_md = gr.Markdown(elem_classes="gdpw-small")
            self.face_picker = FacePicker(self)
            self.face_picker.build()
            engines = [
                n
                for n in engine_names(editing=True)
                if not ENGINES[n].needs_weights or (self.weights if n == "pwm" else find_engine_weights(n))
            ]
            note = (
                "the learned `pwm` engine needs trained weights (`pwm.json` + `pwm.safetensors` in "
                "`weights/`): none found"
                if not self.weights
                else "geometry: training-free warp (fast); pwm: the learned generator, a trained correction of "
                f"that warp ({self.weights[0].parent.name}/{self.weights[0].name})"
            )
            self.engine_radio = gr.Radio(
                engines,
                value="geometry",
                label="Engine",
                info=note,
                interactive=len(engines) > 1,
                elem_id="gdpw-engine",
            )
            kinds = list(self.shared.kits)
            self.model_radio = gr.Radio(
                kinds,
                value=self.shared.default_kind,
                label="Face model",
                info="ict: ICT Face Model Light (MIT); flame: FLAME 2020, its own "
                "shape and expression components (the portrait is refitted)",
                visible=len(kinds) > 1,
                elem_id="gdpw-model",
            )

    def _views_column(self) -> None:
        """Result, full photo, 3D, landmarks and inspect views; status, reset/randomise and presets."""
        with gr.Column(scale=4, min_width=300):
            with gr.Tabs(elem_id="gdpw-views", overflow_behavior="wrap"):
                with gr.Tab("Result", id="result") as self.tab_result:
                    self.result_img = gr.Image(
                        label="Edited (256 px face crop)",
                        format="png",
                        height=340,
                        interactive=False,
                        elem_id="gdpw-result",
                        buttons=["download", "fullscreen"],
                    )
                with gr.Tab("Full photo", id="full") as self.tab_full:
                    self.full_btn = gr.Button("Render into the full photo", variant="primary")
                    self.full_img = gr.Image(
                        label="Edit pasted into the original photo",
                        height=300,
                        interactive=False,
                        buttons=["fullscreen"],
                    )
                    self.download_btn = gr.DownloadButton("Download PNG", visible=False)
                with gr.Tab("3D", id="mesh") as self.tab_mesh:
                    self.plot = gr.Plot(label="Fitted 3D face with your edits (drag to orbit)", elem_id="gdpw-mesh")
                with gr.Tab("Landmarks", id="landmarks") as self.tab_landmarks:
                    self.landmarks_img = gr.Image(
                        label="Detected (green) and fitted (orange) landmarks", height=340, interactive=False
                    )
                with gr.Tab("Inspect", id="inspect") as self.tab_inspect:
                    with gr.Row():
                        self.flow_img = gr.Image(
                            label="Flow (colour wheel)", interactive=False, height=220, min_width=140
                        )
                        self.layers_img = gr.Image(
                            label="Mesh / person layer", interactive=False, height=220, min_width=140
                        )
                        self.codes_img = gr.Image(label="Codes (PCA)", interactive=False, height=220, min_width=140)
                    self.levels_img = gr.Image(
                        label="Flow per pyramid level (learned engine)",
                        interactive=False,
                        height=150,
                        elem_id="gdpw-levels",
                    )
                    self.inspect_md = gr.Markdown(elem_classes="gdpw-small")
            self.status = gr.Markdown(elem_id="gdpw-status")
            with gr.Row():
                self.reset_btn = gr.Button("Reset", size="sm")
                self.random_btn = gr.Button("Randomise", size="sm")
            with gr.Accordion("Animate a preset", open=False):
                with gr.Row():
                    self.preset = gr.Dropdown(list(PRESETS), value="talk", label="Preset", min_width=120)
                    self.seconds = gr.Slider(1, 6, value=3, step=0.5, label="Seconds", min_width=120)
                self.animate_btn = gr.Button("Render preset video")
                self.anim_video = gr.Video(label="Preset", interactive=False, height=260)
                gr.Markdown(
                    "Presets move around the portrait's own pose (slider edits are not applied).",
                    elem_classes="gdpw-small",
                )
            self.presets_panel = PresetsPanel(self)
            self.presets_panel.build()

    def _controls_column(self) -> None:
        """One slider per control of every offered face model (the session's model's are shown)."""
        with gr.Column(scale=4, min_width=320, elem_id="gdpw-controls"):
            self.link = gr.Checkbox(
                True, label="Link L/R (moving a left control moves the right too)", elem_id="gdpw-link"
            )
            shown = self.shared.book.by_name  # the default model's sliders; another model's are hidden
            for key, (title, is_open, help_text) in SECTIONS.items():
                specs = [s for s in self.specs if s.section == key]
                if not specs:
                    continue
                with gr.Accordion(title, open=is_open, visible=any(s.name in shown for s in specs)) as self.accordions[
                    key
                ]:
                    if help_text:
                        gr.Markdown(help_text, elem_classes="gdpw-small")
                    for spec in specs:
                        spec = shown.get(spec.name, spec)
                        info = "camera scale (1 = as fitted)" if spec.name == ZOOM else None
                        self.sliders[spec.name] = gr.Slider(
                            spec.minimum,
                            spec.maximum,
                            value=spec.display(0.0 if spec.name != ZOOM else 1.0),
                            step=spec.step,
                            label=spec.label,
                            info=info,
                            elem_id=f"ctl-{spec.name}",
                            min_width=200,
                            visible=spec.name in shown,
                        )
            gr.Markdown("L/R = the subject's left/right.", elem_classes="gdpw-small")
            self.apply_all = gr.Button("Apply all sliders", visible=False)

    def _reenact_tab(self) -> None:
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                with gr.Row(equal_height=True):
                    self.reenact_source = gr.Image(
                        label="Portrait (load another in the Edit tab)",
                        height=200,
                        interactive=False,
                        min_width=160,
                        scale=1,
                    )
                    self.driving = gr.Video(label="Driving video", sources=["upload"], height=200, scale=2)
                if self.examples.clips:
                    self.clip_choice = gr.Dropdown(
                        [c.label for c in self.examples.clips], value=None, label="Or an example clip"
                    )
                else:
                    self.clip_choice = None
                with gr.Row():
                    self.mode = gr.Radio(
                        ["relative", "absolute"],
                        value="relative",
                        label="Motion",
                        info="relative: the clip's changes on the portrait's pose; absolute: the clip's pose",
                    )
                    self.max_seconds = gr.Slider(1, 30, value=8, step=1, label="Use the first seconds")
                self.full_frame = gr.Checkbox(False, label="Paste into the full photo (slower)")
                self.reenact_btn = gr.Button("Reenact the loaded portrait", variant="primary")
            with gr.Column(scale=1):
                self.reenact_video = gr.Video(
                    label="Result (keeps the clip's fps and audio)", interactive=False, height=360
                )
                self.reenact_md = gr.Markdown(elem_classes="gdpw-small")

    # ================================================================== outputs
    @property
    def slider_list(self) -> list[gr.Slider]:
        return [self.sliders[n] for n in self.names]

    @property
    def view_outputs(self) -> list[gr.components.Component]:
        """What a render updates besides sliders: the result, the status and the selected view."""
        return [
            self.result_img,
            self.status,
            self.plot,
            self.flow_img,
            self.layers_img,
            self.codes_img,
            self.levels_img,
            self.inspect_md,
        ]

    @property
    def edit_outputs(self) -> list[gr.components.Component]:
        return [*self.view_outputs, *self.slider_list]

    @property
    def load_outputs(self) -> list[gr.components.Component]:
        return [self.source_img, self.fit_md, self.landmarks_img, self.full_img, self.download_btn, *self.edit_outputs]

    @property
    def model_outputs(self) -> list[gr.components.Component]:
        """A face-model switch: everything a load updates, the sliders' ranges and which accordions show."""
        return [self.model_radio, *self.load_outputs, *self.accordions.values()]

    def session_for(self, request: gr.Request | None) -> EditSession:
        return self.store.get(getattr(request, "session_hash", None) if request is not None else None)

    def edit_update(self, s: EditSession, sliders: list[str] | None, note: str = "") -> dict:
        """Render the current edit and the selected view; ``sliders``: which slider values to send."""
        t0 = time.perf_counter()
        out: dict[Any, Any] = {}
        if s.view == "inspect":
            out.update(self._inspect_update(s))
        else:
            out[self.result_img] = s.render()
        if s.view == "mesh":
            out[self.plot] = views.mesh_figure(s.mesh_positions(), s.kit.mesh)
        ms = 1000 * (time.perf_counter() - t0)
        out[self.status] = self._warned(s, note or f"Rendered in {ms:.0f} ms.")
        for name in sliders or []:
            if name in s.values:  # the union of all models' sliders: only this model's have values
                out[self.sliders[name]] = s.values[name]
        return out

    @staticmethod
    def _warned(s: EditSession, status: str) -> str:
        """``status`` followed by the warning of an edit beyond the measured range, if it is one."""
        warning = s.large_edit_warning()
        return status + (f" ⚠ {warning}" if warning else "")

    def _slider_layout(self, s: EditSession) -> dict:
        """Sliders and accordions for the session's face model: its sliders shown with their ranges and
        values, the others hidden."""
        book = s.kit.book
        out: dict[Any, Any] = {}
        for name in self.names:
            spec = book.by_name.get(name)
            out[self.sliders[name]] = (
                gr.Slider(visible=False)
                if spec is None
                else gr.Slider(
                    minimum=spec.minimum,
                    maximum=spec.maximum,
                    step=spec.step,
                    label=spec.label,
                    value=s.values.get(name),
                    visible=True,
                )
            )
        for key, accordion in self.accordions.items():
            out[accordion] = gr.Accordion(visible=any(sp.section == key for sp in book.specs))
        out[self.model_radio] = s.model_kind
        return out

    def _inspect_update(self, s: EditSession) -> dict:
        data = s.inspect()
        out: dict[Any, Any] = {self.result_img: data.image}
        notes = []
        if data.flow is not None:
            flow = data.flow[:1].float().cpu()
            size = data.image.shape[0]
            if flow.shape[-1] != size:  # normalised units survive resizing; pixels are then the crop's
                flow = torch.nn.functional.interpolate(flow, size=(size, size), mode="bilinear", align_corners=False)
            wheel, scale = views.flow_wheel(flow)
            out[self.flow_img] = wheel
            notes.append(
                f"**Flow**: {data.flow_label} (backward, target to source); hue = direction, "
                f"saturation = magnitude, full colour at {scale:.1f} px; legend wheel bottom right; "
                "white = still."
            )
        if data.coverage is not None and data.layer is not None:
            out[self.layers_img] = views.layers_image(data.image, data.coverage[:1], data.layer[:1])
            notes.append(f"**Layers**: blue = covered by the target mesh; orange = {data.layer_label}.")
        if data.codes is not None:
            out[self.codes_img] = views.codes_pca(data.codes, data.code_mask)
            notes.append(
                f"**Neural codes**: {data.codes.shape[1]}-d per-vertex codes on the target mesh, first 3 "
                "principal components as RGB. "
                + (
                    "The learned engine's trained codes."
                    if data.codes_trained
                    else "*Untrained*: their initial random table."
                )
            )
        else:
            out[self.codes_img] = None
            notes.append(
                f"**Neural codes**: none with the `{s.engine_name}` engine"
                + (" (choose `pwm` under Engine)." if self.weights and s.engine_name != "pwm" else ".")
            )
        if data.level_flows:
            montage, scale = views.levels_montage(data.level_flows)
            out[self.levels_img] = montage
            notes.append(
                f"**Pyramid**: the flow at each level, coarse to fine (same colours as above, full "
                f"colour at {scale:.1f} px)."
            )
        else:
            out[self.levels_img] = None
            notes.append(
                "**Pyramid**: per-level flows exist only with the learned engine"
                + (
                    " (choose `pwm` under Engine)."
                    if self.weights
                    else " (no trained weights found: see the README, *Learned engine*)."
                )
            )
        out[self.inspect_md] = "\n\n".join(notes + [f"*{n}*" for n in data.notes])
        return out

    def load_update(self, s: EditSession, info: LoadInfo, note: str = "") -> dict:
        q = info.quality
        h, w = info.original_size
        parts = [
            f"**{info.label}** · {w}×{h} px · fitted in {info.fit_seconds:.1f} s",
            f"yaw {q.get('yaw', 0):+.1f}°, pitch {q.get('pitch', 0):+.1f}°, roll {q.get('roll', 0):+.1f}°",
            f"landmark error {100 * q.get('landmark_error', 0):.1f} % of the eye distance",
        ]
        warn = []
        if q.get("faces_found", 1) > 1:
            which = f"face {q['face_rank']}" if q.get("face_rank") else "the largest plausible one"
            warn.append(f"{q['faces_found']} faces found: editing {which}; click another face on the photo to edit it.")
        if q.get("landmark_error", 0) > 0.03:
            warn.append("The fit is loose (unusual face, occlusion or a drawing): edits may look off.")
        if abs(q.get("yaw", 0)) > 35:
            warn.append("Strong profile: large turns towards the hidden side will tear.")
        if q.get("crop_outside", 0) > 0.2:
            warn.append("The face is close to the photo's edge: the crop is padded.")
        fit_md = " · ".join(parts) + ("\n\n⚠ " + " ".join(warn) if warn else "")
        out = {
            self.source_img: s.preview,
            self.fit_md: fit_md,
            self.landmarks_img: s.landmarks,
            self.full_img: None,
            self.download_btn: gr.DownloadButton(value=None, visible=False),
        }
        out.update(self.edit_update(s, self.names, note=note))
        return out

    def ensure_source(self, s: EditSession) -> str:
        """Load the default portrait into a session that has none (a new API client, an expired session)."""
        if s.loaded:
            return ""
        ex = self.examples.default
        s.load(ex.path, ex.label)
        return f"Loaded the default portrait ({ex.label})."

    # ================================================================== callbacks
    def guard(self, status: Callable[[], Any], restore_source: bool = False):
        """Decorator: expected errors become a warning toast and a status line; the session is untouched."""

        def wrap(fn):
            @functools.wraps(fn)
            def inner(*args, **kwargs):
                try:
                    return fn(*args, **kwargs)
                except (ValueError, RuntimeError, KeyError, OSError) as exc:
                    msg = _message(exc)
                    log.warning("studio: %s", msg)
                except Exception:  # keep serving whatever happened; the details go to the log
                    log.exception("studio: unexpected error")
                    msg = "Something went wrong on the server; please try again (the details are in its log)."
                gr.Warning(msg)
                out = {status(): f"⚠ {msg}"}
                if restore_source:
                    request = next((a for a in list(args) + list(kwargs.values()) if isinstance(a, gr.Request)), None)
                    s = self.session_for(request)
                    if s.loaded:
                        out[self.source_img] = s.preview
                        out[status()] = f"⚠ {msg} The previous portrait ({s.label}) and your edits are kept."
                return out

            return inner

        return wrap

    def on_start(self, request: gr.Request) -> dict:
        s = self.session_for(request)
        note = self.ensure_source(s)
        info = s.info()
        return self.load_update(s, info, note=(note + " " if note else "") + "Ready: move a slider.")

    def on_upload(self, payload: Any, request: gr.Request) -> dict:
        if not payload:
            return {self.status: gr.skip()}
        s = self.session_for(request)
        source, name = self._payload_source(payload)
        try:
            info = s.load(source, name)
        except ValueError as exc:  # name the file as the user knows it, not by its temporary path
            exc.args = (_message(exc, {str(source) if not isinstance(source, bytes) else "<bytes>": name}),)
            raise
        note = f"Loaded {name}." + (f" {s.source.note}" if getattr(s.source, "note", "") else "")
        return self.load_update(s, info, note=note)

    @staticmethod
    def _payload_source(payload: Any) -> tuple[str | bytes, str]:
        """File path (or, for a ``data:`` URL, the bytes: never written to disk) and display name from an
        unprocessed image payload (a FileData dict). Every route is held to ``upload_limit()``."""
        if isinstance(payload, dict):
            path = payload.get("path")
            name = payload.get("orig_name") or (Path(path).name if path else "upload")
            url = payload.get("url") or ""
            if not path and url.startswith("data:"):
                return decode_data_url(url), name
        else:
            path, name = str(payload), Path(str(payload)).name
        if not path:
            raise ValueError("the upload arrived without a file")
        if Path(path).is_file() and Path(path).stat().st_size > upload_limit():
            raise ValueError(f"the file is more than the {upload_limit() / 1e6:g} MB accepted; use a smaller file")
        return path, name

    def on_example(self, index: int, request: gr.Request) -> dict:
        if index is None or not 0 <= int(index) < len(self.examples.portraits):
            raise ValueError(f"no example number {index}")
        ex = self.examples.portraits[int(index)]
        s = self.session_for(request)
        info = s.load(ex.path, ex.label)
        return self.load_update(s, info, note=f"Loaded {ex.label}.")

    def _related(self, name: str) -> list[str]:
        """Sliders that can move with ``name`` under any of the offered face models."""
        out: list[str] = []
        for kit in self.shared.kits.values():
            if name in kit.book.by_name:
                out += [n for n in kit.book.related(name) if n not in out]
        return out

    def _slide_handler(self, name: str) -> Callable[..., dict]:
        related = set(self._related(name))

        def on_slide_one(request: gr.Request, link: bool, value: float) -> dict:
            s = self.session_for(request)
            note = self.ensure_source(s)
            if note:  # a fresh session: the page's sliders belong to another portrait
                return self.edit_update(
                    s, [], note=note + " Your session had expired: press Reset to sync the sliders."
                )
            updates = s.apply({**s.values, name: value}, bool(link))
            return self.edit_update(s, [n for n in updates if n in related])

        on_slide_one.__name__ = f"on_slide_{name}"
        return on_slide_one

    def on_slide(self, request: gr.Request, link: bool, *values: float) -> dict:
        s = self.session_for(request)
        note = self.ensure_source(s)
        if note:  # a fresh session: the page's values belong to another portrait
            info = s.info()
            return self.load_update(s, info, note=note + " Your session had expired.")
        updates = s.apply(dict(zip(self.names, values)), bool(link))
        return self.edit_update(s, updates)

    def on_reset(self, request: gr.Request) -> dict:
        s = self.session_for(request)
        self.ensure_source(s)
        s.reset()
        return self.edit_update(s, self.names, note="Reset to the fitted values.")

    def on_randomise(self, request: gr.Request) -> dict:
        s = self.session_for(request)
        self.ensure_source(s)
        edits = s.randomise()
        labels = ", ".join(s.kit.book.by_name[n].label for n in list(edits)[:6])
        return self.edit_update(s, self.names, note=f"Random edit: {labels}.")

    def on_model(self, kind: str, request: gr.Request) -> dict:
        """Switch the session's face model: the portrait is refitted and the sliders become the model's."""
        s = self.session_for(request)
        self.ensure_source(s)
        try:
            info = s.set_model(kind)
        except ValueError as exc:
            msg = _message(exc)
            gr.Warning(f"The {kind} face model could not be used: {msg}")
            out = self.edit_update(s, [], note=f"⚠ The {kind} face model could not be used ({msg}).")
            out.update(self._slider_layout(s))
            return out
        out = self.load_update(s, info, note=f"Face model: {kind} (the portrait was refitted; edits start afresh).")
        out.update(self._slider_layout(s))
        return out

    def on_full(self, request: gr.Request) -> dict:
        s = self.session_for(request)
        self.ensure_source(s)
        t0 = time.perf_counter()
        preview, path = s.render_full()
        h, w = s.source.original.shape[:2]
        return {
            self.full_img: preview,
            self.download_btn: gr.DownloadButton(value=str(path), visible=True),
            self.status: self._warned(s, f"Full photo ({w}×{h} px) in {time.perf_counter() - t0:.1f} s."),
        }

    def on_view(self, view: str, request: gr.Request) -> dict:
        s = self.session_for(request)
        s.view = view
        if view not in ("mesh", "inspect"):
            return {self.status: gr.skip()}
        return self.edit_update(s, [], note=self.ensure_source(s) or " ")

    def _view_handler(self, view: str) -> Callable[[gr.Request], dict]:
        def on_view(request: gr.Request) -> dict:
            return self.on_view(view, request)

        on_view.__name__ = f"on_view_{view}"
        return on_view

    def on_animate(
        self, preset: str, seconds: float, request: gr.Request, progress=gr.Progress(track_tqdm=True)
    ) -> dict:
        s = self.session_for(request)
        self.ensure_source(s)
        t0 = time.perf_counter()
        path = s.animate(preset, float(seconds), limits=self.limits)
        return {self.anim_video: str(path), self.status: f"Preset '{preset}' in {time.perf_counter() - t0:.1f} s."}

    def on_reenact(
        self,
        driving: str | None,
        mode: str,
        max_seconds: float,
        full_frame: bool,
        request: gr.Request,
        progress=gr.Progress(track_tqdm=True),
    ) -> dict:
        if not driving:
            raise ValueError("choose a driving video first (upload one or pick an example)")
        s = self.session_for(request)
        self.ensure_source(s)
        t0 = time.perf_counter()
        progress(0, desc="fitting the driving video")
        try:
            path = s.reenact(driving, mode, float(max_seconds), bool(full_frame), limits=self.limits)
        except ValueError as exc:  # name the clip as the user knows it, not by its temporary path
            exc.args = (_message(exc, {str(driving): Path(driving).name}),)
            raise
        return {
            self.reenact_video: str(path),
            self.reenact_md: f"Reenacted **{s.label}** ({mode} motion) in {time.perf_counter() - t0:.1f} s.",
        }

    def on_reenact_tab(self, request: gr.Request) -> Any:
        s = self.session_for(request)
        return s.source.fit.crop_image if s.loaded else gr.skip()

    def on_clip(self, label: str | None) -> Any:
        ex = self.examples.clip(label) if label else None
        return str(self.examples.staged(ex)) if ex else gr.skip()

    def on_engine(self, name: str, request: gr.Request) -> dict:
        s = self.session_for(request)
        self.ensure_source(s)
        try:
            s.set_engine(name)
        except ValueError as exc:
            msg = _message(exc).splitlines()[0]
            gr.Warning(f"The {name} engine could not start: {msg} Staying with geometry.")
            if s.engine_name != "geometry":
                s.set_engine("geometry")
            out = self.edit_update(s, [], note=f"⚠ The {name} engine could not start ({msg}); using geometry.")
            out[self.engine_radio] = "geometry"
            return out
        return self.edit_update(s, [], note=f"Engine: {name}.")

    def on_unload(self, request: gr.Request) -> None:
        self.store.drop(getattr(request, "session_hash", None))

    # ================================================================== wiring
    def _wire(self, demo: gr.Blocks) -> None:
        status = lambda: self.status  # noqa: E731
        g = self.guard
        render = dict(concurrency_id="render", concurrency_limit=2)
        fit = dict(concurrency_id="fit", concurrency_limit=1)
        video = dict(concurrency_id="video", concurrency_limit=1)

        demo.load(
            g(status)(self.on_start),
            outputs=self.load_outputs,
            api_name="start",
            show_progress="minimal",
            show_progress_on=[self.result_img],
            **fit,
        )
        self.source_img.upload(
            g(status, restore_source=True)(self.on_upload),
            inputs=[self.source_img],
            outputs=self.load_outputs,
            preprocess=False,
            api_name="upload",
            show_progress="minimal",
            show_progress_on=[self.result_img],
            **fit,
        )
        self.gallery.click(
            g(status)(self.on_example),
            inputs=[self.gallery],
            outputs=self.load_outputs,
            api_name="example",
            show_progress="minimal",
            show_progress_on=[self.result_img],
            **fit,
        )
        # one light event per slider (2 inputs; outputs: the views and the sliders it can move)
        for spec in self.specs:
            slider = self.sliders[spec.name]
            related = [self.sliders[n] for n in self._related(spec.name)]
            gr.on(
                [slider.input, slider.release],
                g(status)(self._slide_handler(spec.name)),
                inputs=[self.link, slider],
                outputs=[*self.view_outputs, *related],
                trigger_mode="always_last",
                show_progress="hidden",
                api_name=f"slide_{spec.name}",
                api_visibility="undocumented",
                **render,
            )
        # every slider at once, for API clients (the page sends one slider at a time)
        self.apply_all.click(
            g(status)(self.on_slide),
            inputs=[self.link, *self.slider_list],
            outputs=self.edit_outputs,
            show_progress="hidden",
            api_name="render",
            **render,
        )
        self.reset_btn.click(
            g(status)(self.on_reset), outputs=self.edit_outputs, api_name="reset", show_progress="hidden", **render
        )
        self.random_btn.click(
            g(status)(self.on_randomise),
            outputs=self.edit_outputs,
            api_name="randomise",
            show_progress="hidden",
            **render,
        )
        self.full_btn.click(
            g(status)(self.on_full),
            outputs=[self.full_img, self.download_btn, self.status],
            api_name="full",
            show_progress_on=[self.full_img],
            **render,
        )
        for tab, view in (
            (self.tab_result, "result"),
            (self.tab_full, "full"),
            (self.tab_mesh, "mesh"),
            (self.tab_landmarks, "landmarks"),
            (self.tab_inspect, "inspect"),
        ):
            tab.select(
                g(status)(self._view_handler(view)),
                outputs=self.edit_outputs,
                api_visibility="private",
                show_progress="minimal",
                show_progress_on=[self.plot if view == "mesh" else self.result_img],
                **render,
            )
        self.animate_btn.click(
            g(status)(self.on_animate),
            inputs=[self.preset, self.seconds],
            outputs=[self.anim_video, self.status],
            api_name="animate",
            show_progress_on=[self.anim_video],
            **video,
        )
        reenact_status = lambda: self.reenact_md  # noqa: E731
        self.reenact_btn.click(
            g(reenact_status)(self.on_reenact),
            inputs=[self.driving, self.mode, self.max_seconds, self.full_frame],
            outputs=[self.reenact_video, self.reenact_md],
            api_name="reenact",
            show_progress_on=[self.reenact_video],
            **video,
        )
        self.tab_reenact.select(
            self.on_reenact_tab, outputs=[self.reenact_source], api_visibility="private", queue=False
        )
        if self.clip_choice is not None:
            self.clip_choice.change(
                self.on_clip, inputs=[self.clip_choice], outputs=[self.driving], api_visibility="private", queue=False
            )
        self.engine_radio.input(
            g(status)(self.on_engine),
            inputs=[self.engine_radio],
            outputs=[self.engine_radio, *self.edit_outputs],
            api_visibility="private",
            **fit,
        )
        self.model_radio.input(
            g(status)(self.on_model),
            inputs=[self.model_radio],
            outputs=self.model_outputs,
            api_name="model",
            show_progress="minimal",
            show_progress_on=[self.result_img],
            **fit,
        )
        for part in (self.presets_panel, self.video_tab, self.webcam_tab, self.face_picker):
            part.wire()
        demo.unload(self.on_unload)

    # ================================================================== warm-up
    def warm(self) -> threading.Thread:
        """Fit the default portrait and run one render in the background, so the first visitor waits less."""

        def run() -> None:
            try:
                s = EditSession(self.shared, "warm-up")
                s.load(self.examples.default.path, self.examples.default.label)
                s.render()
                log.info("studio: warm-up done")
            except Exception:  # noqa: BLE001 - a failed warm-up only costs the first visitor time
                log.exception("studio: warm-up failed")

        thread = threading.Thread(target=run, name="gdpw-studio-warmup", daemon=True)
        thread.start()
        return thread


def slider_names(*models) -> list[str]:
    """The ``/render`` API's slider order (after the link checkbox) for a studio offering ``models`` (default
    ICT alone): one slider per name over all the models."""
    from core.face import load_face_model
    from studio.controls import ControlBook, build_specs

    models = models or (load_face_model("ict"),)
    return [s.name for s in union_specs([ControlBook(m, build_specs(m)) for m in models])]


def build_app(samples: bool | None = None, warm: bool = True, shared: Shared | None = None) -> StudioBlocks:
    """The studio as a ``gr.Blocks`` (call ``.launch()``). ``samples``: offer the sample media of
    ``../shared/samples`` (default: when present, except on a Hugging Face Space); ``warm``: fit the default
    portrait in the background now."""
    studio = Studio(shared=shared, samples=samples)
    atexit.register(studio.close)
    demo = studio.build()
    if warm:
        studio.warm()
    return demo
