"""Shared fixtures. Tests that need the ICT model skip (with the reason) only when it is truly absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Development material lives beside the checkout; the package never looks there by itself, so the
# tests say where it is (an explicit GDPW_SAMPLES wins).
DEV_SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
if "GDPW_SAMPLES" not in os.environ and (DEV_SHARED / "samples").is_dir():
    os.environ["GDPW_SAMPLES"] = str(DEV_SHARED / "samples")


@pytest.fixture(scope="session")
def ict_model():
    from core.assets import AssetNotFoundError
    from core.face import load_face_model

    try:
        return load_face_model("ict")
    except AssetNotFoundError as exc:
        pytest.skip(f"ICT face model absent: {exc}")


@pytest.fixture(scope="session")
def samples():
    """The sample media folder (portraits in images/, clips in videos/)."""
    from core.assets import samples_dir

    path = samples_dir()
    if path is None:
        pytest.skip("sample media absent (set GDPW_SAMPLES, or place shared/samples beside the checkout)")
    return path


@pytest.fixture(scope="session")
def face_like_flame(tmp_path_factory):
    """A face-like model file in FLAME's pickle format with its MediaPipe embedding beside it (made from the
    shipped ICT model; ``tests/flame_helpers.py``): the path of its ``generic_model.pkl``."""
    from flame_helpers import write_face_like_flame

    from core.assets import AssetNotFoundError, find_ict_model

    try:
        ict = find_ict_model()
    except AssetNotFoundError as exc:
        pytest.skip(f"ICT face model absent: {exc}")
    return write_face_like_flame(tmp_path_factory.mktemp("flame"), ict)


@pytest.fixture(scope="session")
def flame_model(face_like_flame):
    from core.face import load_face_model

    return load_face_model("flame", face_like_flame)
