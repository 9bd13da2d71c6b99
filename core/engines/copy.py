"""The ``copy`` engine: every output is the source crop. The baseline of the evaluation protocols, and the
smallest complete example of the ``Engine`` interface."""

from __future__ import annotations

import numpy as np

from core.engines.base import EngineResult, Inspection, check_source
from core.face.base import FaceModel
from core.face.params import FaceParams


class CopyEngine:
    """Output = source crop, whatever the target."""

    name = "copy"

    def __init__(self, model: FaceModel | None = None) -> None:
        self.model = model

    def prepare(
        self,
        crop_image: np.ndarray,
        params: FaceParams,
        photo: np.ndarray | None = None,
        around: np.ndarray | None = None,
    ) -> np.ndarray:
        check_source(crop_image, params)
        return np.ascontiguousarray(crop_image)

    def render(self, state: np.ndarray, target: FaceParams, debug: bool = False) -> EngineResult:
        images = np.repeat(state[None], target.batch_size, axis=0)
        return EngineResult(images, None, None)

    def inspect(self, state: np.ndarray, target: FaceParams) -> Inspection:
        return Inspection(image=state.copy(), notes=["the copy engine returns the source unchanged"])
