"""The one list of engines, used by the ``Animator``, the command line, the studio and evaluation.

A new engine is a module in ``core/engines/`` with a class that follows ``core.engines.base.Engine`` and is
built as ``Class(model)`` (or ``Class(model, weights=...)`` when it needs weights), plus one line in
``ENGINES`` below. Engine modules are imported only when an engine is built, so listing them is cheap.
Tests and plugins can add entries at run time with ``register``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.face.base import FaceModel


@dataclass(frozen=True)
class EngineSpec:
    """How to build an engine: ``target`` is ``"module:Class"`` (or any callable taking the same arguments)."""

    target: Any
    summary: str
    weights_finder: Any = None  # engines with weights: "module:function" () -> Path, ValueError when none
    editing: bool = True  # offered for editing (False: the evaluation baseline)

    @property
    def needs_weights(self) -> bool:
        return self.weights_finder is not None

    def factory(self):
        return _resolve(self.target)


def _resolve(target: Any):
    if callable(target):
        return target
    module, _, attr = str(target).partition(":")
    return getattr(importlib.import_module(module), attr)


ENGINES: dict[str, EngineSpec] = {
    "copy": EngineSpec("core.engines.copy:CopyEngine", "output = source (the evaluation baseline)", editing=False),
    "geometry": EngineSpec("core.engines.geometry:GeometryEngine", "training-free warp along the 3D face"),
    "pwm": EngineSpec(
        "core.engines.pwm:PWMEngine",
        "the paper's learned generator (needs weights)",
        weights_finder="core.engines.pwm:find_weights",
    ),
}


def register(name: str, spec: EngineSpec) -> None:
    """Add (or replace) an engine under ``name``."""
    ENGINES[name] = spec


def engine_names(editing: bool = False) -> list[str]:
    """Registered engine names, in order; ``editing`` leaves out the evaluation-only baseline."""
    return [n for n, spec in ENGINES.items() if spec.editing or not editing]


def find_engine_weights(name: str) -> Path | None:
    """Where the weights of engine ``name`` were found (its default search order), or None when it needs
    weights and has none (or needs none)."""
    spec = ENGINES[name]
    if spec.weights_finder is None:
        return None
    try:
        return Path(_resolve(spec.weights_finder)())
    except ValueError:
        return None


def usable_engines(editing: bool = True) -> list[str]:
    """Engines that can be built now: those needing weights only when their weights are found."""
    return [n for n in engine_names(editing) if not ENGINES[n].needs_weights or find_engine_weights(n)]


def make_engine(name: str, model: FaceModel, weights: str | Path | None = None):
    """The engine ``name`` for ``model``; ``weights`` for engines that need them (default: their own
    search order). Raises ``ValueError`` for an unknown name; ``pwm`` without weights raises
    ``PWMWeightsError`` (a ``ValueError``) naming where it looked."""
    spec = ENGINES.get(name)
    if spec is None:
        raise ValueError(f"unknown engine '{name}'; available: {', '.join(ENGINES)}")
    build = spec.factory()
    return build(model, weights=weights) if spec.needs_weights else build(model)
