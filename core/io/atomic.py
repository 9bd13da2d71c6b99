"""Atomic outputs: every file is written under a temporary name beside its target and renamed at the end.

    with atomic_path("out.mp4") as tmp:      # tmp = ".out.mp4.<random>.part.mp4" in the same folder
        write(tmp)
    # on success tmp replaces out.mp4 (one rename); on any error, Ctrl-C or SIGTERM (see
    # ``core.cli``) tmp is removed and out.mp4 is untouched

The temporary name keeps the target's suffix, so tools that pick a format from it (ffmpeg, PIL, numpy)
behave as they would for the target. ``check_output_path`` refuses a folder or an empty name as a target
before any work starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

PART_MARK = ".part"


class OutputPathError(ValueError):
    """The output path cannot be written (a folder, an empty name); the message says what to give instead."""


def check_output_path(path: str | Path, suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` as a ``Path`` if it can be a file target; ``OutputPathError`` otherwise.

    Args:
        path: the intended output file.
        suffixes: accepted suffixes (lower case, with the dot); empty accepts any.
    """
    path = Path(path)
    example = f"out{suffixes[0]}" if suffixes else "out.png"
    if str(path) in ("", "."):
        raise OutputPathError(f"no output file given; pass a file name such as {example}")
    if path.is_dir():
        raise OutputPathError(f"{path} is a folder; give a file name inside it, such as {path / example}")
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputPathError(f"{path}: the output must end in {', '.join(suffixes)}")
    if path.parent.exists() and not path.parent.is_dir():
        raise OutputPathError(f"{path.parent} is a file, not a folder")
    return path


def part_path(target: Path) -> Path:
    """A fresh temporary path beside ``target`` that ends with the target's suffix."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}{PART_MARK}{target.suffix}")


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` when the block ends normally,
    remove it when the block raises anything (including ``KeyboardInterrupt`` and ``SystemExit``)."""
    target = check_output_path(target)
    if target.exists() and not target.is_file():  # a device or a pipe (/dev/null): never replace it
        yield target
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = part_path(target)
    try:
        yield tmp
        if not tmp.is_file():
            raise FileNotFoundError(f"{target}: nothing was written")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def save_npz(path: str | Path, arrays: dict) -> Path:
    """``np.savez_compressed`` through ``atomic_path`` (the name is kept exactly: no ``.npz`` appended)."""
    import numpy as np

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return path


def leftover_parts(folder: str | Path) -> list[Path]:
    """Temporary files of interrupted writes in ``folder`` (for tests and clean-up tools)."""
    return sorted(Path(folder).glob(f".*{PART_MARK}*"))


__all__ = ["OutputPathError", "atomic_path", "check_output_path", "leftover_parts", "part_path", "save_npz"]
