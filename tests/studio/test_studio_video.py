"""Preset videos and reenactment through the studio's API."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("gradio_client")

CLIP = "assets__examples__driving__d20.mp4"  # a talking head with audio


@pytest.fixture(scope="module")
def driving(tmp_path_factory) -> tuple[Path, bool]:
    """A driving clip with audio from the samples, else a short synthetic one (a nodding astronaut)."""
    from core.assets import samples_dir

    root = samples_dir()
    if root is not None and (root / "videos" / CLIP).is_file():
        return root / "videos" / CLIP, True
    from skimage import data

    from core.animator import Animator

    anim = Animator()
    anim.load_source(data.astronaut())
    out = tmp_path_factory.mktemp("clip") / "nod.mp4"
    anim.animate("nod", out=out, seconds=1.0, fps=12)
    return out, False


def test_preset_video(studio_server, client):
    from core.io.video import probe_video

    video, status = client.predict("blink", 1.0, api_name="/animate")
    path = video["video"] if isinstance(video, dict) else video
    info = probe_video(path)
    assert info.n_frames == 25 and info.fps == pytest.approx(25.0)
    assert "blink" in status


def test_reenact_keeps_fps_and_audio(studio_server, client, driving):
    from gradio_client import handle_file

    from core.io.video import probe_video

    clip, has_audio = driving
    src = probe_video(clip)
    video, msg = client.predict(handle_file(str(clip)), "relative", 1.5, False, api_name="/reenact")
    assert "Reenacted" in msg, msg
    path = video["video"] if isinstance(video, dict) else video
    info = probe_video(path)
    assert info.fps == pytest.approx(src.fps, rel=0.01)
    assert info.n_frames <= round(1.5 * src.fps) + 1  # the first 1.5 s only
    assert info.size == (256, 256)
    if has_audio:
        assert info.has_audio
