"""Reenacting a longer clip must not need more memory: frames are decoded, fitted and encoded as they go.

Python-side allocations (numpy frames, landmarks, parameters, encoded output) are traced with tracemalloc
while a generated driving clip of N and 3N small frames is reenacted with the ``copy`` engine (the geometry
engine's cost is not the point here). The peak may grow only by the per-frame fit records (a few kB a frame),
far below what holding the frames would take (192 kB a frame at 256 x 256).
"""

from __future__ import annotations

import tracemalloc

import pytest
from media_helpers import ffmpeg  # tests/media_helpers.py

SHORT, LONG = 60, 180
PER_FRAME_ALLOWANCE = 40_000  # bytes: landmarks, fitted landmarks, params, errors of one frame, with slack


@pytest.fixture(scope="module")
def driving(samples, tmp_path_factory):

    root = tmp_path_factory.mktemp("drive")
    out = {}
    for n in (SHORT, LONG):
        path = root / f"drive_{n}.mp4"
        ffmpeg(
            "-stream_loop",
            "-1",
            "-i",
            str(samples / "videos" / "assets__driving.mp4"),
            "-frames:v",
            str(n),
            "-an",
            "-vf",
            "scale=256:256",
            "-pix_fmt",
            "yuv420p",
            str(path),
        )
        out[n] = path
    return out


def _peak(anim, path, out) -> int:
    tracemalloc.start()
    try:
        anim.reenact(path, out=out)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reenact_peak_memory_does_not_grow_with_length(samples, ict_model, driving, tmp_path):
    from core.animator import Animator

    anim = Animator(engine="copy", model=ict_model)
    anim.load_source(samples / "images" / "assets__examples__source__s1.jpg")
    anim.reenact(driving[SHORT], out=tmp_path / "warm.mp4", max_frames=10)  # MediaPipe graph, caches
    short = _peak(anim, driving[SHORT], tmp_path / "short.mp4")
    long = _peak(anim, driving[LONG], tmp_path / "long.mp4")
    growth = long - short
    print(f"peak {short / 1e6:.1f} MB for {SHORT} frames, {long / 1e6:.1f} MB for {LONG}")
    holding_frames = (LONG - SHORT) * 256 * 256 * 3
    assert growth < (LONG - SHORT) * PER_FRAME_ALLOWANCE, (short, long)
    assert growth < holding_frames / 4, (short, long)
