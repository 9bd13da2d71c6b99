"""Mesh files."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Write vertices ``(N, 3)`` and triangles ``(F, 3)`` (0-based) as a Wavefront OBJ."""
    from core.io.atomic import atomic_path

    path = Path(path)
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(vertices, dtype=np.float64)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces, dtype=np.int64)]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path
