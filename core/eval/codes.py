"""How organised a neural-code table is (the learned engine's per-vertex codes, ``core.render.guidance``).

The paper's figure 2 shows trained codes that are left/right symmetric and vary smoothly over the face. Two
scores say how far a table is from its random initialisation (U[0, 1), where both are about 0), each
``1 - mean code distance of related vertex pairs / mean code distance of random pairs`` over the same vertices:

- ``symmetry``: the related pairs are mirror partners (``core.face.mirror``); training with horizontal flips
  gives both partners the same gradients on average;
- ``smoothness``: the related pairs are mesh neighbours (edges of the rendered triangles); neighbours render
  into neighbouring pixels, so they get similar gradients.

1 means identical codes for related pairs, 0 no more alike than random pairs. By default only face vertices
count (the ``face`` region, off the midline for ``symmetry``): training on talking heads rarely shows the
back of the head, whose codes keep their initial values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CodeStructure", "code_structure"]


@dataclass(frozen=True)
class CodeStructure:
    """Scores of one code table (see the module docstring) and the number of vertices and pairs they use."""

    symmetry: float
    smoothness: float
    vertices: int
    mirror_pairs: int
    edges: int


def _pair_score(codes: np.ndarray, a: np.ndarray, b: np.ndarray, pool: np.ndarray, rng) -> float:
    """``1 - mean |c_a - c_b| / mean |c_i - c_j|`` for pairs (a, b) and as many random pairs from ``pool``."""
    related = np.linalg.norm(codes[a] - codes[b], axis=1).mean()
    i, j = rng.choice(pool, size=(2, max(len(a), 1000)))
    random = np.linalg.norm(codes[i] - codes[j], axis=1).mean()
    return float(1.0 - related / max(random, 1e-12))


def code_structure(codes: np.ndarray, model, region: str | None = "face", seed: int = 0) -> CodeStructure:
    """Scores of ``codes (N, C)`` (one row per vertex of ``model``) over the vertices of ``region`` that the
    model renders (all rendered vertices with ``region=None``)."""
    from core.face.mirror import model_mirror_map, symmetric_vertices

    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] != model.n_vertices:
        raise ValueError(f"codes must be ({model.n_vertices}, C) for this model, got {codes.shape}")
    faces = model.render_faces.numpy()
    keep = np.zeros(model.n_vertices, bool)
    keep[np.unique(faces)] = True
    if region is not None:
        keep &= model.regions[region].numpy()
    template = model.v_template.numpy()
    mirror = model_mirror_map(model)
    sym = keep & keep[mirror] & symmetric_vertices(template, mirror) & (np.abs(template[:, 0]) > 0.5)
    ids = np.nonzero(sym)[0]
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    edges = edges[keep[edges].all(1) & (edges[:, 0] != edges[:, 1])]
    pool = np.nonzero(keep)[0]
    rng = np.random.default_rng(seed)
    return CodeStructure(
        symmetry=_pair_score(codes, ids, mirror[ids], pool, rng),
        smoothness=_pair_score(codes, edges[:, 0], edges[:, 1], pool, rng),
        vertices=int(keep.sum()),
        mirror_pairs=len(ids),
        edges=len(edges),
    )
