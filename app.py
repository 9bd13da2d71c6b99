"""GDPW Studio web app: the Hugging Face Spaces entry point (``sdk: gradio``, ``app_file: app.py``).

    python app.py                      # http://127.0.0.1:7860
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=8080 python app.py
    PORT=8080 python app.py            # platforms that give a PORT: listens on 0.0.0.0:8080

Host: ``GRADIO_SERVER_NAME``, else 0.0.0.0 on a Space or when ``PORT`` is set, else 127.0.0.1.
Port: ``GRADIO_SERVER_PORT``, else ``PORT``, else 7860. Everything the studio needs ships in the repository
(the ICT face model and any learned-engine weights in ``weights/``), so a bare clone starts as it is; sample
media are never offered on a Space. Logging: ``GDPW_LOG_LEVEL`` (default INFO; DEBUG shows third-party
output too).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Mapping

log = logging.getLogger("gdpw.app")


def launch_options(env: Mapping[str, str] | None = None) -> dict:
    """``server_name`` and ``server_port`` for ``launch`` from the environment (see the module doc)."""
    env = os.environ if env is None else env
    hosted = bool(env.get("SPACE_ID") or env.get("PORT"))
    host = env.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if hosted else "127.0.0.1")
    port = env.get("GRADIO_SERVER_PORT") or env.get("PORT") or "7860"
    try:
        port_number = int(port)
    except ValueError:
        raise SystemExit(f"invalid port {port!r} (GRADIO_SERVER_PORT / PORT)") from None
    return {"server_name": host, "server_port": port_number}


def main() -> None:
    from core.logs import setup_logging

    setup_logging()
    cache = _own_gradio_cache()
    from studio import build_app

    demo = build_app()
    options = launch_options()
    log.info("GDPW Studio on http://%s:%d", options["server_name"], options["server_port"])
    signal.signal(signal.SIGTERM, _stop)  # unwind so that the studio's folders are removed
    try:
        demo.launch(**options)
    except KeyboardInterrupt:
        log.info("GDPW Studio stopped")
    finally:
        demo.studio.close()
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)


def _own_gradio_cache() -> str | None:
    """Unless ``GRADIO_TEMP_DIR`` is set, give Gradio a fresh folder of its own (uploads, results, thumbnails)
    so that shutting down removes all of it; returns that folder."""
    if os.environ.get("GRADIO_TEMP_DIR"):
        return None
    folder = tempfile.mkdtemp(prefix="gdpw-gradio-")
    os.environ["GRADIO_TEMP_DIR"] = folder
    return folder


def _stop(signum: int, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    main()
