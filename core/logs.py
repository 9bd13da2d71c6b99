"""Logging for the command line, the studio and the notebooks: our messages through ``logging``, third-party
chatter kept out of the user's way.

- ``setup_logging(verbose)``: one handler on the root logger; the level comes from ``verbose`` (``-v``), else
  ``GDPW_LOG_LEVEL`` (``DEBUG``, ``INFO``, ...), else INFO. Chatty Python libraries are held at WARNING unless
  the level is DEBUG.
- ``quiet_native()``: MediaPipe's C++ code (glog, absl, TensorFlow Lite) writes straight to the process's
  standard error, below Python. Inside this context that output is discarded, unless the ``core.native``
  logger is enabled for DEBUG (``-v`` / ``GDPW_LOG_LEVEL=DEBUG``): then it is left alone and shows.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

LEVEL_ENV = "GDPW_LOG_LEVEL"
FORMAT = "%(levelname)s %(name)s: %(message)s"
# Python libraries that log at INFO about their own plumbing.
CHATTY = (
    "httpx",
    "httpcore",
    "gradio",
    "gradio_client",
    "urllib3",
    "matplotlib",
    "PIL",
    "absl",
    "asyncio",
    "uvicorn",
    "uvicorn.access",
    "uvicorn.error",
    "multipart",
    "python_multipart",
    "h5py",
    "numexpr",
)

native_log = logging.getLogger("core.native")


def level_from_env(default: int = logging.INFO) -> int:
    """The level named by ``GDPW_LOG_LEVEL`` (a name or a number), else ``default``."""
    raw = os.environ.get(LEVEL_ENV, "").strip()
    if not raw:
        return default
    if raw.isdigit():
        return int(raw)
    level = logging.getLevelName(raw.upper())
    return level if isinstance(level, int) else default


def setup_logging(verbose: bool = False) -> int:
    """Configure the root logger once (stderr, one line a message); returns the level in force."""
    level = logging.DEBUG if verbose else level_from_env()
    root = logging.getLogger()
    if not any(getattr(h, "_gdpw", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._gdpw = True  # type: ignore[attr-defined]  # marks our handler: set up once per process
        root.addHandler(handler)
    root.setLevel(level)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)
    return level


class _NativeCapture:
    """Reference-counted redirection of file descriptor 2 to the null device.

    Threads may enter concurrently (the studio renders for several users): the first one in redirects,
    the last one out restores the descriptor.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None

    def enter(self) -> None:
        with self._lock:
            self._depth += 1
            if self._depth > 1:
                return
            try:
                sys.stderr.flush()
                self._saved = os.dup(2)
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 2)
                os.close(null)
            except OSError:  # no real descriptor 2 (some embedded interpreters): leave it alone
                self._restore()

    def exit(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                self._restore()

    def _restore(self) -> None:
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._saved = None


_capture = _NativeCapture()


@contextmanager
def quiet_native() -> Iterator[None]:
    """Discard what native libraries print to stderr inside the block (shown when DEBUG is on)."""
    if native_log.isEnabledFor(logging.DEBUG):
        yield
        return
    _capture.enter()
    try:
        yield
    finally:
        _capture.exit()
