"""Inference speed of the PWM generator as the ``pwm`` engine runs it: spectral norm folded, eval mode, the
source encoder cached, per frame the target rasterisation, guidance pyramid and decoder.

Aims (H100/H200, 256 px, ``paper`` preset): >= 500 frames/s at batch 16 and <= 5 ms per frame at batch 1.
bf16 autocast on CUDA (``--fp32`` to disable).

Usage: python bench/infer.py [--preset paper] [--variant neural_codes] [--size 256] [--repeats N]
       [--device auto|cpu|cuda] [--threads T]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AIM_FPS_B16 = 500.0
AIM_MS_B1 = 5.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--variant", default="neural_codes")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=None, help="timed calls per batch size (default 20 CUDA, 2 CPU)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--fp32", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from core.face import load_face_model
    from core.model import Generator, GeneratorConfig, fold_spectral_norm

    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    reps = args.repeats or (20 if dev.type == "cuda" else 2)
    model = load_face_model("ict")
    g = fold_spectral_norm(Generator(GeneratorConfig.from_preset(args.preset, args.variant), model.render_faces))
    g = g.to(dev).eval()
    p = model.neutral(17)
    p.camera[:] = torch.tensor([1.2 / 14.7, 0.0, 0.12])
    p.head[:, 0] = torch.linspace(-20, 20, 17)
    with torch.no_grad():
        v = model.project(model(p), p.camera).float().to(dev)
    s = args.size
    x = torch.rand(1, 3, s, s, device=dev)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" and not args.fp32 else nullcontext()
    with torch.no_grad(), amp:
        enc = g.encode(x, g.source_codes(v[:1], (s, s)))

        def frame_batch(b: int) -> torch.Tensor:
            return g.decode(enc, g.guidance(v[:1], v[1 : 1 + b], (s, s)), x)["y_hat"]

        out = {}
        for b in (1, 16):
            frame_batch(b)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(reps):
                frame_batch(b)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            out[b] = (time.perf_counter() - t) / reps
    name = torch.cuda.get_device_name() if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    fps16 = 16 / out[16]
    ms1 = out[1] * 1000
    res = {
        "device": name,
        "preset": args.preset,
        "variant": args.variant,
        "size": s,
        "amp": "bf16" if dev.type == "cuda" and not args.fp32 else "fp32",
        "fps_batch16": round(fps16, 3),
        "ms_per_frame_batch1": round(ms1, 2),
        "ratio_fps_to_aim": round(fps16 / AIM_FPS_B16, 5),
        "ratio_latency_aim_over_ms": round(AIM_MS_B1 / ms1, 5),
    }
    print(json.dumps(res))
    print(
        f"{name}: {fps16:.2f} frames/s at batch 16 (aim {AIM_FPS_B16:.0f}: ratio {fps16 / AIM_FPS_B16:.4f}); "
        f"{ms1:.1f} ms/frame at batch 1 (aim <= {AIM_MS_B1:.0f} ms: ratio {AIM_MS_B1 / ms1:.4f})"
    )


if __name__ == "__main__":
    main()
