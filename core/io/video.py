"""Video input and output through imageio's ffmpeg (the binary ships in the imageio-ffmpeg wheel)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from core.io.image import ImageError, array_to_rgb

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
MAX_FRAMES = 20_000  # ~11 minutes at 30 fps; longer clips are refused rather than filling memory


class VideoError(ValueError):
    """The input is not a usable video; the message names the file and the reason."""


@dataclass
class VideoInfo:
    path: Path
    fps: float
    size: tuple[int, int]   # (H, W)
    n_frames: int | None    # None when the container does not say
    has_audio: bool


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def probe_video(path: str | Path) -> VideoInfo:
    """Frame rate, size, frame count and whether there is an audio stream."""
    import imageio.v2 as iio

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    try:
        reader = iio.get_reader(path, "ffmpeg")
        meta = reader.get_meta_data()
        reader.close()
    except Exception as exc:  # imageio raises several types for bad files
        raise VideoError(f"{path}: not a readable video ({type(exc).__name__}: {exc})") from None
    w, h = meta.get("size", (0, 0))
    n = meta.get("nframes")
    n_frames = int(n) if isinstance(n, (int, float)) and np.isfinite(n) else None
    if n_frames is None and meta.get("duration") and meta.get("fps"):
        n_frames = int(round(meta["duration"] * meta["fps"]))
    return VideoInfo(path, float(meta.get("fps") or 25.0), (int(h), int(w)), n_frames, _has_audio(path))


def _has_audio(path: Path) -> bool:
    proc = subprocess.run([_ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    return any("Audio:" in line for line in proc.stderr.splitlines() if "Stream #" in line)


def iter_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 frames ``(H, W, 3)`` one at a time."""
    import imageio.v2 as iio

    path = Path(path)
    try:
        reader = iio.get_reader(path, "ffmpeg")
    except Exception as exc:
        raise VideoError(f"{path}: not a readable video ({type(exc).__name__}: {exc})") from None
    try:
        for i, frame in enumerate(reader):
            if max_frames is not None and i >= max_frames:
                break
            yield array_to_rgb(frame, f"{path} frame {i}")
    finally:
        reader.close()


def read_video(path: str | Path, max_frames: int | None = None) -> tuple[list[np.ndarray], VideoInfo]:
    """All frames (RGB uint8) and the clip's ``VideoInfo``; refuses empty or very long clips."""
    info = probe_video(path)
    limit = MAX_FRAMES if max_frames is None else max_frames
    frames = list(iter_frames(path, limit + (1 if max_frames is None else 0)))
    if max_frames is None and len(frames) > MAX_FRAMES:
        raise VideoError(f"{path}: more than {MAX_FRAMES} frames; trim the clip first")
    if not frames:
        raise VideoError(f"{path}: the video has no frames")
    return frames, info


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float,
                audio_from: str | Path | None = None, quality: int = 8) -> Path:
    """Encode RGB frames as H.264 mp4; copy the audio of ``audio_from`` when it has any.

    The video is written next to the target and moved into place at the end, so an interrupted run
    never leaves a half-written file under the final name.
    """
    import imageio.v2 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        silent = Path(tmp) / "video.mp4"
        writer = iio.get_writer(silent, "ffmpeg", fps=fps, codec="libx264", quality=quality,
                                pixelformat="yuv420p", macro_block_size=2)
        count = 0
        try:
            for frame in frames:
                writer.append_data(array_to_rgb(frame))
                count += 1
        finally:
            writer.close()
        if count == 0:
            raise VideoError(f"{path}: no frames to write")
        final = silent
        if audio_from is not None and _has_audio(Path(audio_from)):
            muxed = Path(tmp) / "muxed.mp4"
            cmd = [_ffmpeg(), "-y", "-loglevel", "error", "-i", str(silent), "-i", str(audio_from),
                   "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-shortest", str(muxed)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode == 0:
                final = muxed
            else:
                log.warning("could not copy the audio of %s: %s", audio_from, proc.stderr.strip()[-300:])
        shutil.move(str(final), path)
    return path


__all__ = ["VideoError", "VideoInfo", "ImageError", "probe_video", "iter_frames", "read_video", "write_video"]
