"""Fixtures of the fitting tests: the ICT fitter, the sample folder, a MediaPipe detector."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def fitter(ict_model):
    from core.fit.api import get_fitter

    return get_fitter(ict_model)


@pytest.fixture(scope="session")
def samples():
    from core.assets import samples_dir

    path = samples_dir()
    if path is None:
        pytest.skip("sample media absent (../shared/samples or $GDPW_SAMPLES)")
    return path


@pytest.fixture(scope="session")
def detector():
    pytest.importorskip("mediapipe")
    from core.fit.landmarks import LandmarkDetector

    det = LandmarkDetector(video=False)
    yield det
    det.close()
