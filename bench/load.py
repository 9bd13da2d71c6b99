"""Load test of the studio: N concurrent ``gradio_client`` users, then 50 sessions in a row.

    python bench/load.py [--users 1 4 8] [--edits 8] [--sessions 50] [--budget 900] [--no-reenact]

A studio is started for the test (``python app.py`` on a free port of 127.0.0.1 only; nothing else is
contacted) and stopped at the end. Bounded: ``--edits`` slider edits per user, ``--sessions`` sessions,
and a wall-clock ``--budget`` after which the remaining phases are skipped.

1. References: for every portrait (one per user) and every edit value, a single-user render in a fresh
   session, taken alone.
2. For N in ``--users``: N users at once, each with its own portrait, each doing the slider edits
   (``/slide_yaw``, what the page's slider calls); with N > 1, user 0 also runs a short reenactment at the
   same time. Reports the median and p95 latency per edit, errors, the server's resident memory before and
   after, and the cross-user check: every answer must equal the reference of its own portrait and edit
   (mean absolute difference below 1 grey level) and differ from every other user's.
3. 50 sessions in a row, each a new client uploading a portrait and making one edit: the server's
   resident memory after each, and the growth per session over the second half (it must level off:
   sessions beyond the store's capacity or idle past its timeout are dropped with their files).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import devsamples  # noqa: F401  (GDPW_SAMPLES: the development samples by default)
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from served import served  # noqa: E402  (starts app.py on a free 127.0.0.1 port)

YAWS = [-14.0, -9.0, -4.0, 3.0, 8.0, 13.0, -6.0, 10.0, 0.0, -12.0, 5.0, 15.0]
MATCH = 1.0  # mean absolute difference (grey levels) under which two answers are the same image


@dataclass
class Phase:
    users: int
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    rss_before: float = 0.0
    rss_after: float = 0.0
    reenact_s: float | None = None


def portraits(count: int, workdir: Path) -> list[Path]:
    """``count`` different portraits: the sample photos, else variants of the embedded astronaut."""
    from core.assets import samples_dir

    root = samples_dir()
    found = sorted((root / "images").glob("assets__examples__source__s*.jpg")) if root else []
    if len(found) >= count:
        return found[:count]
    from PIL import Image
    from skimage import data

    base = Image.fromarray(data.astronaut())
    out = []
    for i in range(count):
        path = workdir / f"astronaut_{i}.png"
        base.rotate(3 * i, expand=False).save(path)
        out.append(path)
    return out


def server_rss_mb(port: int) -> float:
    """Resident memory (MB) of the process listening on ``port`` (the studio)."""
    import psutil

    for proc in psutil.process_iter(["pid"]):
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                    return proc.memory_info().rss / 1e6
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            continue
    return float("nan")


def image(path: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)


class User:
    """One ``gradio_client`` session with its own portrait."""

    def __init__(self, url: str, portrait: Path, n_views: int) -> None:
        from gradio_client import Client, handle_file

        self.client = Client(url, verbose=False)
        self.portrait = portrait
        self.n_views = n_views
        self.client.predict(handle_file(str(portrait)), api_name="/upload")

    def edit(self, yaw: float) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        res = self.client.predict(True, yaw, api_name="/slide_yaw")
        dt = time.perf_counter() - t0
        status = res[1]
        if not str(status).startswith("Rendered"):
            raise RuntimeError(f"edit answered {status!r}")
        return image(res[0]), dt


def references(url: str, photos: list[Path], edits: int, n_views: int) -> dict[tuple[int, float], np.ndarray]:
    """Single-user answers for every (portrait, yaw), taken alone."""
    refs = {}
    for i, photo in enumerate(photos):
        user = User(url, photo, n_views)
        for yaw in YAWS[:edits]:
            refs[(i, yaw)] = user.edit(yaw)[0]
    return refs


def check(result: np.ndarray, key: tuple[int, float], refs: dict, phase: Phase) -> None:
    """The answer must be its own reference and no other user's."""
    own = float(np.abs(result - refs[key]).mean())
    if own > MATCH:
        phase.mismatches.append(f"user {key[0]} yaw {key[1]}: differs from its reference by {own:.2f}")
    for (i, yaw), ref in refs.items():
        if i != key[0] and yaw == key[1] and float(np.abs(result - ref).mean()) <= MATCH:
            phase.mismatches.append(f"user {key[0]} yaw {key[1]}: got user {i}'s portrait")


def run_user(
    url: str,
    index: int,
    photo: Path,
    edits: int,
    refs: dict,
    phase: Phase,
    lock: threading.Lock,
    start: threading.Barrier,
) -> None:
    try:
        user = User(url, photo, 0)
    except Exception as exc:  # noqa: BLE001 - counted, the others go on
        with lock:
            phase.errors.append(f"user {index} upload: {exc}")
        start.abort()
        return
    start.wait()
    for yaw in YAWS[:edits]:
        try:
            result, dt = user.edit(yaw)
        except Exception as exc:  # noqa: BLE001
            with lock:
                phase.errors.append(f"user {index} yaw {yaw}: {exc}")
            continue
        with lock:
            phase.latencies.append(dt)
            check(result, (index, yaw), refs, phase)


def run_reenact(url: str, clip: Path, phase: Phase, lock: threading.Lock) -> None:
    """User 0's second tab: a short reenactment while the edits run."""
    from gradio_client import Client, handle_file

    t0 = time.perf_counter()
    try:
        video, msg = Client(url, verbose=False).predict(
            handle_file(str(clip)), "relative", 2, False, api_name="/reenact"
        )
        if not isinstance(video, (str, dict)) or str(msg).startswith("⚠"):
            raise RuntimeError(str(msg))
        phase.reenact_s = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001
        with lock:
            phase.errors.append(f"reenact: {exc}")


def run_phase(url: str, port: int, n: int, photos: list[Path], edits: int, refs: dict, clip: Path | None) -> Phase:
    phase = Phase(n, rss_before=server_rss_mb(port))
    lock = threading.Lock()
    start = threading.Barrier(n)
    threads = [
        threading.Thread(target=run_user, args=(url, i, photos[i], edits, refs, phase, lock, start)) for i in range(n)
    ]
    if clip is not None and n > 1:
        threads.append(threading.Thread(target=run_reenact, args=(url, clip, phase, lock)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    phase.rss_after = server_rss_mb(port)
    return phase


def session_curve(url: str, port: int, photos: list[Path], sessions: int, deadline: float) -> list[float]:
    """Resident memory (MB) after each of ``sessions`` sessions in a row (new client, upload, one edit)."""
    curve = []
    for k in range(sessions):
        if time.monotonic() > deadline:
            print(f"  budget reached after {k} sessions")
            break
        user = User(url, photos[k % len(photos)], 0)
        user.edit(YAWS[k % len(YAWS)])
        close = getattr(user.client, "close", None)
        if close is not None:
            close()
        curve.append(server_rss_mb(port))
    return curve


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def report_phase(p: Phase) -> None:
    med, p95 = statistics.median(p.latencies) if p.latencies else float("nan"), percentile(p.latencies, 95)
    extra = f", reenactment alongside {p.reenact_s:.1f} s" if p.reenact_s is not None else ""
    print(
        f"N={p.users}: {len(p.latencies)} edits, median {med:.2f} s, p95 {p95:.2f} s, errors {len(p.errors)}, "
        f"cross-user mismatches {len(p.mismatches)}, server RSS {p.rss_before:.0f} -> {p.rss_after:.0f} MB"
        f"{extra}"
    )
    for line in (p.errors + p.mismatches)[:5]:
        print(f"    {line}")


def report_curve(curve: list[float]) -> None:
    if not curve:
        return
    marks = ", ".join(f"{k + 1}: {curve[k]:.0f}" for k in range(0, len(curve), 5))
    half = curve[len(curve) // 2 :]
    slope = float(np.polyfit(np.arange(len(half)), half, 1)[0]) if len(half) > 2 else float("nan")
    print(f"{len(curve)} sessions in a row, server RSS (MB) after session k: {marks}, last {curve[-1]:.0f}")
    print(
        f"memory growth over the second half: {slope:+.1f} MB per session "
        f"(first half {(curve[len(curve) // 2] - curve[0]) / max(1, len(curve) // 2):+.1f} MB per session)"
    )


def driving_clip(workdir: Path) -> Path | None:
    from core.assets import samples_dir

    root = samples_dir()
    clip = root / "videos" / "assets__driving.mp4" if root else None
    return clip if clip is not None and clip.is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--edits", type=int, default=8, help="slider edits per user (at most 12)")
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--budget", type=float, default=900, help="seconds; later phases are skipped after it")
    parser.add_argument("--no-reenact", action="store_true")
    args = parser.parse_args()
    edits = max(1, min(args.edits, len(YAWS)))
    deadline = time.monotonic() + args.budget
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, served(None) as url:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        photos = portraits(max(args.users), Path(tmp))
        clip = None if args.no_reenact else driving_clip(Path(tmp))
        print(f"studio at {url}, server RSS {server_rss_mb(port):.0f} MB at start, {os.cpu_count()} CPU cores")
        t0 = time.perf_counter()
        refs = references(url, photos, edits, 0)
        print(f"references: {len(refs)} single-user renders in {time.perf_counter() - t0:.0f} s")
        phases = []
        for n in args.users:
            if time.monotonic() > deadline:
                print(f"budget reached: N={n} skipped")
                continue
            phases.append(run_phase(url, port, n, photos, edits, refs, clip))
            report_phase(phases[-1])
        p95 = {p.users: percentile(p.latencies, 95) for p in phases}
        if 1 in p95 and 4 in p95:
            print(f"latency ratio p95(N=4)/p95(N=1): {p95[4] / p95[1]:.2f}")
        report_curve(session_curve(url, port, photos, args.sessions, deadline))


if __name__ == "__main__":
    main()
