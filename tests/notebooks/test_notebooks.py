"""Execute every notebook headless on small inputs (GDPW_FAST=1); any cell error fails the test."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"quickstart.ipynb", "neural_codes_tsne.ipynb",
                                           "displacement_fields.ipynb"}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_shows_pictures(path, monkeypatch):
    monkeypatch.setenv("GDPW_FAST", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend must draw the figures
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    pictures = [o for o in outputs if o.get("output_type") in ("display_data", "execute_result")
                and ({"image/png", "application/vnd.plotly.v1+json"} & set(o.get("data", {})))]
    assert len(pictures) >= 2, f"{path.name} shows {len(pictures)} plots or images"
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors
    streams = [o for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stdout"]
    assert not streams, f"{path.name} prints instead of plotting: {streams[0].get('text', '')[:200]}"
