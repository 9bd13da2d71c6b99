"""The studio's Webcam tab: the user's webcam drives the loaded portrait live (relative motion).

The browser streams webcam frames (``gr.Image(sources=["webcam"], streaming=True)``, one every
``STREAM_EVERY`` seconds); each goes through ``process`` (``core.live.LiveDriver.step``: MediaPipe
tracking, a warm-started fit, the portrait's parameters moved by the change since the first frame, a
256 px render). One driver per browser session, rebuilt when the session's portrait changes.
*Re-centre* makes the current webcam pose the reference again. API: ``/live_frame`` (one image in, the
driven portrait out, for clients and tests), ``/live_reset``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

import gradio as gr
import numpy as np

from core.live import LiveDriver, LiveFrame

log = logging.getLogger(__name__)

STREAM_EVERY = 0.1  # seconds between frames the browser sends (10 fps aim)
TIME_LIMIT = 300  # seconds of streaming per start
MAX_DRIVERS = 4


def process(driver: LiveDriver, frame: np.ndarray) -> tuple[np.ndarray, str]:
    """One streamed frame through ``driver``: the driven portrait and a status line. ``bench/live.py``
    calls this same function."""
    result: LiveFrame = driver.step(frame)
    total = sum(result.ms.values())
    parts = ", ".join(f"{k} {v:.0f}" for k, v in result.ms.items())
    note = "" if result.face else " · no face in view: the portrait holds still"
    return result.image, f"{total:.0f} ms per frame ({parts} ms){note}"


class WebcamTab:
    """Components and callbacks of the Webcam tab; ``studio`` is the owning ``studio.app.Studio``."""

    def __init__(self, studio: Any) -> None:
        self.studio = studio
        self._drivers: OrderedDict[str, tuple[Any, LiveDriver]] = OrderedDict()
        self._lock = threading.Lock()

    def build(self) -> None:
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                self.cam = gr.Image(
                    label="Webcam", sources=["webcam"], streaming=True, type="numpy", height=300, elem_id="gdpw-webcam"
                )
                self.reset_btn = gr.Button(
                    "Re-centre (your current pose = the portrait's)", size="sm", elem_id="gdpw-live-reset"
                )
            with gr.Column(scale=1):
                self.out = gr.Image(
                    label="The loaded portrait, driven by you (256 px)",
                    interactive=False,
                    height=300,
                    format="jpeg",
                    elem_id="gdpw-live-out",
                )
                self.stats = gr.Markdown(elem_classes="gdpw-small", elem_id="gdpw-live-stats")
        gr.Markdown(
            "Relative motion: your head turns, nods, expressions, blinks and gaze since the first frame "
            "are added to the portrait's own (load another portrait in the Edit tab). Frames are "
            "processed on the server, about 10 a second.",
            elem_classes="gdpw-small",
        )
        self.frame_in = gr.Image(visible=False, type="numpy")
        self.frame_btn = gr.Button(visible=False)

    def driver(self, request: gr.Request | None) -> LiveDriver:
        """This session's driver, (re)built for its current portrait."""
        st = self.studio
        s = st.session_for(request)
        st.ensure_source(s)
        source = s.source
        with self._lock:
            entry = self._drivers.get(s.key)
            if entry is None or entry[0] is not source:
                if entry is not None:
                    entry[1].close()
                entry = (source, LiveDriver(s.side_animator()))
                self._drivers[s.key] = entry
            self._drivers.move_to_end(s.key)
            while len(self._drivers) > MAX_DRIVERS:
                self._drivers.popitem(last=False)[1][1].close()
        return entry[1]

    def on_frame(self, frame: np.ndarray | None, request: gr.Request) -> tuple[Any, Any]:
        if frame is None:
            return gr.skip(), gr.skip()
        return process(self.driver(request), frame)

    def on_reset(self, request: gr.Request) -> str:
        self.driver(request).reset()
        return "Re-centred: the next frame is the reference pose."

    def wire(self) -> None:
        self.cam.stream(
            self.on_frame,
            inputs=[self.cam],
            outputs=[self.out, self.stats],
            stream_every=STREAM_EVERY,
            time_limit=TIME_LIMIT,
            concurrency_limit=2,
            concurrency_id="live",
            show_progress="hidden",
            api_visibility="private",
        )
        self.frame_btn.click(
            self.on_frame,
            inputs=[self.frame_in],
            outputs=[self.out, self.stats],
            api_name="live_frame",
            concurrency_id="live",
            concurrency_limit=2,
        )
        self.reset_btn.click(self.on_reset, outputs=[self.stats], api_name="live_reset")
