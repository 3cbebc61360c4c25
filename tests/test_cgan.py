"""The conditional GAN plugin: both discriminators, label handling and the errors around labels."""

from __future__ import annotations

import json

import pytest
import torch

import ganzoo
from ganzoo.errors import ConfigError, GanzooUsageError
from ganzoo.registry import get_architecture
from ganzoo.testing import tiny_config, tiny_train


def _tiny(**overrides):
    return ganzoo.create("cgan", seed=0, **tiny_config("cgan", **overrides))


@pytest.mark.parametrize("kind", ["concat", "projection"])
def test_both_discriminators_train_a_few_steps(kind, tmp_path):
    gan = tiny_train("cgan", tmp_path / kind, steps=2, config={"discriminator": kind})
    assert gan.config.discriminator == kind
    assert gan.num_classes == 10
    images = gan.sample(10, seed=0, labels=list(range(10)))
    assert images.shape == (10, 1, 28, 28)
    assert torch.isfinite(images).all()


@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("kind", ["concat", "projection", "both"])
@pytest.mark.parametrize("spectral_norm", [True, False])
def test_sizes_and_variants_build(size, kind, spectral_norm):
    gan = _tiny(img_size=size, discriminator=kind, spectral_norm=spectral_norm)
    labels = torch.tensor([0, 3, 9])
    images = gan.sample(3, seed=0, labels=labels)
    assert images.shape == (3, 1, size, size)
    assert gan.discriminator(images, labels).shape == (3,)


def test_sample_with_labels_has_the_right_shape():
    gan = _tiny()
    assert gan.sample(6, seed=0, labels=[1, 2, 3, 4, 5, 6]).shape == (6, 1, 28, 28)
    assert gan.sample(4, seed=0, labels=7).shape == (4, 1, 28, 28)
    assert gan.sample(5, seed=0).shape == (5, 1, 28, 28)  # labels cycle through the classes by default


@pytest.mark.parametrize("conditional_bn", [True, False])
def test_different_labels_give_different_images_for_the_same_latents(conditional_bn):
    gan = _tiny(conditional_bn=conditional_bn)
    a = gan.sample(4, seed=0, labels=0)
    b = gan.sample(4, seed=0, labels=1)
    assert torch.equal(a, gan.sample(4, seed=0, labels=0))
    assert not torch.allclose(a, b)


def test_labels_out_of_range_are_a_clear_error():
    gan = _tiny()
    with pytest.raises(GanzooUsageError, match="label 10 is out of range; classes are 0..9"):
        gan.sample(2, labels=[0, 10])
    with pytest.raises(GanzooUsageError, match="label -1 is out of range"):
        gan.generator(torch.zeros(2, gan.generator.z_dim), torch.tensor([-1, 0]))
    with pytest.raises(GanzooUsageError, match="label 12 is out of range"):
        gan.discriminator(torch.zeros(1, 1, 28, 28), torch.tensor([12]))


def test_generator_and_discriminator_refuse_missing_labels():
    gan = _tiny()
    z = torch.zeros(2, gan.generator.z_dim)
    with pytest.raises(GanzooUsageError, match="generator is conditional and needs class labels"):
        gan.generator(z)
    with pytest.raises(GanzooUsageError, match="discriminator is conditional and needs class labels"):
        gan.discriminator(torch.zeros(2, 1, 28, 28))
    with pytest.raises(GanzooUsageError, match="one label per image"):
        gan.generator(z, torch.tensor([1, 2, 3]))


def test_an_unlabelled_folder_is_refused_by_the_trainer(tmp_path):
    from PIL import Image

    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(10):
        Image.new("L", (28, 28), color=i * 20).save(folder / f"{i}.png")
    config = {k: v for k, v in tiny_config("cgan").items() if k != "num_classes"}
    with pytest.raises(GanzooUsageError, match="cgan is conditional and needs labelled data"):
        ganzoo.train("cgan", data=str(folder), steps=1, out=tmp_path / "run", config=config, device="cpu",
                     recipe={"batch_size": 4})


def test_config_validation_and_presets():
    arch = get_architecture("cgan")
    assert arch.conditional
    with pytest.raises(ConfigError, match="img_size 64 is not supported"):
        arch.make_config(img_size=64)
    with pytest.raises(ConfigError, match="embed_dim must be positive"):
        arch.make_config(embed_dim=0)
    with pytest.raises(ConfigError, match="discriminator must be one of"):
        arch.make_config(discriminator="auxiliary")
    with pytest.raises(ConfigError, match="bn_momentum must lie in"):
        arch.make_config(bn_momentum=0)
    with pytest.raises(ConfigError, match="conditional: set num_classes"):
        ganzoo.create("cgan")
    concat = arch.make_config("concat")
    assert (concat.discriminator, concat.spectral_norm) == ("concat", False)
    projection = arch.make_config("projection")
    assert (projection.discriminator, projection.spectral_norm) == ("projection", True)
    assert arch.make_recipe("projection").loss == "hinge"
    assert arch.make_recipe("concat").loss == "non-saturating"
    cfg = arch.make_config(num_classes=10)
    assert type(cfg).from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_unlabelled_data_is_refused_even_when_num_classes_is_set(tmp_path):
    from PIL import Image

    from ganzoo.errors import GanzooUsageError
    from ganzoo.testing import tiny_train

    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(10):
        Image.new("L", (28, 28), color=i * 20).save(folder / f"{i}.png")
    with pytest.raises(GanzooUsageError, match="needs labelled data"):
        tiny_train("cgan", tmp_path / "run", steps=1, data=str(folder), config={"num_classes": 10})
