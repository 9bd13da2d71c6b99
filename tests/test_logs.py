"""Quiet by default: the CLI's first command prints our result and our own messages only; -v shows all."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from core.logs import level_from_env, quiet_native, setup_logging

ROOT = Path(__file__).resolve().parent.parent
NATIVE = ("W0000", "I0000", "INFO: Created TensorFlow", "WARNING: All log messages before absl")


def _edit(tmp_path, *extra, env=None):
    out = tmp_path / "edited.png"
    cmd = [sys.executable, "-m", "core", *extra, "edit", "DEFAULT", "--set", "yaw=15", "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "GDPW_LOG_LEVEL"} | (env or {})
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_first_command_prints_no_third_party_lines(tmp_path):
    res = _edit(tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["out"].endswith("edited.png")
    assert not [line for line in res.stderr.splitlines() if line.startswith(NATIVE)], res.stderr
    assert all(line.startswith(("INFO core", "WARNING core")) for line in res.stderr.splitlines()), res.stderr


def test_debug_level_shows_everything(tmp_path):
    res = _edit(tmp_path, env={"GDPW_LOG_LEVEL": "DEBUG"})
    assert res.returncode == 0, res.stderr
    assert any(line.startswith(NATIVE) for line in res.stderr.splitlines()), res.stderr[-2000:]


def test_native_output_is_hidden_unless_debugging(capfd):
    setup_logging()
    native = logging.getLogger("core.native")
    try:
        native.setLevel(logging.INFO)
        with quiet_native(), quiet_native():  # nested (threads): restored once, by the last one out
            os.write(2, b"W0000 native chatter\n")
        os.write(2, b"after the block\n")
        native.setLevel(logging.DEBUG)
        with quiet_native():
            os.write(2, b"W0000 shown when debugging\n")
    finally:
        native.setLevel(logging.NOTSET)
    err = capfd.readouterr().err
    assert "native chatter" not in err and "after the block" in err and "shown when debugging" in err


def test_level_from_env(monkeypatch):
    monkeypatch.setenv("GDPW_LOG_LEVEL", "warning")
    assert level_from_env() == logging.WARNING
    monkeypatch.setenv("GDPW_LOG_LEVEL", "nonsense")
    assert level_from_env() == logging.INFO
