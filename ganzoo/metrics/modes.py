"""Mode coverage on StackedMNIST: how many of the 1,000 digit triples a generator draws, and how evenly.

Every image (N, 3, H, W) is read channel by channel by the shipped digit classifier (`ganzoo.metrics.digits`): its
red, green and blue digits make the mode 100 * r + 10 * g + b, the label `ganzoo.data` gives stacked-mnist. The
protocol is VEEGAN's and PacGAN's (25,600 samples, `PROTOCOL_SAMPLES`): the number of modes with at least one
sample, and the KL divergence of the mode histogram from the uniform one (0 for a perfect generator; ln 1000 = 6.91
for one repeated stack).

Plain argmax reads a digit in anything, so those two numbers alone reward colour blobs: a DCGAN that draws smooth
coloured smudges spreads them over most of the 1,000 argmax "modes". So the same two numbers are also given for the
samples read with confidence only, those whose three channels all get a softmax probability of at least
`threshold` (0.9 by default), together with the share of such samples. Real stacks are read with confidence almost
always; blobs, noise and half-formed strokes almost never. With no sample read with confidence, the confident
histogram is empty and its KL is reported as ln 1000, as bad as a single mode.

    result = mode_coverage(images)      # images in [-1, 1] or uint8, (N, 3, H, W)
    result.modes, result.kl, result.confident_modes, result.confident_kl, result.confident_fraction

`ModeCounter` does the same batch by batch (counts stay on the images' device, no host sync until `result()`),
for sample sets that should not be held in memory at once.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import torch

import ganzoo.metrics.digits as digits
from ganzoo.errors import GanzooUsageError

__all__ = ["CONFIDENCE", "NUM_MODES", "PROTOCOL_SAMPLES", "ModeCounter", "ModeCoverage", "channel_accuracy",
           "digit_accuracy", "kl_from_uniform", "mode_coverage", "read_digits"]

NUM_MODES = 1000  # 10 digits in each of 3 channels
CONFIDENCE = 0.9  # the least softmax probability of every channel for a sample to count as read with confidence
PROTOCOL_SAMPLES = 25_600  # generated samples in the published StackedMNIST numbers (VEEGAN, PacGAN)
_PLACE = (100, 10, 1)  # red, green, blue digit -> mode


_CPU_BATCH = 32  # stacks per classifier call on the CPU: 96 channel images stay in cache (2-3x faster than 1,024)
_DEVICE_BATCH = 1024


@functools.lru_cache(maxsize=4)
def _classifier(device: torch.device) -> digits.DigitClassifier:
    """The shipped classifier on `device`, channels-last (about 1.5x faster on the CPU; the same numbers)."""
    return digits.load_shipped().to(device, memory_format=torch.channels_last)


def _batch_size(batch_size: int | None, device: torch.device) -> int:
    return batch_size or (_CPU_BATCH if device.type == "cpu" else _DEVICE_BATCH)


def _check(images: torch.Tensor) -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise GanzooUsageError(f"mode coverage reads (N, 3, H, W) StackedMNIST images, one digit per channel; got "
                               f"shape {tuple(images.shape)}: use a 3-channel model trained on --data stacked-mnist")


@torch.inference_mode()
def read_digits(images: torch.Tensor, device: str | torch.device | None = None,
                batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(digits, confidence), both (N, 3) on `device`: each channel's digit under the shipped classifier and its
    softmax probability. `images` are (N, 3, H, W), uint8 or floats in [-1, 1]; `device` defaults to theirs;
    `batch_size` stacks per classifier call (default 32 on the CPU, 1,024 elsewhere)."""
    _check(images)
    device = torch.device(device) if device is not None else images.device
    model = _classifier(device)
    batch_size = _batch_size(batch_size, device)
    read, confidence = [], []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device)
        channels = digits.to_input(batch.reshape(-1, 1, *batch.shape[-2:]))  # (3b, 1, 28, 28)
        prob, digit = model(channels.contiguous(memory_format=torch.channels_last)).softmax(1).max(1)
        read.append(digit.view(-1, 3))
        confidence.append(prob.view(-1, 3))
    if not read:
        empty = torch.empty(0, 3, device=device)
        return empty.long(), empty
    return torch.cat(read), torch.cat(confidence)


def kl_from_uniform(counts: torch.Tensor) -> float:
    """KL divergence (nats) of the histogram `counts` from the uniform distribution over its bins; an empty histogram
    scores ln(bins), as one full bin does."""
    counts = counts.double().cpu()
    total = float(counts.sum())
    if total <= 0:
        return math.log(len(counts))
    p = counts[counts > 0] / total
    return float((p * (p * len(counts)).log()).sum()) + 0.0  # + 0.0: a uniform histogram gives 0, not -0


@dataclass(frozen=True)
class ModeCoverage:
    """What `mode_coverage` finds in a set of StackedMNIST images (see the module's docstring).

    `histogram` and `confident_histogram` count samples per mode (1,000 bins, mode 100 * r + 10 * g + b)."""

    samples: int
    modes: int
    kl: float
    confident_modes: int
    confident_kl: float
    confident_fraction: float
    threshold: float
    histogram: tuple[int, ...]
    confident_histogram: tuple[int, ...]

    def values(self) -> dict[str, float]:
        """The five numbers under the names `ganzoo.metrics` reports them by (metric "modes")."""
        return {"modes": float(self.modes), "modes_kl": self.kl, "confident_modes": float(self.confident_modes),
                "confident_kl": self.confident_kl, "confident_fraction": self.confident_fraction}

    def to_dict(self, histograms: bool = False) -> dict[str, Any]:
        """JSON-able summary (rounded), with the histograms when asked."""
        out: dict[str, Any] = {"samples": self.samples, "modes": self.modes, "kl": round(self.kl, 4),
                               "confident_modes": self.confident_modes, "confident_kl": round(self.confident_kl, 4),
                               "confident_fraction": round(self.confident_fraction, 5), "threshold": self.threshold}
        if histograms:
            out["histogram"] = list(self.histogram)
            out["confident_histogram"] = list(self.confident_histogram)
        return out


class ModeCounter:
    """Accumulates mode histograms batch by batch: `update(images)` for every batch, then `result()`.

    The counts live on `device` (default: the first batch's) and are read back once, in `result()`."""

    def __init__(self, threshold: float = CONFIDENCE, device: str | torch.device | None = None,
                 batch_size: int | None = None) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise GanzooUsageError(f"the confidence threshold is a probability in [0, 1], got {threshold!r}")
        self.threshold = threshold
        self.device = torch.device(device) if device is not None else None
        self.batch_size = batch_size
        self._counts: torch.Tensor | None = None  # (2, NUM_MODES): all samples, confident samples
        self._samples = 0

    def update(self, images: torch.Tensor) -> None:
        """Read a batch (N, 3, H, W) of uint8 or [-1, 1] images and add it to the histograms."""
        _check(images)
        self.add(*read_digits(images, self.device or images.device, self.batch_size))

    def add(self, read: torch.Tensor, confidence: torch.Tensor) -> None:
        """Add samples already read by `read_digits`: their digits and confidences, (N, 3) each."""
        if self._counts is None:
            self.device = read.device
            self._counts = torch.zeros(2, NUM_MODES, dtype=torch.int64, device=read.device)
        read, confidence = read.to(self._counts.device), confidence.to(self._counts.device)
        modes = (read * read.new_tensor(_PLACE)).sum(1)
        confident = (confidence >= self.threshold).all(1)
        self._counts[0].index_add_(0, modes, torch.ones_like(modes))
        self._counts[1].index_add_(0, modes, confident.long())
        self._samples += len(read)

    def result(self) -> ModeCoverage:
        """The coverage of everything seen so far."""
        counts = self._counts.cpu() if self._counts is not None else torch.zeros(2, NUM_MODES, dtype=torch.int64)
        every, confident = counts[0], counts[1]
        n_confident = int(confident.sum())
        return ModeCoverage(samples=self._samples, modes=int((every > 0).sum()), kl=kl_from_uniform(every),
                            confident_modes=int((confident > 0).sum()), confident_kl=kl_from_uniform(confident),
                            confident_fraction=n_confident / self._samples if self._samples else 0.0,
                            threshold=self.threshold, histogram=tuple(every.tolist()),
                            confident_histogram=tuple(confident.tolist()))


def mode_coverage(images: torch.Tensor, threshold: float = CONFIDENCE, device: str | torch.device | None = None,
                  batch_size: int | None = None) -> ModeCoverage:
    """Mode coverage of StackedMNIST images (N, 3, H, W), uint8 or floats in [-1, 1]: modes covered and the KL of
    the mode histogram from uniform, over all samples and over those whose three channels are all read with
    probability >= `threshold`, and the share of those. Runs on `device` (default: the images')."""
    counter = ModeCounter(threshold, device, batch_size)
    counter.update(images)
    return counter.result()


def channel_accuracy(images: torch.Tensor, labels: torch.Tensor, device: str | torch.device | None = None,
                     batch_size: int | None = None) -> tuple[float, float, float]:
    """How often the classifier reads each channel (red, green, blue) as its true digit, for StackedMNIST images and
    their labels (100 * r + 10 * g + b)."""
    return digit_accuracy(read_digits(images, device, batch_size)[0], labels)


def digit_accuracy(read: torch.Tensor, labels: torch.Tensor) -> tuple[float, float, float]:
    """Per-channel accuracy of digits already read by `read_digits` (N, 3), against StackedMNIST labels (N,)."""
    labels = labels.to(read.device)
    truth = torch.stack([labels // 100, labels // 10 % 10, labels % 10], 1)
    acc = (read == truth).double().mean(0).tolist()
    return acc[0], acc[1], acc[2]
