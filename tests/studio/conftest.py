"""Fixtures of the studio tests: one studio app served on 127.0.0.1 (a free port) for the whole folder,
a portrait (a sample when present, else the embedded astronaut) and a gradio_client factory."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SAMPLE_PORTRAIT = "assets__examples__source__s42.jpg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    url: str
    demo: object
    studio: object


@pytest.fixture(scope="session")
def studio_server(ict_model):
    pytest.importorskip("gradio")
    from studio.app import build_app
    from studio.session import Shared

    logging.getLogger("httpx").setLevel(logging.WARNING)
    demo = build_app(shared=Shared(model=ict_model), warm=True)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    try:
        yield Served(f"http://127.0.0.1:{port}/", demo, demo.studio)
    finally:
        demo.close()


@pytest.fixture
def client(studio_server):
    """A fresh gradio_client (its own session) per test."""
    from gradio_client import Client

    c = Client(studio_server.url, verbose=False)
    yield c
    close = getattr(c, "close", None)
    if close is not None:
        close()


@pytest.fixture(scope="session")
def portrait(tmp_path_factory) -> Path:
    """A sample portrait from ../shared/samples/images, or the astronaut when samples are absent."""
    from core.assets import samples_dir

    root = samples_dir()
    if root is not None and (root / "images" / SAMPLE_PORTRAIT).is_file():
        return root / "images" / SAMPLE_PORTRAIT
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("portrait") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path
