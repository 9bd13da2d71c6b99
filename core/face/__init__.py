"""3D face models: ``load_face_model("ict" | "flame")``, ``FaceParams`` and the model interface."""

from __future__ import annotations

from pathlib import Path

from core.face.base import Control, EditError, FaceModel, LandmarkEmbedding
from core.face.params import FaceParams

__all__ = ["Control", "EditError", "FaceModel", "FaceParams", "LandmarkEmbedding", "load_face_model"]


def load_face_model(kind: str = "ict", path: str | Path | None = None, **options) -> FaceModel:
    """Build a face model.

    ``kind="ict"`` (default, MIT licensed) finds ``ict_face_model.npz`` with ``core.assets`` unless
    ``path`` is given; options: ``n_shape``, ``render_exclude``. ``kind="flame"`` needs ``path`` to
    FLAME 2020's ``generic_model.pkl`` (or the ``GDPW_FLAME`` environment variable); options:
    ``n_shape``, ``n_expression``.
    """
    import os

    if kind == "ict":
        from core.assets import find_ict_model
        from core.face.ict import ICTFaceModel

        return ICTFaceModel(find_ict_model(path), **options)
    if kind == "flame":
        from core.face.flame import FLAMEFaceModel

        path = path or os.environ.get("GDPW_FLAME")
        if not path:
            raise FileNotFoundError(
                "FLAME needs its licensed generic_model.pkl: register at "
                "flame.is.tue.mpg.de, then pass path=... or set GDPW_FLAME"
            )
        if not Path(path).is_file():
            raise FileNotFoundError(f"FLAME model file {path} does not exist")
        return FLAMEFaceModel(path, **options)
    raise ValueError(f"unknown face model kind '{kind}'; use 'ict' or 'flame'")
