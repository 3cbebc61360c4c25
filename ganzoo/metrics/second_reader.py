"""A second digit reader, to check the StackedMNIST yardstick (`ganzoo.metrics.modes`) against: a network unlike the
shipped classifier, trained here from another seed on the same train part.

The confident-mode count must not be an artefact of one classifier. So `train_second_reader` trains a different
network (5x5 convolutions without BatchNorm, average pooling, ELU, a 64-value feature layer, no dropout) from seed 1,
with shifts, rotations and scaling only (the shipped classifier also learns blurred, dimmed and fogged digits), on
mnist-5k's train part, in a few seconds. `ganzoo.metrics.modes.fit_reference` then fits the same counting rule in
its feature space, and the two counts of a sample set can be compared: tests/test_stacked_mnist.py does it on fixed
sets, benchmarks/stacked_mnist.py on every trained generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import ganzoo.metrics.digits as digits

__all__ = ["SecondDigitNet", "train_second_reader"]


class SecondDigitNet(nn.Module):
    """5x5 convolutions (12 channels at 28x28, 24 at 14x14) with ELU and average pooling, a 64-value feature layer
    and a linear head: 28x28 one-channel images in [-1, 1] to 10 class logits."""

    feature_dim = 64

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 5, stride=2, padding=2), nn.ELU(),  # 14x14
            nn.Conv2d(16, 32, 5, stride=2, padding=2), nn.ELU(),  # 7x7
            nn.Flatten(), nn.Linear(32 * 7 * 7, self.feature_dim),
        )
        self.head = nn.Sequential(nn.ELU(), nn.Linear(self.feature_dim, 10))

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, class logits): the feature layer's values before the ELU, L2-normalised and scaled to length
        sqrt(64), as the shipped classifier's are, and the 10 logits."""
        h = self.body(x)
        return F.normalize(h, dim=1) * math.sqrt(self.feature_dim), self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def train_second_reader(epochs: int = 6, seed: int = 1, batch_size: int = 100) -> tuple[SecondDigitNet, float]:
    """Train a `SecondDigitNet` on mnist-5k's train part (shifted, rotated and scaled, `digits._affine`); returns it
    (eval mode, no gradients) and its accuracy on the test part."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_train, y_train, x_test, y_test = digits.holdout_split()
    model = SecondDigitNet()
    steps = epochs * math.ceil(len(x_train) / batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=4e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=4e-3, total_steps=steps)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x_train), generator=gen)
        for start in range(0, len(perm), batch_size):
            idx = perm[start:start + batch_size]
            loss = F.cross_entropy(model(digits._affine(x_train[idx], gen)), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval().requires_grad_(False)
    return model, digits.accuracy(model, x_test, y_test)  # type: ignore[arg-type]
