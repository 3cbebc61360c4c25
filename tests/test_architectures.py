"""Every registered architecture, found through list_models(), passes the plugin test kit."""

from __future__ import annotations

import pytest
import torch

import ganzoo
from ganzoo.testing import check_architecture, check_fast_paths, check_resume

ARCHITECTURES = ganzoo.list_models()


def test_the_builtin_architectures_are_registered():
    assert {"dcgan", "gan"} <= set(ARCHITECTURES)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_builds_trains_saves_reloads_and_samples_identically(arch, tmp_path):
    check_architecture(arch, tmp_path)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_resume_is_exact(arch, tmp_path):
    check_resume(arch, tmp_path, steps=10)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_fast_paths_train_and_agree_with_the_default(arch, tmp_path):
    check_fast_paths(arch, tmp_path)


@pytest.mark.parametrize("size", [28, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_sizes_and_channels(size, channels):
    gan = ganzoo.create("dcgan", img_size=size, channels=channels, g_width=4, d_width=4, z_dim=8)
    images = gan.sample(2, seed=0)
    assert images.shape == (2, channels, size, size)
    assert gan.discriminator(images).shape == (2,)


def test_dcgan_rejects_sizes_it_cannot_make():
    with pytest.raises(ganzoo.GanzooError, match="img_size 48 is not supported.*28, 32, 64, 128"):
        ganzoo.create("dcgan", img_size=48)


def test_keras_mnist_preset_matches_the_lecture():
    gan = ganzoo.create("dcgan", preset="keras-mnist")
    trainable = sum(p.numel() for p in gan.generator.parameters() if p.requires_grad)
    assert trainable == 2_368_705
    recipe = ganzoo.registry.get_architecture("dcgan").make_recipe("keras-mnist")
    assert (recipe.optimizer, recipe.batch_size, recipe.d_lr, recipe.g_lr) == ("rmsprop", 256, 2e-4, 1e-4)
    assert gan.sample(3, seed=0).shape == (3, 1, 28, 28)


def test_sampling_is_seeded_and_in_range():
    gan = ganzoo.create("gan", seed=0, z_dim=8, g_hidden=[16], d_hidden=[16])
    a, b, c = gan.sample(5, seed=1), gan.sample(5, seed=1), gan.sample(5, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1 and a.max() <= 1
    # sampling in chunks gives the same images as one batch (up to BLAS blocking)
    assert torch.allclose(gan.sample(5, seed=1, batch_size=2), a, atol=1e-5)


def test_unconditional_models_refuse_labels():
    gan = ganzoo.create("gan", z_dim=8, g_hidden=[16], d_hidden=[16])
    with pytest.raises(ganzoo.GanzooError, match="unconditional"):
        gan.sample(2, labels=[1, 2])


def test_spherical_interpolation_keeps_the_norm_of_orthogonal_latents():
    from ganzoo.model import slerp

    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    assert torch.allclose(slerp(a, b, 0.5).norm(), torch.tensor(3.0))
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, a, 0.3), a)
