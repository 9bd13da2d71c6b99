"""Cold start of the studio as a Hugging Face Space sees it: from process start to the first edited image.

    python bench/cold_start.py [--runs 3] [--no-bare]

By default the repository is cloned (``git clone`` of HEAD) into a temporary folder with nothing beside it,
an empty user cache and no ``GDPW_ASSETS``, and ``python app.py`` is started there (the interpreter of this
environment, so the packages are installed). The clock starts before the process is spawned and stops when
``gradio_client`` has received the first edited image: page load (``/start``, which fits the default
portrait) and one slider move (``/slide_yaw``). Prints each run, the median and its ratio to the 30 s aim.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from served import ROOT, start_studio, stop, wait_until_up  # bench/served.py

AIM_S = 30.0


def bare_clone(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A clone of HEAD with nothing beside it and an environment without the project's variables."""
    repo = tmp / "clone" / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GDPW_")}
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    return repo, env


def one_run(root: Path, env: dict[str, str]) -> tuple[float, float]:
    """Seconds from spawn to the page answering, and to the first edited image."""
    from gradio_client import Client

    t0 = time.perf_counter()
    proc, url = start_studio(root, env)
    try:
        wait_until_up(url, proc)
        up = time.perf_counter() - t0
        client = Client(url, verbose=False)
        client.predict(api_name="/start")
        out = client.predict(True, 15.0, api_name="/slide_yaw")
        if not out or not out[0]:
            raise SystemExit(f"no image from the studio: {out!r}")
        first = time.perf_counter() - t0
        close = getattr(client, "close", None)
        if close:
            close()
    finally:
        stop(proc)
    return up, first


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-bare", action="store_true", help="start this checkout's app.py instead of a clone")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gdpw-cold-") as tmp:
        root, env = (ROOT, dict(os.environ)) if args.no_bare else bare_clone(Path(tmp))
        rows = [one_run(root, env) for _ in range(args.runs)]
    print(
        f"cold start of {'this checkout' if args.no_bare else 'a bare clone'} on {os.cpu_count()} cores "
        f"(python {sys.version.split()[0]})"
    )
    print("| run | server up s | first edited image s |")
    print("|---|---|---|")
    for i, (up, first) in enumerate(rows, 1):
        print(f"| {i} | {up:.1f} | {first:.1f} |")
    med = float(np.median([r[1] for r in rows]))
    print(f"\nmedian first image {med:.1f} s; aim {AIM_S:.0f} s; ratio {med / AIM_S:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
