"""The model bundle that `ganzoo.load` and `ganzoo.create` return, and the functions that make one.

Layering: this module sits above the persistence layer and imports it (`ganzoo.serialization` writes and reads a
bundle's parts, `ganzoo.hub` publishes a folder); neither imports this module back. That is why the bundle can keep
`save_pretrained` and `push_to_hub` as methods without an import cycle: they delegate down to functions that take
the bundle's parts, and loading a folder into a bundle (`load_model_folder`, and `ganzoo.load` above it) wraps the
parts read by `ganzoo.serialization` here, not there.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo import hub
from ganzoo.errors import GanzooUsageError
from ganzoo.interfaces import ArchConfig, Discriminator, Generator
from ganzoo.serialization import ModelParts, build_parts, find_model_folder, read_model_folder, save_model_folder

__all__ = ["GANModel", "build_model", "load_local", "load_model_folder", "slerp"]


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between rows of `a` and `b` (linear where they are parallel)."""
    a_unit = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b_unit = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    omega = torch.arccos((a_unit * b_unit).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    sin = torch.sin(omega)
    spherical = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin
    return torch.where(sin.abs() < 1e-6, torch.lerp(a, b, t), spherical)


class GANModel(nn.Module):
    """A generator, an optional discriminator and EMA generator, and the architecture and config behind them.

    `sample` uses the EMA generator when there is one. The bundle is an `nn.Module`, so `.to(device)` moves
    all of it.
    """

    def __init__(self, architecture: str, config: ArchConfig, generator: Generator,
                 discriminator: Discriminator | None = None, ema: Generator | None = None,
                 info: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.architecture = architecture
        self.config = config
        self.generator = generator
        self.discriminator = discriminator
        self.ema = ema
        self.info: dict[str, Any] = dict(info or {})  # training summary, source, provenance

    @classmethod
    def from_parts(cls, parts: ModelParts) -> GANModel:
        """The bundle of parts built or read by `ganzoo.serialization` (no EMA generator)."""
        return cls(parts.architecture, parts.config, parts.generator, parts.discriminator, info=parts.info)

    def __repr__(self) -> str:
        parts = [f"architecture={self.architecture!r}", f"img_shape={self.img_shape}"]
        if self.num_classes:
            parts.append(f"num_classes={self.num_classes}")
        parts.append(f"ema={self.ema is not None}")
        return f"GANModel({', '.join(parts)})"

    @property
    def sampler(self) -> Generator:
        """The generator used for sampling: the EMA copy when present."""
        return self.ema if self.ema is not None else self.generator

    @property
    def img_shape(self) -> tuple[int, int, int]:
        return self.generator.img_shape

    @property
    def num_classes(self) -> int:
        return self.generator.num_classes

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def with_ema(self) -> GANModel:
        """Attach an EMA copy of the generator if there is none (used by the trainer)."""
        if self.ema is None:
            self.ema = copy.deepcopy(self.generator).requires_grad_(False).eval()
        return self

    def latents(self, n: int, seed: int | None = None) -> torch.Tensor:
        """`n` latents on this model's device; the same seed gives the same latents on every device."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        z = self.sampler.sample_latents(n, generator=gen)
        if self.device.type == "cuda":  # a copy that does not wait for the GPU's queued work
            return z.pin_memory().to(self.device, non_blocking=True)
        return z.to(self.device)

    def _labels(self, n: int, labels: int | Sequence[int] | torch.Tensor | None) -> torch.Tensor | None:
        if self.num_classes == 0:
            if labels is not None:
                raise GanzooUsageError(f"{self.architecture} is unconditional; sample without labels")
            return None
        if labels is None:  # cycle through the classes so a grid shows every class
            return torch.arange(n, device=self.device) % self.num_classes
        if isinstance(labels, int):
            labels = [labels] * n
        labels = torch.as_tensor(labels, dtype=torch.long, device=self.device).flatten()
        if labels.numel() != n:
            raise GanzooUsageError(f"got {labels.numel()} labels for {n} samples; give one label per sample")
        bad = labels[(labels < 0) | (labels >= self.num_classes)]
        if bad.numel():
            raise GanzooUsageError(f"label {int(bad[0])} is out of range; classes are 0..{self.num_classes - 1}")
        return labels

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None, labels: int | Sequence[int] | torch.Tensor | None = None,
               batch_size: int = 256, **generator_kwargs: Any) -> torch.Tensor:
        """`n` images of shape (n, C, H, W) in [-1, 1], on this model's device.

        Args:
            n: number of images.
            seed: makes the result repeatable (latents are drawn on the CPU, so identical across devices).
            labels: class labels for conditional models (one int, or one per image; default cycles classes).
            batch_size: images per generator call.
            generator_kwargs: passed to the generator, for architectures that take more (e.g. truncation).
        """
        if n < 1:
            raise GanzooUsageError(f"number of samples must be at least 1, got {n}")
        z = self.latents(n, seed)
        y = self._labels(n, labels)
        G = self.sampler
        was_training = G.training
        G.eval()
        try:
            chunks = []
            for start in range(0, n, batch_size):
                stop = start + batch_size
                chunks.append(G(z[start:stop], None if y is None else y[start:stop], **generator_kwargs))
            return torch.cat(chunks).float().clamp_(-1, 1)
        finally:
            G.train(was_training)

    @torch.no_grad()
    def interpolate(self, n: int = 8, keyframes: int = 4, frames_per_key: int = 16, seed: int | None = None,
                    labels: int | Sequence[int] | torch.Tensor | None = None, spherical: bool = True,
                    **generator_kwargs: Any) -> list[torch.Tensor]:
        """A latent walk: `n` parallel walks through `keyframes` random latents, looping back to the first.

        Returns `keyframes * frames_per_key` batches of `n` images. Gaussian latents are interpolated
        spherically (`spherical=False` for straight lines).
        """
        if n < 1 or keyframes < 2 or frames_per_key < 1:
            raise GanzooUsageError("interpolation needs n >= 1, keyframes >= 2 and frames_per_key >= 1")
        keys = self.latents(n * keyframes, seed).view(keyframes, n, -1)
        y = self._labels(n, labels)
        G = self.sampler
        was_training = G.training
        G.eval()
        frames = []
        try:
            for k in range(keyframes):
                a, b = keys[k], keys[(k + 1) % keyframes]
                for f in range(frames_per_key):
                    t = f / frames_per_key
                    z = slerp(a, b, t) if spherical else torch.lerp(a, b, t)
                    frames.append(G(z, y, **generator_kwargs).float().clamp_(-1, 1))
        finally:
            G.train(was_training)
        return frames

    def save_pretrained(self, folder: str | os.PathLike[str], samples: bool = True) -> Path:
        """Write a model folder: config.json, generator/discriminator safetensors, model card, sample grid.

        Delegates to `ganzoo.serialization.save_model_folder`, which sits below this module (see the module
        docstring)."""
        return save_model_folder(self, folder, samples=samples)

    def push_to_hub(self, repo_id: str, *, private: bool = False, branch: str | None = None,
                    message: str | None = None, token: str | None = None) -> dict[str, Any]:
        """Publish this model to the Hugging Face Hub in one commit; returns the repo id, commit id and url.

        Delegates to `ganzoo.hub.push`, which sits below this module: it saves the bundle through `save_pretrained`
        and checks the folder through `ganzoo.serialization`, never importing `ganzoo.model`."""
        return hub.push(self, repo_id, private=private, branch=branch, message=message, token=token)


def build_model(architecture: str, config: ArchConfig | Mapping[str, Any] | None = None, *,
                discriminator: bool = True, preset: str | None = None, **overrides: Any) -> GANModel:
    """A freshly initialised model of a registered architecture (seed torch first for reproducible weights)."""
    return GANModel.from_parts(build_parts(architecture, config, discriminator=discriminator, preset=preset,
                                           **overrides))


def load_model_folder(folder: str | os.PathLike[str], device: str | torch.device | None = None,
                      discriminator: bool = True) -> GANModel:
    """Load a model folder written by `save_pretrained` (or pulled from the Hub), in eval mode."""
    model = GANModel.from_parts(read_model_folder(folder, discriminator))
    model.eval()
    return model.to(device) if device is not None else model


def load_local(path: str | os.PathLike[str], device: str | torch.device | None = None) -> GANModel:
    """Load a model folder, or a run folder (its exported `model/` folder)."""
    return load_model_folder(find_model_folder(path), device)
