"""Peak memory of reenacting a long driving clip (the streaming video path), against the 2.5 GB aim.

    python bench/long_video.py [--clip CLIP.mp4 | --minutes 10 --height 720] [--portrait PHOTO]
                               [--engine geometry|copy] [--max-frames N] [--crop]

Without ``--clip`` a driving clip is generated once with ffmpeg (a sample talking-head clip looped to
``--minutes`` at ``--height`` pixels, 25 fps) into the temporary folder. The reenactment runs in this
process (``Animator.reenact``: decode and fit streamed, render and encode in batches) while a thread samples
the resident memory every half second. ``--engine copy`` (the registry's baseline) returns
the source crop (decode, fit, paste-back and encode are the real ones) when the geometry engine would take
hours on a small CPU. Prints frames, seconds, the peak and final resident memory and the ratio to the aim.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import devsamples  # noqa: F401  (GDPW_SAMPLES: the development samples by default)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AIM_GB = 2.5


def make_clip(minutes: float, height: int, out: Path) -> Path:
    import imageio_ffmpeg

    from core.assets import samples_dir

    root = samples_dir()
    if root is None:
        raise SystemExit("no sample clip to loop: pass --clip")
    src = root / "videos" / "assets__driving.mp4"
    width = height * 16 // 9 // 2 * 2
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            "-stream_loop",
            "-1",
            "-i",
            str(src),
            "-t",
            str(minutes * 60),
            "-an",
            "-vf",
            f"scale=-2:{height},pad={width}:{height}:(ow-iw)/2:0,fps=25",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "28",
            str(out),
        ],
        check=True,
    )
    return out


class Sampler(threading.Thread):
    """Resident memory of this process every ``period`` seconds; ``peak`` in bytes."""

    def __init__(self, period: float = 0.5) -> None:
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process()
        self.period = period
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self.stop.wait(self.period)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", type=Path)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--portrait", type=Path)
    p.add_argument("--engine", default="geometry", choices=["geometry", "copy"])
    p.add_argument("--max-frames", type=int)
    p.add_argument("--crop", action="store_true", help="write the crop, not the full photo")
    args = p.parse_args()
    from core.animator import Animator
    from core.io.examples import default_portrait
    from core.io.video import probe_video

    with tempfile.TemporaryDirectory() as tmp:
        clip = args.clip or make_clip(args.minutes, args.height, Path(tmp) / "driving.mp4")
        info = probe_video(clip)
        print(f"driving clip: {info.size[1]}x{info.size[0]}, {info.fps:g} fps, ~{info.n_frames} frames")
        anim = Animator(engine=args.engine)
        anim.load_source(args.portrait if args.portrait else default_portrait())
        sampler = Sampler()
        sampler.start()
        t0 = time.perf_counter()
        out = anim.reenact(clip, out=Path(tmp) / "out.mp4", full_resolution=not args.crop, max_frames=args.max_frames)
        seconds = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
        frames = probe_video(out).n_frames
    peak = sampler.peak / 1e9
    print(
        f"engine {args.engine}: {frames} frames in {seconds:.0f} s ({frames / seconds:.1f} frames/s), "
        f"peak RSS {peak:.2f} GB, final {sampler.proc.memory_info().rss / 1e9:.2f} GB, "
        f"peak / {AIM_GB} GB aim = {peak / AIM_GB:.2f}"
    )


if __name__ == "__main__":
    main()
