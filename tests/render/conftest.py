"""Fixtures of the render tests (helpers live in render_helpers.py)."""

from __future__ import annotations

import pytest
from render_helpers import IctMesh, ict_path, load_ict


@pytest.fixture(scope="session")
def ict() -> IctMesh:
    """The ICT mesh; skips when the model file is absent."""
    path = ict_path()
    if not path.is_file():
        pytest.skip(f"ICT face model not found at {path} (set GDPW_ASSETS to the assets folder)")
    return load_ict(path)
