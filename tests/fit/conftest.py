"""Fixtures of the fitting tests: the ICT fitter and a MediaPipe detector."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def fitter(ict_model):
    from core.fit.api import get_fitter

    return get_fitter(ict_model)


@pytest.fixture(scope="session")
def detector():
    pytest.importorskip("mediapipe")
    from core.fit.landmarks import LandmarkDetector

    det = LandmarkDetector(video=False)
    yield det
    det.close()
