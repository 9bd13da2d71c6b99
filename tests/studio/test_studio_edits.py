"""Presets and history, the Video tab and the Webcam tab through the studio's HTTP API (gradio_client)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from media_helpers import ffmpeg  # tests/media_helpers.py
from PIL import Image

pytest.importorskip("gradio_client")

CLIP = "assets__examples__driving__d20.mp4"  # a talking head with audio


def _values(studio, out) -> dict[str, float]:
    """Slider values from an ``edit_outputs`` result."""
    n = len(studio.names)
    return dict(zip(studio.names, out[-n:]))


def _status(studio, out) -> str:
    return out[studio.edit_outputs.index(studio.status)]


@pytest.fixture(scope="module")
def short_clip(samples, tmp_path_factory) -> Path:
    """0.4 s of a talking head with audio, scaled to 256 px wide."""

    out = tmp_path_factory.mktemp("vclip") / "short.mp4"
    ffmpeg(
        "-i",
        str(samples / "videos" / CLIP),
        "-t",
        "0.4",
        "-vf",
        "scale=256:-2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(out),
    )
    return out


def test_presets_one_click_and_undo_redo(studio_server, client, portrait):
    from gradio_client import handle_file

    studio = studio_server.studio
    loaded = client.predict(handle_file(str(portrait)), api_name="/upload")
    fitted = _values(studio, loaded[-len(studio.edit_outputs) :])
    out = client.predict("smile", api_name="/apply_preset")
    v = _values(studio, out)
    assert v["smile"] == pytest.approx(0.7) and v["mouthSmile_R"] == pytest.approx(0.7)
    assert "smile" in _status(studio, out)
    out = client.predict(api_name="/undo")
    assert _values(studio, out)["mouthSmile_L"] == pytest.approx(fitted["mouthSmile_L"], abs=0.011)
    out = client.predict(api_name="/redo")
    assert _values(studio, out)["mouthSmile_L"] == pytest.approx(0.7)
    assert "Nothing to redo" in _status(studio, client.predict(api_name="/redo"))

    client.predict(True, 20.0, api_name="/slide_yaw")
    v = _values(studio, client.predict(api_name="/look_at_camera"))
    assert v["gaze_left_yaw"] == pytest.approx(-20.0, abs=1.0) and v["gaze_right_yaw"] == pytest.approx(-20.0, abs=1.0)
    v = _values(studio, client.predict(api_name="/neutral"))
    assert v["smile"] == 0 and v["jawOpen"] == 0 and v["yaw"] == pytest.approx(20.0)

    # save: a readable gdpw-edits/1 file with the absolute values of what differs from the fit
    download, _ = client.predict(api_name="/save_preset")
    path = download["value"] if isinstance(download, dict) else download
    data = json.loads(Path(path).read_text())
    assert data["format"] == "gdpw-edits/1" and data["mode"] == "absolute"
    assert data["controls"]["yaw"] == pytest.approx(20.0)
    assert data["controls"]["gaze_left_yaw"] == pytest.approx(v["gaze_left_yaw"], abs=0.01)
    assert "shape000" not in data["controls"]  # only what differs from the fitted portrait


def test_status_warns_of_a_turn_beyond_the_measured_range(studio_server, client, portrait):
    from gradio_client import handle_file

    studio = studio_server.studio
    loaded = client.predict(handle_file(str(portrait)), api_name="/upload")
    fitted = _values(studio, loaded[-len(studio.edit_outputs) :])["yaw"]
    far = 45.0 if fitted < 0 else -45.0  # the slider's end away from the photo's own turn: over 45 degrees
    out = client.predict(False, far, api_name="/slide_yaw")
    assert "Rendered in" in _status(studio, out) and "turned sideways by" in _status(studio, out)
    _, _, full_status = client.predict(api_name="/full")
    assert "Full photo" in full_status and "turned sideways by" in full_status
    out = client.predict(False, fitted + (20.0 if far > 0 else -20.0), api_name="/slide_yaw")
    assert "Rendered in" in _status(studio, out) and "⚠" not in _status(studio, out)


def test_loading_presets_good_and_bad(studio_server, client, portrait, tmp_path):
    from gradio_client import handle_file

    studio = studio_server.studio
    client.predict(handle_file(str(portrait)), api_name="/upload")
    good = tmp_path / "tilt.json"
    good.write_text(json.dumps({"format": "gdpw-edits/1", "mode": "offset", "controls": {"roll": 5}}))
    before = _values(studio, client.predict(api_name="/reset"))["roll"]
    after = _values(studio, client.predict(handle_file(str(good)), api_name="/load_preset"))["roll"]
    assert after == pytest.approx(before + 5, abs=0.51)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "gdpw-edits/1", "mode": "absolute", "controls": {"smyle": 1}}))
    out = client.predict(handle_file(str(bad)), api_name="/load_preset")
    status = out[studio.edit_outputs.index(studio.status)] if isinstance(out, (list, tuple)) else out
    assert "smyle" in status and "valid controls" in status and str(tmp_path) not in status


def test_video_tab_preview_and_render(studio_server, client, short_clip):
    from gradio_client import handle_file

    from core.io.video import iter_frames, probe_video

    tab = studio_server.studio.video_tab
    offsets = [12.0 if n == "yaw" else 0.0 for n in tab.names]
    rows = {
        "headers": ["control", "time_s", "value", "interpolation"],
        "data": [["smile", 0.0, 0.0, "linear"], ["smile", 0.3, 0.5, "linear"]],
    }
    preview, msg = client.predict(
        handle_file(str(short_clip)), "(none)", None, rows, 1, *offsets, api_name="/video_preview"
    )
    img = np.asarray(Image.open(preview))
    info = probe_video(short_clip)
    assert img.shape[:2] == (info.size[0], 2 * info.size[1])
    assert "yaw" in msg and "smile" in msg
    video, _, summary = client.predict(
        handle_file(str(short_clip)), "(none)", None, rows, 1, *offsets, api_name="/video_render"
    )
    path = video["video"] if isinstance(video, dict) else video
    out = probe_video(path)
    assert out.size == info.size and out.fps == pytest.approx(info.fps, rel=0.01) and out.has_audio
    assert len(list(iter_frames(path))) == len(list(iter_frames(short_clip)))
    assert "Edited" in summary and "audio kept" in summary


def test_video_tab_refuses_bad_keyframes(studio_server, client, short_clip):
    from gradio_client import handle_file

    tab = studio_server.studio.video_tab
    rows = {"headers": ["control", "time_s", "value", "interpolation"], "data": [["smiel", 0.0, 0.2, "smooth"]]}
    _, msg = client.predict(
        handle_file(str(short_clip)), "(none)", None, rows, 1, *[0.0] * len(tab.names), api_name="/video_preview"
    )
    assert "smiel" in msg and "valid controls" in msg


def test_webcam_frames_drive_the_portrait(studio_server, client, portrait, samples, tmp_path):
    from gradio_client import handle_file

    from core.io.video import iter_frames

    client.predict(handle_file(str(portrait)), api_name="/upload")
    still, _ = client.predict(api_name="/live_reset"), None
    assert "Re-centred" in still
    clip = samples / "videos" / "samples__source_video__video__KristiNoem.mp4"
    outs = []
    for i, frame in enumerate(iter_frames(clip, 3)):
        path = tmp_path / f"cam{i}.png"
        Image.fromarray(frame).save(path)
        image, stats = client.predict(handle_file(str(path)), api_name="/live_frame")
        outs.append(np.asarray(Image.open(image).convert("RGB")))
        assert "ms per frame" in stats and "no face" not in stats
    assert all(o.shape == (256, 256, 3) for o in outs)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((120, 160, 3), 30, np.uint8)).save(blank)
    image, stats = client.predict(handle_file(str(blank)), api_name="/live_frame")
    assert "no face" in stats


def test_click_picks_another_face(studio_server, client, samples, tmp_path):
    from gradio_client import handle_file

    from studio.face_picker import face_at

    assert face_at([(0, 0, 100, 100), (150, 0, 200, 50)], 160, 20) == 1
    assert face_at([(0, 0, 100, 100), (150, 0, 200, 50)], 120, 90) == 0
    assert face_at([], 1, 1) == -1
    studio = studio_server.studio
    big = np.asarray(Image.open(samples / "images" / "samples__source_video__image__KristiNoem.png").convert("RGB"))
    group = np.full((256, 480, 3), 90, np.uint8)
    group[:, :256] = big
    group[48:208, 300:460] = np.asarray(Image.fromarray(big).resize((160, 160)))
    path = tmp_path / "two.png"
    Image.fromarray(group).save(path)
    idx = {c: i for i, c in enumerate(studio.load_outputs)}
    out = client.predict(handle_file(str(path)), api_name="/upload")
    assert "2 faces found" in out[idx[studio.fit_md]]
    out = client.predict(380, 128, api_name="/pick_face")
    assert "face 2 of 2" in out[idx[studio.status]] and "editing face 2" in out[idx[studio.fit_md]]
