"""Undo/redo of slider edits: a bounded stack of ``FaceParams`` snapshots (no Gradio here)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from core.face import FaceParams


@dataclass
class History:
    """``push(current)`` before every change; ``undo(current)`` / ``redo(current)`` return the parameters to
    show (or None when there is nothing to undo/redo). At most ``limit`` steps are kept.

    One drag of a slider sends many events: pushes with the same ``key`` (the sliders that moved) within
    ``merge_s`` seconds of each other are one step.
    """

    limit: int = 50
    merge_s: float = 1.5
    _undo: list[FaceParams] = field(default_factory=list)
    _redo: list[FaceParams] = field(default_factory=list)
    _last: tuple[object, float] = (None, 0.0)

    def push(self, current: FaceParams, key: object = None) -> None:
        now = time.monotonic()
        last_key, last_t = self._last
        self._last = (key, now)
        if key is not None and key == last_key and now - last_t < self.merge_s and self._undo:
            return
        self._undo.append(current.clone())
        del self._undo[: -self.limit]
        self._redo.clear()

    def undo(self, current: FaceParams) -> FaceParams | None:
        if not self._undo:
            return None
        self._redo.append(current.clone())
        self._last = (None, 0.0)
        return self._undo.pop()

    def redo(self, current: FaceParams) -> FaceParams | None:
        if not self._redo:
            return None
        self._undo.append(current.clone())
        return self._redo.pop()

    def clear(self) -> None:
        self._last = (None, 0.0)
        self._undo.clear()
        self._redo.clear()

    @property
    def depth(self) -> tuple[int, int]:
        """(steps that can be undone, steps that can be redone)."""
        return len(self._undo), len(self._redo)
