"""Audio copied into a written video never costs frames: the mux cuts at the video's length."""

import numpy as np
from media_helpers import ffmpeg  # tests/media_helpers.py

from core.io.video import probe_video, read_video, write_video


def test_short_audio_keeps_every_frame(tmp_path):
    audio = tmp_path / "source.mp4"  # a 0.36 s clip whose sound lasts 0.2 s
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x64:rate=25:duration=0.36",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=0.2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(audio),
    )
    frames = [np.full((64, 64, 3), 20 * k, np.uint8) for k in range(9)]
    out = write_video(tmp_path / "out.mp4", frames, 25.0, audio_from=audio)
    back, info = read_video(out)
    assert len(back) == 9 and info.has_audio
    assert probe_video(out).fps == 25.0
