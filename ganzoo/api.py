"""The public face: create, load and train models. Thin wrappers over the layers below."""

from __future__ import annotations

import os
from typing import Any

import torch

from ganzoo.model import GANModel
from ganzoo.serialization import build_model
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


def load(name_or_path: str | os.PathLike[str], revision: str | None = None,
         device: str | torch.device | None = None) -> GANModel:
    """Load a trained model by name or path.

    Args:
        name_or_path: a run folder (its `model/` is loaded), a model folder, a pretrained catalogue name
            (`ganzoo.list_pretrained()`), or a Hugging Face Hub repo id (`user/repo` or `hf-hub:user/repo`).
        revision: a Hub branch, tag or commit id (catalogue entries default to their pinned commit).
        device: where to put the model.
    """
    from ganzoo.hub import load as hub_load

    return hub_load(os.fspath(name_or_path), revision=revision, device=device)
