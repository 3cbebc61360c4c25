"""pix2pix and the translation task: the networks, the paired objective's options, the paper's schedule, translate."""

from __future__ import annotations

import json

import pytest
import torch

import ganzoo
from ganzoo.errors import ConfigError, GanzooUsageError, UnknownNameError
from ganzoo.interfaces import Schedule
from ganzoo.registry import get_architecture
from ganzoo.testing import assert_same_state, paired_digits, tiny_config

TINY = tiny_config("pix2pix")


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _train(tmp_path, name, steps=2, **kwargs):
    data = paired_digits(tmp_path / "pairs", count=16)
    kwargs.setdefault("recipe", {})
    kwargs["recipe"] = {"batch_size": 4, **kwargs["recipe"]}
    return ganzoo.train("pix2pix", data=data, steps=steps, out=tmp_path / name, config=TINY, device="cpu",
                        log_every=1, grid_size=8, **kwargs)


def test_the_recipe_is_the_papers():
    arch = get_architecture("pix2pix")
    recipe = arch.recipe
    assert arch.task == "translate"
    assert (recipe.optimizer, recipe.g_lr, recipe.d_lr, recipe.betas) == ("adam", 2e-4, 2e-4, (0.5, 0.999))
    assert (recipe.loss, recipe.objective, recipe.objective_options) == ("non-saturating", "paired",
                                                                         {"l1_weight": 100.0})
    assert recipe.schedules == {"lr": {"kind": "linear", "to": 0.0, "hold_fraction": 0.5}}


def test_hold_then_linear_decay_to_zero():
    schedule = Schedule(kind="linear", to=0.0, hold_fraction=0.5)
    values = [schedule.value(2e-4, step, 10) for step in range(12)]
    assert values[:6] == [2e-4] * 6  # constant for the first half (steps 0..5 of a 10-step plan)
    assert values[6:] == pytest.approx([2e-4 * k / 5 for k in (4, 3, 2, 1, 0, 0)])
    with pytest.raises(ConfigError, match="hold_fraction must lie in"):
        Schedule(kind="linear", to=0.0, hold_fraction=1.0)
    with pytest.raises(ConfigError, match="shorten the hold"):
        Schedule(kind="linear", to=0.0, hold_fraction=0.6, fraction=0.5)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_unet_and_patchgan_shapes(size):
    gan = ganzoo.create("pix2pix", img_size=size, channels=3, g_width=4, d_width=4, d_layers=2)
    G, D = gan.generator, gan.discriminator
    assert G.size_multiple == size  # down to 1x1
    x = torch.rand(2, 3, size, size) * 2 - 1
    y = G(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    side = size // 4 - 2  # two stride-2 layers, then two 4x4 stride-1 convolutions
    assert D(y, x).shape == (2, side * side)  # one logit per patch


def test_the_decoder_sees_the_encoders_maps_through_skips():
    G = ganzoo.create("pix2pix", img_size=16, g_width=4, d_width=4, d_layers=2).generator
    # every decoder layer after the bottleneck takes its own maps and the encoder's of that size, concatenated
    assert [layer[1].in_channels for layer in G.up] == [32, 2 * 16, 2 * 8]  # widths 4, 8, 16, 32
    assert G.out[1].in_channels == 2 * 4
    # the skips carry detail past the 1x1 bottleneck: with the bottleneck's output zeroed, a pixel still moves the
    # output near it
    G.eval()
    G.down[-1].register_forward_hook(lambda m, a, out: out * 0)
    x = torch.zeros(1, 3, 16, 16)
    poked = x.clone()
    poked[0, :, 3, 3] = 1.0
    assert not torch.allclose(G(x), G(poked))


def test_the_discriminator_is_conditioned_on_the_input():
    D = ganzoo.create("pix2pix", **TINY).discriminator.eval()
    y = torch.rand(2, 3, 16, 16)
    assert not torch.allclose(D(y, torch.zeros_like(y)), D(y, torch.ones_like(y)))
    with pytest.raises(GanzooUsageError, match="judges an output against its input"):
        D(y)


def test_l1_weight_is_the_lambda_of_the_generator_loss(tmp_path):
    _train(tmp_path, "l100", steps=1)
    _train(tmp_path, "l0", steps=1, recipe={"objective_options": {"l1_weight": 0.0}})
    with_l1, without = _records(tmp_path / "l100")[0], _records(tmp_path / "l0")[0]
    # same seed, same weights, same batch: the adversarial term and the L1 distance agree, only lambda differs
    assert with_l1["l1"] == pytest.approx(without["l1"], rel=1e-6)
    assert with_l1["g_adversarial"] == pytest.approx(without["g_adversarial"], rel=1e-6)
    assert with_l1["g_loss"] == pytest.approx(with_l1["g_adversarial"] + 100 * with_l1["l1"], rel=1e-5)
    assert without["g_loss"] == pytest.approx(without["g_adversarial"], rel=1e-6)
    assert with_l1["l1"] > 0.1  # an untrained G is far from the targets, so the two losses differ


def test_the_l1_only_preset_never_updates_d(tmp_path):
    torch.manual_seed(0)
    initial = ganzoo.create("pix2pix", seed=0, channels=3, **TINY)
    model = _train(tmp_path, "l1", steps=3, preset="l1-only")
    assert_same_state(initial.discriminator, model.discriminator)  # built with the same seed, never stepped
    changed = any(not torch.equal(a, b) for a, b in zip(initial.generator.state_dict().values(),
                                                        model.generator.state_dict().values(), strict=True))
    assert changed, "G did not train"
    records = _records(tmp_path / "l1")
    assert all("d_loss" not in r and r["g_loss"] == pytest.approx(100 * r["l1"], rel=1e-6) for r in records)
    assert records[-1]["l1"] < records[0]["l1"]


def test_the_learning_rate_holds_then_decays_to_zero_in_training(tmp_path):
    _train(tmp_path, "lr", steps=4)
    assert [r["g_lr"] for r in _records(tmp_path / "lr")] == pytest.approx([2e-4, 2e-4, 2e-4, 1e-4])
    assert [r["d_lr"] for r in _records(tmp_path / "lr")] == pytest.approx([2e-4, 2e-4, 2e-4, 1e-4])


def test_translate_any_accepted_size_and_refuse_the_rest(tmp_path):
    model = _train(tmp_path, "t", steps=1)
    x = torch.rand(3, 3, 32, 32) * 2 - 1  # trained at 16, fully convolutional
    y = model.translate(x)
    assert y.shape == x.shape and torch.equal(y, model.translate(x))  # deterministic: dropout off
    # one image without a batch dimension (a batch of one may take other kernels: equal to float rounding)
    torch.testing.assert_close(model.translate(x[0]), y[0], rtol=0, atol=1e-5)
    with pytest.raises(GanzooUsageError, match="cannot translate 24x24 images.*multiples of 16"):
        model.translate(torch.zeros(1, 3, 24, 24))
    with pytest.raises(GanzooUsageError, match="translates 3-channel images, got 1 channels"):
        model.translate(torch.zeros(1, 1, 16, 16))
    with pytest.raises(GanzooUsageError, match="cannot sample from noise; use gan.translate"):
        model.sample(4)
    with pytest.raises(GanzooUsageError, match="cannot interpolate from noise"):
        model.interpolate(2)
    with pytest.raises(GanzooUsageError, match="does not translate; use gan.sample"):
        ganzoo.create("gan", z_dim=8, g_hidden=[16], d_hidden=[16]).translate(x)


def test_the_training_grid_shows_inputs_beside_outputs_and_is_exported(tmp_path):
    from PIL import Image

    _train(tmp_path, "grid", steps=1)
    grid = Image.open(tmp_path / "grid" / "model" / "samples.png")
    # 4 pairs of 16x16 images, 8 a row, padding 2: one row
    assert grid.size == (8 * 18 + 2, 18 + 2)
    card = (tmp_path / "grid" / "model" / "README.md").read_text()
    assert "gan.translate(images)" in card and "ganzoo translate" in card and "image-to-image" in card


def test_the_objective_is_what_the_step_does(tmp_path):
    _train(tmp_path, "paired", steps=1, recipe={"objective": "paired"})
    record = _records(tmp_path / "paired")[0]
    assert {"l1", "g_adversarial", "d_loss"} <= set(record)  # the paired objective's terms, D's phase included
    with pytest.raises(UnknownNameError, match="unknown objective 'pared'; did you mean 'paired'"):
        _train(tmp_path, "typo", steps=1, recipe={"objective": "pared"})


def test_objectives_and_tasks_must_agree(tmp_path):
    data = paired_digits(tmp_path / "pairs", count=16)
    with pytest.raises(ganzoo.GanzooError, match="objective 'generate' trains the generate task"):
        ganzoo.train("pix2pix", data=data, steps=1, out=tmp_path / "a", config=TINY,
                     recipe={"objective": "generate", "objective_options": {}})
    with pytest.raises(GanzooUsageError, match="translates images and trains on pairs"):
        ganzoo.train("pix2pix", data="mnist-5k", steps=1, out=tmp_path / "b", config=TINY)
    with pytest.raises(GanzooUsageError, match="generates images from noise.*paired data"):
        ganzoo.train("gan", data=data, steps=1, out=tmp_path / "c")
    with pytest.raises(ConfigError, match="nothing trains G"):
        ganzoo.train("pix2pix", data=data, steps=1, out=tmp_path / "d", config=TINY,
                     recipe={"objective_options": {"adversarial": False, "l1_weight": 0}})
    with pytest.raises(ConfigError, match="does not take lambda"):
        ganzoo.train("pix2pix", data=data, steps=1, out=tmp_path / "e", config=TINY,
                     recipe={"objective_options": {"lambda": 10}})
    assert not any((tmp_path / name).exists() for name in "abcde")
