"""Stopping the studio (SIGTERM, as a platform does) removes every folder it made: sessions, examples and
Gradio's own cache of uploads and results."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("gradio_client")


def _wait_up(url: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the studio exited on start"
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the studio did not start")


def test_sigterm_leaves_no_temporary_files(ict_model, portrait, tmp_path):
    from gradio_client import Client, handle_file

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    env.update(
        TMPDIR=str(tmp),
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONPATH=str(root),
    )
    proc = subprocess.Popen(
        [sys.executable, str(root / "app.py")],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_up(url, proc)
        client = Client(url, verbose=False)
        client.predict(handle_file(str(portrait)), api_name="/upload")
        client.predict(api_name="/full")
        assert any(tmp.iterdir())  # the studio did use the temporary folder
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
    assert list(tmp.iterdir()) == []
