"""A plugin that breaks the contract is named in one line: by the trainer (CLI: exit 1, no traceback) and the test kit.

Each case installs a fake distribution (a dist-info folder and a module) with one breach: an architecture whose
generator, discriminator, config or hook does what the contract forbids, or a loss whose outputs do. The CLI and
`ganzoo.testing` must give the same line, naming the plugin, its entry point and its distribution.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from test_registry import install

from ganzoo.cli import cli
from ganzoo.contract import PluginContractError
from ganzoo.testing import check_architecture, check_contract, check_loss

ARCH_MODULE = '''
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ganzoo.interfaces import ArchConfig, Architecture, Discriminator, Generator, Recipe, TrainingHook

BREACH = {breach!r}


@dataclass(frozen=True)
class BrokenConfig(ArchConfig):
    img_size: int = 8
    hidden: int = 16
    extra: Any = field(default_factory=lambda: {{1, 2}} if BREACH == "config_json" else None)  # a set: not JSON
    # the tuple comes back from JSON as a list
    table: dict = field(default_factory=lambda: {{"sizes": (4, 8)}} if BREACH == "config_round_trip" else {{}})


class BrokenG(Generator):
    def __init__(self, cfg):
        super().__init__(cfg.z_dim, (cfg.channels, cfg.img_size, cfg.img_size))
        self.net = nn.Sequential(nn.Linear(cfg.z_dim, cfg.hidden), nn.ReLU(),
                                 nn.Linear(cfg.hidden, cfg.channels * cfg.img_size ** 2))

    def forward(self, z, labels=None):
        x = self.net(z)
        if BREACH == "g_range" and not self.training:
            return (x * 100).view(-1, *self.img_shape)  # no tanh, no clamp
        x = torch.tanh(x)
        if BREACH == "g_shape" or (BREACH == "g_shape_training" and self.training):
            return x  # flat: (N, C*H*W)
        if BREACH == "g_dtype":
            return x.double().view(-1, *self.img_shape)
        return x.view(-1, *self.img_shape)


class BrokenD(Discriminator):
    def __init__(self, cfg):
        super().__init__((cfg.channels, cfg.img_size, cfg.img_size))
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(cfg.channels * cfg.img_size ** 2, 1))

    def forward(self, images, labels=None):
        out = self.net(images)
        return out if BREACH == "d_shape" else out.flatten()  # (N, 1) instead of (N,)


class BrokenHook(TrainingHook):
    def before_step(self, step, images_seen, G, D, ema):
        if BREACH == "hook_raises":
            raise ValueError("no such schedule phase")

    def state_dict(self):
        return {{"phase": torch.tensor(1.0)}} if BREACH == "hook_state" else {{}}


architecture = Architecture(
    name="{name}", summary="a plugin with a breach", paper="none", config_cls=BrokenConfig,
    build_generator=BrokenG, build_discriminator=BrokenD, recipe=Recipe(steps=2, batch_size=8),
    make_hooks=lambda cfg, recipe: [BrokenHook()], test_config={{"z_dim": 4}},
)
'''

LOSS_MODULE = '''
import torch
import torch.nn.functional as F

from ganzoo.losses import GANLoss

BREACH = {breach!r}


class BrokenLoss(GANLoss):
    """RpGAN, as docs/plugins.md writes it, with one breach."""

    name = {name!r}
    uses_real_in_g = True

    def d_adversarial(self, real_logits, fake_logits):
        terms = F.softplus(fake_logits - real_logits)
        if BREACH == "stat_float":
            return terms.mean(), {{"margin": 0.5}}  # a Python float as a stat
        if BREACH == "stat_vector":
            return terms.mean(), {{"terms": terms.detach()}}  # one value per image, not one
        if BREACH == "loss_vector":
            return terms, {{}}  # no .mean()
        if BREACH == "loss_float":
            return float(terms.mean().detach()), {{}}
        return terms.mean(), {{}}

    def g_adversarial(self, fake_logits, real_logits=None):
        return F.softplus(real_logits - fake_logits).mean()

    def d_loss(self, D, real, fake, labels=None, step=0, penalty_D=None):
        loss, stats = super().d_loss(D, real, fake, labels, step=step, penalty_D=penalty_D)
        if BREACH == "d_loss_stat_int":
            stats["calls"] = 1  # an int where a tensor belongs
        return loss, stats

    def g_loss(self, D, fake, labels=None, *, real=None, step=0):
        loss, stats = super().g_loss(D, fake, labels, real=real, step=step)
        if BREACH == "g_loss_single":
            return loss  # not (loss, stats)
        if BREACH == "g_loss_detached":
            return loss.detach(), stats
        return loss, stats
'''

ARCH_BREACHES = {
    "g_shape": "the generator returned images of shape (4, 64) in eval mode; forward(z, labels) must return "
               "(N, C, H, W) = (4, 1, 8, 8)",
    "g_shape_training": "the generator returned images of shape (8, 64) in training; forward(z, labels) must return "
                        "(N, C, H, W) = (8, 1, 8, 8)",
    "g_dtype": "the generator returned a torch.float64 tensor of shape (4, 1, 8, 8) in eval mode; images must have "
               "the networks' precision",
    "g_range": "the generator's images in eval mode are in [",
    "d_shape": "the discriminator returned shape (4, 1) for 4 images; forward(images, labels) must return one logit "
               "per image, shape (4,)",
    "config_json": "its config BrokenConfig does not round-trip through JSON: field 'extra' holds a set",
    "config_round_trip": "its config BrokenConfig changes when rebuilt from its JSON (table: {'sizes': (4, 8)} -> "
                         "{'sizes': [4, 8]})",
    "hook_raises": "hook BrokenHook of plugin 'bk-hook-raises' (entry point bk_hook_raises_mod:architecture from "
                   "ganzoo-bk-hook-raises 0.4) breaks the plugin contract: before_step() raised ValueError: no such "
                   "schedule phase",
    "hook_state": "state_dict() returned a dict",
}

LOSS_BREACHES = {
    "stat_float": "d_adversarial's stat 'margin' is a float (0.5); each stat must be a tensor of one value",
    "stat_vector": "d_adversarial's stat 'terms' is a torch.float32 tensor of shape (8,); each stat must be a tensor "
                   "of one value",
    "loss_vector": "d_adversarial's loss is a torch.float32 tensor of shape (8,); the loss must be a floating-point "
                   "scalar tensor",
    "loss_float": "d_adversarial's loss is a float",
    "d_loss_stat_int": "d_loss's stat 'calls' is an int (1); each stat must be a tensor of one value",
    "g_loss_single": "g_loss returned a torch.float32 tensor of shape (); g_loss must return (loss, stats)",
    "g_loss_detached": "g_loss's loss does not depend on the network it trains (no gradient)",
}


def plugin_name(breach):
    return "bk-" + breach.replace("_", "-")


def install_arch(site, breach):
    name = plugin_name(breach)
    module = name.replace("-", "_") + "_mod"
    install(site, f"ganzoo-{name}", "0.4", {name: f"{module}:architecture"},
            {module: ARCH_MODULE.format(name=name, breach=breach)})
    return name, f"plugin {name!r} (entry point {module}:architecture from ganzoo-{name} 0.4)"


def install_loss(site, breach):
    name = "loss-" + plugin_name(breach)
    module = name.replace("-", "_") + "_loss"
    install(site, f"ganzoo-{name}", "0.2", {name: f"{module}:BrokenLoss"},
            {module: LOSS_MODULE.format(name=name, breach=breach)}, group="ganzoo.losses")
    return name, f"loss {name!r} (entry point {module}:BrokenLoss from ganzoo-{name} 0.2)"


def cli_error(args):
    """Run `ganzoo ARGS`: exit 1, no traceback, and exactly one error line, which is returned without `Error: `."""
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    others = [line for line in result.output.splitlines() if line.strip() and not line.startswith("Error: ")]
    assert all(line.startswith("training") for line in others), result.output  # the progress bar's label, off a tty
    return errors[0].removeprefix("Error: ")


@pytest.mark.parametrize("breach", sorted(ARCH_BREACHES))
def test_an_architecture_that_breaks_the_contract_is_named_in_one_line(fake_site, tmp_path, breach):
    name, origin = install_arch(fake_site, breach)
    line = cli_error(["train", "--arch", name, "--steps", 1, "-b", 8, "--device", "cpu", "--out", tmp_path / "run"])
    who = f"hook BrokenHook of {origin}" if breach.startswith("hook") else origin
    assert line.startswith(f"{who} breaks the plugin contract: "), line
    assert ARCH_BREACHES[breach] in line and line.endswith("(see docs/plugins.md)"), line
    # the test kit: the same line, as a PluginContractError (the range it reports depends on the weights drawn)
    with pytest.raises(PluginContractError) as info:
        check_architecture(name, tmp_path / "kit")
    same = (lambda text: text.partition(" are in [")[0]) if breach == "g_range" else (lambda text: text)
    assert same(str(info.value)) == same(line)


@pytest.mark.parametrize("breach", sorted(LOSS_BREACHES))
def test_a_loss_that_breaks_the_contract_is_named_in_one_line(fake_site, tmp_path, breach):
    name, origin = install_loss(fake_site, breach)
    # the test kit's tiny dcgan (its test_config, batch 8): the same weights, so the same values in the line
    tiny = ["--set", "g_width=8", "--set", "d_width=8", "--set", "z_dim=16", "--img-size", 28, "-b", 8]
    line = cli_error(["train", "--arch", "dcgan", "--set", f"loss={name}", *tiny, "--steps", 1, "--device", "cpu",
                      "--out", tmp_path / "run"])
    assert line.startswith(f"{origin} breaks the plugin contract: "), line
    assert LOSS_BREACHES[breach] in line and line.endswith("(see docs/plugins.md)"), line
    with pytest.raises(PluginContractError) as info:
        check_loss(name, tmp_path / "kit")
    assert str(info.value) == line


def test_a_plugin_that_keeps_the_contract_passes_the_same_checks(fake_site, tmp_path):
    """The fake plugins without a breach train, and pass the kit: the checks above fail for the breach alone."""
    name, _ = install_arch(fake_site, "none")
    check_contract(name)
    check_architecture(name, tmp_path / "arch")
    loss, _ = install_loss(fake_site, "none")
    check_loss(loss, tmp_path / "loss")
