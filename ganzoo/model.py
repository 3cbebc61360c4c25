"""The model bundle that `ganzoo.load` and `ganzoo.create` return, and the functions that make one.

Layering: this module sits above the persistence layer and imports it (`ganzoo.serialization` writes and reads a
bundle's parts, `ganzoo.hub` publishes a folder); neither imports this module back. That is why the bundle can keep
`save_pretrained` and `push_to_hub` as methods without an import cycle: they delegate down to functions that take
the bundle's parts, and loading a folder into a bundle (`load_model_folder`, and `ganzoo.load` above it) wraps the
parts read by `ganzoo.serialization` here, not there.
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo import hub
from ganzoo.errors import GanzooUsageError
from ganzoo.interfaces import ArchConfig, Discriminator, Generator, Translator
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

    `sample` (generation) and `translate` (image-to-image models, whose generator is a `Translator`) use the EMA
    generator when there is one. The bundle is an `nn.Module`, so `.to(device)` moves all of it.
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
    def task(self) -> str:
        """"generate" (latents to images: `sample`), "translate" (images to images: `translate`) or "upscale"
        (low- to high-resolution images: `upscale`, a translator whose `scale` > 1)."""
        if not isinstance(self.generator, Translator):
            return "generate"
        return "upscale" if getattr(self.generator, "scale", 1) > 1 else "translate"

    def _needs_latents(self, what: str) -> None:
        if self.task != "generate":
            raise GanzooUsageError(f"{self.architecture} {self.task}s images and cannot {what} from noise; use "
                                   f"gan.{self.task}(images) or `ganzoo {self.task} MODEL IMAGES... -o OUT`")

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def supports_truncation(self) -> bool:
        """Whether the generator takes `truncation=` (models with a mapping network and an average w)."""
        return "truncation" in inspect.signature(self.sampler.forward).parameters

    @property
    def supports_style_mixing(self) -> bool:
        """Whether the generator can mix two latents' styles (`style_mix_grid`)."""
        return callable(getattr(self.sampler, "style_mix", None))

    @property
    def num_style_layers(self) -> int:
        """Style inputs of the synthesis network (0 for a model without style mixing)."""
        return int(getattr(self.sampler, "num_style_layers", 0)) if self.supports_style_mixing else 0

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
        self._needs_latents("sample")
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
        self._needs_latents("interpolate")
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

    @torch.no_grad()
    def interpolate_seeds(self, seeds: Sequence[int], n: int = 1, frames: int = 16,
                          labels: int | Sequence[int] | torch.Tensor | None = None, spherical: bool = True,
                          **generator_kwargs: Any) -> list[torch.Tensor]:
        """`frames` batches of `n` images walking from `sample(n, seed=seeds[0])` to `sample(n, seed=seeds[-1])`.

        The walk passes through every seed's latents in turn, spending the same number of frames between each pair;
        the first frame is the first seed's images and the last frame the last seed's.
        """
        self._needs_latents("interpolate")
        if len(seeds) < 2 or n < 1 or frames < 2:
            raise GanzooUsageError(f"an interpolation needs at least 2 seeds, n >= 1 and frames >= 2; got "
                                   f"{len(seeds)} seeds, n={n}, frames={frames}")
        keys = torch.stack([self.latents(n, seed) for seed in seeds])
        y = self._labels(n, labels)
        G = self.sampler
        was_training = G.training
        G.eval()
        result = []
        try:
            for i in range(frames):
                position = i * (len(seeds) - 1) / (frames - 1)  # 0 .. len(seeds) - 1
                k = min(int(position), len(seeds) - 2)
                a, b, t = keys[k], keys[k + 1], position - k
                z = b if t == 1 else a if t == 0 else slerp(a, b, t) if spherical else torch.lerp(a, b, t)
                result.append(G(z, y, **generator_kwargs).float().clamp_(-1, 1))
        finally:
            G.train(was_training)
        return result

    @torch.no_grad()
    def style_mix_grid(self, rows: int = 4, cols: int = 6, seed: int | None = None, crossover: int | None = None,
                       truncation: float = 1.0) -> torch.Tensor:
        """A style-mixing grid of `(rows + 1) * (cols + 1)` images, laid out `cols + 1` to a row.

        The top row holds `cols` plain samples (fine styles), the left column `rows` plain samples (coarse styles),
        the top-left corner is blank (-1) and each other cell takes its row's styles before layer `crossover`
        (default: half the style layers) and its column's from there on. Row latents come first from `seed`.
        """
        if not self.supports_style_mixing:
            raise GanzooUsageError(f"{self.architecture} has no style mixing; use a StyleGAN-style model")
        if rows < 1 or cols < 1:
            raise GanzooUsageError(f"a style-mixing grid needs rows >= 1 and cols >= 1, got {rows}x{cols}")
        G = self.sampler
        layers = self.num_style_layers
        crossover = layers // 2 if crossover is None else min(int(crossover), layers)
        z = self.latents(rows + cols, seed)
        z_rows, z_cols = z[:rows], z[rows:]
        was_training = G.training
        G.eval()
        try:
            row_images = G.style_mix(z_rows, z_rows, crossover, truncation=truncation)
            col_images = G.style_mix(z_cols, z_cols, crossover, truncation=truncation)
            tiles = [torch.full_like(col_images[:1], -1.0), col_images]
            for r in range(rows):
                mixed = G.style_mix(z_rows[r:r + 1].expand(cols, -1), z_cols, crossover, truncation=truncation)
                tiles += [row_images[r:r + 1], mixed]
        finally:
            G.train(was_training)
        return torch.cat(tiles).float().clamp_(-1, 1)

    @torch.no_grad()
    def translate(self, images: torch.Tensor, seed: int | None = None, batch_size: int = 64,
                  reverse: bool = False) -> torch.Tensor:
        """Translate a batch of input images, (N, C, H, W) in [-1, 1] (or one (C, H, W) image), to output images in
        [-1, 1] on this model's device, with the generator in eval mode.

        Any size the generator accepts works (`Translator.check_input_size`: for a U-Net, sides that are multiples
        of its size multiple), not only the training size. `seed` draws the noise of a translator that takes some
        (z_dim > 0); one without noise gives the same output for the same input. A two-way model (CycleGAN)
        translates domain A to domain B, or B to A with `reverse`; a one-way model refuses `reverse`.
        """
        return self._image_to_image("translate", images, seed, batch_size, reverse)

    @torch.no_grad()
    def upscale(self, images: torch.Tensor, seed: int | None = None, batch_size: int = 64) -> torch.Tensor:
        """Upscale a batch of low-resolution images, (N, C, h, w) in [-1, 1] (or one (C, h, w) image), to
        (N, C, scale * h, scale * w) in [-1, 1] on this model's device, with the generator in eval mode: a
        super-resolution model's `translate` (task "upscale"). Any size the generator accepts works, not only the
        training size."""
        return self._image_to_image("upscale", images, seed, batch_size)

    def _image_to_image(self, what: str, images: torch.Tensor, seed: int | None, batch_size: int,
                        reverse: bool = False) -> torch.Tensor:
        """`translate` or `upscale` (`what`, which must be this model's task) of a batch of images; `reverse`: the
        other direction of a two-way translator."""
        if self.task != what:
            instead = {"generate": "gan.sample(n)", "translate": "gan.translate(images)",
                       "upscale": "gan.upscale(images)"}[self.task]
            does = "generates images from noise" if self.task == "generate" else f"{self.task}s images"
            raise GanzooUsageError(f"{self.architecture} {does} and does not {what}; use {instead}")
        G = self.sampler
        assert isinstance(G, Translator)
        if reverse and not G.two_way:
            raise GanzooUsageError(f"{self.architecture} translates one way only (input to output) and has no reverse "
                                   "direction; drop reverse (--reverse)")
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            raise GanzooUsageError(f"{what} takes a floating-point tensor of images in [-1, 1] (uint8 pixels p: "
                                   "p / 127.5 - 1)")
        single = images.dim() == 3
        x = images.unsqueeze(0) if single else images
        if x.dim() != 4 or x.shape[0] < 1:
            raise GanzooUsageError(f"{what} takes images of shape (N, C, H, W) or (C, H, W), got "
                                   f"{tuple(images.shape)}")
        if x.shape[1] != G.in_channels:
            raise GanzooUsageError(f"{self.architecture} {what}s {G.in_channels}-channel images, got "
                                   f"{x.shape[1]} channels; convert them (gray <-> RGB) first")
        why = G.check_input_size(int(x.shape[2]), int(x.shape[3]))
        if why is not None:
            raise GanzooUsageError(f"cannot {what} {x.shape[3]}x{x.shape[2]} images with {self.architecture}: "
                                   f"{why}")
        x = x.to(self.device)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        was_training = G.training
        G.eval()
        try:
            chunks = []
            for start in range(0, len(x), batch_size):
                part = x[start:start + batch_size]
                z = G.sample_latents(len(part), generator=gen).to(self.device) if G.z_dim else None
                chunks.append(G(part, z, reverse=True) if reverse else G(part, z))
            out = torch.cat(chunks).float().clamp_(-1, 1)
        finally:
            G.train(was_training)
        return out[0] if single else out

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
