"""Test media made with the ffmpeg that ships in the imageio-ffmpeg wheel (no system ffmpeg needed)."""

from __future__ import annotations

import subprocess


def ffmpeg(*args: str) -> None:
    """Run the bundled ffmpeg quietly (``-y -loglevel error`` then ``args``); raises when it fails."""
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args], check=True)
