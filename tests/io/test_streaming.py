"""Streaming video I/O: same frames as the whole-clip path, atomic writes, clear errors, real frame rates."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from core.io.atomic import leftover_parts
from core.io.video import (
    VideoError,
    VideoLimits,
    check_fps,
    check_seconds,
    iter_batches,
    iter_frames,
    probe_video,
    read_video,
    write_video,
)


def _ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args], check=True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=2", "-pix_fmt", "yuv420p", str(path))
    return path


def test_streamed_frames_equal_the_whole_clip(clip):
    whole, info = read_video(clip)
    streamed = list(iter_frames(clip))
    batches = list(iter_batches(iter_frames(clip), 7))
    assert len(whole) == len(streamed) == 50 == info.n_frames
    assert [len(b) for b in batches] == [7] * 7 + [1]
    flat = [f for b in batches for f in b]
    assert all(np.array_equal(a, b) for a, b in zip(whole, streamed))
    assert all(np.array_equal(a, b) for a, b in zip(whole, flat))
    assert len(list(iter_frames(clip, max_frames=9))) == 9


def test_writer_consumes_a_generator_like_a_list(clip, tmp_path):
    frames, info = read_video(clip)
    from_list = write_video(tmp_path / "list.mp4", frames, info.fps)
    from_gen = write_video(tmp_path / "gen.mp4", (f for f in iter_frames(clip)), info.fps)
    a, b = read_video(from_list)[0], read_video(from_gen)[0]
    assert len(a) == len(b) == 50 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert leftover_parts(tmp_path) == []


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
def test_interrupted_write_leaves_no_file(clip, tmp_path, stop):
    target = tmp_path / "out.mp4"

    def frames():
        for i, frame in enumerate(iter_frames(clip)):
            if i == 10:
                raise stop("stop")
            yield frame

    with pytest.raises(stop):
        write_video(target, frames(), 25)
    assert not target.exists() and list(tmp_path.iterdir()) == []
    # an existing result is left as it was
    target.write_bytes(b"previous")
    with pytest.raises(stop):
        write_video(target, frames(), 25)
    assert target.read_bytes() == b"previous" and leftover_parts(tmp_path) == []


def test_bad_videos_give_one_sentence_without_ffmpeg_banner(clip, tmp_path):
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[:300])
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    for bad in (truncated, text):
        with pytest.raises(VideoError) as err:
            list(iter_frames(bad)) if bad is truncated else probe_video(bad)
        msg = str(err.value)
        assert bad.name in msg and "\n" not in msg
        for banner in ("ffmpeg version", "Copyright", "=== stderr", "built with", "configuration:"):
            assert banner not in msg


def test_real_frame_rate_and_value_checks(tmp_path):
    fast = tmp_path / "k1000.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=1000:duration=0.1", "-pix_fmt", "yuv420p", str(fast))
    info = probe_video(fast)
    assert info.fps == pytest.approx(1000) and info.n_frames == 100
    for bad in (0, -5, float("inf"), float("nan"), 1e9, "fast"):
        with pytest.raises(ValueError, match="fps"):
            check_fps(bad)
    for bad in (0, -5, float("nan"), 1e9):
        with pytest.raises(ValueError, match=r"\(0, 60\]"):
            check_seconds(bad, 60)
    with pytest.raises(ValueError, match="fps"):
        write_video(tmp_path / "x.mp4", [np.zeros((16, 16, 3), np.uint8)], fps=float("inf"))
    assert not (tmp_path / "x.mp4").exists()


def test_clip_limits_count_frames_and_seconds(tmp_path):
    fast = tmp_path / "fast.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=240:duration=2", "-pix_fmt", "yuv420p", str(fast))
    info = probe_video(fast)
    VideoLimits(max_frames=900, max_seconds=30).check(info)  # 480 frames, 2 s: fine
    with pytest.raises(VideoError, match="480 frames at 240 fps, more than the 300"):
        VideoLimits(max_frames=300, max_seconds=30).check(info)  # short in seconds, long in frames
    with pytest.raises(VideoError, match="lasts 2.0 s, more than the 1 s"):
        VideoLimits(max_frames=None, max_seconds=1).check(info)
    VideoLimits(max_frames=300, max_seconds=30).check(info, frames=240)  # trimmed to its first second
