"""Engines turn a source crop and target face parameters into images (``base.Engine``).

``registry`` lists them (``copy``, ``geometry``, ``pwm``) and builds them: ``make_engine(name, model)``.
"""

from core.engines.base import Engine, EngineResult, Inspection
from core.engines.registry import (
    ENGINES,
    EngineSpec,
    engine_names,
    find_engine_weights,
    make_engine,
    register,
    usable_engines,
)

__all__ = [
    "ENGINES",
    "Engine",
    "EngineResult",
    "EngineSpec",
    "Inspection",
    "engine_names",
    "find_engine_weights",
    "make_engine",
    "register",
    "usable_engines",
]
