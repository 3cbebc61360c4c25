"""cyclegan: the networks, the cycle objective's terms on hand-computed tensors, the image pool and its resume,
translation both ways (API and `ganzoo translate --reverse`), and the recipe's options taking effect."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import ganzoo
from ganzoo.cli import cli
from ganzoo.errors import ConfigError, GanzooUsageError
from ganzoo.losses import build_loss
from ganzoo.objectives import build_objective, list_objectives
from ganzoo.registry import get_architecture
from ganzoo.testing import tiny_config, unpaired_digits
from ganzoo.trainer.checkpoint import Checkpoint, find_checkpoints

TINY = tiny_config("cyclegan")


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _train(tmp_path, name, steps=2, **kwargs):
    data = unpaired_digits(tmp_path / "digits", count=16)
    kwargs["recipe"] = {"batch_size": 4, **kwargs.get("recipe", {})}
    return ganzoo.train("cyclegan", data=data, steps=steps, out=tmp_path / name, config=TINY, device="cpu",
                        log_every=1, grid_size=8, **kwargs)


def _objective(**options):
    return build_objective("cycle", build_loss("least-squares"), **options)


def test_the_recipe_is_the_papers():
    arch = get_architecture("cyclegan")
    recipe = arch.recipe
    assert arch.task == "translate" and "cycle" in list_objectives()
    assert (recipe.optimizer, recipe.g_lr, recipe.d_lr, recipe.betas) == ("adam", 2e-4, 2e-4, (0.5, 0.999))
    assert (recipe.loss, recipe.objective) == ("least-squares", "cycle")
    assert recipe.objective_options == {"cycle_weight": 10.0, "identity_ratio": 0.5, "pool_size": 50,
                                        "adversarial_weight": 2.0}
    assert recipe.schedules == {"lr": {"kind": "linear", "to": 0.0, "hold_fraction": 0.5}}
    assert arch.presets["no-identity"].recipe["objective_options"]["identity_ratio"] == 0.0


def test_the_generators_are_the_papers_resnets():
    assert ganzoo.create("cyclegan", img_size=128).config.residual_blocks == 6
    assert ganzoo.create("cyclegan", img_size=256, g_width=2, d_width=2).config.residual_blocks == 9
    G = ganzoo.create("cyclegan", img_size=32, g_width=8, blocks=3).generator
    convs = [m for m in G.a_to_b.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    # c7s1-8, d16, d32, 3 x R32 (two convolutions each), u16, u8, c7s1-3
    assert [(m.kernel_size[0], m.out_channels) for m in convs] == [
        (7, 8), (3, 16), (3, 32), *[(3, 32)] * 6, (3, 16), (3, 8), (7, 3)]
    assert sum(isinstance(m, torch.nn.ReflectionPad2d) for m in G.a_to_b.modules()) == 2 + 2 * 3
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in G.a_to_b.modules()) == 3 + 2 * 3 + 2
    assert G.two_way and G.size_multiple == 4
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert G(x).shape == x.shape and G(x).abs().max() <= 1
    # another size works (fully convolutional); a side not a multiple of 4 is named
    assert G(torch.zeros(1, 3, 24, 40)).shape == (1, 3, 24, 40)
    assert "multiples of 4" in G.check_input_size(30, 32)


def test_one_module_holds_both_directions_and_both_discriminators():
    gan = ganzoo.create("cyclegan", **TINY)
    G, D = gan.generator, gan.discriminator
    a, b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(G(a), G.a_to_b(a)) and torch.equal(G(b, reverse=True), G.b_to_a(b))
    assert not torch.equal(G.a_to_b(a), G.b_to_a(a))  # two networks, not one
    # a training batch: [a; b] -> [G_AB(a); G_BA(b)]; D judges [B images; A images] with D_B, then D_A
    assert torch.equal(G(torch.cat([a, b]), both=True), torch.cat([G.a_to_b(a), G.b_to_a(b)]))
    assert torch.equal(D(torch.cat([b, a])), torch.cat([D.d_b(b), D.d_a(a)]))
    assert D(torch.cat([b, a])).shape == (4, 4)  # 16 px, two stride-2 layers: 2x2 patches
    with pytest.raises(GanzooUsageError, match="even number"):
        D(torch.zeros(3, 3, 16, 16))
    with pytest.raises(GanzooUsageError, match="even number"):
        G(torch.zeros(3, 3, 16, 16), both=True)


class _Affine(torch.nn.Module):
    """A stand-in translator pair with known maps: A -> B is 0.5 x + 0.1, B -> A is -x."""

    def forward(self, images, z=None, reverse=False, both=False):
        if both:
            n = len(images) // 2
            return torch.cat([0.5 * images[:n] + 0.1, -images[n:]])
        return -images if reverse else 0.5 * images + 0.1


def _zero_d(images, labels=None):
    return images.flatten(1)[:, :4] * 0  # every patch logit 0


def test_the_cycle_and_identity_terms_on_hand_computed_tensors():
    a = torch.full((2, 1, 4, 4), 0.2)
    b = torch.full((2, 1, 4, 4), -0.4)
    real, cond = torch.cat([b, a]), torch.cat([a, b])
    G = _Affine()

    def g_phase(**options):
        objective = _objective(**options)
        fake = objective.generate(G, torch.zeros(4, 0), cond)
        return objective.g_phase(_zero_d, G, real, fake, cond, 0)

    # G_BA(G_AB(a)) = -(0.5 * 0.2 + 0.1) = -0.2: |-0.2 - 0.2| = 0.4; G_AB(G_BA(b)) = 0.5 * 0.4 + 0.1 = 0.3: 0.7
    loss, stats = g_phase(cycle_weight=10.0, identity_ratio=0.0, adversarial_weight=2.0)
    assert stats["cycle"].item() == pytest.approx(0.4 + 0.7)
    # least squares on zero logits: 0.5 * (0 - 1)^2 per direction, times 2 directions, times adversarial_weight 2
    assert stats["g_adversarial"].item() == pytest.approx(2.0)
    assert loss.item() == pytest.approx(2.0 + 10 * 1.1)
    assert "identity" not in stats
    # identity: G_AB(b) = -0.1 vs b = -0.4: 0.3; G_BA(a) = -0.2 vs a = 0.2: 0.4; weight 0.5 * 10
    with_identity, stats = g_phase(cycle_weight=10.0, identity_ratio=0.5, adversarial_weight=2.0)
    assert stats["identity"].item() == pytest.approx(0.7)
    assert with_identity.item() - loss.item() == pytest.approx(0.5 * 10 * 0.7)
    # lambda scales the cycle term alone
    lam3, _ = g_phase(cycle_weight=3.0, identity_ratio=0.0, adversarial_weight=2.0)
    assert loss.item() - lam3.item() == pytest.approx(7 * 1.1)


def test_the_terms_with_the_real_networks():
    torch.manual_seed(0)
    G = ganzoo.create("cyclegan", **TINY).generator
    a, b = torch.rand(3, 3, 16, 16) * 2 - 1, torch.rand(3, 3, 16, 16) * 2 - 1
    real, cond = torch.cat([b, a]), torch.cat([a, b])
    objective = _objective()
    fake = objective.generate(G, torch.zeros(6, 0), cond)
    loss, stats = objective.g_phase(_zero_d, G, real, fake, cond, 0)
    with torch.no_grad():
        cycle = (G.b_to_a(G.a_to_b(a)) - a).abs().mean() + (G.a_to_b(G.b_to_a(b)) - b).abs().mean()
        identity = (G.a_to_b(b) - b).abs().mean() + (G.b_to_a(a) - a).abs().mean()
    assert stats["cycle"].item() == pytest.approx(cycle.item(), rel=1e-5)
    assert stats["identity"].item() == pytest.approx(identity.item(), rel=1e-5)
    assert loss.item() == pytest.approx(1.0 * 2 * 0.5 + 10 * cycle.item() + 5 * identity.item(), rel=1e-5)
    loss.backward()  # the gradient reaches both generators
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (G.a_to_b.net[1].weight, G.b_to_a.net[1].weight))


def test_objective_options_are_checked():
    with pytest.raises(ConfigError, match="cycle_weight must be a number >= 0"):
        _objective(cycle_weight=-1)
    with pytest.raises(ConfigError, match="pool_size must be a whole number"):
        _objective(pool_size=2.5)
    with pytest.raises(ConfigError, match="does not take identity_weight; its options are cycle_weight"):
        _objective(identity_weight=0.5)


def _pool(size=4, shape=(1, 1, 1)):
    from ganzoo_cyclegan import ImagePool

    return ImagePool(size, shape)


def test_the_pool_fills_then_returns_stored_images_half_of_the_time():
    torch.manual_seed(0)
    pool = _pool(size=50)
    first = torch.arange(46, dtype=torch.float32).view(46, 1, 1, 1)
    assert torch.equal(pool(first), first)  # not full: every image goes in and comes back
    assert pool.count.item() == 46 and torch.equal(pool.images[:46], first)
    # the batch that fills the last 4 slots: those 4 come back as themselves and are stored
    straddle = torch.arange(100, 108, dtype=torch.float32).view(8, 1, 1, 1)
    out = pool(straddle).flatten().tolist()
    assert out[:4] == [100, 101, 102, 103] and pool.count.item() == 50
    stored = set(pool.images.flatten().tolist())
    assert {100, 101, 102, 103} <= stored
    returned_stored = draws = 0
    for start in range(1000, 1000 + 8 * 300, 8):
        new = torch.arange(start, start + 8, dtype=torch.float32).view(8, 1, 1, 1)
        before = set(pool.images.flatten().tolist())
        out = pool(new).flatten().tolist()
        after = set(pool.images.flatten().tolist())
        for value, fresh in zip(out, new.flatten().tolist(), strict=True):
            draws += 1
            if value != fresh:  # a stored image came back, and the new one took its place
                returned_stored += 1
                assert value in before and value not in after and fresh in after, (value, fresh)
            else:
                assert fresh not in after  # shown to D, not stored
        assert len(after) == 50 and pool.count.item() == 50
    assert 0.46 < returned_stored / draws < 0.54, returned_stored / draws


def test_the_pool_resumes_bit_for_bit():
    torch.manual_seed(1)
    pool = _pool(size=6, shape=(2, 3, 3))
    for _ in range(3):
        pool(torch.randn(4, 2, 3, 3))
    again = _pool(size=6, shape=(2, 3, 3))
    again.load_state_dict(pool.state_dict())
    state = torch.get_rng_state()
    batch = torch.randn(4, 2, 3, 3)
    out = pool(batch)
    torch.set_rng_state(state)
    batch = torch.randn(4, 2, 3, 3)
    assert torch.equal(again(batch), out) and torch.equal(again.images, pool.images)


def test_a_resumed_run_carries_the_pools_exactly(tmp_path):
    whole = tmp_path / "whole"
    _train(tmp_path, "whole", steps=6, checkpoint_every=3)

    class Stop(Exception):
        pass

    def stop(step, total, record):
        if step == 3:
            raise Stop

    with pytest.raises(Stop):
        _train(tmp_path, "split", steps=6, checkpoint_every=3, progress=stop)
    ganzoo.train(out=tmp_path / "split", steps=6, resume=True)
    ends = [Checkpoint.load(find_checkpoints(run / "checkpoints")[-1][1]) for run in (whole, tmp_path / "split")]
    pools = [ckpt.section("objective") for ckpt in ends]
    assert sorted(pools[0]) == ["pool_a.count", "pool_a.images", "pool_b.count", "pool_b.images"]
    assert pools[0]["pool_b.images"].shape == (50, 3, 16, 16)
    assert pools[0]["pool_a.count"].item() == 6 * 4  # 4 images of each domain a step
    for key in pools[0]:
        assert torch.equal(pools[0][key], pools[1][key]), key
    assert _records(whole)[-1]["d_loss"] == _records(tmp_path / "split")[-1]["d_loss"]


def test_the_identity_option_takes_effect_in_training(tmp_path):
    _train(tmp_path, "with", steps=1)
    _train(tmp_path, "without", steps=1, preset="no-identity")
    with_identity, without = _records(tmp_path / "with")[0], _records(tmp_path / "without")[0]
    # the same first step (same weights, same batches) but for the identity term, which the log names
    assert "identity" in with_identity and "identity" not in without
    assert with_identity["cycle"] == without["cycle"]
    assert with_identity["g_loss"] - without["g_loss"] == pytest.approx(0.5 * 10 * with_identity["identity"],
                                                                       rel=1e-4)
    plan = json.loads((tmp_path / "without" / "config.json").read_text())
    assert plan["recipe"]["objective_options"]["identity_ratio"] == 0.0


def test_a_saved_model_translates_both_ways_as_before(tmp_path):
    trained = _train(tmp_path, "run", steps=2)
    loaded = ganzoo.load(tmp_path / "run")
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    for reverse in (False, True):
        assert torch.equal(trained.translate(x, reverse=reverse), loaded.translate(x, reverse=reverse))
    G = loaded.sampler
    with torch.no_grad():
        assert torch.equal(loaded.translate(x, reverse=True), G.b_to_a(x).clamp(-1, 1))
        assert torch.equal(loaded.translate(x), G.a_to_b(x).clamp(-1, 1))
    # the grid shows A -> B pairs, then B -> A pairs; the model card says how to go either way
    assert (tmp_path / "run" / "model" / "samples.png").is_file()
    card = (tmp_path / "run" / "model" / "README.md").read_text()
    assert "reverse=True: B to A" in card and "--reverse: B to A" in card


def test_cyclegan_refuses_paired_data_and_pix2pix_unpaired(tmp_path):
    data = unpaired_digits(tmp_path / "digits", count=16)
    with pytest.raises(GanzooUsageError, match="cyclegan trains on unpaired data") as exc:
        ganzoo.train("cyclegan", data=data.replace("~", ">"), steps=1, out=tmp_path / "c", config=TINY,
                     recipe={"batch_size": 4}, device="cpu")
    assert "\n" not in str(exc.value)
    with pytest.raises(GanzooUsageError, match="unpaired data .* paired objective learns from pairs"):
        ganzoo.train("pix2pix", data=data, steps=1, out=tmp_path / "p", config=tiny_config("pix2pix"),
                     recipe={"batch_size": 4}, device="cpu")
    with pytest.raises(GanzooUsageError, match=r"is unpaired data for translation; .* \(cyclegan\)"):
        ganzoo.train("dcgan", data=data, steps=1, out=tmp_path / "d", config=tiny_config("dcgan"),
                     recipe={"batch_size": 4}, device="cpu")
    with pytest.raises(ConfigError, match="exceeds the image pool"):
        ganzoo.train("cyclegan", data=data, steps=1, out=tmp_path / "e", config=TINY, device="cpu",
                     recipe={"batch_size": 8, "objective_options": {"pool_size": 4}})


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")


def _png(path):
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)


def test_cli_translates_a_to_b_and_b_to_a_with_reverse(tmp_path):
    data = unpaired_digits(tmp_path / "digits", count=16)
    run = tmp_path / "run"
    result = _invoke("train", "--arch", "cyclegan", "--data", data, "--steps", 2, "--out", run, "--img-size", 16,
                     "-b", 4, "--set", "g_width=4", "--set", "d_width=4", "--set", "blocks=2", "--set", "d_layers=2")
    assert result.exit_code == 0, result.output
    source = tmp_path / "in" / "x.png"
    source.parent.mkdir()
    Image.fromarray((np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)).save(source)
    assert _invoke("translate", run, source, "-o", tmp_path / "ab").exit_code == 0
    result = _invoke("translate", run, source, "-o", tmp_path / "ba", "--reverse")
    assert result.exit_code == 0, result.output
    gan = ganzoo.load(run)
    x = _png(source).float().div(127.5).sub(1).unsqueeze(0)
    with torch.no_grad():
        want_ba = gan.sampler.b_to_a(x).clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)[0]
        want_ab = gan.sampler.a_to_b(x).clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)[0]
    got_ba, got_ab = _png(tmp_path / "ba" / "x.png"), _png(tmp_path / "ab" / "x.png")
    assert (got_ba.int() - want_ba.int()).abs().max() <= 1
    assert (got_ab.int() - want_ab.int()).abs().max() <= 1
    assert not torch.equal(got_ab, got_ba)


def test_a_one_way_model_refuses_reverse_in_one_line(tmp_path):
    folder = ganzoo.create("pix2pix", **tiny_config("pix2pix")).save_pretrained(tmp_path / "p2p")
    source = tmp_path / "x.png"
    Image.new("RGB", (16, 16), (10, 20, 30)).save(source)
    result = _invoke("translate", folder, source, "-o", tmp_path / "out", "--reverse")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "translates one way only" in lines[0] and "drop --reverse" in lines[0], lines
    assert not (tmp_path / "out").exists()
    with pytest.raises(GanzooUsageError, match="one way only"):
        ganzoo.load(folder).translate(torch.zeros(1, 3, 16, 16), reverse=True)
