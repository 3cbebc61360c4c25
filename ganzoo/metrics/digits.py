"""The `digits` feature extractor: a small digit classifier that ganzoo trains on the embedded mnist-5k.

It gives evaluation on MNIST-like data that works offline: its 128 penultimate activations are the feature space of
the digits Fréchet distance (and KID, precision/recall), its 10 logits give a digits Inception Score and the class
histogram used to spot mode collapse. The shipped weights (`ganzoo/_data/digits-classifier.safetensors`) are made by
`scripts/train_digits_classifier.py`, which calls `train_classifier` below; their sha256 and held-out accuracy are
pinned here and checked whenever the weights are loaded.

Data: mnist-5k's fixed split (`ganzoo.data`): the classifier trains on the train part (the first 400 images of every
class, 4,000 in all, with light augmentation: shifts, rotations, scaling) and is measured on the test part (the
last 100 of every class), which is also the reference that evaluation compares generators with by default. Class
diagnostics are given for digit data only (`is_digit_data`).
"""

from __future__ import annotations

import hashlib
import logging
import math
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import WeightsError

if TYPE_CHECKING:
    from ganzoo.data import ImageDataset

__all__ = ["DIGIT_DATASETS", "HELD_OUT_ACCURACY", "IMG_SIZE", "SHA256", "DigitClassifier", "accuracy",
           "holdout_split", "is_digit_data", "load_shipped", "to_input", "train_classifier", "weights_path"]

logger = logging.getLogger(__name__)

IMG_SIZE = 28
WEIGHTS_FILE = "digits-classifier.safetensors"
#: sha256 of the shipped weights file and its accuracy on the 1,000 held-out real digits
SHA256 = "1504e99d3485c3814a4f7b17503271562ab842ac9c1418744454a426a012c922"
HELD_OUT_ACCURACY = 0.983


class DigitClassifier(nn.Module):
    """3x3 convolutions with BatchNorm (32 channels at 28x28, 2 x 64 at 14x14, max-pooling between), a 128-unit
    feature layer and a linear head: 28x28 one-channel images in [-1, 1] to 10 class logits."""

    feature_dim = 128

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]

        self.body = nn.Sequential(
            *block(1, 32), nn.MaxPool2d(2),  # 14x14
            *block(32, 64), *block(64, 64), nn.MaxPool2d(2),  # 7x7
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 7 * 7, self.feature_dim), nn.ReLU(True),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(self.feature_dim, num_classes))

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(128 penultimate activations, class logits) of images in [-1, 1] of shape (N, 1, 28, 28)."""
        h = self.body(x)
        return h, self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[1]


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (or [-1, 1] float) images of any size, 1 or 3 channels, as the classifier's (N, 1, 28, 28) input.

    RGB becomes gray by the channel mean; other sizes are resized bilinearly with antialiasing.
    """
    x = images.float().div(127.5).sub(1.0) if images.dtype == torch.uint8 else images.float()
    if x.shape[1] == 3:
        x = x.mean(dim=1, keepdim=True)
    if x.shape[-2:] != (IMG_SIZE, IMG_SIZE):
        x = F.interpolate(x, size=(IMG_SIZE, IMG_SIZE), mode="bilinear", antialias=True, align_corners=False)
    return x


#: named datasets of handwritten digits, whose classes are the classifier's 0 to 9
DIGIT_DATASETS = ("mnist-5k", "mnist")


def is_digit_data(dataset: ImageDataset) -> bool:
    """Whether `dataset` holds handwritten digits labelled 0 to 9, so the classifier's classes are its classes:
    mnist-5k and mnist (any split), and image folders whose class sub-folders are named 0 to 9. Other data
    (fashion-mnist, cifar10, celeba, other folders) gets no class histogram, coverage or class control."""
    if dataset.name in DIGIT_DATASETS:
        return True
    return dataset.name.startswith("folder:") and dataset.class_names == [str(i) for i in range(10)]


# ----------------------------------------------------------------------------------------------------- weights


def weights_path() -> Path:
    return Path(str(resources.files("ganzoo") / "_data" / WEIGHTS_FILE))


def load_shipped(path: Path | None = None, expected_sha256: str | None = None) -> DigitClassifier:
    """The shipped classifier in eval mode, after checking the file's sha256 against the pinned one."""
    from safetensors.torch import load_file

    path = path or weights_path()
    expected = expected_sha256 or SHA256
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise WeightsError(f"cannot read the digits classifier {path} ({exc.strerror}); reinstall ganzoo") from None
    if digest != expected:
        raise WeightsError(f"the digits classifier {path} has sha256 {digest[:12]}..., expected {expected[:12]}...; "
                           "the file is damaged or was replaced: reinstall ganzoo")
    model = DigitClassifier()
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------------- training


def holdout_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """mnist-5k's fixed split (`ganzoo.data`) as floats in [-1, 1]: (train images, train labels, test images,
    test labels); the classifier trains on the first and is measured on the second."""
    from ganzoo.data import load_dataset

    parts = []
    for split in ("train", "test"):
        data = load_dataset("mnist-5k", img_size=IMG_SIZE, channels=1, split=split)
        assert data.labels is not None
        parts += [data.images.float().div(127.5).sub(1.0), data.labels]
    return parts[0], parts[1], parts[2], parts[3]


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random rotation (+-10 degrees), scale (0.9-1.1) and shift (+-2 pixels) of each image, background -1."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(10)
    scale = 0.9 + 0.2 * torch.rand(n, generator=gen)
    shift = torch.randint(-2, 3, (n, 2), generator=gen).float() * 2 / x.shape[-1]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


@torch.no_grad()
def accuracy(model: DigitClassifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Fraction of `images` (uint8, or floats in [-1, 1]) classified as `labels`."""
    was_training = model.training
    model.eval()
    preds = torch.cat([model(to_input(images[i:i + batch_size])).argmax(1) for i in range(0, len(images), batch_size)])
    model.train(was_training)
    return (preds == labels).float().mean().item()


def train_classifier(epochs: int = 15, seed: int = 0, batch_size: int = 64) -> tuple[DigitClassifier, float]:
    """Train on the 4,000 training digits; returns the model (eval mode) and its held-out accuracy."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_train, y_train, x_test, y_test = holdout_split()
    model = DigitClassifier()
    steps = epochs * math.ceil(len(x_train) / batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        for start in range(0, len(perm), batch_size):
            idx = perm[start:start + batch_size]
            loss = F.cross_entropy(model(_augment(x_train[idx], gen)), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        logger.info("epoch %d/%d: loss %.4f, held-out accuracy %.4f", epoch + 1, epochs, loss.item(),
                    accuracy(model, x_test, y_test))
    model.eval().requires_grad_(False)
    return model, accuracy(model, x_test, y_test)
