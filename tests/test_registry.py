"""Discovery: third-party plugins are found like built-in ones; broken and duplicate plugins are handled."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import ganzoo
from ganzoo import registry
from ganzoo.errors import PluginError, UnknownNameError
from ganzoo.testing import check_architecture

THIRD_PARTY = '''
from dataclasses import dataclass

import torch
from torch import nn

from ganzoo.interfaces import ArchConfig, Architecture, Discriminator, Generator, Recipe


@dataclass(frozen=True)
class TinyConfig(ArchConfig):
    img_size: int = 8
    hidden: int = 16


class TinyG(Generator):
    def __init__(self, cfg):
        super().__init__(cfg.z_dim, (cfg.channels, cfg.img_size, cfg.img_size))
        self.net = nn.Sequential(nn.Linear(cfg.z_dim, cfg.hidden), nn.ReLU(),
                                 nn.Linear(cfg.hidden, cfg.channels * cfg.img_size ** 2), nn.Tanh())

    def forward(self, z, labels=None):
        return self.net(z).view(-1, *self.img_shape)


class TinyD(Discriminator):
    def __init__(self, cfg):
        super().__init__((cfg.channels, cfg.img_size, cfg.img_size))
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(cfg.channels * cfg.img_size ** 2, 1))

    def forward(self, images, labels=None):
        return self.net(images).flatten()


architecture = Architecture(
    name="{name}", summary="a third-party test architecture", paper="none", config_cls=TinyConfig,
    build_generator=TinyG, build_discriminator=TinyD, recipe=Recipe(steps=4, batch_size=8),
    test_config={{"z_dim": 4}},
)
'''


def install(site, dist, version, entries, modules, group="ganzoo.architectures"):
    """Write an installed distribution: a dist-info folder with entry points, and its modules.

    The folder is named as a wheel installs it, with the name's `-` as `_`: importlib.metadata takes the name from the
    folder's name up to the first `-`, so `ganzoo-x-1.0.dist-info` would pass for (and hide) ganzoo itself."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = [f"[{group}]"] + [f"{name} = {target}" for name, target in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    registry.refresh()


def test_a_third_party_plugin_is_found_listed_trained_and_saved(fake_site, tmp_path):
    install(fake_site, "ganzoo-tinyplug", "1.2", {"tinyplug": "tinyplug_mod:architecture"},
            {"tinyplug_mod": THIRD_PARTY.format(name="tinyplug")})
    assert "tinyplug" in ganzoo.list_models()
    assert ganzoo.list_models("tiny*") == ["tinyplug"]
    record = next(r for r in registry.plugin_records() if r.name == "tinyplug")
    assert record.origin == "ganzoo-tinyplug 1.2"
    check_architecture("tinyplug", tmp_path)


def test_discovery_does_not_import_plugins(fake_site):
    install(fake_site, "lazyplug", "0.1", {"lazyplug": "lazyplug_mod:architecture"},
            {"lazyplug_mod": "raise RuntimeError('imported too early')\n"})
    assert "lazyplug" in ganzoo.list_models()  # listing alone does not import it
    assert "lazyplug_mod" not in sys.modules


def test_a_broken_plugin_is_recorded_skipped_and_named_when_asked_for(fake_site):
    install(fake_site, "brokenplug", "0.3", {"brokenplug": "brokenplug_mod:architecture"},
            {"brokenplug_mod": "import a_module_that_does_not_exist\n"})
    assert "dcgan" in ganzoo.list_models()  # the others still work
    ganzoo.create("dcgan", g_width=4, d_width=4)
    with pytest.raises(PluginError, match=r"brokenplug.*brokenplug 0\.3.*ModuleNotFoundError"):
        registry.get_architecture("brokenplug")
    record = next(r for r in registry.plugin_records() if r.name == "brokenplug")
    assert "a_module_that_does_not_exist" in record.error


def test_two_distributions_with_one_name_is_an_error_naming_both(fake_site):
    source = THIRD_PARTY.format(name="twin")
    install(fake_site, "first-dist", "1.0", {"twin": "twin_a:architecture"}, {"twin_a": source})
    install(fake_site, "second-dist", "2.0", {"twin": "twin_b:architecture"}, {"twin_b": source})
    with pytest.raises(PluginError, match=r"first-dist 1\.0.*second-dist 2\.0|second-dist 2\.0.*first-dist 1\.0"):
        registry.get_architecture("twin")


def test_a_plugin_that_does_not_satisfy_the_interface(fake_site):
    install(fake_site, "wrongplug", "1.0", {"wrongplug": "wrongplug_mod:architecture"},
            {"wrongplug_mod": "architecture = {'name': 'wrongplug'}\n"})
    with pytest.raises(PluginError, match="not a ganzoo.interfaces.Architecture"):
        registry.get_architecture("wrongplug")
    install(fake_site, "misnamed", "1.0", {"misnamed": "misnamed_mod:architecture"},
            {"misnamed_mod": THIRD_PARTY.format(name="othername")})
    with pytest.raises(PluginError, match="must agree"):
        registry.get_architecture("misnamed")


def test_unknown_names_suggest_close_ones():
    with pytest.raises(UnknownNameError, match="did you mean 'dcgan'"):
        registry.get_architecture("dcgam")


def test_wildcards_and_natural_sort():
    assert registry.list_models("*gan") == sorted(registry.list_models("*gan"), key=registry._natural_key)
    assert "dcgan" in registry.list_models("dc*") and "gan" not in registry.list_models("dc*")


@pytest.mark.parametrize("argv", [["--help"], ["list"]])
def test_help_and_list_do_not_import_torch(argv):
    code = (
        "import sys\n"
        "from ganzoo.cli import main\n"
        f"sys.argv = ['ganzoo', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
