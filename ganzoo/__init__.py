"""ganzoo: a plugin-based GAN model zoo for PyTorch.

    import ganzoo
    ganzoo.list_models()                                  # registered architectures
    gan = ganzoo.create("dcgan", img_size=32, channels=1)  # untrained
    gan = ganzoo.train("dcgan", data="mnist-5k", steps=2000, out="runs/dcgan")
    gan = ganzoo.load("runs/dcgan")                       # a run or model folder
    ganzoo.evaluate(gan, "mnist-5k", ["fid", "kid"])      # metrics with their provenance
    images = gan.sample(16, seed=0)                       # (16, C, H, W) in [-1, 1]

The public names are loaded lazily, so `import ganzoo` (and `ganzoo --help`) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "create": "ganzoo.api",
    "load": "ganzoo.api",
    "train": "ganzoo.api",
    "evaluate": "ganzoo.api",
    "list_models": "ganzoo.registry",
    "list_pretrained": "ganzoo.registry",
    "list_losses": "ganzoo.losses",
    "GANModel": "ganzoo.model",
    "Architecture": "ganzoo.interfaces",
    "ArchConfig": "ganzoo.interfaces",
    "Recipe": "ganzoo.interfaces",
    "Generator": "ganzoo.interfaces",
    "Discriminator": "ganzoo.interfaces",
    "GanzooError": "ganzoo.errors",
}

__all__ = [
    "ArchConfig",
    "Architecture",
    "Discriminator",
    "GANModel",
    "GanzooError",
    "Generator",
    "Recipe",
    "__version__",
    "create",
    "evaluate",
    "list_losses",
    "list_models",
    "list_pretrained",
    "load",
    "train",
]

if TYPE_CHECKING:
    from ganzoo.api import create, evaluate, load, train
    from ganzoo.errors import GanzooError
    from ganzoo.interfaces import ArchConfig, Architecture, Discriminator, Generator, Recipe
    from ganzoo.losses import list_losses
    from ganzoo.model import GANModel
    from ganzoo.registry import list_models, list_pretrained


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ganzoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
