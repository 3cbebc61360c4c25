"""The public face: create, load and train models. Thin wrappers over the layers below."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ganzoo.errors import GanzooUsageError
from ganzoo.hub import build_model, load_local
from ganzoo.model import GANModel
from ganzoo.trainer import train

__all__ = ["create", "load", "train"]


def create(architecture: str, *, preset: str | None = None, discriminator: bool = True,
           device: str | torch.device | None = None, seed: int | None = None, **config: Any) -> GANModel:
    """An untrained model of a registered architecture.

    Args:
        architecture: a name from `ganzoo.list_models()`.
        preset: a named preset of the architecture.
        discriminator: also build the discriminator.
        device: where to put the model.
        seed: initialise the weights reproducibly.
        config: config fields, e.g. `img_size=32, channels=1`.
    """
    if seed is not None:
        torch.manual_seed(seed)
    model = build_model(architecture, None, discriminator=discriminator, preset=preset, **config)
    return model.to(device) if device is not None else model


def load(name_or_path: str | os.PathLike[str], device: str | torch.device | None = None) -> GANModel:
    """Load a trained model from a run folder or a model folder.

    Args:
        name_or_path: a run folder (its `model/` is loaded) or a model folder written by `save_pretrained`.
        device: where to put the model.
    """
    path = Path(name_or_path).expanduser()
    if path.exists():
        return load_local(path, device)
    raise GanzooUsageError(f"{name_or_path} is not a run or model folder; pass the path of one")
