import numpy as np
import pytest
from media_helpers import ffmpeg  # tests/media_helpers.py

from core.io.video import VideoError, probe_video, read_video, write_video


def test_write_then_read_keeps_fps_and_frames(tmp_path):
    frames = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(12)]
    path = write_video(tmp_path / "clip.mp4", frames, fps=12.5)
    back, info = read_video(path)
    assert len(back) == 12 and back[0].shape == (48, 64, 3)
    assert info.fps == pytest.approx(12.5) and not info.has_audio
    assert abs(int(back[5].mean()) - 50) <= 3


def test_audio_is_carried_over(tmp_path):
    src = tmp_path / "with_audio.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=10:duration=1",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=1",
        "-shortest",
        "-pix_fmt",
        "yuv420p",
        str(src),
    )
    assert probe_video(src).has_audio
    frames, info = read_video(src)
    out = write_video(tmp_path / "out.mp4", frames, info.fps, audio_from=src)
    assert probe_video(out).has_audio


def test_bad_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("nope")
    with pytest.raises(VideoError, match="bad.mp4: not a readable video"):
        read_video(bad)
    with pytest.raises(VideoError, match="no such file"):
        probe_video(tmp_path / "missing.mp4")
    with pytest.raises(VideoError, match="no frames"):
        write_video(tmp_path / "empty.mp4", [], fps=10)
    assert not (tmp_path / "empty.mp4").exists()
