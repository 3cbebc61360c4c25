"""StackedMNIST: the dataset (fixed draws, splits, labels) and the mode-coverage metric, which must rank image sets as
a person would: real stacks cover (nearly) every mode evenly, half the digits in one channel half the modes, colour
blobs almost no mode read with confidence however many argmax "modes" they spread over, one repeated stack one mode.

Reading a stack takes the classifier three passes (one per channel), about 2-3 ms per stack on one CPU thread, so
the sets here hold 1,000-2,560 stacks; the 25,600-sample figures (real test stacks: 1,000 modes, KL 0.020; 1,000
confident modes, KL 0.023, 93.0 % read with confidence; per-channel accuracy 98.3 / 98.3 / 98.3 %) are measured by
`benchmarks/stacked_mnist.py` and quoted in docs/evaluation.md.
"""

from __future__ import annotations

import hashlib
import math

import pytest
import torch
import torch.nn.functional as F

import ganzoo
from ganzoo.data import (
    STACKED_MNIST_SIZES,
    dataset_names,
    eval_split,
    load_dataset,
    mnist_5k_test_mask,
    native_channels,
    select_split,
)
from ganzoo.errors import GanzooUsageError
from ganzoo.metrics import Evaluator
from ganzoo.metrics.modes import NUM_MODES, channel_accuracy, kl_from_uniform, mode_coverage

N = 2560  # a tenth of the protocol's 25,600


@pytest.fixture(scope="module")
def test_split():
    return load_dataset("stacked-mnist", img_size=32, split="test")


@pytest.fixture(scope="module")
def real(test_split):
    """The first N stacks of the test split and their coverage (read once for the module)."""
    return test_split.images[:N], test_split.labels[:N], mode_coverage(test_split.images[:N])


def _digest(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------------------- data


def test_dataset_is_fixed_and_labelled_by_its_channels(test_split) -> None:
    train = load_dataset("stacked-mnist", img_size=32)  # what training uses: the train part
    assert train.split == "train" and test_split.split == "test"
    assert train.images.shape == (STACKED_MNIST_SIZES["train"], 3, 32, 32) and train.images.dtype == torch.uint8
    assert test_split.images.shape == (STACKED_MNIST_SIZES["test"], 3, 32, 32)
    assert train.num_classes == test_split.num_classes == NUM_MODES and train.class_names[187] == "187"
    # the same draws on every machine (random.Random's documented sequence): pinned labels and image digests
    assert train.labels[:8].tolist() == [187, 244, 670, 84, 704, 729, 900, 593]
    assert test_split.labels[:8].tolist() == [990, 87, 636, 651, 437, 995, 420, 43]
    assert _digest(train.labels) == "561c8e692720ab30" and _digest(test_split.labels) == "8193004c1a4623cb"
    assert _digest(test_split.images[:100]) == "1c030a1257b325b6"
    # every mode is there, about equally often (a uniform draw: 50 per mode in the train part, 25.6 in the test)
    counts = train.labels.bincount(minlength=NUM_MODES)
    assert len(counts) == NUM_MODES and counts.min() >= 20 and counts.max() <= 90
    assert test_split.labels.bincount(minlength=NUM_MODES).min() >= 5


def test_each_channel_is_a_digit_of_its_split_with_its_label(test_split) -> None:
    digits = load_dataset("mnist-5k", img_size=32)
    test_mask = mnist_5k_test_mask(digits.labels)
    known = {bytes(img[0].flatten().tolist()): (bool(t), int(y))
             for img, t, y in zip(digits.images, test_mask, digits.labels, strict=True)}
    train = load_dataset("stacked-mnist", img_size=32)
    for part, is_test in ((test_split, True), (train, False)):
        for image, label in zip(part.images[:50], part.labels[:50], strict=True):
            found = [known[bytes(channel.flatten().tolist())] for channel in image]
            assert all(t == is_test for t, _ in found), "a channel's digit comes from the other split"
            assert 100 * found[0][1] + 10 * found[1][1] + found[2][1] == int(label)


def test_name_splits_and_one_line_errors(test_split) -> None:
    assert "stacked-mnist" in dataset_names() and native_channels("stacked-mnist") == 3
    assert eval_split("stacked-mnist") == "test"
    whole = load_dataset("stacked-mnist", img_size=32, split="all")
    assert len(whole) == sum(STACKED_MNIST_SIZES.values())
    assert torch.equal(select_split(whole, "test").images, test_split.images)
    assert torch.equal(select_split(whole, "train").labels[:8], whole.labels[:8])
    small = load_dataset("stacked-mnist", img_size=16, split="test", channels=3)
    assert small.images.shape[1:] == (3, 16, 16) and torch.equal(small.labels, test_split.labels)
    with pytest.raises(GanzooUsageError, match="stacked-mnist has 3 channels") as info:
        load_dataset("stacked-mnist", img_size=32, channels=1)
    assert "\n" not in str(info.value)


# -------------------------------------------------------------------------------------------------------- metric


def test_real_stacks_cover_every_mode_evenly_and_are_read_with_confidence(real) -> None:
    _, _, result = real
    # a uniform draw of N stacks covers 1000 * (1 - exp(-N / 1000)) = 923 modes on average, with KL near
    # (1000 - 1) / (2 N) = 0.195 from sampling alone (at 25,600: 1,000 modes, KL 0.020)
    expected = NUM_MODES * (1 - math.exp(-N / NUM_MODES))
    assert abs(result.modes - expected) < 25, result
    assert abs(result.kl - (NUM_MODES - 1) / (2 * N)) < 0.03, result
    assert result.confident_fraction > 0.88, result
    assert result.confident_modes >= expected - 40 and result.confident_kl < 0.26, result
    assert result.samples == N and sum(result.histogram) == N


def test_per_channel_accuracy_on_the_test_split(real) -> None:
    images, labels, _ = real
    accuracy = channel_accuracy(images[:1000], labels[:1000])
    assert all(a > 0.965 for a in accuracy), accuracy  # 98.3 % each over all 25,600 test stacks


def test_half_the_digits_in_one_channel_cover_half_the_modes(real) -> None:
    images, labels, full = real
    low_red = images[labels // 100 < 5]  # red digits 0-4 only: 500 modes exist
    result = mode_coverage(low_red)
    assert result.modes <= 530 and result.confident_modes <= 510, result  # misreads add a few
    assert result.confident_modes < 0.6 * full.confident_modes
    assert sum(result.confident_histogram[500:]) <= 0.01 * len(low_red)  # hardly a confident red 5-9
    assert result.kl > full.kl + 0.5  # half the modes empty: KL near ln 2 above the real set's


def _colour_fields(n: int, seed: int = 0) -> torch.Tensor:
    """Smooth random colour fields in [-1, 1]: a 4x4 random pattern per channel, upsampled: blobs of colour."""
    coarse = torch.randn(n, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(coarse, size=32, mode="bicubic", align_corners=False).div(1.5).clamp(-1, 1)


def _blurred(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Real stacks under a Gaussian blur: digits smeared into coloured smudges."""
    x = images.float().div(127.5).sub(1)
    radius = math.ceil(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-t.square() / (2 * sigma**2))
    k = k / k.sum()
    flat = F.pad(x.reshape(-1, 1, *x.shape[-2:]), (radius,) * 4, value=-1.0)
    flat = F.conv2d(F.conv2d(flat, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    return flat.view_as(x)


def test_colour_blobs_score_few_confident_modes_whatever_argmax_says(real) -> None:
    images, _, full = real
    n = 1000
    truth = mode_coverage(images[:n])
    for name, blobs in (("colour fields", _colour_fields(n)), ("blurred stacks", _blurred(images[:n], 4.0))):
        result = mode_coverage(blobs)
        assert result.modes >= 150, (name, result)  # plain argmax finds many "modes" in them ...
        assert result.confident_fraction < 0.02, (name, result)  # ... but hardly any is read with confidence
        assert result.confident_modes < truth.confident_modes / 10, (name, result)
        assert result.confident_kl > truth.confident_kl + 2, (name, result)


def test_one_repeated_stack_is_one_mode_at_kl_ln_1000(real) -> None:
    images, labels, _ = real
    result = mode_coverage(images[:1].expand(300, -1, -1, -1))
    assert result.modes == 1 and result.confident_modes in (0, 1)
    assert result.kl == pytest.approx(math.log(NUM_MODES)) and result.confident_kl == pytest.approx(math.log(1000))
    assert result.histogram[int(labels[0])] == 300  # read as the stack it is


def test_kl_and_empty_sets() -> None:
    assert kl_from_uniform(torch.ones(1000)) == 0.0
    assert kl_from_uniform(torch.zeros(1000)) == pytest.approx(math.log(1000))  # no confident sample: as one mode
    half = torch.cat([torch.ones(500), torch.zeros(500)])
    assert kl_from_uniform(half) == pytest.approx(math.log(2))
    with pytest.raises(GanzooUsageError, match="3, H, W"):
        mode_coverage(torch.zeros(4, 1, 32, 32))


# --------------------------------------------------------------------------------------- everywhere a data name is


def test_train_on_stacked_mnist_and_evaluate_modes(tmp_path) -> None:
    from ganzoo.testing import tiny_train

    model = tiny_train("dcgan", tmp_path / "run", steps=2, data="stacked-mnist")
    assert model.img_shape == (3, 28, 28)  # the data's 3 channels, the tiny config's size
    result = ganzoo.evaluate(model, "stacked-mnist", "modes", num_samples=64)
    assert result.provenance["split"] == "test" and result.provenance["modes_confidence"] == 0.9
    assert set(result.values) == {"modes", "modes_kl", "confident_modes", "confident_kl", "confident_fraction"}
    assert 1 <= result.values["modes"] <= 64 and result.values["confident_fraction"] < 0.5  # untrained: smudges
    with pytest.raises(GanzooUsageError, match="stacked-mnist"):
        Evaluator(load_dataset("mnist-5k", img_size=28, split="test"), "modes")
