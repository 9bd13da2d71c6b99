"""The studio offers the face-model choice when FLAME is present: sliders from the model's own controls,
the portrait refitted, edits through ``gradio_client``."""

import socket

import numpy as np
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_model_studio(ict_model, face_like_flame):
    pytest.importorskip("gradio")
    from studio.app import build_app
    from studio.session import Shared

    demo = build_app(shared=Shared(model=ict_model, extra_models=[face_like_flame]), samples=False, warm=False)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    try:
        yield f"http://127.0.0.1:{port}/", demo.studio
    finally:
        demo.close()


def test_model_choice_builds_flame_sliders(two_model_studio):
    _, studio = two_model_studio
    assert studio.model_radio.visible and studio.model_radio.choices == [("ict", "ict"), ("flame", "flame")]
    assert "exp003" in studio.sliders and "jawOpen" in studio.sliders
    assert studio.sliders["jawOpen"].visible and not studio.sliders["exp003"].visible
    assert studio.accordions["expression"].visible is False

    session = studio.store.get("flame-test")
    studio.ensure_source(session)
    out = studio.on_model("flame", type("R", (), {"session_hash": "flame-test"})())
    assert session.model_kind == "flame" and session.source.fit.params.expression.shape[1] == 10
    assert out[studio.sliders["exp003"]].visible is True and out[studio.sliders["jawOpen"]].visible is False
    assert out[studio.sliders["jaw_open"]].maximum == 30  # FLAME's jaw in degrees
    assert out[studio.accordions["expression"]].visible is True


def test_flame_edit_through_gradio_client(two_model_studio):
    from gradio_client import Client

    url, studio = two_model_studio
    before_keys = set(studio.store.keys())
    client = Client(url, verbose=False)
    try:
        client.predict(api_name="/start")
        switched = client.predict("flame", api_name="/model")
        assert "Face model: flame" in str(switched)
        before = client.predict(True, 0.0, api_name="/slide_exp000")
        after = client.predict(True, 2.5, api_name="/slide_exp000")
        from PIL import Image

        a = np.asarray(Image.open(before[0]).convert("RGB")).astype(int)
        b = np.asarray(Image.open(after[0]).convert("RGB")).astype(int)
        assert a.shape == b.shape == (256, 256, 3) and np.abs(a - b).mean() > 1.0
        (key,) = set(studio.store.keys()) - before_keys  # this client's session
        session = studio.store.get(key)
        assert session.model_kind == "flame"
        assert float(session.params.expression[0, 0]) == pytest.approx(2.5)
    finally:
        close = getattr(client, "close", None)
        if close:
            close()
