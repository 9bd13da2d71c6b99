"""Video input and output through imageio's ffmpeg (the binary ships in the imageio-ffmpeg wheel), streamed.

- ``probe_video``: frame rate (parsed from ffmpeg's stream line, so "1k fps" is 1000), size, duration,
  an estimated frame count and whether there is audio. Nothing is decoded.
- ``iter_frames`` / ``iter_batches``: frames decoded one at a time (or in lists of ``batch``), so a
  caller holds at most one batch: memory does not grow with the clip's length.
- ``write_video``: encodes frames as they arrive, into a temporary file beside the target that is renamed
  at the end (``core.io.atomic``); an error, Ctrl-C or SIGTERM leaves neither a truncated file nor a
  temporary one.
- ``read_video``: the whole clip as a list, for short clips only (tests, notebooks).
- ``VideoLimits``: a length limit in frames and seconds both, checked before any work (the studio).

Errors are ``VideoError`` (a ``ValueError``) with one sentence; ffmpeg's own output goes to the log.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.io.atomic import atomic_path, part_path
from core.io.image import ImageError, array_to_rgb

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
MAX_FRAMES = 20_000  # read_video only: ~11 minutes at 30 fps in a list; stream longer clips
MAX_FPS = 1000.0  # frame rates accepted for writing (and reported by probe_video)
DEFAULT_FPS = 25.0  # when a container states no frame rate at all


class VideoError(ValueError):
    """The input is not a usable video; the message names the file and the reason in one sentence."""


@dataclass
class VideoInfo:
    """What ``probe_video`` found: ``size`` is ``(H, W)``; ``n_frames`` is estimated from the duration
    (None when the container states neither); ``duration`` in seconds (None when unknown)."""

    path: Path
    fps: float
    size: tuple[int, int]
    n_frames: int | None
    has_audio: bool
    duration: float | None = None


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


# ------------------------------------------------------------------------------------------ values
def _in_range(raw: object, maximum: float, name: str, unit: str, kind: str) -> float:
    """``raw`` as a finite float in (0, ``maximum``]; ``ValueError`` naming the valid range otherwise."""
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of {unit}, got {raw!r}") from None
    if not math.isfinite(value) or not 0.0 < value <= maximum:
        raise ValueError(
            f"{name} must be {kind} in (0, {maximum:g}]{'' if unit != 'seconds' else ' seconds'}, got {value:g}"
        )
    return value


def check_fps(fps: object, name: str = "fps") -> float:
    """``fps`` as a float in (0, ``MAX_FPS``]; ``ValueError`` naming the valid range otherwise."""
    return _in_range(fps, MAX_FPS, name, "frames per second", "a finite frame rate")


def check_seconds(seconds: object, maximum: float, name: str = "seconds") -> float:
    """A duration in (0, ``maximum``] seconds; ``ValueError`` naming the valid range otherwise."""
    return _in_range(seconds, maximum, name, "seconds", "a duration")


@dataclass(frozen=True)
class VideoLimits:
    """A clip length limit in frames and in seconds (None: no limit), checked before work starts."""

    max_frames: int | None = None
    max_seconds: float | None = None

    @classmethod
    def from_env(cls, frames: int = 900, seconds: float = 30.0) -> VideoLimits:
        """Defaults overridden by ``GDPW_MAX_CLIP_FRAMES`` / ``GDPW_MAX_CLIP_SECONDS``."""
        return cls(
            int(os.environ.get("GDPW_MAX_CLIP_FRAMES", frames)), float(os.environ.get("GDPW_MAX_CLIP_SECONDS", seconds))
        )

    def check(self, info: VideoInfo, frames: int | None = None, label: str | None = None) -> None:
        """Refuse (``VideoError``) a clip of ``frames`` frames (default: the whole clip) beyond the limits."""
        label = label or info.path.name
        n = frames if frames is not None else info.n_frames
        seconds = n / info.fps if n is not None else info.duration
        if self.max_frames is not None and n is not None and n > self.max_frames:
            raise VideoError(
                f"{label} has {n:,} frames at {info.fps:g} fps, more than the {self.max_frames:,} "
                "frames allowed here; trim it, lower its frame rate or use the command line"
            )
        if self.max_seconds is not None and seconds is not None and seconds > self.max_seconds + 1e-6:
            raise VideoError(
                f"{label} lasts {seconds:.1f} s, more than the {self.max_seconds:g} s allowed here; "
                "trim it or use the command line"
            )


# ------------------------------------------------------------------------------------------ probing
_FPS = re.compile(r"([\d.]+)(k?) (?:fps|tbr)")
_SIZE = re.compile(r", (\d{1,5})x(\d{1,5})[\s,\[]")
_DURATION = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")


def _stream_fps(line: str) -> float | None:
    for m in _FPS.finditer(line):
        value = float(m.group(1)) * (1000.0 if m.group(2) else 1.0)
        if 0 < value <= MAX_FPS:
            return value
    return None


def _parse_probe(path: Path, text: str) -> VideoInfo:
    streams = [ln for ln in text.splitlines() if "Stream #" in ln]
    video = next((ln for ln in streams if "Video:" in ln), None)
    if video is None:
        log.debug("ffmpeg on %s:\n%s", path, text[-2000:])
        if streams:
            raise VideoError(f"{path}: the file has no video stream (audio only?); use a video file")
        raise VideoError(f"{path}: not a readable video (the file is damaged or not a video)")
    size = _SIZE.search(video)
    dur = _DURATION.search(text)
    duration = (int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3))) if dur else None
    fps = _stream_fps(video)
    if fps is None:
        log.warning("%s: no frame rate stated; assuming %g fps", path, DEFAULT_FPS)
        fps = DEFAULT_FPS
    n_frames = int(round(duration * fps)) if duration else None
    h, w = (int(size.group(2)), int(size.group(1))) if size else (0, 0)
    return VideoInfo(path, fps, (h, w), n_frames, any("Audio:" in ln for ln in streams), duration)


def probe_video(path: str | Path) -> VideoInfo:
    """Frame rate, size, duration, estimated frame count and audio of a video file, without decoding it."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: the file is empty")
    proc = subprocess.run(
        [_ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, errors="replace"
    )
    return _parse_probe(path, proc.stderr)


def _has_audio(path: Path) -> bool:
    try:
        return probe_video(path).has_audio
    except VideoError:
        return False


# ------------------------------------------------------------------------------------------ reading
def _open_reader(path: Path):
    import imageio.v2 as iio

    try:
        return iio.get_reader(path, "ffmpeg")
    except Exception as exc:  # imageio raises several types, with ffmpeg's banner in the text
        log.debug("ffmpeg could not open %s: %s: %s", path, type(exc).__name__, exc)
        raise VideoError(f"{path}: not a readable video (the file is damaged or not a video)") from None


def iter_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 frames ``(H, W, 3)`` decoded one at a time (at most ``max_frames``)."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    reader = _open_reader(path)
    i = 0
    try:
        frames = iter(reader)
        while max_frames is None or i < max_frames:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except (RuntimeError, OSError, ValueError) as exc:
                log.debug("ffmpeg failed on %s at frame %d: %s", path, i, exc)
                raise VideoError(f"{path}: the video is damaged after frame {i}") from None
            yield array_to_rgb(frame, f"{path} frame {i}")
            i += 1
    finally:
        with contextlib.suppress(Exception):
            reader.close()


def iter_batches(frames: Iterable[np.ndarray], batch: int) -> Iterator[list[np.ndarray]]:
    """Consecutive lists of ``batch`` frames (the last may be shorter) from any frame iterable."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    pending: list[np.ndarray] = []
    for frame in frames:
        pending.append(frame)
        if len(pending) == batch:
            yield pending
            pending = []
    if pending:
        yield pending


def read_video(path: str | Path, max_frames: int | None = None) -> tuple[list[np.ndarray], VideoInfo]:
    """All frames (RGB uint8) and the clip's ``VideoInfo``, for short clips; refuses empty clips and clips
    over ``MAX_FRAMES`` (use ``iter_frames`` to stream those)."""
    info = probe_video(path)
    limit = MAX_FRAMES if max_frames is None else max_frames
    frames = list(iter_frames(path, limit + (1 if max_frames is None else 0)))
    if max_frames is None and len(frames) > MAX_FRAMES:
        raise VideoError(f"{path}: more than {MAX_FRAMES} frames to hold in memory; stream it with iter_frames")
    if not frames:
        raise VideoError(f"{path}: the video has no frames")
    return frames, info


# ------------------------------------------------------------------------------------------ writing
def _encode(path: Path, frames: Iterable[np.ndarray], fps: float, quality: int) -> int:
    """Encode ``frames`` into ``path`` as they arrive; returns the count."""
    import imageio.v2 as iio

    writer = iio.get_writer(
        path,
        "ffmpeg",
        fps=fps,
        codec="libx264",
        quality=quality,
        pixelformat="yuv420p",
        macro_block_size=2,
        ffmpeg_log_level="error",
    )
    count = 0
    try:
        for frame in frames:
            writer.append_data(_even(array_to_rgb(frame)))
            count += 1
    except BaseException:
        with contextlib.suppress(Exception):  # the encoder may be gone already (Ctrl-C reaches it too)
            writer.close()
        raise
    writer.close()
    return count


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad an odd height or width by one replicated row/column (H.264 in yuv420p needs even sizes)."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _mux_audio(silent: Path, audio_from: Path, out: Path, seconds: float) -> bool:
    """Copy the video of ``silent`` and the audio of ``audio_from`` into ``out``, cut at the video's length
    ``seconds`` (never ``-shortest``: a slightly shorter audio track must not drop the last frames)."""
    cmd = [
        _ffmpeg(),
        "-y",
        "-loglevel",
        "error",
        "-i",
        str(silent),
        "-i",
        str(audio_from),
        "-map",
        "0:v:0",
        "-map",
        "1:a:0",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-t",
        f"{seconds:.6f}",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        log.warning("could not copy the audio of %s; the video is silent", audio_from)
        log.debug("ffmpeg: %s", proc.stderr.strip()[-500:])
    return proc.returncode == 0


def write_video(
    path: str | Path, frames: Iterable[np.ndarray], fps: float, audio_from: str | Path | None = None, quality: int = 8
) -> Path:
    """Encode RGB frames (any iterable, consumed as it is produced) as H.264 mp4; copy the audio of
    ``audio_from`` when it has any.

    The video is encoded into a temporary file beside the target and renamed at the end, so an
    interrupted run never leaves a half-written file under the final name, nor a temporary one.
    """
    fps = check_fps(fps)
    with atomic_path(path) as tmp:
        count = _encode(tmp, frames, fps, quality)
        if count == 0:
            raise VideoError(f"{path}: no frames to write")
        if audio_from is not None and _has_audio(Path(audio_from)):
            muxed = part_path(Path(path))
            try:
                if _mux_audio(tmp, Path(audio_from), muxed, count / fps):
                    os.replace(muxed, tmp)
            finally:
                muxed.unlink(missing_ok=True)
    return Path(path)


__all__ = [
    "VideoError",
    "VideoInfo",
    "VideoLimits",
    "ImageError",
    "check_fps",
    "check_seconds",
    "probe_video",
    "iter_frames",
    "iter_batches",
    "read_video",
    "write_video",
    "MAX_FPS",
]
