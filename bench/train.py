"""Training throughput of the PWM generator + discriminator (one full G step and D step per iteration).

Synthetic in-memory batches (posed ICT meshes, random images) so the figure is the model's, not the data
loader's. Loss as in training: pixel, 4-scale VGG-19 perceptual (random frozen VGG-19: the same cost as the
ImageNet one), warp losses, LS-GAN and feature matching on output and warped source. bf16 autocast on CUDA.
Aim (H100/H200): >= 8 training iterations per second at batch 16, 256 px, ``paper`` preset.

Usage: python bench/train.py [--preset paper] [--variant neural_codes] [--size 256] [--batch 16] [--steps 10]
       [--device auto|cpu|cuda] [--threads T]

Recipe mode (``--config configs/cpu.json``): the config's generator, discriminator and loss (a geometry-initialised
generator gets a synthetic geometry flow and image), its batch and size unless given, and a time split of one
iteration: G forward, G loss, G backward + Adam, D step. With ``--data DIR`` (a preprocessed folder) also the data
path of that recipe: reading a batch (frames, vertices, cached geometry) and, for comparison, what computing the
geometry engine's result on the fly would cost per sample (prepare a source + render a target).

    python bench/train.py --config configs/cpu.json --data data/samples --threads 2
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


def geometry_input(b: int, size: int, device):
    """A smooth synthetic complete flow and a random image, the inputs a geometry_init generator takes."""
    from core.model import GeometryInput

    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    flow = torch.stack([0.05 * torch.sin(3 * yy), 0.04 * torch.cos(2 * xx)])[None].repeat(b, 1, 1, 1)
    return GeometryInput(flow.to(device), torch.rand(b, 3, size, size, device=device))


def phase_split(tr, data: dict[str, torch.Tensor], geometry, steps: int) -> dict[str, float]:
    """Mean seconds of the phases of the trainer's iteration (the same calls as ``Trainer.train_step``)."""
    from core.model.losses import gan_d_loss

    keys = ("g_forward", "g_loss", "g_backward_adam", "d_step")
    acc = dict.fromkeys(keys, 0.0)
    cpu = time.process_time()
    for _ in range(steps):
        t = [time.perf_counter()]
        out = tr.G(data["src"], data["v_src"], data["v_drv"], geometry)
        t.append(time.perf_counter())
        tr.D.requires_grad_(False)
        total, _ = tr.loss(out, data["src"], data["drv"], tr.D if tr.use_gan else None)
        t.append(time.perf_counter())
        tr.opt_g.zero_grad(set_to_none=True)
        total.backward()
        tr.opt_g.step()
        tr.D.requires_grad_(True)
        t.append(time.perf_counter())
        if tr.use_gan:
            fakes = [out["y_hat"].detach()] + ([out["warped_src"].detach()] if tr.cfg.loss.warp_adversarial else [])
            _, real = tr.D(data["drv"])
            d_loss = sum(gan_d_loss(real, tr.D(f)[1], tr.cfg.loss.gan) for f in fakes)
            tr.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            tr.opt_d.step()
        t.append(time.perf_counter())
        for k, a, b in zip(keys, t[:-1], t[1:]):
            acc[k] += (b - a) / steps
    # CPU seconds of this process per iteration: less sensitive than wall time to other jobs on the machine
    return {**{k: round(v, 3) for k, v in acc.items()}, "cpu_s_per_it": round((time.process_time() - cpu) / steps, 3)}


def data_split(cfg, root: str, batch: int, model) -> dict[str, float]:
    """Seconds per batch of the recipe's data path (frames + vertices + cached geometry) and per sample of
    the geometry engine computed on the fly instead (one prepare + one render)."""
    import numpy as np

    from core.engines.geometry import GeometryEngine
    from core.face.mirror import model_mirror_map
    from core.face.params import FaceParams
    from core.train.dataset import PairDataset, read_identity_map
    from core.train.geometry_cache import GeometryCacheConfig, build_geometry_cache

    d = cfg.data
    ids = read_identity_map(d.identities) if d.identities else None
    clips = PairDataset(root, d.size, 0.0, 0.0).clips
    built = build_geometry_cache(clips, GeometryCacheConfig(d.geometry_pairs, d.geometry_sources, cfg.seed))
    mirror = model_mirror_map("ict") if d.flip > 0 else None
    split = "train" if d.holdout else "all"
    ds = PairDataset(root, d.size, d.flip, d.jitter, cfg.seed, mirror, 0, ids, d.holdout, split, geometry=True)
    t = time.perf_counter()
    geo_read, n = 0.0, 3
    for step in range(n):
        items = [ds[(step, 0, i)] for i in range(batch)]
        geo_read += sum(float(it["t_geometry"]) for it in items)
    per_batch = (time.perf_counter() - t) / n
    engine = GeometryEngine(model)
    clip = ds.clips[0]
    with np.load(clip.path / "params.npz") as z:
        params = FaceParams.from_dict({k: z[k] for k in z.files})
    engine.render(engine.prepare(clip.image(0), params[0]), params[1])  # warm-up (segmenter start-up)
    t = time.perf_counter()
    state = engine.prepare(clip.image(2), params[2])
    t_prep = time.perf_counter() - t
    t = time.perf_counter()
    engine.render(state, params[clip.frames - 1])
    t_render = time.perf_counter() - t
    return {
        "data_s_per_batch": round(per_batch, 3),
        "geometry_cache_read_s_per_batch": round(geo_read / n, 4),
        "geometry_on_the_fly_s_per_sample": round(t_prep + t_render, 3),
        "geometry_prepare_s": round(t_prep, 3),
        "geometry_render_s": round(t_render, 3),
        "geometry_cache_build_s": round(built["seconds"], 1),
    }


def recipe(args) -> None:
    """``--config`` mode: the recipe's own models and loss, with the time split."""
    from core.face import load_face_model
    from core.train.config import load_config
    from core.train.trainer import Trainer

    cfg = load_config(args.config, ['resume="none"', 'out_dir="/tmp/gdpw-bench-train"', 'init_weights=""'])
    if args.device != "auto":
        cfg.device = args.device
    if args.threads:
        cfg.threads = args.threads
    size = args.size if args.size_given else cfg.data.size
    batch = args.batch or cfg.data.batch_size
    steps = args.steps or 2
    model = load_face_model("ict")
    tr = Trainer(cfg, faces=model.render_faces)
    data = posed_batch(model, batch, size, tr.device)
    geometry = geometry_input(batch, size, tr.device) if cfg.generator.geometry_init else None
    phase_split(tr, data, geometry, 1)  # warm-up
    split = phase_split(tr, data, geometry, steps)
    res = {
        "config": str(args.config),
        "preset": cfg.generator.preset,
        "geometry_init": cfg.generator.geometry_init,
        "size": size,
        "batch": batch,
        "threads": torch.get_num_threads(),
        **split,
        "model_s_per_it": round(sum(v for k, v in split.items() if k != "cpu_s_per_it"), 3),
    }
    if args.data:
        res.update(data_split(cfg, args.data, batch, model))
    print(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--variant", default="neural_codes")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=None, help="default 16 on CUDA, 2 on CPU")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 20 on CUDA, 2 on CPU)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--config", type=Path, help="recipe mode: a training config (e.g. configs/cpu.json)")
    ap.add_argument("--data", help="recipe mode: a preprocessed folder, to time the data path too")
    args = ap.parse_args()
    args.size_given = "--size" in sys.argv
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.config:
        recipe(args)
        return
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
