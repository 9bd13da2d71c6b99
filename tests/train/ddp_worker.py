"""Run by ``torchrun`` from test_trainer.py: train a tiny config under DDP and save this rank's tensors."""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from core.train.config import TrainConfig
from core.train.trainer import Trainer

cfg = TrainConfig.from_dict(json.loads(Path(sys.argv[1]).read_text()))
trainer = Trainer(cfg)
trainer.run()
g, d = trainer.state_dicts()
save_file(
    {**{f"G.{k}": v for k, v in g.items()}, **{f"D.{k}": v for k, v in d.items()}},
    str(Path(cfg.out_dir) / f"rank{trainer.env.rank}.safetensors"),
)
torch.distributed.destroy_process_group()
