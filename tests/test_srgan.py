"""srgan and the upscale task: the networks, srN: data, the superres objective's sum and options, upscale, its CLI."""

from __future__ import annotations

import json

import ganzoo_srgan
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

import ganzoo
from ganzoo.cli import cli
from ganzoo.data import load_dataset
from ganzoo.errors import ConfigError, GanzooUsageError, WeightsError
from ganzoo.losses import loss_from_recipe
from ganzoo.registry import get_architecture
from ganzoo.testing import assert_same_state, tiny_config

TINY = tiny_config("srgan")


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _train(tmp_path, name, steps=2, data="sr4:mnist-5k", **kwargs):
    kwargs["recipe"] = {"batch_size": 4, **kwargs.get("recipe", {})}
    config = {**TINY, "channels": 1, **kwargs.pop("config", {})}
    return ganzoo.train("srgan", data=data, steps=steps, out=tmp_path / name, config=config, device="cpu",
                        log_every=1, grid_size=8, **kwargs)


def _objective(**options):
    recipe = get_architecture("srgan").recipe
    return ganzoo_srgan.SuperResolutionObjective(loss_from_recipe(recipe), **options)


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")


def _one_line_error(result, code, *fragments):
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_the_recipe_is_the_papers():
    arch = get_architecture("srgan")
    recipe = arch.recipe
    assert arch.task == "upscale"
    assert (recipe.optimizer, recipe.g_lr, recipe.betas, recipe.batch_size) == ("adam", 1e-4, (0.9, 0.999), 16)
    assert (recipe.loss, recipe.objective) == ("non-saturating", "superres")
    assert recipe.objective_options == {"content": "mse", "adversarial_weight": 1e-3}
    assert arch.make_recipe("srresnet").objective_options == {"content": "mse", "adversarial": False}
    assert arch.make_recipe("srgan-mse").objective_options == recipe.objective_options  # to name after srresnet
    paper = arch.make_config("paper")
    assert (paper.blocks, paper.g_width, paper.d_width, paper.d_dense, paper.img_size) == (16, 64, 64, 1024, 96)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_srresnet_upscales_by_its_scale_at_any_size(scale):
    gan = ganzoo.create("srgan", seed=0, **{**TINY, "img_size": 32, "scale": scale})
    G, D = gan.generator, gan.discriminator
    ups = [m for m in G.modules() if isinstance(m, torch.nn.PixelShuffle)]
    assert len(ups) == {2: 1, 4: 2, 8: 3}[scale] and G.scale == scale  # one x2 block per factor of two
    for h, w in ((32 // scale, 32 // scale), (3, 5)):
        x = torch.rand(2, 3, h, w) * 2 - 1
        assert gan.upscale(x).shape == (2, 3, scale * h, scale * w)
    for size in (16, 32, 48):  # the adaptive pool: D takes any size
        assert D(torch.rand(3, 3, size, size)).shape == (3,)


def test_the_generator_is_the_papers():
    G = ganzoo.create("srgan", seed=0, **TINY).generator
    head_conv, tail = G.head[0], G.tail
    assert head_conv.kernel_size == (9, 9) and tail.kernel_size == (9, 9)
    assert isinstance(G.head[1], torch.nn.PReLU)
    kinds = [type(m).__name__ for m in G.blocks[0].body]
    assert kinds == ["Conv2d", "BatchNorm2d", "PReLU", "Conv2d", "BatchNorm2d"]
    # the long skip: with the residual blocks and fuse silenced, G is head -> up -> tail
    x = torch.rand(1, 3, 4, 4) * 2 - 1
    G.eval()
    with torch.no_grad():
        G.fuse[1].weight.zero_()
        G.fuse[1].bias.zero_()
        assert torch.allclose(G(x), torch.tanh(G.tail(G.up(G.head(x)))), atol=1e-6)


def test_lowres_inputs_are_the_bicubic_downscaled_targets():
    data = load_dataset("sr4:mnist-5k", img_size=16, channels=1)
    assert data.images.shape[1:] == (1, 16, 16) and data.inputs.shape[1:] == (1, 4, 4)
    hr = data.images[:64].float() / 127.5 - 1
    expected = F.interpolate(hr, size=(4, 4), mode="bicubic", antialias=True, align_corners=False).clamp(-1, 1)
    expected = ((expected + 1) * 127.5).round().to(torch.uint8)
    assert torch.equal(data.inputs[:64], expected)
    assert torch.equal(data.images, load_dataset("mnist-5k", img_size=16, channels=1).images)  # targets as stored
    assert data.labels is None and data.name == "sr4:mnist-5k"
    assert load_dataset("sr2:mnist-5k", img_size=16, channels=1).inputs.shape[-1] == 8  # the factor is used
    assert load_dataset("sr:mnist-5k", img_size=16, channels=1).inputs.shape[-1] == 4  # sr: is x4
    again = load_dataset("sr4:mnist-5k", img_size=16, channels=1)
    assert torch.equal(again.inputs, data.inputs)  # the same pairs on every load: a resume sees them


@pytest.mark.parametrize(("spec", "size", "fragment"), [
    ("sr4:mnist-5k", 18, "not divisible by the factor 4; choose an --img-size such as 16 or 20"),
    ("sr3:mnist-5k", 18, "must be one of 2, 4, 8"),
    ("sr4:", 16, "name the images after the prefix"),
    ("sr4:stream:somewhere", 16, "one in-memory image set"),
    ("sr4:a>b", 16, "one in-memory image set"),
])
def test_bad_lowres_specs_are_one_line(spec, size, fragment):
    with pytest.raises(GanzooUsageError, match=None) as info:
        load_dataset(spec, img_size=size, channels=1)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_g_loss_is_content_plus_a_thousandth_of_the_adversarial_term():
    torch.manual_seed(0)
    gan = ganzoo.create("srgan", seed=0, **TINY)
    G, D = gan.generator, gan.discriminator
    low, real = torch.rand(4, 3, 4, 4) * 2 - 1, torch.rand(4, 3, 16, 16) * 2 - 1
    objective = _objective(content="mse", adversarial_weight=1e-3)
    fake = objective.generate(G, torch.zeros(4, 0), low)
    total, stats = objective.g_phase(D, G, real, fake, low, 0)
    content = ((fake - real) ** 2).mean()
    adversarial = F.softplus(-D(fake)).mean()  # non-saturating: -log sigmoid(D(G(x)))
    assert abs(total.item() - (content + 1e-3 * adversarial).item()) < 1e-6
    assert stats["content"].item() == pytest.approx(content.item(), rel=1e-6)
    assert stats["g_adversarial"].item() == pytest.approx(adversarial.item(), rel=1e-6)
    heavier, _ = _objective(adversarial_weight=0.5).g_phase(D, G, real, fake, low, 0)  # the weight is used
    assert abs(heavier.item() - (content + 0.5 * adversarial).item()) < 1e-5
    alone, alone_stats = _objective(adversarial=False).g_phase(D, G, real, fake, low, 0)
    assert alone.item() == pytest.approx(content.item(), rel=1e-6) and "g_adversarial" not in alone_stats


def test_the_vgg_content_is_the_mse_of_its_features(monkeypatch):
    torch.manual_seed(0)
    vgg = ganzoo_srgan.VGGFeatures(None)  # random weights: the plumbing, no download
    monkeypatch.setitem(ganzoo_srgan._FEATURES, "vgg19", lambda: vgg)
    objective = _objective(content="vgg19")
    assert objective.features is vgg and not any(p.requires_grad for p in vgg.parameters()) and not vgg.training
    fake, real = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    fake.requires_grad_(True)
    got = objective.content_loss(fake, real)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        phi = vgg.features  # conv1_1 ... the ReLU after conv5_4
        assert len(phi) == 36 and isinstance(phi[-1], torch.nn.ReLU) and phi[-2].out_channels == 512
        expected = ((phi(((fake + 1) / 2 - mean) / std) - phi(((real + 1) / 2 - mean) / std)) ** 2).mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert got.item() != pytest.approx(F.mse_loss(fake, real).item(), rel=1e-3)  # not the pixel MSE
    got.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0  # gradients reach G through the frozen network


def test_the_colour_content_uses_the_shipped_network():
    objective = _objective(content="colour")
    fake, real = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        features = objective.features(fake)
        expected = F.mse_loss(features, objective.features(real))
    assert features.shape == (2, 64, 16, 16)
    assert objective.content_loss(fake, real).item() == pytest.approx(expected.item(), rel=1e-6)
    assert objective.content_loss(fake, real).item() != pytest.approx(F.mse_loss(fake, real).item(), rel=1e-3)


def test_vgg19_without_its_weights_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(WeightsError) as info:
        _objective(content="vgg19")
    message = str(info.value)
    assert "IMAGENET1K_V1" in message and str(tmp_path / "hub") in message and "\n" not in message
    with pytest.raises(ConfigError, match="content must be one of mse, vgg19, colour"):
        _objective(content="vgg16")
    with pytest.raises(ConfigError, match="adversarial_weight must be a number"):
        _objective(adversarial_weight=-1)


def test_the_srresnet_preset_never_updates_d(tmp_path):
    initial = ganzoo.create("srgan", seed=0, **{**TINY, "channels": 1})
    model = _train(tmp_path, "srresnet", steps=3, preset="srresnet")
    assert_same_state(initial.discriminator, model.discriminator)  # built with the same seed, never stepped
    assert any(not torch.equal(a, b) for a, b in zip(initial.generator.state_dict().values(),
                                                     model.generator.state_dict().values(), strict=True))
    records = _records(tmp_path / "srresnet")
    assert all("d_loss" not in r and r["g_loss"] == pytest.approx(r["content"], rel=1e-6) for r in records)


def test_srgan_trains_d_and_logs_both_terms(tmp_path):
    _train(tmp_path, "gan", steps=2)
    for r in _records(tmp_path / "gan"):
        assert "d_loss" in r
        assert r["g_loss"] == pytest.approx(r["content"] + 1e-3 * r["g_adversarial"], rel=1e-5)


def test_the_data_factor_must_match_the_models(tmp_path):
    with pytest.raises(GanzooUsageError, match="downscales by 4 and srgan is configured to upscale by 2"):
        _train(tmp_path, "mismatch", data="sr4:mnist-5k", config={"scale": 2})
    with pytest.raises(GanzooUsageError, match="sr4:mnist-5k"):
        _train(tmp_path, "unpaired", data="mnist-5k")
    with pytest.raises(GanzooUsageError, match="does not upscale"):
        ganzoo.train("pix2pix", data="sr4:mnist-5k", steps=1, out=tmp_path / "p2p", device="cpu",
                     config={**tiny_config("pix2pix"), "channels": 1})


def test_translate_and_upscale_point_to_each_other():
    sr = ganzoo.create("srgan", seed=0, **TINY)
    p2p = ganzoo.create("pix2pix", seed=0, **tiny_config("pix2pix"))
    assert (sr.task, p2p.task) == ("upscale", "translate")
    with pytest.raises(GanzooUsageError, match="srgan upscales images and does not translate; use gan.upscale"):
        sr.translate(torch.zeros(1, 3, 4, 4))
    with pytest.raises(GanzooUsageError, match="pix2pix translates images and does not upscale; use gan.translate"):
        p2p.upscale(torch.zeros(1, 3, 16, 16))
    with pytest.raises(GanzooUsageError, match="cannot sample from noise; use gan.upscale"):
        sr.sample(2)
    one = sr.upscale(torch.zeros(3, 5, 6))
    assert one.shape == (3, 20, 24)


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sr")
    ganzoo.train("srgan", data="sr4:mnist-5k", steps=1, out=root / "run", config={**TINY, "channels": 3}, device="cpu",
                 recipe={"batch_size": 4}, grid_size=8)
    return root / "run"


def test_cli_upscales_files_and_folders(sr_run, tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.new("RGB", (6, 5), "red").save(tmp_path / "in" / "a.png")
    Image.new("RGBA", (4, 4), (0, 0, 255, 0)).save(tmp_path / "in" / "sub" / "b.png")
    Image.new("L", (3, 7), 128).save(tmp_path / "c.jpg")
    result = _invoke("upscale", sr_run, tmp_path / "in", tmp_path / "c.jpg", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "wrote 3 upscaled images" in result.output
    sizes = {p.relative_to(tmp_path / "out").as_posix(): Image.open(p).size
             for p in sorted((tmp_path / "out").rglob("*.png"))}
    assert sizes == {"a.png": (24, 20), "sub/b.png": (16, 16), "c.png": (12, 28)}
    gan = ganzoo.load(sr_run)
    x = torch.full((1, 3, 4, 4), 1.0)  # b.png: transparent blue composited over white, as in training
    expected = ((gan.upscale(x)[0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0)
    got = torch.from_numpy(__import__("numpy").asarray(Image.open(tmp_path / "out" / "sub" / "b.png")).copy())
    assert (got.int() - expected.int()).abs().max() <= 1
    _one_line_error(_invoke("upscale", sr_run, tmp_path / "in", "-o", tmp_path / "in" / "o"), 2, "overlaps the input")
    _one_line_error(_invoke("translate", sr_run, tmp_path / "in", "-o", tmp_path / "t"), 2,
                    "srgan upscales images and does not translate", "ganzoo upscale")
    _one_line_error(_invoke("sample", sr_run, "-o", tmp_path / "g.png"), 2, "upscales images", "ganzoo upscale")
    assert not (tmp_path / "t").exists()


def test_cli_upscale_refuses_a_translation_model(tmp_path):
    p2p = ganzoo.create("pix2pix", seed=0, **tiny_config("pix2pix"))
    folder = p2p.save_pretrained(tmp_path / "p2p", samples=False)
    Image.new("RGB", (16, 16), "red").save(tmp_path / "a.png")
    _one_line_error(_invoke("upscale", folder, tmp_path / "a.png", "-o", tmp_path / "out"), 2,
                    "pix2pix translates images and does not upscale", "ganzoo translate")
    assert not (tmp_path / "out").exists()
