"""Training throughput of the PWM generator + discriminator (one full G step and D step per iteration).

Synthetic in-memory batches (posed ICT meshes, random images) so the figure is the model's, not the data
loader's. Loss as in training: pixel, 4-scale VGG-19 perceptual (random frozen VGG-19: the same cost as the
ImageNet one), warp losses, LS-GAN and feature matching on output and warped source. bf16 autocast on CUDA.
Aim (H100/H200): >= 8 training iterations per second at batch 16, 256 px, ``paper`` preset.

Usage: python bench/train.py [--preset paper] [--variant neural_codes] [--size 256] [--batch 16] [--steps 10]
       [--device auto|cpu|cuda] [--threads T]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AIM_IT_S = 8.0


def posed_batch(model, b: int, size: int, device) -> dict[str, torch.Tensor]:
    p = model.neutral(2 * b)
    p.camera[:] = torch.tensor([1.2 / 14.7, 0.0, 0.12])
    p.head[:, 0] = torch.linspace(-25, 25, 2 * b)
    p.head[:, 1] = torch.linspace(10, -10, 2 * b)
    with torch.no_grad():
        v = model.project(model(p), p.camera).float()
    return {
        "src": torch.rand(b, 3, size, size),
        "drv": torch.rand(b, 3, size, size),
        "v_src": v[:b].contiguous(),
        "v_drv": v[b:].contiguous(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--variant", default="neural_codes")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=None, help="default 16 on CUDA, 2 on CPU")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 20 on CUDA, 2 on CPU)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from core.face import load_face_model
    from core.train.config import TrainConfig
    from core.train.trainer import Trainer

    dev = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    batch = args.batch or (16 if dev == "cuda" else 2)
    steps = args.steps or (20 if dev == "cuda" else 2)
    model = load_face_model("ict")
    cfg = TrainConfig.from_dict(
        {
            "generator": {"preset": args.preset, "variant": args.variant},
            "loss": {"gan": "ls", "perceptual": "vgg_random"},
            "data": {"size": args.size, "batch_size": batch},
            "device": dev,
            "amp": "bf16",
            "resume": "none",
            "out_dir": "/tmp/gdpw-bench-train",
        }
    )
    tr = Trainer(cfg, faces=model.render_faces)
    batch_data = posed_batch(model, batch, args.size, tr.device)
    for _ in range(2 if dev == "cuda" else 1):  # warm-up
        tr.train_step(batch_data)
    if dev == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        tr.train_step(batch_data)
    if dev == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / steps
    it_s = 1.0 / dt
    name = torch.cuda.get_device_name() if dev == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    res = {
        "device": name,
        "preset": args.preset,
        "variant": args.variant,
        "size": args.size,
        "batch": batch,
        "amp": "bf16" if tr.amp else "fp32",
        "s_per_it": round(dt, 4),
        "it_per_s": round(it_s, 4),
        "samples_per_s": round(it_s * batch, 3),
        "aim_it_per_s_at_batch16": AIM_IT_S,
        "ratio_to_aim": round(it_s * batch / 16 / AIM_IT_S, 5),
    }
    print(json.dumps(res))
    print(
        f"{name}: {it_s:.3f} it/s at batch {batch} ({it_s * batch:.2f} samples/s); "
        f"aim {AIM_IT_S} it/s at batch 16 on H100/H200 -> ratio {res['ratio_to_aim']:.4f} "
        f"(samples/s relative to 128 samples/s)"
    )


if __name__ == "__main__":
    main()
