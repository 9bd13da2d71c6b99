import json
import subprocess
import sys

import numpy as np
import pytest

from core.cli import main, parse_assignments


def test_parse_assignments():
    assert parse_assignments(["yaw=15", " jawOpen =0.4"]) == {"yaw": 15.0, "jawOpen": 0.4}
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        parse_assignments(["yaw"])
    with pytest.raises(SystemExit, match="not a number"):
        parse_assignments(["yaw=left"])


def test_mesh_command_writes_posed_obj(ict_model, tmp_path, capsys):
    out = tmp_path / "face.obj"
    assert main(["mesh", "--set", "yaw=20", "--set", "jawOpen=0.5", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    verts = np.array([line.split()[1:] for line in out.read_text().splitlines() if line.startswith("v ")], dtype=float)
    assert summary["vertices"] == len(verts) == ict_model.n_vertices
    expected = ict_model(ict_model.apply_edits(ict_model.neutral(), {"yaw": 20, "jawOpen": 0.5}))[0]
    assert np.abs(verts - expected.numpy()).max() < 1e-5


def test_unknown_control_is_a_clear_error(ict_model):
    proc = subprocess.run(
        [sys.executable, "-m", "core", "mesh", "--set", "yawn=3", "--out", "/dev/null"], capture_output=True, text=True
    )
    assert proc.returncode != 0 and "did you mean yaw" in proc.stderr
