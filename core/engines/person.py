"""Person (foreground) mask with MediaPipe selfie segmentation, which ships inside the mediapipe wheel."""

from __future__ import annotations

import logging
import threading

import numpy as np

from core.logs import quiet_native

log = logging.getLogger(__name__)


class PersonSegmenter:
    """``segmenter(image RGB uint8 (H, W, 3)) -> (H, W) float32 in [0, 1]``, 1 on the person.

    The MediaPipe graph is created on first use and reused; a lock makes one instance safe to share
    between the studio's worker threads.
    """

    def __init__(self, model_selection: int = 0) -> None:
        self.model_selection = model_selection
        self._impl = None
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        with self._lock, quiet_native():
            if self._impl is None:
                from mediapipe.python.solutions import selfie_segmentation

                self._impl = selfie_segmentation.SelfieSegmentation(model_selection=self.model_selection)
            result = self._impl.process(np.ascontiguousarray(image))
        mask = result.segmentation_mask
        if mask is None:
            log.warning("selfie segmentation returned nothing; treating the whole image as background")
            return np.zeros(image.shape[:2], np.float32)
        return np.clip(mask.astype(np.float32), 0.0, 1.0)

    def close(self) -> None:
        with self._lock, quiet_native():
            if self._impl is not None:
                self._impl.close()
                self._impl = None
