"""Shared fixtures. Tests that need the ICT model skip (with the reason) only when it is truly absent."""

from __future__ import annotations

import pytest


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
        pytest.skip("sample media absent (set GDPW_SAMPLES or place ../shared/samples beside the checkout)")
    return path
