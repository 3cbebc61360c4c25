"""The `digits` feature extractor: a small digit classifier that ganzoo trains on the train part of mnist-5k.

It gives evaluation on digit data that works offline: its feature layer is the feature space of the digits Fréchet
distance (and KID, precision/recall), its 10 logits give a digits Inception Score and, on digit data only
(`is_digit_data`), the class histogram used to spot mode collapse. The shipped weights
(`ganzoo/_data/digits-classifier.safetensors`) are made by `scripts/train_digits_classifier.py`, which calls
`train_classifier` below; their sha256 and test accuracy are pinned here and checked whenever the weights are loaded.

Data: mnist-5k's fixed split (`ganzoo.data`): the classifier trains on the train part (the first 400 images of every
class, 4,000 in all) and is measured on the test part (the last 100 of every class), which is also the reference
that evaluation compares generators with by default, so a generator is compared with digits the extractor never saw.

The feature space, and why: the features are the feature layer's 128 values before its ReLU, scaled to length
sqrt(128) (each image's vector is L2-normalised, then every dimension has unit root-mean-square, the scale KID's
kernel (x.y/d + 1)^3 is built for). An earlier version took the 128 activations after the ReLU as they were. Their
length follows the amount of ink, not the digit's shape: a blank image activates almost nothing, so it sat near the
origin, and the origin was close to the real digits' mean (70 % of the activations are zero); a set of blank images
then had a smaller Fréchet distance (2,266) than one class of real digits (2,640). Blurred strokes, which that
classifier had never seen, all fell into its "8" region, far from the real mean, so a 300-step DCGAN's blurry but
varied digits scored worse (FD 1,846, "1/10 classes covered, histogram all 8") than the untrained model's near-blank
grey images (1,331). With normalised features only the pattern of what fires counts, and a blank or noise image,
whose pattern is unlike any digit's, is the farthest thing there is. Training now also blurs, dims and fogs (raises
the black level of) a part of each batch, so that a degraded digit is still recognised as its digit: the class
histogram of blurry samples shows their classes, and degradation moves features step by step rather than into one
wrong class. tests/test_ladder.py checks the ranking this gives (`ganzoo.metrics.ladder`).
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
EPOCHS = 20  # the shipped weights' training epochs (15 were not enough with the blur, dim and fog augmentation)
WEIGHTS_FILE = "digits-classifier.safetensors"
#: sha256 of the shipped weights file and its accuracy on mnist-5k's test part (1,000 real digits it never saw)
SHA256 = "7a41472b6b835f753ff105dde0ac3cf145e67f43567442d7db97b5f895b4055d"
HELD_OUT_ACCURACY = 0.984


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
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 7 * 7, self.feature_dim),
        )
        # not in place: the feature layer's values before the ReLU are the metric's features
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.3), nn.Linear(self.feature_dim, num_classes))

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, class logits) of images in [-1, 1] of shape (N, 1, 28, 28): the feature layer's 128 values
        before its ReLU, L2-normalised and scaled to length sqrt(128), and the 10 logits."""
        h = self.body(x)
        return F.normalize(h, dim=1) * math.sqrt(self.feature_dim), self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


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


#: share of each training batch that is blurred, dimmed and fogged (each chosen on its own)
DEGRADE_P = 0.3
BLUR_SIGMA = (0.3, 1.5)  # pixels
DIM_SCALE = (0.4, 1.0)  # the strokes' brightness above the background is multiplied by this
FOG_LEVEL = (0.0, 0.2)  # share of the way from each pixel to white: raises the black level up to 0.6 in [-1, 1]


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian blur of each image (N, 1, H, W) with its own sigma (N,), padding with the background (-1)."""
    n = x.shape[0]
    radius = math.ceil(3 * BLUR_SIGMA[1])
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-t.square() / (2 * sigma.view(n, 1).square()))
    kernel = kernel / kernel.sum(1, keepdim=True)
    rows = F.pad(x.reshape(1, n, *x.shape[-2:]), (radius, radius, radius, radius), value=-1.0)
    rows = F.conv2d(rows, kernel.view(n, 1, 1, -1), groups=n)
    return F.conv2d(rows, kernel.view(n, 1, -1, 1), groups=n).reshape(x.shape)


def _degrade(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Blur (sigma `BLUR_SIGMA`), dim (`DIM_SCALE`) and fog (`FOG_LEVEL`) a random `DEGRADE_P` share of the images
    each, as an imperfect generator's digits are: the classifier learns to see the digit in them."""
    n = x.shape[0]

    def chosen() -> torch.Tensor:
        return torch.rand(n, 1, 1, 1, generator=gen) < DEGRADE_P

    def uniform(bounds: tuple[float, float]) -> torch.Tensor:
        return bounds[0] + (bounds[1] - bounds[0]) * torch.rand(n, 1, 1, 1, generator=gen)

    x = torch.where(chosen(), _blur(x, uniform(BLUR_SIGMA).flatten()), x)
    x = torch.where(chosen(), (x + 1) * uniform(DIM_SCALE) - 1, x)
    fog = uniform(FOG_LEVEL) * chosen()
    return x + (1 - x) * fog


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random rotation (+-10 degrees), scale (0.9-1.1) and shift (+-2 pixels) of each image, background -1, then
    `_degrade`."""
    return _degrade(_affine(x, gen), gen)


def _affine(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
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


def train_classifier(epochs: int = EPOCHS, seed: int = 0, batch_size: int = 64) -> tuple[DigitClassifier, float]:
    """Train on mnist-5k's train part (4,000 digits, augmented by `_augment`); returns the model (eval mode) and its
    accuracy on the test part (1,000 digits it never saw)."""
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
        logger.info("epoch %d/%d: loss %.4f, test accuracy %.4f", epoch + 1, epochs, loss.item(),
                    accuracy(model, x_test, y_test))
    model.eval().requires_grad_(False)
    return model, accuracy(model, x_test, y_test)
