"""`ganzoo.testing.check_fast_paths` fails when the trainer ignores `channels_last`, `amp` or `compile`.

With the option dropped, a run logs what the default run logs, so the comparison of logged values alone would
pass; the check's proof that the option took effect must not. That it passes when the options work is tested for
every architecture in tests/test_architectures.py.
"""

from __future__ import annotations

import inspect

import pytest

from ganzoo.testing import FAST_PATHS, check_fast_paths
from ganzoo.trainer.loop import Trainer


@pytest.mark.parametrize("option", sorted(FAST_PATHS))
@pytest.mark.parametrize("arch", ["gan", "dcgan"])  # a multilayer perceptron, convolutions with BatchNorm
def test_check_fast_paths_fails_when_the_trainer_ignores_the_option(tmp_path, monkeypatch, arch, option):
    original = Trainer.__init__
    signature = inspect.signature(original)
    dropped = []

    def ignoring(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        options = bound.arguments["options"]
        dropped.append(getattr(options, option))
        bound.arguments["options"] = options.replace(**{option: False})
        original(*bound.args, **bound.kwargs)

    monkeypatch.setattr(Trainer, "__init__", ignoring)
    with pytest.raises(AssertionError, match=f"^{option} did not take effect: "):
        check_fast_paths(arch, tmp_path, options=(option,))
    assert dropped == [False, True, True]  # the default run; the option's run and the trainer built from its plan
