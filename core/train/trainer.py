"""The training loop (spec section 9): G step then D step per iteration, Adam with the paper's step decay,
bf16 autocast on CUDA, ``torchrun`` DDP (multi-GPU and multi-node; SyncBatchNorm on CUDA), atomic checkpoints
with exact resume, TensorBoard logs with images and flows.

Run with ``python -m core train --config configs/paper.json`` (one process) or
``torchrun --nproc_per_node 8 -m core train --config ...`` (the ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``
variables select DDP; gloo on CPU, nccl on CUDA).

Checkpoints: ``<out_dir>/checkpoints/step_XXXXXXXX/`` holds ``generator.safetensors``,
``discriminator.safetensors`` (weights, spectral-norm vectors and BatchNorm statistics), ``state.pt``
(both Adam states, the step and the RNG states) and ``config.json``. The folder is written under a temporary
name and renamed, then ``latest.json`` is replaced atomically: a run killed at any moment resumes from the last
complete checkpoint. The data order is a function of the step (``core.train.dataset``), so a resumed run sees
exactly the batches it would have seen. The engine-ready export (``pwm.safetensors`` + ``pwm.json``) is
refreshed at each checkpoint in ``out_dir``.

Geometry-initialised models (``generator.geometry_init``): before training, every clip's pool of
geometry-engine results is computed once (``core.train.geometry_cache``, skipped when present) and batches
carry them, so the engine costs nothing per step. Every logged step records the time split
``time/data`` (waiting for the batch), ``time/geometry`` (reading the cached geometry, part of the data time
when loading runs in this process), ``time/forward_backward`` (G and D forward, backward and Adam) and
``time/step``. Validation (``val_every``) runs the generator in eval mode on fixed pairs of the held-out
identities (``data.holdout``) and logs ``val/l1`` with the geometry engine's ``val/l1_geometry`` and the
source's ``val/l1_copy`` as baselines. ``curves.png`` (``core.train.visualise``) is redrawn at every
checkpoint; ``samples/step_N.png`` (source, driving, geometry, output, alpha rows) every ``image_every`` steps.

``init_weights``: a new run starts from the generator weights of a ``pwm.json`` + ``pwm.safetensors`` export
(checked like the engine checks them; no optimiser state, step 0). A resumed checkpoint takes precedence.

Differences from the official trainer: the learning-rate schedule is implemented (the official code changes it
by hand); optimiser states are checkpointed (the official code saves weights only); the G step evaluates D
without building D's parameter gradients.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from core.model.discriminator import Discriminator
from core.model.generator import Generator, GeometryInput
from core.model.losses import GeneratorLoss, gan_d_loss
from core.render.flowviz import flow_to_rgb
from core.train.config import TrainConfig

__all__ = ["Trainer", "DistEnv", "export_weights", "EXPORT_NAME"]

log = logging.getLogger(__name__)
EXPORT_NAME = "pwm"
EXPORT_FORMAT = "gdpw-pwm"


# ------------------------------------------------------------------------------------------ distributed
class DistEnv:
    """Rank, world size and local rank from the ``torchrun`` environment (single process when absent)."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def sweep_partial(ckdir: Path) -> list[Path]:
    """Remove the temporary checkpoint folders and files of interrupted writes in ``ckdir`` (a run killed
    while saving); finished ``step_*`` folders and ``latest.json`` are never touched. Returns what went."""
    if not ckdir.is_dir():
        return []
    gone = [p for p in ckdir.iterdir() if p.name.startswith(".tmp-step_") or (p.name[0] == "." and ".tmp" in p.name)]
    for p in gone:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    if gone:
        log.info("removed %d partial checkpoint file(s) of an interrupted run", len(gone))
    return gone


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class DiscriminatorStep(nn.Module):
    """D loss of one iteration in a single module call (real, output and warped source passed separately so
    each gets its own BatchNorm statistics), so that DDP sees one forward per backward."""

    def __init__(self, disc: Discriminator, kind: str) -> None:
        super().__init__()
        self.disc = disc
        self.kind = kind

    def forward(self, real: torch.Tensor, fakes: list[torch.Tensor]) -> torch.Tensor:
        _, real_logits = self.disc(real)
        return sum(gan_d_loss(real_logits, self.disc(f)[1], self.kind) for f in fakes)


# ------------------------------------------------------------------------------------------ trainer
class Trainer:
    """Builds the models, optimisers, data and logging from a ``TrainConfig``; ``run()`` trains to
    ``optim.steps`` (or ``steps`` more iterations)."""

    def __init__(self, config: TrainConfig, env: DistEnv | None = None, faces: torch.Tensor | None = None) -> None:
        self.cfg = cfg = config
        self.env = env or DistEnv()
        self.out_dir = Path(cfg.out_dir)
        self.device = self._setup_device()
        self._seed(cfg.seed + self.env.rank)  # the original seeds with 100 + rank
        self.amp = cfg.amp == "bf16" and self.device.type == "cuda"
        self._build_models(faces)
        o = cfg.optim
        self.opt_g = torch.optim.Adam(self._g_groups(), lr=o.lr_g, betas=tuple(o.betas))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.lr_d, betas=tuple(o.betas))
        self.step = 0
        self._writer = None
        self._dataset = None
        if self.env.world > 1 and cfg.data.batch_size % self.env.world:
            raise ValueError(f"global batch {cfg.data.batch_size} is not divisible by {self.env.world} ranks")
        self.local_batch = max(1, cfg.data.batch_size // self.env.world)
        self._val_dataset = None
        self._maybe_resume()
        if self.step == 0 and cfg.init_weights:
            self.load_init_weights(cfg.init_weights)
        if self.env.main:
            log.info(
                "PWM %s/%s: G %.2f M, D %.3f M parameters; perceptual loss: %s; device %s x %d",
                cfg.generator.preset,
                cfg.generator.variant,
                _count(self.G) / 1e6,
                _count(self.D) / 1e6,
                self.loss.perceptual.source,
                self.device,
                self.env.world,
            )

    def _setup_device(self) -> torch.device:
        """The run's device, the process group under torchrun, threads and determinism."""
        cfg = self.cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        dev = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
        if dev == "cuda":
            torch.cuda.set_device(self.env.local_rank)
            device = torch.device("cuda", self.env.local_rank)
        else:
            device = torch.device(dev)
        if self.env.distributed and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        else:
            torch.backends.cudnn.benchmark = True
        return device

    def _build_models(self, faces: torch.Tensor | None) -> None:
        """Generator, discriminator and losses on the device, wrapped for DDP when distributed."""
        cfg = self.cfg
        if faces is None:
            from core.face import load_face_model

            faces = load_face_model(cfg.generator.face_model).render_faces
        self.G = Generator(cfg.generator, faces).to(self.device)
        self.D = Discriminator(cfg.discriminator).to(self.device)
        self.use_gan = cfg.loss.gan != "none"
        if self.env.distributed and self.device.type == "cuda":
            self.G = nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
            self.D = nn.SyncBatchNorm.convert_sync_batchnorm(self.D)
        elif self.env.distributed:
            log.info("SyncBatchNorm needs CUDA; on CPU every rank keeps its own BatchNorm statistics")
        self.loss = GeneratorLoss(cfg.loss).to(self.device)
        self.d_step = DiscriminatorStep(self.D, cfg.loss.gan)
        if self.env.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.env.local_rank] if self.device.type == "cuda" else None
            self.G_ddp = DDP(self.G, device_ids=ids, find_unused_parameters=cfg.generator.keep_unused_shortcut)
            self.d_ddp = DDP(self.d_step, device_ids=ids) if self.use_gan else self.d_step
        else:
            self.G_ddp, self.d_ddp = self.G, self.d_step

    # ------------------------------------------------------------------ utilities
    @staticmethod
    def _seed(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else nullcontext()

    def _g_groups(self) -> list[dict]:
        """G's parameter groups: the neural-code table (when there is one) apart, with its own lr scale."""
        codes = self.G.embeds.codes if self.G.embeds is not None else None
        rest = [p for p in self.G.parameters() if p is not codes]
        groups = [{"params": rest, "lr_scale": 1.0}]
        if codes is not None:
            groups.append({"params": [codes], "lr_scale": self.cfg.optim.codes_lr_scale})
        return groups

    def set_lr(self) -> float:
        f = self.cfg.optim.lr_factor(self.step)
        for group in self.opt_g.param_groups:
            group["lr"] = self.cfg.optim.lr_g * f * group.get("lr_scale", 1.0)
        for group in self.opt_d.param_groups:
            group["lr"] = self.cfg.optim.lr_d * f
        return self.cfg.optim.lr_g * f

    # ------------------------------------------------------------------ data
    def _pairs(self, split: str, augment: bool, geometry: bool):
        from core.face.mirror import model_mirror_map
        from core.train.dataset import PairDataset, read_identity_map

        d = self.cfg.data
        flip, jitter = (d.flip, d.jitter) if augment else (0.0, 0.0)
        mirror = model_mirror_map(self.cfg.generator.face_model) if flip > 0 else None
        ids = read_identity_map(d.identities) if d.identities else None
        if geometry:
            self.prepare_geometry()
        return PairDataset(
            d.root, d.size, flip, jitter, self.cfg.seed, mirror, d.max_clips, ids, d.holdout, split, geometry
        )

    @property
    def dataset(self):
        """The training pairs (held-out identities excluded)."""
        if self._dataset is None:
            self._dataset = self._pairs(
                "train" if self.cfg.data.holdout else "all", augment=True, geometry=self.cfg.generator.geometry_init
            )
            log.info(
                "training data: %d clips of %d identities (%d held out for validation)",
                len(self._dataset.clips),
                len(self._dataset.identities),
                len(self.cfg.data.holdout),
            )
        return self._dataset

    @property
    def val_dataset(self):
        """The validation pairs: the held-out identities only, without augmentation (None without a hold-out)."""
        if self._val_dataset is None and self.cfg.data.holdout:
            try:
                self._val_dataset = self._pairs("val", augment=False, geometry=self.cfg.generator.geometry_init)
            except ValueError as exc:  # none of the held-out identities is in this data: train without it
                log.warning("no validation: %s (data.holdout = %s)", exc, list(self.cfg.data.holdout))
                self._val_dataset = False
        return self._val_dataset or None

    def prepare_geometry(self) -> None:
        """Build the missing geometry caches of every clip (training and validation) on rank 0, once."""
        if getattr(self, "_geometry_ready", False):
            return
        from core.train.geometry_cache import GeometryCacheConfig, build_geometry_cache

        d = self.cfg.data
        if self.env.main:
            clips = self._pairs("all", augment=False, geometry=False).clips
            done = build_geometry_cache(clips, GeometryCacheConfig(d.geometry_pairs, d.geometry_sources, self.cfg.seed))
            log.info("geometry caches: %d built, %d present (%.1f s)", done["built"], done["kept"], done["seconds"])
        if self.env.distributed:
            dist.barrier()
        self._geometry_ready = True

    def batches(self, start: int, stop: int):
        from torch.utils.data import DataLoader

        from core.train.dataset import StepBatches, collate

        sampler = StepBatches(start, stop, self.local_batch, self.env.rank)
        workers = self.cfg.data.workers
        return DataLoader(
            self.dataset,
            batch_sampler=sampler,
            num_workers=workers,
            collate_fn=collate,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if workers else None,
        )

    # ------------------------------------------------------------------ one iteration
    def _geometry_input(self, batch: dict[str, torch.Tensor]) -> GeometryInput | None:
        if not self.cfg.generator.geometry_init:
            return None
        if "geo_flow" not in batch:
            raise ValueError("a geometry_init generator trains on batches with 'geo_flow' and 'geo_image'")
        dev = self.device
        return GeometryInput(batch["geo_flow"].to(dev), batch["geo_image"].to(dev))

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """G step (G forward, G loss, Adam) then D step on the detached outputs (spec 9.1)."""
        t0 = time.perf_counter()
        dev = self.device
        x_s = batch["src"].to(dev, non_blocking=True)
        y = batch["drv"].to(dev, non_blocking=True)
        v_s = batch["v_src"].to(dev, non_blocking=True)
        v_d = batch["v_drv"].to(dev, non_blocking=True)
        geometry = self._geometry_input(batch)
        lr = self.set_lr()
        self.G.train()
        self.D.train()
        with self.autocast():
            out = self.G_ddp(x_s, v_s, v_d, geometry) if geometry is not None else self.G_ddp(x_s, v_s, v_d)
        # G loss: D is evaluated before its own update; its parameters take no gradient here
        self.D.requires_grad_(False)
        with self.autocast():
            total, terms = self.loss(out, x_s, y, self.D if self.use_gan else None)
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        logs = {k: float(v) for k, v in terms.items()}
        logs["g_total"] = float(total.detach())
        if self.use_gan:
            fakes = [out["y_hat"].detach()]
            if self.cfg.loss.warp_adversarial:
                fakes.append(out["warped_src"].detach())
            with self.autocast():
                d_loss = self.d_ddp(y, fakes)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            logs["d_total"] = float(d_loss.detach())
        logs["lr"] = lr
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        logs["time/forward_backward"] = time.perf_counter() - t0
        if "t_geometry" in batch:
            logs["time/geometry"] = float(batch["t_geometry"].sum())
        self._last = (batch, out)
        return logs

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean L1 on ``val_pairs`` fixed pairs of the held-out identities (eval mode: BatchNorm running
        statistics, no state changes): ``val/l1`` of the output, ``val/l1_geometry`` of the geometry
        engine's image (geometry_init models) and ``val/l1_copy`` of the unchanged source."""
        ds = self.val_dataset
        if ds is None:
            return {}
        from core.train.dataset import collate

        n = self.cfg.val_pairs
        sums: dict[str, float] = {}
        self.G.eval()
        for i in range(0, n, self.local_batch):
            batch = collate([ds[(0, 0, k)] for k in range(i, min(n, i + self.local_batch))])
            dev = self.device
            x_s, y = batch["src"].to(dev), batch["drv"].to(dev)
            geometry = self._geometry_input(batch)
            with self.autocast():
                out = self.G(x_s, batch["v_src"].to(dev), batch["v_drv"].to(dev), geometry)
            m = x_s.shape[0]
            parts = {"val/l1": out["y_hat"], "val/l1_copy": x_s}
            if geometry is not None:
                parts["val/l1_geometry"] = geometry.image
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + m * float((v.float() - y.float()).abs().mean())
        self.G.train()
        return {k: v / n for k, v in sums.items()}

    # ------------------------------------------------------------------ loop
    def run(self, steps: int | None = None) -> dict[str, float]:
        """Train until ``optim.steps`` (or for ``steps`` more iterations); returns the last logged values.
        Every step's time split (``time/*``) is logged with the other scalars."""
        cfg = self.cfg
        stop = cfg.optim.steps if steps is None else min(cfg.optim.steps, self.step + steps)
        logs: dict[str, float] = {}
        t0, n0 = time.time(), self.step
        batches = iter(self.batches(self.step, stop))
        while True:
            t_data = time.perf_counter()
            batch = next(batches, None)
            if batch is None:
                break
            t_data = time.perf_counter() - t_data
            logs = self.train_step(batch)
            logs["time/data"] = t_data
            logs["time/step"] = t_data + logs["time/forward_backward"]
            self.step += 1
            if self.env.main:
                if cfg.val_every and (self.step % cfg.val_every == 0 or self.step == stop):
                    logs.update(self.validate())
                if self.step % cfg.log_every == 0 or self.step == stop:
                    rate = (self.step - n0) / max(time.time() - t0, 1e-9)
                    self._log_scalars(logs, rate)
                if cfg.image_every and self.step % cfg.image_every == 0:
                    self._log_images()
                if cfg.curves_every and self.step % cfg.curves_every == 0:
                    self.plot_curves()
            if cfg.ckpt_every and (self.step % cfg.ckpt_every == 0 or self.step == stop):
                self.save_checkpoint()
        return logs

    def plot_curves(self) -> Path | None:
        """Redraw ``<out_dir>/curves.png`` from ``metrics.jsonl`` (a plotting failure is logged, not raised)."""
        from core.train.visualise import plot_curves

        try:
            return plot_curves(self.out_dir / "metrics.jsonl", self.out_dir / "curves.png")
        except Exception as exc:  # a picture must never stop a multi-hour run
            log.warning("could not draw the training curves: %s: %s", type(exc).__name__, exc)
            return None

    # ------------------------------------------------------------------ logging
    def _tb(self):
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.out_dir / "tb"))
            except Exception as exc:  # tensorboard missing: metrics.jsonl only
                log.warning(
                    "TensorBoard logging is off (%s: %s); install 'tensorboard' (requirements.txt). "
                    "Scalars still go to %s",
                    type(exc).__name__,
                    exc,
                    self.out_dir / "metrics.jsonl",
                )
                self._writer = False
        return self._writer or None

    def _log_scalars(self, logs: dict[str, float], rate: float) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": self.step, "it_s": rate, **logs}) + "\n")
        log.info("step %d  %s  (%.2f it/s)", self.step, "  ".join(f"{k} {v:.4g}" for k, v in logs.items()), rate)
        w = self._tb()
        if w:
            for k, v in logs.items():
                w.add_scalar(f"train/{k}", v, self.step)
            w.add_scalar("train/it_per_s", rate, self.step)

    def _log_images(self) -> None:
        if not hasattr(self, "_last"):
            return
        from core.train.visualise import sample_grid, write_png

        batch, out = self._last
        n = min(4, batch["src"].shape[0])
        grid_rows = [batch["src"], batch["drv"]]
        grid_rows += [batch["geo_image"]] if "geo_image" in batch else []
        grid_rows += [out["y_hat"], out["alpha"]]
        write_png(sample_grid(grid_rows, n), self.out_dir / "samples" / f"step_{self.step:08d}.png")
        w = self._tb()
        if not w:
            return
        rows = [
            batch["src"][:n],
            batch["drv"][:n],
            out["y_hat"][:n].detach().float().cpu(),
            out["warped_src"][:n].detach().float().cpu(),
        ]
        w.add_images("images/src_drv_out_warped", torch.cat(rows, 0).clamp(0, 1), self.step)
        for s, f in out["flows"].items():
            w.add_images(f"flows/x{s}", flow_to_rgb(f[:n]).cpu(), self.step)
        w.add_images("flows/geometric", flow_to_rgb(out["geom_flow"][:n]).cpu(), self.step)

    # ------------------------------------------------------------------ checkpoints
    def state_dicts(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        def clean(sd):
            return {k: v.detach().cpu().contiguous().clone() for k, v in sd.items()}

        return clean(self.G.state_dict()), clean(self.D.state_dict())

    def save_checkpoint(self) -> Path | None:
        """Rank 0 writes ``checkpoints/step_XXXXXXXX`` atomically, updates ``latest.json`` and the export."""
        if not self.env.main:
            return None
        g_sd, d_sd = self.state_dicts()
        ckdir = self.out_dir / "checkpoints"
        ckdir.mkdir(parents=True, exist_ok=True)
        name = f"step_{self.step:08d}"
        final = ckdir / name
        tmp = ckdir / f".tmp-{name}-{os.getpid()}"
        sweep_partial(ckdir)
        tmp.mkdir()
        try:
            self._write_checkpoint(tmp, g_sd, d_sd)
        except BaseException:  # an error or an interrupt: no half-written folder stays behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _atomic_write_bytes(ckdir / "latest.json", json.dumps({"checkpoint": name, "step": self.step}).encode())
        export_weights(g_sd, self.cfg, self.out_dir, step=self.step)
        done = sorted(p for p in ckdir.glob("step_*") if p.is_dir())
        for old in done[: -max(1, self.cfg.keep_checkpoints)]:
            shutil.rmtree(old, ignore_errors=True)
        self.plot_curves()
        return final

    def _write_checkpoint(self, tmp: Path, g_sd: dict, d_sd: dict) -> None:
        """Weights, optimiser and RNG states and the config into the folder ``tmp``."""
        from safetensors.torch import save_file

        save_file(g_sd, str(tmp / "generator.safetensors"))
        save_file(d_sd, str(tmp / "discriminator.safetensors"))
        np_state = np.random.get_state()
        state = {
            "step": self.step,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "python": list(random.getstate()[1]),
                "python_version": random.getstate()[0],
                "python_gauss": random.getstate()[2],
                "numpy": [
                    np_state[0],
                    torch.from_numpy(np_state[1].astype(np.int64)),
                    np_state[2],
                    np_state[3],
                    np_state[4],
                ],
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
        }
        torch.save(state, tmp / "state.pt")
        (tmp / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=1))

    def _maybe_resume(self) -> None:
        r = self.cfg.resume
        if r == "none":
            return
        if self.env.main:  # what a killed run (SIGKILL mid-write) left behind
            sweep_partial(self.out_dir / "checkpoints")
        if r == "auto":
            latest = self.out_dir / "checkpoints" / "latest.json"
            if not latest.is_file():
                return
            path = self.out_dir / "checkpoints" / json.loads(latest.read_text())["checkpoint"]
        else:
            path = Path(r)
        self.load_checkpoint(path)

    def load_checkpoint(self, path: str | Path) -> None:
        from safetensors.torch import load_file

        path = Path(path)
        if not (path / "state.pt").is_file():
            raise FileNotFoundError(f"{path} is not a complete checkpoint (no state.pt)")
        self.G.load_state_dict(load_file(str(path / "generator.safetensors"), device=str(self.device)))
        self.D.load_state_dict(load_file(str(path / "discriminator.safetensors"), device=str(self.device)))
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        rng = state["rng"]
        if self.env.main:  # the stored RNG states are rank 0's; other ranks reseed from the step
            torch.set_rng_state(rng["torch"])
            random.setstate((rng["python_version"], tuple(rng["python"]), rng["python_gauss"]))
            n = rng["numpy"]
            np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
            if rng["cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
        else:
            self._seed(self.cfg.seed + self.env.rank + 7919 * self.step)
        log.info("resumed from %s at step %d", path, self.step)

    def load_init_weights(self, path: str | Path) -> None:
        """Start this (new) run from the generator of a ``pwm.json`` export (or its folder): the file's
        generator config must equal this run's, every tensor name and shape must match; optimisers, step and
        discriminator start fresh. Raises ``PWMWeightsError`` (a ``ValueError``) saying what is wrong."""
        from core.engines.pwm import PWMWeightsError, read_weights

        p = Path(path).expanduser()
        meta_path = p if p.suffix == ".json" else p / f"{EXPORT_NAME}.json"
        cfg, state, _ = read_weights(meta_path)
        if cfg.to_dict() != self.cfg.generator.to_dict():
            mine, theirs = self.cfg.generator.to_dict(), cfg.to_dict()
            diff = {k: (theirs[k], mine[k]) for k in mine if theirs[k] != mine[k]}
            raise PWMWeightsError(
                f"init_weights {meta_path}: its generator config differs from this run's (file, run): {diff}"
            )
        from core.engines.pwm import check_state_dict

        check_state_dict(self.G.state_dict(), state, meta_path, cfg)
        self.G.load_state_dict({k: v.to(self.device) for k, v in state.items()})
        log.info("generator initialised from %s (no optimiser state; step 0)", meta_path)

    def close(self) -> None:
        if self._writer:
            self._writer.close()


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def export_weights(
    g_state: dict[str, torch.Tensor],
    config: TrainConfig,
    out_dir: str | Path,
    step: int | None = None,
    name: str = EXPORT_NAME,
) -> Path:
    """Write the engine's files ``<name>.safetensors`` (generator state dict, spectral norm not folded) and
    ``<name>.json`` (format, generator config, training resolution, step) atomically into ``out_dir``."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.safetensors"
    tmp = out_dir / f".{name}.safetensors.tmp{os.getpid()}"
    save_file(g_state, str(tmp), metadata={"format": EXPORT_FORMAT})
    os.replace(tmp, target)
    meta = {
        "format": EXPORT_FORMAT,
        "version": 1,
        "variant": config.generator.variant,
        "preset": config.generator.preset,
        "generator": config.generator.to_dict(),
        "size": config.data.size,
        "step": step,
        "weights": target.name,
    }
    _atomic_write_bytes(out_dir / f"{name}.json", json.dumps(meta, indent=1).encode())
    return target
