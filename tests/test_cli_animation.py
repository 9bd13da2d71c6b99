"""The animation commands end to end (source: a sample portrait)."""

import json

import numpy as np
import pytest
from media_helpers import ffmpeg  # tests/media_helpers.py

from core.cli import main
from core.io.image import load_image
from core.io.video import probe_video, read_video


@pytest.fixture(scope="module")
def portrait(samples):
    return samples / "images" / "assets__examples__source__s1.jpg"


def _summary(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_edit_and_frontalize_write_full_photos(portrait, tmp_path, capsys):
    out = tmp_path / "edited.png"
    assert main(["edit", str(portrait), "--set", "yaw=15", "--set", "jawOpen=0.4", "--out", str(out)]) == 0
    assert _summary(capsys)["out"] == str(out)
    edited, original = load_image(out), load_image(portrait)
    assert edited.shape == original.shape and np.abs(edited.astype(int) - original.astype(int)).mean() > 0.5
    crop = tmp_path / "front.png"
    assert main(["frontalize", str(portrait), "--crop", "--out", str(crop)]) == 0
    assert load_image(crop).shape == (256, 256, 3)


def test_edit_warns_of_a_turn_beyond_the_measured_range(portrait, tmp_path, caplog):
    out = tmp_path / "far.png"
    with caplog.at_level("WARNING", logger="core.cli"):
        assert main(["edit", str(portrait), "--mode", "offset", "--set", "yaw=40", "--crop", "--out", str(out)]) == 0
    assert out.is_file()
    assert any("turned sideways by 40°" in r.getMessage() and portrait.name in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="core.cli"):
        assert main(["edit", str(portrait), "--mode", "offset", "--set", "yaw=25", "--crop", "--out", str(out)]) == 0
    assert not [r for r in caplog.records if "turned sideways" in r.getMessage()]


def test_edit_reports_bad_input(portrait, tmp_path, capsys):
    assert main(["edit", str(portrait), "--set", "yawn=15", "--out", str(tmp_path / "x.png")]) == 2
    assert "did you mean yaw" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    text = tmp_path / "photo.jpg"
    text.write_text("hello")
    assert main(["edit", str(text), "--out", str(tmp_path / "y.png")]) == 2
    assert "photo.jpg: not a readable image" in capsys.readouterr().err
    blank = tmp_path / "blank.png"
    from core.io.image import save_image

    save_image(blank, np.full((200, 200, 3), 90, np.uint8))
    assert main(["edit", str(blank), "--out", str(tmp_path / "z.png")]) == 2
    assert "no face" in capsys.readouterr().err.lower()


def test_animate_preset_to_video(portrait, tmp_path, capsys):
    out = tmp_path / "talk.mp4"
    assert (
        main(
            [
                "animate",
                str(portrait),
                "--preset",
                "talk",
                "--seconds",
                "0.6",
                "--fps",
                "10",
                "--crop",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    frames, info = read_video(out)
    assert len(frames) == 6 and info.fps == pytest.approx(10)


def test_reenact_keeps_fps_and_audio(portrait, tmp_path, capsys):

    clip = portrait.parent.parent / "videos" / "samples__source_video__video__Obama_clip1.mp4"
    driving = tmp_path / "driving.mp4"
    ffmpeg(
        "-i",
        str(clip),
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:duration=1",
        "-t",
        "0.4",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-shortest",
        "-pix_fmt",
        "yuv420p",
        str(driving),
    )
    src_info = probe_video(driving)
    out = tmp_path / "out.mp4"
    assert main(["reenact", str(portrait), str(driving), "--mode", "relative", "--crop", "--out", str(out)]) == 0
    info = probe_video(out)
    assert info.fps == pytest.approx(src_info.fps) and info.has_audio
    frames, _ = read_video(out)
    assert abs(len(frames) - 12) <= 1
