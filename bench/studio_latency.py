"""Slider-to-image latency of the studio at 256 px, through its HTTP API (gradio_client), as a browser's
slider release would see it: request, render, PNG encoding and the image download.

    python bench/studio_latency.py [--url http://127.0.0.1:7860/] [--portrait PHOTO] [--n 30]

Without ``--url`` the studio is started in a subprocess (``python app.py`` on a free local port) and
stopped at the end. Times the page's path (``/slide_yaw``: one slider's event) and the API's
all-sliders ``/render``; prints the median and 90th percentile in milliseconds, the server's own render
time (from the status line) and the ratio of the median to the 300 ms target.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import devsamples  # noqa: F401  (GDPW_SAMPLES: the development samples by default)
import numpy as np
from served import served  # bench/served.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 300.0


def default_portrait() -> Path:
    from core.assets import samples_dir

    root = samples_dir()
    pick = root / "images" / "assets__examples__source__s42.jpg" if root else None
    if pick is not None and pick.is_file():
        return pick
    from PIL import Image
    from skimage import data

    path = Path(os.environ.get("TMPDIR", "/tmp")) / "gdpw-bench-astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a running studio (default: start one)")
    ap.add_argument("--portrait", type=Path, help="portrait to load (default: a sample, else astronaut)")
    ap.add_argument("--n", type=int, default=30, help="timed slider moves")
    args = ap.parse_args()

    from gradio_client import Client, handle_file

    from studio.app import slider_names

    names = slider_names()
    portrait = args.portrait or default_portrait()
    with served(args.url) as url:
        client = Client(url, verbose=False)
        out = client.predict(handle_file(str(portrait)), api_name="/upload")
        values = list(out[-len(names) :])
        yaw, jaw = names.index("yaw"), names.index("jawOpen")

        def slide(i: int):  # what a browser sends when the yaw slider moves: link and the new value
            return client.predict(True, float(-20 + (i * 7) % 41), api_name="/slide_yaw")

        def render_all(i: int):  # an API client setting every slider at once
            values[yaw] = float(-20 + (i * 7) % 41)
            values[jaw] = round(0.05 * (i % 8), 2)
            return client.predict(True, *values, api_name="/render")

        rows = [
            ("slider to image (/slide_yaw, as the page)", *timed(slide, args.n)),
            ("all sliders (/render, API)", *timed(render_all, max(5, args.n // 3))),
        ]
        close = getattr(client, "close", None)
        if close:
            close()
    print(f"portrait: {portrait.name}, 256 px crop, gradio_client against {url}")
    print("| measure | median ms | p90 ms | server render median ms | target ms | median / target |")
    print("|---|---|---|---|---|---|")
    for label, total, server in rows:
        med, p90 = float(np.median(total)), float(np.percentile(total, 90))
        srv = f"{np.median(server):.0f}" if len(server) else "-"
        print(f"| {label} | {med:.0f} | {p90:.0f} | {srv} | {TARGET_MS:.0f} | {med / TARGET_MS:.2f} |")
    return 0


def timed(call, n: int, warmup: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Round-trip milliseconds of ``n`` calls (after ``warmup``) and the server's render times."""
    total, server = [], []
    for i in range(n + warmup):
        t = time.perf_counter()
        res = call(i)  # a new value every time: never a no-op
        ms = 1000 * (time.perf_counter() - t)
        if i < warmup:
            continue
        total.append(ms)
        m = re.search(r"Rendered in (\d+) ms", str(res[1]))
        if m:
            server.append(float(m.group(1)))
    return np.asarray(total), np.asarray(server)


if __name__ == "__main__":
    raise SystemExit(main())
