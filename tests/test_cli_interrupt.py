"""Ctrl-C and SIGTERM during a video write: one line, a non-zero exit, no output, no temporary file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_animation_leaves_nothing(ict_model, tmp_path, sig):
    out_dir, tmp = tmp_path / "out", tmp_path / "tmp"
    out_dir.mkdir()
    tmp.mkdir()
    target = out_dir / "talk.mp4"
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core",
            "animate",
            "DEFAULT",
            "--preset",
            "talk",
            "--seconds",
            "60",
            "--crop",
            "--out",
            str(target),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not any(out_dir.iterdir()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # wait until the encoder has started writing its temporary file
    assert proc.poll() is None, proc.stderr.read()
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "interrupted, nothing written"
    assert list(out_dir.iterdir()) == [] and list(tmp.iterdir()) == []
