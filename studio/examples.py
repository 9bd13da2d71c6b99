"""Example portraits and driving clips for the studio.

The default portrait is scikit-image's ``astronaut`` (public domain, ships with scikit-image), so the
studio works with nothing else present. Sample portraits and clips from ``core.assets.samples_dir()``
(``../shared/samples``) are offered as well when that folder exists and samples are enabled; they are for
local tests and demos only: they are never copied into the repository and a public deployment (a Hugging
Face Space, where ``SPACE_ID`` is set) does not offer them unless ``GDPW_STUDIO_SAMPLES=1``.

Files the page needs are staged into a temporary folder (served by Gradio like any temporary file);
nothing under the samples folder is exposed directly.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

# Curated picks (file names in samples/images and samples/videos); missing ones are skipped.
SAMPLE_PORTRAITS = [
    ("vintage portrait", "assets__examples__source__s1.jpg"),
    ("black and white", "assets__examples__source__s2.jpg"),
    ("close-up", "assets__examples__source__s42.jpg"),
    ("historical, colourised", "assets__examples__source__s12.jpg"),
    ("speaker", "examples__obama2.jpg"),
    ("frontal photo", "assets__examples__driving__d8.jpg"),
]
SAMPLE_CLIPS = [
    ("talking man, with audio (7 s)", "assets__examples__driving__d20.mp4"),
    ("man with glasses, with audio (8 s)", "assets__examples__driving__d19.mp4"),
    ("man talking, with audio (7 s)", "assets__examples__driving__d12.mp4"),
    ("woman, with audio (12 s)", "assets__examples__driving__d3.mp4"),
    ("head turns, green screen (3 s)", "assets__examples__driving__d0.mp4"),
    ("surprised actor (4 s)", "data__style_clip__video__M030_front_surprised_level3_001.mp4"),
    ("happy actor (4 s)", "data__style_clip__video__W009_front_happy_level3_001.mp4"),
]


@dataclass(frozen=True)
class Example:
    label: str
    path: Path
    sample: bool  # from the samples folder (not shipped)


def samples_enabled(flag: bool | None = None) -> bool:
    """Whether sample media are offered: ``flag``, else ``GDPW_STUDIO_SAMPLES`` (0/1), else on unless this
    is a Hugging Face Space."""
    if flag is not None:
        return flag
    env = os.environ.get("GDPW_STUDIO_SAMPLES")
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off", "")
    return not os.environ.get("SPACE_ID")


class ExampleStore:
    """Example portraits and clips, staged in a private temporary folder."""

    def __init__(self, samples: bool | None = None, workdir: Path | None = None) -> None:
        self._owned = workdir is None  # a folder we made is removed by close()
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="gdpw-studio-examples-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.portraits: list[Example] = [Example("astronaut", self._astronaut(), False)]
        self.clips: list[Example] = []
        root = self._samples_root(samples)
        if root is not None:
            for label, name in SAMPLE_PORTRAITS:
                if (root / "images" / name).is_file():
                    self.portraits.append(Example(label, root / "images" / name, True))
            for label, name in SAMPLE_CLIPS:
                if (root / "videos" / name).is_file():
                    self.clips.append(Example(label, root / "videos" / name, True))
        log.info("studio examples: %d portraits, %d clips", len(self.portraits), len(self.clips))

    def close(self) -> None:
        """Remove the staged files (the folder too when this store made it)."""
        import shutil

        if self._owned:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @staticmethod
    def _samples_root(samples: bool | None) -> Path | None:
        if not samples_enabled(samples):
            return None
        from core.assets import samples_dir

        return samples_dir()

    def _astronaut(self) -> Path:
        path = self.workdir / "astronaut.png"
        if not path.is_file():
            from skimage import data

            Image.fromarray(data.astronaut()).save(path)
        return path

    @property
    def default(self) -> Example:
        return self.portraits[0]

    def thumbnails(self, size: int = 160) -> list[tuple[np.ndarray, str]]:
        """Square thumbnails ``(size, size, 3)`` with captions, for a gallery."""
        out = []
        for ex in list(self.portraits):
            try:
                img = Image.open(ex.path).convert("RGB")
            except OSError as exc:  # a broken sample must not break the page
                log.warning("example %s unreadable: %s", ex.path, exc)
                self.portraits.remove(ex)
                continue
            w, h = img.size
            side = min(w, h)
            img = img.crop(
                ((w - side) // 2, max(0, (h - side) // 4), (w - side) // 2 + side, max(0, (h - side) // 4) + side)
            ).resize((size, size), Image.Resampling.LANCZOS)
            out.append((np.asarray(img), ex.label))
        return out

    def thumbnail_files(self, size: int = 160) -> list[Path]:
        """The thumbnails as PNG files in the temporary folder (one per portrait, same order)."""
        paths = []
        for i, (image, _) in enumerate(self.thumbnails(size)):
            path = self.workdir / f"thumb-{i:02d}.png"
            if not path.is_file():
                Image.fromarray(image).save(path)
            paths.append(path)
        return paths

    def staged(self, example: Example) -> Path:
        """A copy of ``example`` in the temporary folder (what the page may download)."""
        if not example.sample:
            return example.path
        target = self.workdir / example.path.name
        with self._lock:
            if not target.is_file():
                shutil.copyfile(example.path, target)
        return target

    def clip(self, label: str) -> Example | None:
        return next((c for c in self.clips if c.label == label), None)
