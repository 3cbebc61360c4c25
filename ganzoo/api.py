"""The public face: create, load, train and evaluate models. Thin wrappers over the layers below.

This is the layer that turns a name into a model: `ganzoo.hub` turns the name into a verified folder, `ganzoo.model`
the folder into a `GANModel`; `evaluate` accepts anything `load` does and hands `ganzoo.metrics` the loaded model.
None of the layers below imports this module back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from ganzoo import hub
from ganzoo.model import GANModel, build_model, load_local, load_model_folder
from ganzoo.trainer import train

if TYPE_CHECKING:
    from ganzoo.metrics import EvalResult

__all__ = ["create", "evaluate", "load", "train"]


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
    source = hub.resolve(os.fspath(name_or_path), revision)
    if source.kind == "local":
        return load_local(source.location, device)
    folder, where = hub.locate(source)
    model = load_model_folder(folder, device)
    model.info["source"] = where
    return model


def evaluate(model: GANModel | str | os.PathLike[str], data: str = "mnist-5k",
             metrics: str | Sequence[str] = ("fid",), *, extractor: str | None = None, num_samples: int | None = None,
             seed: int = 0, device: str | torch.device | None = None, batch_size: int = 250, cache: bool = True,
             split: str | None = None, **generator_kwargs: Any) -> EvalResult:
    """Evaluate a generator (a `GANModel`, or anything `load` takes) against a dataset.

        result = ganzoo.evaluate("runs/dcgan", "mnist-5k", ["fid", "kid"], extractor="digits")
        result.values        # {"fid": ..., "kid": ..., "kid_std": ...}
        result.diagnostics   # class histogram, entropy, classes covered (digit data only)
        result.provenance    # extractor, weights sha256, data and split, image counts, seed, versions

    `extractor` None measures the emoji sets with `colour` and everything else with `digits` (both shipped,
    offline). Metric, extractor and split names are checked before a name is loaded. The arguments are those of
    `ganzoo.metrics.evaluate`, which does the measuring on the loaded model.
    """
    from ganzoo.data import eval_split
    from ganzoo.metrics import evaluate as evaluate_model
    from ganzoo.metrics import parse_metrics
    from ganzoo.metrics.extractors import canonical_name, default_extractor

    if not isinstance(model, GANModel):
        parse_metrics(metrics)  # name errors before any loading
        canonical_name(extractor or default_extractor(data))
        eval_split(data, split)
        model = load(model, device=device)
    return evaluate_model(model, data, metrics, extractor=extractor, num_samples=num_samples, seed=seed,
                          device=device, batch_size=batch_size, cache=cache, split=split, **generator_kwargs)
