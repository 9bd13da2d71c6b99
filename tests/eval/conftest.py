"""Fixtures of the evaluation tests: a real sample portrait cut with the paper's crop, dlib, the analyser."""

from __future__ import annotations

import pytest

PORTRAIT = "samples__source_video__image__Obama_clip1.png"


@pytest.fixture(scope="session")
def single_thread():
    """torch on one thread for the session's image work (shared CPU: extra threads only spin)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def dlib_faces():
    pytest.importorskip("dlib", reason="dlib not installed (pip install -r requirements.txt: dlib-bin)")
    from core.eval.faces import DlibFaces, MetricUnavailable

    try:
        return DlibFaces()
    except MetricUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def analyser(ict_model, dlib_faces, single_thread):
    pytest.importorskip("mediapipe")
    from core.eval.analysis import FrameAnalyser

    an = FrameAnalyser(ict_model, faces=dlib_faces)
    yield an
    an.close()


@pytest.fixture(scope="session")
def portrait_fit(samples, ict_model, analyser):
    """``FaceFit`` of a real sample portrait: ``crop_image`` is its 256 crop."""
    from core.fit import fit_image

    path = samples / "images" / PORTRAIT
    if not path.is_file():
        pytest.skip(f"sample portrait {PORTRAIT} absent from {samples / 'images'}")
    return fit_image(path, ict_model, detector=analyser.detector)
