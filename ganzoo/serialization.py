"""Model folders on disk: config.json + safetensors weights + model card + sample grid.

(The Hub side, resolving names, downloading, verifying and pushing, is in `ganzoo.hub`.)

This module sits below the model bundle: it reads and writes a bundle's parts (architecture name, config, networks,
info) and never imports `ganzoo.model`, so `GANModel.save_pretrained` can call `save_model_folder` without a cycle.
`ganzoo.model` wraps the parts in a `GANModel` (`build_model`, `load_model_folder`, `load_local`).

A model folder (and a Hub repository written by ganzoo) holds:
    config.json                 {"architecture": name, "config": {...}, "ganzoo_version": ..., "training": {...}}
    generator.safetensors       the EMA generator's weights when training kept one
    discriminator.safetensors   optional
    README.md                   model card with YAML front matter
    samples.png                 a grid of 64 samples, seed 0
A config names a registered architecture, never an import path; weights are safetensors only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ganzoo import __version__
from ganzoo._io import atomic_path, write_json, write_text
from ganzoo.card import model_card
from ganzoo.errors import ConfigError, GanzooUsageError, WeightsError
from ganzoo.images import class_rows, save_grid
from ganzoo.interfaces import ArchConfig, Discriminator, Generator

if TYPE_CHECKING:
    from ganzoo.model import GANModel

__all__ = [
    "CONFIG_NAME",
    "DISCRIMINATOR_NAME",
    "GENERATOR_NAME",
    "ModelParts",
    "build_parts",
    "find_model_folder",
    "is_model_folder",
    "load_weights",
    "read_model_folder",
    "read_state",
    "save_model_folder",
    "save_state",
]

CONFIG_NAME = "config.json"
GENERATOR_NAME = "generator.safetensors"
DISCRIMINATOR_NAME = "discriminator.safetensors"
CARD_NAME = "README.md"
SAMPLES_NAME = "samples.png"


def _preview(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def save_state(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike[str],
               metadata: Mapping[str, str] | None = None) -> None:
    """Write tensors to a safetensors file atomically (contiguous CPU copies; metadata values are strings)."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp), metadata=dict(metadata) if metadata else None)


def read_state(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a safetensors file on the CPU; a missing or corrupt file is a `WeightsError`."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; re-export the model or download it again")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(f"weights file {path} is not a readable safetensors file ({reason}); "
                           "re-export or re-download it") from None


def load_weights(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load `state` into `module` strictly: missing or unexpected keys, shapes and dtypes must all match."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing keys {_preview(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_preview(unexpected)}")
    for key in sorted(set(expected) & set(state)):
        want, got = expected[key], state[key]
        if want.shape != got.shape:
            problems.append(f"{key} has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        elif want.dtype != got.dtype:
            problems.append(f"{key} has dtype {got.dtype}, expected {want.dtype}")
        if len(problems) >= 3:
            break
    if problems:
        raise WeightsError(f"{source} does not match the model: {'; '.join(problems)}; "
                           "the weights were saved for another architecture or config")
    module.load_state_dict(state, strict=True)


@dataclass
class ModelParts:
    """What a model bundle is made of: a registered architecture's name, its config, the networks and the info
    (training summary, metrics, source). `ganzoo.model.GANModel.from_parts` makes the bundle."""

    architecture: str
    config: ArchConfig
    generator: Generator
    discriminator: Discriminator | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def img_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the generated images."""
        return self.generator.img_shape

    @property
    def num_classes(self) -> int:
        """Number of classes the generator is conditioned on (0: unconditional)."""
        return self.generator.num_classes


def build_parts(architecture: str, config: ArchConfig | Mapping[str, Any] | None = None, *,
                discriminator: bool = True, preset: str | None = None, **overrides: Any) -> ModelParts:
    """Freshly initialised networks of a registered architecture (G first, then D), checked against the interface."""
    from ganzoo.registry import get_architecture

    arch = get_architecture(architecture)
    if isinstance(config, ArchConfig):
        cfg = config.replace(**overrides) if overrides else config
        if not isinstance(cfg, arch.config_cls):
            raise ConfigError(f"config is a {type(cfg).__name__}, expected {arch.config_cls.__name__}")
    else:
        cfg = arch.make_config(preset, **{**(config or {}), **overrides})
    if arch.conditional and cfg.num_classes < 1:
        raise ConfigError(f"{arch.name} is conditional: set num_classes to the number of classes")
    G = _checked(arch.name, "build_generator", arch.build_generator(cfg), Generator, cfg)
    D = _checked(arch.name, "build_discriminator", arch.build_discriminator(cfg), Discriminator, cfg) \
        if discriminator else None
    return ModelParts(arch.name, cfg, G, D)


def _checked(name: str, builder: str, module: Any, kind: type, cfg: ArchConfig) -> Any:
    """A plugin's builder output, checked against the interface before anything trains or loads into it."""
    from ganzoo.contract import PluginContractError, architecture_origin

    who = f"{architecture_origin(name)} breaks the plugin contract"
    if not isinstance(module, kind):
        raise PluginContractError(f"{who}: {builder} returned a {type(module).__name__}; it must return a "
                                  f"ganzoo.interfaces.{kind.__name__} (see docs/plugins.md)")
    expected = (cfg.channels, cfg.img_size, cfg.img_size)
    if tuple(module.img_shape) != expected:
        raise PluginContractError(f"{who}: {builder} made a model with img_shape {tuple(module.img_shape)} for a "
                                  f"config of {expected}; img_shape must be (channels, img_size, img_size) "
                                  "(see docs/plugins.md)")
    return module


def is_model_folder(path: Path) -> bool:
    return (path / CONFIG_NAME).is_file() and (path / GENERATOR_NAME).is_file()


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text, so not a ganzoo config; fix or re-export it") from None
    except OSError as exc:
        raise WeightsError(f"cannot read {path} ({exc.strerror or exc}); check the file and its permissions") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); fix or re-export it") from None
    if not isinstance(data, dict) or not isinstance(data.get("architecture"), str):
        raise ConfigError(f"{path} must be a JSON object with an 'architecture' name; re-export the model")
    if not isinstance(data.get("config", {}), dict):
        raise ConfigError(f"{path}: 'config' must be a JSON object")
    return data


def read_model_folder(folder: str | os.PathLike[str], discriminator: bool = True) -> ModelParts:
    """The parts of a model folder written by `save_model_folder` (or pulled from the Hub), every file checked:
    the config names a registered architecture, the weights match its networks exactly. `info` holds the
    config's other fields and `source`, the folder."""
    folder = Path(folder)
    meta = _read_config(folder / CONFIG_NAME)
    parts = build_parts(meta["architecture"], meta.get("config", {}),
                        discriminator=discriminator and (folder / DISCRIMINATOR_NAME).is_file())
    load_weights(parts.generator, read_state(folder / GENERATOR_NAME), str(folder / GENERATOR_NAME))
    if parts.discriminator is not None:
        load_weights(parts.discriminator, read_state(folder / DISCRIMINATOR_NAME), str(folder / DISCRIMINATOR_NAME))
    parts.info = {k: v for k, v in meta.items() if k not in ("architecture", "config")}
    parts.info["source"] = str(folder)
    return parts


def find_model_folder(path: str | os.PathLike[str]) -> Path:
    """The model folder at `path`: the folder itself, or a run folder's exported `model/`."""
    path = Path(path).expanduser()
    if not path.exists():
        raise GanzooUsageError(f"{path} does not exist; pass a run folder, a model folder or a model name")
    if is_model_folder(path):
        return path
    if is_model_folder(path / "model"):
        return path / "model"
    if (path / CONFIG_NAME).is_file():
        raise WeightsError(f"{path} has a config.json but no {GENERATOR_NAME}; re-export the model")
    raise GanzooUsageError(f"{path} is neither a run folder nor a model folder (no {CONFIG_NAME} with weights)")


def save_model_folder(model: GANModel, folder: str | os.PathLike[str], *, samples: bool = True,
                      training: Mapping[str, Any] | None = None) -> Path:
    """Write `model` as a model folder (every file atomically); returns the folder.

    `model` is a `GANModel`, used through its parts (`sampler`, `discriminator`, `architecture`, `config`, `info`)
    and `sample` for the grid; this module does not import `ganzoo.model`, which calls this function. A translation
    model cannot sample from noise: its grid (inputs beside outputs) is written by the trainer, or not at all.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    training = dict(training if training is not None else model.info.get("training", {}))
    save_state(model.sampler.state_dict(), folder / GENERATOR_NAME, {"format": "pt", "ganzoo": __version__})
    if model.discriminator is not None:
        save_state(model.discriminator.state_dict(), folder / DISCRIMINATOR_NAME,
                   {"format": "pt", "ganzoo": __version__})
    write_text(folder / CARD_NAME, model_card(model, training))
    if samples and getattr(model, "task", "generate") == "generate":  # 64 images, or 8 per class (conditional)
        labels = class_rows(model.num_classes, 8) if model.num_classes else None
        n = len(labels) if labels is not None else 64
        save_grid(model.sample(n, seed=0, labels=labels), folder / SAMPLES_NAME, nrow=8)
    # config.json last: once it records a training's steps, every other file of this export is written (what
    # `ganzoo train --auto-resume` reads to tell a finished run from one killed while exporting)
    meta = {"architecture": model.architecture, "config": model.config.to_dict(), "ganzoo_version": __version__}
    if training:
        meta["training"] = training
    if model.info.get("metrics"):
        meta["metrics"] = model.info["metrics"]
    write_json(folder / CONFIG_NAME, meta)
    return folder

