"""The studio through its HTTP API (gradio_client), as a remote user would drive it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")


def _load(client, path):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), api_name="/upload")


def _read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_upload_edit_matches_python_api(studio_server, client, portrait, ict_model):
    from core.animator import Animator

    studio = studio_server.studio
    out = _load(client, portrait)
    idx = {c: i for i, c in enumerate(studio.load_outputs)}
    assert "Loaded" in out[idx[studio.status]]
    assert portrait.name in out[idx[studio.fit_md]]
    values = list(out[-len(studio.names) :])
    assert len(values) == len(studio.names)

    # sliders start at the fitted values
    anim = Animator(model=ict_model)
    fit = anim.load_source(portrait)
    yaw0 = float(fit.params.head[0, 0])
    assert values[studio.names.index("yaw")] == pytest.approx(yaw0, abs=0.01)
    assert values[studio.names.index("zoom")] == 1.0

    # move yaw, then jawOpen, as the page's sliders do (one event per slider)
    edits = {"yaw": 20.0, "jawOpen": 0.5}
    vidx = {c: i for i, c in enumerate(studio.view_outputs)}
    for name, v in edits.items():
        res = client.predict(True, v, api_name=f"/slide_{name}")
        assert "Rendered" in res[vidx[studio.status]]
    got = _read(res[vidx[studio.result_img]])

    expected = anim.render(edits)
    assert got.shape == expected.shape == (256, 256, 3)
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= 1, f"studio and Python API differ by up to {diff.max()}"

    # every slider at once through /render gives the same image
    for name, v in edits.items():
        values[studio.names.index(name)] = v
    res = client.predict(True, *values, api_name="/render")
    again = _read(res[studio.edit_outputs.index(studio.result_img)])
    assert np.abs(again.astype(int) - got.astype(int)).max() <= 1

    # and the edit really changed the face (inside the fitted mesh's footprint)
    src = fit.crop_image.astype(int)
    uv = fit.vertices[0, :, :2].numpy()
    x0, y0 = np.clip(uv.min(0), 0, 255).astype(int)
    x1, y1 = np.clip(uv.max(0), 0, 255).astype(int)
    face = np.abs(got.astype(int) - src)[y0:y1, x0:x1]
    assert face.mean() > 8, f"mean change inside the face only {face.mean():.1f}"


def test_slider_events_move_related_sliders(studio_server, client, portrait):
    studio = studio_server.studio
    _load(client, portrait)
    n = len(studio.view_outputs)
    related = studio.shared.book.related("mouthSmile_L")
    assert set(related) == {"mouthSmile_R", "smile"}  # the partner, and the both-sides smile (same target)
    res = client.predict(True, 0.7, api_name="/slide_mouthSmile_L")  # linked: the right side follows
    assert list(res[n:]) == [pytest.approx(0.7)] * 2
    res = client.predict(False, 0.2, api_name="/slide_mouthSmile_L")  # unlinked: the right side stays
    right = res[n + related.index("mouthSmile_R")]
    assert right == {"__type__": "update"} or right == pytest.approx(0.7)
    assert res[n + related.index("smile")] == pytest.approx(0.2)  # smile reads the left side
    res = client.predict(True, 1.0, api_name="/slide_blink")  # blink closes both lids
    assert list(res[n:]) == [pytest.approx(1.0), pytest.approx(1.0)]


def test_link_moves_the_partner_and_blink_alias(studio_server, client, portrait):
    studio = studio_server.studio
    out = _load(client, portrait)
    values = list(out[-len(studio.names) :])
    names = studio.names
    values[names.index("mouthSmile_L")] = 0.7
    res = client.predict(True, *values, api_name="/render")
    eidx = {c: i for i, c in enumerate(studio.edit_outputs)}
    assert res[eidx[studio.sliders["mouthSmile_R"]]] == pytest.approx(0.7)
    values[names.index("mouthSmile_R")] = 0.7
    # blink drives both lids: the per-eye sliders follow
    values[names.index("blink")] = 0.8
    res = client.predict(False, *values, api_name="/render")
    assert res[eidx[studio.sliders["eyeBlink_L"]]] == pytest.approx(0.8)
    assert res[eidx[studio.sliders["eyeBlink_R"]]] == pytest.approx(0.8)


def test_full_resolution_download(studio_server, client, portrait):
    _load(client, portrait)
    res = client.predict(api_name="/full")
    preview, download, status = res
    assert "Full photo" in status
    path = download["value"] if isinstance(download, dict) else download
    full = Image.open(path)
    assert full.format == "PNG"
    assert full.size == Image.open(portrait).size


def test_reset_and_randomise(studio_server, client, portrait):
    studio = studio_server.studio
    out = _load(client, portrait)
    start = list(out[-len(studio.names) :])
    rnd = client.predict(api_name="/randomise")
    eidx = {c: i for i, c in enumerate(studio.edit_outputs)}
    moved = list(rnd[-len(studio.names) :])
    assert moved != start
    assert "Random edit" in rnd[eidx[studio.status]]
    back = client.predict(api_name="/reset")
    assert list(back[-len(studio.names) :]) == pytest.approx(start)


def test_sessions_are_separate(studio_server, client, portrait):
    """Two browsers: an edit in one does not leak into the other."""
    from gradio_client import Client

    studio = studio_server.studio
    out = _load(client, portrait)
    values = list(out[-len(studio.names) :])
    values[studio.names.index("yaw")] = 25.0
    client.predict(True, *values, api_name="/render")
    other = Client(studio_server.url, verbose=False)
    res = other.predict(api_name="/reset")  # a new session starts from the default portrait
    yaw = res[-len(studio.names) :][studio.names.index("yaw")]
    assert abs(yaw - 25.0) > 5
