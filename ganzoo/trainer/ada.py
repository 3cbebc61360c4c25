"""Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial Networks with Limited
Data", arXiv:2006.06676): the augmentation probability p follows how much D overfits its training images.

Two overfitting signals r (`Recipe.ada_signal`):

* ``"held-out"`` (the default): the trainer holds back some images of the data and never trains on them. At every
  D step, after the step's loss and before D's update, it runs D on `HELD_OUT_CHUNK // ada_interval` held-back
  images (cycling through them), through the same call path and augmentation as the training reals, and r is
  E[sign(D(x_train_i) - D(x_held_j))] over every pair of a step's training reals and that step's held-back images,
  over the interval's D steps: 2 AUC - 1 of D telling images it trains on from real images it has never seen.
  0: D treats unseen reals like its training images; 1: it has memorised them. Both sides of a pair come from the
  same D at the same moment, so r is unchanged when D adds a constant to its outputs or scales them, and it means
  the same under every loss (non-saturating, hinge, least squares, Wasserstein, relativistic). Spread over the
  interval's steps rather than scored at once, the same `HELD_OUT_CHUNK` images per adjustment give a less noisy
  r. Measured (benchmarks/ada_signal.py): no signal read on training images alone separates 64 images from 5,000,
  under any loss; this one does, with target 0.05 (`TARGETS`), under every loss but Wasserstein, whose critic
  did not tell its training images from unseen ones: ADA is refused there (`GANLoss.ada_refusal`, `check_ada`).
* ``"train"``: the paper's r_t, the mean of the loss's `overfit_signal` (E[sign(D(x) - t)] around the loss's
  decision threshold t) over the interval's D steps. Only for losses with a fixed decision threshold (or their own
  `overfit_signal`): under relativistic and Wasserstein losses D's offset is free and r_t sees no overfitting, so
  that combination is refused (`check_ada`).

Every interval p moves by sign(r - target) * (batch * interval) / (ada_kimg * 1000), clamped to [0, 1], so p can
travel from 0 to 1 in `ada_kimg` thousand images, as in the paper (target 0.6 for r_t, 500 kimg). All of it stays
on the device, so no step waits for the host (a distributed run sums r's parts over processes once per interval);
p and the partial sums are kept in checkpoints, so a resumed run continues with exactly the p an uninterrupted one
has. The held-back images are a seeded permutation's first `held_out_count` positions (`split_held_out`): the same
for every process and every resume of a run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ganzoo.errors import ConfigError
from ganzoo.interfaces import Recipe, TrainingContext, TrainingHook

if TYPE_CHECKING:
    from ganzoo.data import ImageDataset
    from ganzoo.losses import GANLoss
    from ganzoo.streaming import StreamingDataset

__all__ = ["HELD_OUT_CHUNK", "TARGETS", "AdaptiveAugment", "HeldOut", "check_ada", "held_out_count", "held_out_signal",
           "split_held_out"]

#: the targets each signal wants: the held-out one measured (benchmarks/ada_signal.py), r_t's from the paper
TARGETS = {"held-out": 0.05, "train": 0.6}
#: at most this many held-back images are scored per adjustment of p (a share at each D step, cycling through them)
HELD_OUT_CHUNK = 64
#: the automatic number of held-back images: this fraction of the data, clamped to [AUTO_MIN, AUTO_MAX]
AUTO_FRACTION = 0.1
AUTO_MIN = 8
AUTO_MAX = 256


def check_ada(recipe: Recipe, loss: GANLoss) -> None:
    """Refuse ADA under a loss that refuses it (`GANLoss.ada_refusal`: Wasserstein), and ADA's "train" signal under a
    loss whose D has no fixed decision threshold (and no signal of its own): there it cannot see overfitting
    (benchmarks/ada-signal/RESULTS.md)."""
    from ganzoo.losses import GANLoss

    if recipe.ada_target > 0 and loss.ada_refusal:
        raise ConfigError(f"adaptive augmentation is refused under the {recipe.loss} loss: {loss.ada_refusal}; "
                          "augment D's inputs with a fixed augment_p instead, or use another loss")
    if recipe.ada_target <= 0 or recipe.ada_signal != "train":
        return
    own_signal = type(loss).overfit_signal is not GANLoss.overfit_signal
    if loss.decision_threshold is None and not own_signal:
        raise ConfigError(f"ada_signal=train reads D's outputs on training images against a fixed decision "
                          f"threshold, which the {recipe.loss} loss does not have (D's offset is free), so it cannot "
                          "see overfitting; use ada_signal=held-out")


def held_out_count(recipe: Recipe, images: int) -> int:
    """How many of `images` the run holds back for ADA's held-out signal (0 when it does not use it): `ada_holdout`,
    or 10 % of the data clamped to [8, 256]. Refuses data too small to hold them back and still fill a batch."""
    if recipe.ada_target <= 0 or recipe.ada_signal != "held-out":
        return 0
    count = recipe.ada_holdout or min(AUTO_MAX, max(AUTO_MIN, round(images * AUTO_FRACTION)))
    left = images - count
    if left < recipe.batch_size:
        what = f"ada_holdout={recipe.ada_holdout}" if recipe.ada_holdout else f"the automatic {count}"
        raise ConfigError(f"ADA's held-out signal holds back {what} of the {images} images, which leaves {left} to "
                          f"train on, fewer than the batch size {recipe.batch_size}; lower ada_holdout or the batch "
                          "size, use more data, or drop ada_target")
    return count


def split_held_out(images: int, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training positions, held-back positions) of a dataset of `images`, both sorted: the held-back ones are the
    first `count` of a permutation that depends only on (seed, images)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + 500_009)  # not any epoch's order (`epoch_order`)
    order = torch.randperm(images, generator=gen)
    return order[count:].sort().values, order[:count].sort().values


def held_out_signal(train_logits: torch.Tensor, held_logits: torch.Tensor) -> torch.Tensor:
    """E[sign(D(x_train_i) - D(x_held_j))] over every pair: 2 AUC - 1 of D telling its training images from unseen
    ones, in [-1, 1]; 0 when it scores both alike, 1 when it scores every training image above every unseen one."""
    return (train_logits.float().flatten()[:, None] - held_logits.float().flatten()[None, :]).sign().mean()


@dataclass
class HeldOut:
    """The held-back images (uint8, on the training device) and their labels, scored in chunks that cycle."""

    images: torch.Tensor
    labels: torch.Tensor | None
    memory_format: torch.memory_format = torch.contiguous_format

    @classmethod
    def from_dataset(cls, dataset: ImageDataset | StreamingDataset, positions: torch.Tensor, device: torch.device,
                     memory_format: torch.memory_format) -> HeldOut:
        """The images at `positions` of an in-memory or a streamed dataset (decoded here), with their labels."""
        if hasattr(dataset, "images"):
            images = dataset.images[positions]
        else:
            images = torch.stack([dataset.read(i) for i in positions.tolist()])
        labels = dataset.labels[positions] if dataset.labels is not None else None
        return cls(images.to(device), labels.to(device) if labels is not None else None, memory_format)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def chunk(self, index: int, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Chunk `index` of `size` images (all of them when there are fewer) in [-1, 1], and their labels;
        successive chunks go round the held-back images."""
        n = len(self)
        m = min(n, size)
        idx = (torch.arange(m) + index * m) % n
        x = self.images[idx.to(self.images.device)].float().div_(127.5).sub_(1.0)
        labels = self.labels[idx.to(self.labels.device)] if self.labels is not None else None
        return x.contiguous(memory_format=self.memory_format), labels


class AdaptiveAugment(TrainingHook):
    """Adapts the trainer's augmentation probability from D's outputs on real images (the trainer adds this hook
    when a recipe sets `ada_target`). With `signal="held-out"` the trainer hands it D's logits on training and
    held-back reals at every D step (`observe_held_out`), `chunk_size` held-back images a step."""

    def __init__(self, target: float, kimg: float, interval: int, batch_size: int, signal: str = "train") -> None:
        if not 0 < target < 1:
            raise ConfigError(f"ada_target must lie in (0, 1), got {target}")
        if signal not in ("train", "held-out"):
            raise ConfigError(f"ada_signal must be 'held-out' or 'train', got {signal!r}")
        self.target = float(target)
        self.interval = int(interval)
        self.signal = signal
        self.step_size = batch_size * interval / (kimg * 1000)  # change of p per adjustment
        self._context: TrainingContext | None = None
        self._sum: torch.Tensor | None = None  # "train": sum of r over the D steps; "held-out": sum of pair signs
        self._count = 0  # D steps since the last adjustment
        self._pairs = 0  # "held-out": pairs in _sum
        self._last_r: torch.Tensor | None = None

    def setup(self, context: TrainingContext) -> None:
        self._context = context
        self._sum = torch.zeros((), device=context.device)

    @property
    def p(self) -> torch.Tensor:
        assert self._context is not None, "AdaptiveAugment.setup was not called"
        return self._context.augment.p

    @property
    def chunk_size(self) -> int:
        """Held-back images scored per D step: `HELD_OUT_CHUNK` per interval."""
        return max(1, HELD_OUT_CHUNK // self.interval)

    def observe_held_out(self, train_logits: torch.Tensor, held_logits: torch.Tensor) -> None:
        """D's logits on this D step's training reals and on a chunk of held-back reals, from the same D."""
        assert self._sum is not None, "AdaptiveAugment.setup was not called"
        diff = train_logits.detach().float().flatten()[:, None] - held_logits.detach().float().flatten()[None, :]
        self._sum = self._sum + diff.sign().sum()
        self._pairs += diff.numel()

    def after_d_step(self, d_step: int, stats: Mapping[str, torch.Tensor]) -> None:
        assert self._context is not None and self._sum is not None, "AdaptiveAugment.setup was not called"
        if self.signal == "train":
            if "overfit_signal" not in stats:
                raise ConfigError("adaptive augmentation needs the loss to report overfit_signal; a loss that "
                                  "overrides d_loss must add self.overfit_signal(real_logits, fake_logits) to its "
                                  "stats, as GANLoss.d_loss does (or use ada_signal=held-out)")
            self._sum = self._sum + stats["overfit_signal"].float()
        self._count += 1
        if self._count < self.interval:
            return
        parts = self._count if self.signal == "train" else self._pairs
        assert parts > 0, "the held-out signal of this interval was never observed"
        if self._context.sum_across is not None:  # a distributed run: the same r, hence the same p, everywhere
            total, n = self._context.sum_across([float(self._sum), float(parts)])
            r = torch.tensor(total / n, device=self._sum.device)
        else:
            r = self._sum / parts
        p = self._context.augment.p
        p.copy_((p + torch.sign(r - self.target) * self.step_size).clamp(0.0, 1.0))
        self._last_r = r
        self._sum = torch.zeros_like(self._sum)
        self._count = 0
        self._pairs = 0

    def stats(self) -> dict[str, float]:
        out = {"augment_p": float(self.p)}
        if self._last_r is not None:
            out["ada_rt" if self.signal == "train" else "ada_held_out"] = float(self._last_r)
        return out

    def state_dict(self) -> dict[str, Any]:
        assert self._sum is not None
        return {"ada_p": float(self.p), "sum": float(self._sum), "count": self._count, "pairs": self._pairs,
                "last_rt": None if self._last_r is None else float(self._last_r)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        assert self._sum is not None
        self.p.fill_(float(state["ada_p"]))
        self._sum = torch.tensor(float(state["sum"]), device=self._sum.device)
        self._count = int(state["count"])
        self._pairs = int(state.get("pairs", 0))  # absent in checkpoints written before the held-out signal
        last = state.get("last_rt")
        self._last_r = None if last is None else torch.tensor(float(last), device=self._sum.device)


def buffers_kept(module: torch.nn.Module) -> Callable[[], None]:
    """Snapshot `module`'s buffers (BatchNorm statistics, spectral normalisation's vectors); the returned function
    puts them back, so a forward pass made only to measure leaves no trace in the model."""
    saved = [(b, b.detach().clone()) for b in module.buffers()]

    def restore() -> None:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)

    return restore
