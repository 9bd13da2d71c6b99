"""Training of the PWM generator: configs, preprocessing, the pair dataset and the (DDP) trainer.

Heavy pieces are imported lazily: ``from core.train.trainer import Trainer``.
"""

from core.train.config import DataConfig, OptimConfig, TrainConfig, load_config

__all__ = ["TrainConfig", "DataConfig", "OptimConfig", "load_config"]
