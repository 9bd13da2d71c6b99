"""A studio for the benchmarks: ``python app.py`` in a subprocess on a free local port (127.0.0.1 only)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    """Poll ``url`` until it answers; ``SystemExit`` if the process ends or the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the studio did not start (run `python app.py` to see why)") from None
            time.sleep(0.2)


def start_studio(root: Path = ROOT, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start ``root/app.py`` on a free port; returns the process and its URL (not yet waited for)."""
    port = free_port()
    env = dict(
        os.environ if env is None else env,
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
    )
    env.setdefault("GDPW_LOG_LEVEL", "WARNING")
    proc = subprocess.Popen(
        [sys.executable, str(root / "app.py")], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return proc, f"http://127.0.0.1:{port}/"


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextmanager
def served(url: str | None) -> Iterator[str]:
    """The given URL, or a studio started for the benchmark and stopped at the end."""
    if url:
        yield url
        return
    proc, url = start_studio()
    try:
        wait_until_up(url, proc)
        yield url
    finally:
        stop(proc)
