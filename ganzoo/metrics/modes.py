"""Mode coverage on StackedMNIST: how many of the 1,000 digit triples a generator draws, and how evenly.

Every image (N, 3, H, W) is read channel by channel by the shipped digit classifier (`ganzoo.metrics.digits`): its
red, green and blue digits make the mode 100 * r + 10 * g + b, the label `ganzoo.data` gives stacked-mnist. The
protocol is VEEGAN's and PacGAN's (25,600 samples, `PROTOCOL_SAMPLES`): the number of modes with at least one
sample, and the KL divergence of the mode histogram from the uniform one (0 for a perfect generator; ln 1000 = 6.91
for one repeated stack).

Plain argmax reads a digit in anything, so those two numbers alone reward colour blobs: a DCGAN that draws smooth
coloured smudges spreads them over most of the 1,000 argmax "modes". So the same two numbers are also given for the
samples **read with confidence** only, together with the share of such samples. A channel is read with confidence
when both hold:

- the classifier is sure: a softmax probability of at least `threshold` (`CONFIDENCE`, 0.9), and
- the channel looks like a real digit of the class it is read as: its feature vector (the classifier's normalised
  128-value feature layer, the feature space of the digits Fréchet distance) lies within that class's
  Mahalanobis radius, the squared distance to the class mean (under one covariance shared by all classes, shrunk
  by `SHRINKAGE` towards its mean variance) within which `TYPICAL` (99 %) of the class's real train digits lie.

The second condition is there because softmax confidence alone is no proof of a digit: the classifier reads uniform
noise, blocky piecewise-constant patterns and broken strokes with probability 0.9 and above, since nothing in its
training asked it to be unsure about them, and a temperature cannot help (fitted on the train part it comes out
below 1: it would sharpen the probabilities, not soften them). In feature space those patterns lie far from every
class's real digits. The rule is fitted on mnist-5k's train part at the images' size, once per process
(`digit_reference`); the test part, from which the real test stacks are drawn, is only measured: `calibration`
gives the classifier's reliability there (confidence against accuracy, per channel, weighted as in the 25,600 test
stacks) and what share of real channels and stacks the rule lets through.

With no sample read with confidence, the confident histogram is empty and its KL is reported as ln 1000, as bad as a
single mode.

    result = mode_coverage(images)      # images in [-1, 1] or uint8, (N, 3, H, W)
    result.modes, result.kl, result.confident_modes, result.confident_kl, result.confident_fraction

`ModeCounter` does the same batch by batch (counts stay on the images' device, no host sync until `result()`),
for sample sets that should not be held in memory at once. The rule takes any classifier with the shipped one's
`features` method (`fit_reference`), so the same count can be made in another feature space as an independent check.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import torch

import ganzoo.metrics.digits as digits
from ganzoo.errors import GanzooUsageError

__all__ = ["CALIBRATION_BINS", "CONFIDENCE", "NUM_MODES", "PROTOCOL_SAMPLES", "RULE", "SHRINKAGE", "TYPICAL",
           "DigitReference", "ModeCounter", "ModeCoverage", "Reading", "calibration", "channel_accuracy",
           "digit_accuracy", "digit_reference", "fit_reference", "kl_from_uniform", "mode_coverage", "read_digits"]

NUM_MODES = 1000  # 10 digits in each of 3 channels
CONFIDENCE = 0.9  # the least softmax probability of every channel for a sample to count as read with confidence
TYPICAL = 0.99  # share of each class's real train digits inside the class's Mahalanobis radius
SHRINKAGE = 0.1  # the shared covariance is shrunk this far towards its mean variance (times the identity)
PROTOCOL_SAMPLES = 25_600  # generated samples in the published StackedMNIST numbers (VEEGAN, PacGAN)
#: the rule in one line, as results record it in their provenance
RULE = (f"softmax >= {CONFIDENCE} and within the class's Mahalanobis radius of {TYPICAL:.0%} of real train digits "
        f"(mnist-5k train part, shared covariance shrunk {SHRINKAGE})")
#: confidence bins of the reliability table
CALIBRATION_BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
_PLACE = (100, 10, 1)  # red, green, blue digit -> mode


_CPU_BATCH = 32  # stacks per classifier call on the CPU: 96 channel images stay in cache (2-3x faster than 1,024)
_DEVICE_BATCH = 1024


class DigitReader(Protocol):
    """What the rule needs of a classifier: (normalised features, logits) of (N, 1, 28, 28) images in [-1, 1]."""

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class DigitReference:
    """A classifier and its real-digit reference, fitted by `fit_reference`: per-class feature means (10, D), the
    inverse of the shared covariance (D, D), and each class's radius, the squared Mahalanobis distance within which
    `TYPICAL` of its real train digits lie (10,); and the softmax temperature that minimises the negative
    log-likelihood of the train digits (reported by `calibration`, not applied)."""

    model: Any
    means: torch.Tensor
    precision: torch.Tensor
    radius: torch.Tensor
    img_size: int
    train_temperature: float

    def read(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(digit, confidence, distance) of classifier inputs (N, 1, 28, 28): distance is the squared Mahalanobis
        distance to the read class's mean over that class's radius, so at most 1 means "like a real digit"."""
        features, logits = self.model.features(x)
        confidence, digit = logits.float().softmax(1).max(1)
        return digit, confidence, self.distance(features, digit)

    def distance(self, features: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance of `features` (N, D) to the means of `classes` (N,), over their radius."""
        centred = features.float() - self.means[classes]
        return ((centred @ self.precision) * centred).sum(1) / self.radius[classes]

    def to(self, device: torch.device) -> DigitReference:
        """This reference on `device` (its classifier is moved there in place, as `nn.Module.to` does)."""
        if self.means.device == device:
            return self
        self.model.to(device)
        return DigitReference(self.model, self.means.to(device), self.precision.to(device), self.radius.to(device),
                              self.img_size, self.train_temperature)


def _as_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    return digits.to_input(images.to(device)).contiguous(memory_format=torch.channels_last)


@torch.inference_mode()
def _read_all(reference_model: Any, images: torch.Tensor, device: torch.device,
              batch: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and logits of single-channel images (N, 1, H, W), batch by batch."""
    parts = [reference_model.features(_as_input(images[i:i + batch], device)) for i in range(0, len(images), batch)]
    return torch.cat([p[0] for p in parts]).float(), torch.cat([p[1] for p in parts]).float()


def _fitted_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T that minimises the negative log-likelihood of softmax(logits / T), on a log grid."""
    grid = torch.logspace(math.log10(0.25), math.log10(4.0), 121, dtype=torch.float64)
    nll = torch.stack([torch.nn.functional.cross_entropy(logits.double() / t, labels) for t in grid])
    return float(grid[nll.argmin()])


def fit_reference(model: DigitReader, img_size: int, device: str | torch.device = "cpu") -> DigitReference:
    """Fit the rule's reference for `model` on mnist-5k's train part loaded at `img_size` (the size of the images
    it will read, so that both pass through the same resize): the train digits the model reads as their own class
    give each class's mean, the shared within-class covariance and each class's radius."""
    from ganzoo.data import load_dataset

    device = torch.device(device)
    train = load_dataset("mnist-5k", img_size=img_size, channels=1, split="train")
    assert train.labels is not None
    features, logits = _read_all(model, train.images, device)
    labels = train.labels.to(device)
    temperature = _fitted_temperature(logits.cpu(), train.labels)
    keep = logits.argmax(1) == labels
    features, labels = features[keep].double(), labels[keep]
    means = torch.stack([features[labels == c].mean(0) for c in range(10)])
    centred = features - means[labels]
    cov = centred.T @ centred / len(centred)
    cov = (1 - SHRINKAGE) * cov + SHRINKAGE * cov.diagonal().mean() * torch.eye(len(cov), dtype=cov.dtype,
                                                                                  device=device)
    precision = torch.linalg.inv(cov)
    squared = ((centred @ precision) * centred).sum(1)
    radius = torch.stack([squared[labels == c].quantile(TYPICAL) for c in range(10)])
    return DigitReference(model, means.float(), precision.float(), radius.float(), img_size, temperature)


@functools.lru_cache(maxsize=4)
def _classifier(device: torch.device) -> digits.DigitClassifier:
    """The shipped classifier on `device`, channels-last (about 1.5x faster on the CPU; the same numbers)."""
    return digits.load_shipped().to(device, memory_format=torch.channels_last)


def digit_reference(img_size: int, device: str | torch.device = "cpu") -> DigitReference:
    """The shipped classifier's reference for images of `img_size` on `device`, fitted once per process (reading the
    4,000 train digits takes a few seconds on one CPU thread)."""
    return _shipped_reference(img_size, torch.device(device))


@functools.lru_cache(maxsize=8)
def _shipped_reference(img_size: int, device: torch.device) -> DigitReference:
    return fit_reference(_classifier(device), img_size, device)


def _batch_size(batch_size: int | None, device: torch.device) -> int:
    return batch_size or (_CPU_BATCH if device.type == "cpu" else _DEVICE_BATCH)


def _check(images: torch.Tensor) -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise GanzooUsageError(f"mode coverage reads (N, 3, H, W) StackedMNIST images, one digit per channel; got "
                               f"shape {tuple(images.shape)}: use a 3-channel model trained on --data stacked-mnist")


class Reading(NamedTuple):
    """What `read_digits` finds in each channel, (N, 3) each: the digit, its softmax probability, and its distance
    from the real digits of that class (squared Mahalanobis distance over the class's radius: <= 1 is typical)."""

    digits: torch.Tensor
    confidence: torch.Tensor
    distance: torch.Tensor


@torch.inference_mode()
def read_digits(images: torch.Tensor, device: str | torch.device | None = None, batch_size: int | None = None,
                reference: DigitReference | None = None) -> Reading:
    """Each channel's digit, softmax probability and distance from real digits of its class (a `Reading`, (N, 3)
    tensors on `device`). `images` are (N, 3, H, W), uint8 or floats in [-1, 1]; `device` defaults to theirs;
    `batch_size` stacks per classifier call (default 32 on the CPU, 1,024 elsewhere); `reference` the classifier
    and its fitted reference (default: the shipped classifier's, `digit_reference`, at the images' size)."""
    _check(images)
    device = torch.device(device) if device is not None else images.device
    reference = (reference or digit_reference(images.shape[-1], device)).to(device)
    batch_size = _batch_size(batch_size, device)
    parts = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device)
        read = reference.read(_as_input(batch.reshape(-1, 1, *batch.shape[-2:]), device))  # 3b channels
        parts.append([t.view(-1, 3) for t in read])
    if not parts:
        empty = torch.empty(0, 3, device=device)
        return Reading(empty.long(), empty, empty)
    return Reading(*(torch.cat(column) for column in zip(*parts, strict=True)))


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

    `histogram` and `confident_histogram` count samples per mode (1,000 bins, mode 100 * r + 10 * g + b).
    `softmax_confident_modes` and `softmax_confident_fraction` count by the softmax condition alone (the rule before
    the feature-space condition was added): how much the second condition removes."""

    samples: int
    modes: int
    kl: float
    confident_modes: int
    confident_kl: float
    confident_fraction: float
    threshold: float
    histogram: tuple[int, ...]
    confident_histogram: tuple[int, ...]
    softmax_confident_modes: int = 0
    softmax_confident_fraction: float = 0.0

    def values(self) -> dict[str, float]:
        """The five numbers under the names `ganzoo.metrics` reports them by (metric "modes")."""
        return {"modes": float(self.modes), "modes_kl": self.kl, "confident_modes": float(self.confident_modes),
                "confident_kl": self.confident_kl, "confident_fraction": self.confident_fraction}

    def to_dict(self, histograms: bool = False) -> dict[str, Any]:
        """JSON-able summary (rounded), with the histograms when asked."""
        out: dict[str, Any] = {"samples": self.samples, "modes": self.modes, "kl": round(self.kl, 4),
                               "confident_modes": self.confident_modes, "confident_kl": round(self.confident_kl, 4),
                               "confident_fraction": round(self.confident_fraction, 5), "threshold": self.threshold,
                               "softmax_confident_modes": self.softmax_confident_modes,
                               "softmax_confident_fraction": round(self.softmax_confident_fraction, 5)}
        if histograms:
            out["histogram"] = list(self.histogram)
            out["confident_histogram"] = list(self.confident_histogram)
        return out


class ModeCounter:
    """Accumulates mode histograms batch by batch: `update(images)` for every batch, then `result()`.

    The counts live on `device` (default: the first batch's) and are read back once, in `result()`. `reference`:
    the classifier and reference to read with (default: the shipped classifier's at the images' size)."""

    def __init__(self, threshold: float = CONFIDENCE, device: str | torch.device | None = None,
                 batch_size: int | None = None, reference: DigitReference | None = None) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise GanzooUsageError(f"the confidence threshold is a probability in [0, 1], got {threshold!r}")
        self.threshold = threshold
        self.device = torch.device(device) if device is not None else None
        self.batch_size = batch_size
        self.reference = reference
        self._counts: torch.Tensor | None = None  # (3, NUM_MODES): all samples, confident, softmax-confident
        self._samples = 0

    def update(self, images: torch.Tensor) -> None:
        """Read a batch (N, 3, H, W) of uint8 or [-1, 1] images and add it to the histograms."""
        _check(images)
        self.add(read_digits(images, self.device or images.device, self.batch_size, self.reference))

    def add(self, reading: Reading) -> None:
        """Add samples already read by `read_digits`."""
        read, confidence, distance = reading
        if self._counts is None:
            self.device = read.device
            self._counts = torch.zeros(3, NUM_MODES, dtype=torch.int64, device=read.device)
        read, confidence, distance = (t.to(self._counts.device) for t in (read, confidence, distance))
        modes = (read * read.new_tensor(_PLACE)).sum(1)
        sure = (confidence >= self.threshold).all(1)
        confident = sure & (distance <= 1.0).all(1)
        self._counts[0].index_add_(0, modes, torch.ones_like(modes))
        self._counts[1].index_add_(0, modes, confident.long())
        self._counts[2].index_add_(0, modes, sure.long())
        self._samples += len(read)

    def result(self) -> ModeCoverage:
        """The coverage of everything seen so far."""
        counts = self._counts.cpu() if self._counts is not None else torch.zeros(3, NUM_MODES, dtype=torch.int64)
        every, confident, sure = counts[0], counts[1], counts[2]

        def share(c: torch.Tensor) -> float:
            return int(c.sum()) / self._samples if self._samples else 0.0

        return ModeCoverage(samples=self._samples, modes=int((every > 0).sum()), kl=kl_from_uniform(every),
                            confident_modes=int((confident > 0).sum()), confident_kl=kl_from_uniform(confident),
                            confident_fraction=share(confident), threshold=self.threshold,
                            histogram=tuple(every.tolist()), confident_histogram=tuple(confident.tolist()),
                            softmax_confident_modes=int((sure > 0).sum()), softmax_confident_fraction=share(sure))


def mode_coverage(images: torch.Tensor, threshold: float = CONFIDENCE, device: str | torch.device | None = None,
                  batch_size: int | None = None, reference: DigitReference | None = None) -> ModeCoverage:
    """Mode coverage of StackedMNIST images (N, 3, H, W), uint8 or floats in [-1, 1]: modes covered and the KL of
    the mode histogram from uniform, over all samples and over those whose three channels are all read with
    confidence (probability >= `threshold` and like a real digit of that class; see the module's docstring), and the
    share of those. Runs on `device` (default: the images')."""
    counter = ModeCounter(threshold, device, batch_size, reference)
    counter.update(images)
    return counter.result()


def channel_accuracy(images: torch.Tensor, labels: torch.Tensor, device: str | torch.device | None = None,
                     batch_size: int | None = None) -> tuple[float, float, float]:
    """How often the classifier reads each channel (red, green, blue) as its true digit, for StackedMNIST images and
    their labels (100 * r + 10 * g + b)."""
    return digit_accuracy(read_digits(images, device, batch_size).digits, labels)


def digit_accuracy(read: torch.Tensor, labels: torch.Tensor) -> tuple[float, float, float]:
    """Per-channel accuracy of digits already read by `read_digits` (N, 3), against StackedMNIST labels (N,)."""
    labels = labels.to(read.device)
    truth = torch.stack([labels // 100, labels // 10 % 10, labels % 10], 1)
    acc = (read == truth).double().mean(0).tolist()
    return acc[0], acc[1], acc[2]


# ------------------------------------------------------------------------------------------------- calibration


def calibration(img_size: int = 32, device: str | torch.device = "cpu",
                reference: DigitReference | None = None) -> dict[str, Any]:
    """The classifier's reliability on the real test stacks, each channel read on its own: for confidence bins
    (`CALIBRATION_BINS`) the share of channels, their mean confidence and their accuracy; the expected calibration
    error over those bins (share-weighted |accuracy - confidence|); the share and accuracy of channels that pass the
    softmax condition and the whole rule; the share of stacks whose three channels pass; and the temperature that a
    fit on the train part gives (not applied). The test stacks' channels are mnist-5k's 1,000 test digits, each
    weighted by how often the 25,600 stacks draw it, so reading them once gives the stacks' numbers exactly.
    The shipped classifier's numbers are cached per size and device (`reference` None)."""
    if reference is None:
        return _shipped_calibration(img_size, torch.device(device))
    return _calibration(reference, torch.device(device))


@functools.lru_cache(maxsize=8)
def _shipped_calibration(img_size: int, device: torch.device) -> dict[str, Any]:
    return _calibration(digit_reference(img_size, device), device)


def _calibration(reference: DigitReference, device: torch.device) -> dict[str, Any]:
    from ganzoo.data import _stacked_mnist_draws, load_dataset

    reference = reference.to(device)
    size = reference.img_size
    test = load_dataset("mnist-5k", img_size=size, channels=1, split="test")
    assert test.labels is not None
    draws = _stacked_mnist_draws("test")  # (25,600, 3) indices into the test part: the stacks' channels
    weight = draws.flatten().bincount(minlength=len(test)).double().to(device)
    features, logits = _read_all(reference.model, test.images, device)
    confidence, digit = logits.softmax(1).max(1)
    right = (digit == test.labels.to(device)).double()
    sure = confidence >= CONFIDENCE
    passes = sure & (reference.distance(features, digit) <= 1.0)
    total = float(weight.sum())

    def mean(values: torch.Tensor, where: torch.Tensor) -> float | None:
        w = weight * where
        return float((values.double() * w).sum() / w.sum()) if float(w.sum()) > 0 else None

    bins, ece = [], 0.0
    edges = CALIBRATION_BINS
    for i, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        inside = (confidence >= low) & ((confidence < high) if i < len(edges) - 2 else (confidence <= high))
        share = float((weight * inside).sum()) / total
        conf, acc = mean(confidence, inside), mean(right, inside)
        if conf is not None and acc is not None:
            ece += share * abs(acc - conf)
        bins.append({"confidence": [low, high], "share": round(share, 5),
                     "mean_confidence": None if conf is None else round(conf, 4),
                     "accuracy": None if acc is None else round(acc, 4)})
    stacks = len(draws)
    return {"data": f"stacked-mnist test part: {stacks} stacks, {3 * stacks} channels read one by one",
            "img_size": size, "accuracy": round(mean(right, torch.ones_like(sure)) or 0.0, 5),
            "mean_confidence": round(mean(confidence, torch.ones_like(sure)) or 0.0, 5),
            "ece": round(ece, 5), "bins": bins,
            "softmax_confident_share": round(float((weight * sure).sum()) / total, 5),
            "softmax_confident_accuracy": round(mean(right, sure) or 0.0, 5),
            "confident_share": round(float((weight * passes).sum()) / total, 5),
            "confident_accuracy": round(mean(right, passes) or 0.0, 5),
            "stacks_softmax_confident": round(float(sure.cpu()[draws].all(1).double().mean()), 5),
            "stacks_confident": round(float(passes.cpu()[draws].all(1).double().mean()), 5),
            "train_fitted_temperature": round(reference.train_temperature, 3),
            "temperature_applied": 1.0}
