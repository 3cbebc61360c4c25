"""The plugin contract, checked: what an architecture's networks, config and hooks, and a loss, must give ganzoo.

The trainer checks a run's plugins once, on its first step (and the sampler in eval mode before it), and the test
kit (`ganzoo.testing`) checks the same things with the same messages. A breach is a `PluginContractError`: one line
that names the plugin, its entry point and distribution where known, what it did and what the contract expects.
The checks read shapes and types only, except one look at the range of a few sampled images before training, so
the trainer's steps still never wait on the device.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ganzoo.errors import ConfigError, GanzooError, PluginError

__all__ = ["PluginContractError", "architecture_origin", "call_hook", "check_adversarial", "check_config_round_trip",
           "check_discriminator_output", "check_generator_output", "check_hook_state", "check_loss_output",
           "check_loss_value", "check_sample_range", "check_sampling", "hook_origin", "loss_origin"]


class PluginContractError(PluginError):
    """A plugin gave ganzoo something the plugin contract (docs/plugins.md) does not allow."""


def _entry(record: Any) -> str:
    return f"entry point {record.value} from {record.origin}" if record.origin else f"entry point {record.value}"


def architecture_origin(name: str) -> str:
    """`plugin 'NAME' (entry point MODULE:ATTR from DISTRIBUTION VERSION)`, or less where less is known."""
    from ganzoo.registry import ARCHITECTURE_GROUP, _discover

    record = _discover(ARCHITECTURE_GROUP).get(name)
    return f"plugin {name!r} ({_entry(record)})" if record is not None else f"architecture {name!r}"


def loss_origin(loss: Any) -> str:
    """`loss 'NAME' (entry point ... from DISTRIBUTION VERSION)`, `(built in)`, or the class where it was
    registered in code."""
    from ganzoo.registry import LOSS_GROUP, _discover

    name = getattr(loss, "name", "") or type(loss).__name__
    cls = type(loss)
    record = _discover(LOSS_GROUP).get(name)
    if record is not None and record.loaded is cls:
        return f"loss {name!r} ({_entry(record)})"
    if cls.__module__ == "ganzoo.losses":
        return f"loss {name!r} (built in)"
    return f"loss {name!r} ({cls.__module__}.{cls.__qualname__})"


def hook_origin(hook: Any, architecture: str) -> str:
    """A hook named by its class and the plugin that made it."""
    return f"hook {type(hook).__name__} of {architecture_origin(architecture)}"


def _breach(who: str, what: str, expected: str) -> PluginContractError:
    return PluginContractError(f"{who} breaks the plugin contract: {what}; {expected} (see docs/plugins.md)")


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    name = type(value).__name__
    shown = " ".join(repr(value).split())  # one line, whatever the repr
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name} ({shown})"


def check_loss_value(loss: Any, who: str, phase: str, needs_grad: bool = True) -> torch.Tensor:
    """A loss `phase` returned: a floating-point tensor of one value that back-propagates to the networks (checked
    with `needs_grad`, where the inputs are known to need gradients)."""
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.is_floating_point():
        raise _breach(who, f"{phase}'s loss is {_describe(loss)}",
                      "the loss must be a floating-point scalar tensor (e.g. a .mean())")
    if needs_grad and torch.is_grad_enabled() and not loss.requires_grad:
        raise _breach(who, f"{phase}'s loss does not depend on the network it trains (no gradient)",
                      "compute it from D's outputs without detaching them")
    return loss


def check_loss_output(result: Any, who: str, phase: str,
                      needs_grad: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """`result` of a loss's `d_loss`, `g_loss` or `d_adversarial` (`phase`): a (loss, stats) pair whose loss passes
    `check_loss_value` and whose stats map names to tensors of one value."""
    if not isinstance(result, tuple) or len(result) != 2:
        raise _breach(who, f"{phase} returned {_describe(result)}",
                      f"{phase} must return (loss, stats): a scalar tensor and a dict of tensors")
    loss, stats = result
    check_loss_value(loss, who, phase, needs_grad)
    if not isinstance(stats, Mapping):
        raise _breach(who, f"{phase}'s stats are {_describe(stats)}", "stats must be a dict of name -> tensor")
    for key, value in stats.items():
        if not isinstance(key, str):
            raise _breach(who, f"{phase} has a stat named {key!r}", "stat names must be strings")
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise _breach(who, f"{phase}'s stat {key!r} is {_describe(value)}",
                          "each stat must be a tensor of one value, on the device and detached (e.g. "
                          "x.detach().mean() or torch.tensor(x)), so logging never waits on the device")
    return loss, dict(stats)


def check_adversarial(result: Any, loss: Any, phase: str) -> Any:
    """What a `GANLoss` subclass's `d_adversarial` ((loss, stats)) or `g_adversarial` (a loss) returned. Whether
    the loss has gradients is the trainer's check (`check_loss_output` of d_loss and g_loss): a loss may be
    evaluated on inputs that need none."""
    who = loss_origin(loss)
    if phase == "d_adversarial":
        return check_loss_output(result, who, phase, needs_grad=False)
    return check_loss_value(result, who, phase, needs_grad=False)


def check_generator_output(images: Any, shape: tuple[int, ...], who: str, mode: str = "training") -> None:
    """G's output must be a floating-point tensor of `shape` (N, C, H, W)."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise _breach(who, f"the generator returned {_describe(images)} in {mode}",
                      f"forward(z, labels) must return floating-point images of shape {tuple(shape)}")
    if images.dtype == torch.float64:
        raise _breach(who, f"the generator returned {_describe(images)} in {mode}",
                      "images must have the networks' precision (float32, or bfloat16 under --amp), not float64")
    if tuple(images.shape) != tuple(shape):
        raise _breach(who, f"the generator returned images of shape {tuple(images.shape)} in {mode}",
                      f"forward(z, labels) must return (N, C, H, W) = {tuple(shape)}")


def check_sample_range(images: torch.Tensor, who: str) -> None:
    """Images G makes in eval mode must lie in [-1, 1] (one host sync: call it once, not every step)."""
    low, high = (float(v) for v in torch.aminmax(images.detach().float()))
    if not (-1.0 <= low and high <= 1.0):  # NaN fails too
        shown = "not finite" if math.isnan(low) or math.isnan(high) else f"in [{low:.4g}, {high:.4g}]"
        raise _breach(who, f"the generator's images in eval mode are {shown}",
                      "images must lie in [-1, 1] (end in tanh, or clamp in eval mode)")


@torch.no_grad()
def check_sampling(G: torch.nn.Module, D: torch.nn.Module | None, z: torch.Tensor, labels: torch.Tensor | None,
                   who: str, generate: Callable[..., torch.Tensor] | None = None) -> None:
    """G in eval mode makes images of its `img_shape` in [-1, 1] from `z` and the condition `labels` (class labels,
    or a translator's input images), and D gives one logit per image. `generate(G, z, labels)` is how the run's
    objective calls G (default: G(z, labels)). Changes no weight or buffer (both run in eval mode, then go back to
    their mode); draws random numbers only where the networks do (noise inputs), so callers seed torch afterwards;
    waits on the device once."""
    modules = [m for m in (G, D) if m is not None]
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        images = generate(G, z, labels) if generate is not None else G(z, labels)
        check_generator_output(images, (len(z), *G.img_shape), who, mode="eval mode")
        check_sample_range(images, who)
        if D is not None:
            check_discriminator_output(D(images, labels), len(z), who)
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


def check_discriminator_output(logits: Any, n: int, who: str) -> None:
    """D's output must be a floating-point tensor of one value per image, shape (N,), or of one value per patch of
    each image, shape (N, P) with P > 1 (a PatchGAN). (N, 1) is refused: beside an (N,) tensor it broadcasts to
    (N, N), the usual symptom of a forgotten flatten."""
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise _breach(who, f"the discriminator returned {_describe(logits)} for {n} images",
                      f"forward(images, labels) must return one floating-point logit per image, shape ({n},)")
    if tuple(logits.shape) != (n,) and not (logits.dim() == 2 and logits.shape[0] == n and logits.shape[1] > 1):
        raise _breach(who, f"the discriminator returned shape {tuple(logits.shape)} for {n} images",
                      f"forward(images, labels) must return one logit per image, shape ({n},) (e.g. .flatten() "
                      "a (N, 1) output)")


def check_config_round_trip(config: Any, who: str) -> None:
    """A config must survive `to_dict` -> JSON -> `from_dict` unchanged: that is how config.json rebuilds it."""
    data = config.to_dict()
    try:
        text = json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        bad = next((k for k, v in data.items() if not _json_able(v)), None)
        what = f"field {bad!r} holds {_describe(data[bad])}" if bad else f"it is not JSON ({exc})"
        raise _breach(who, f"its config {type(config).__name__} does not round-trip through JSON: {what}",
                      "config fields must be JSON values: int, float, bool, str, and lists or dicts of them") from None
    try:
        again = type(config).from_dict(json.loads(text))
    except ConfigError as exc:
        raise _breach(who, f"its config {type(config).__name__} does not rebuild from its own JSON ({exc})",
                      "from_dict(to_dict()) must give the config back") from None
    if again != config:
        changed = [k for k in data if getattr(again, k, None) != getattr(config, k)]
        shown = ", ".join(f"{k}: {getattr(config, k)!r} -> {getattr(again, k, None)!r}" for k in changed[:2])
        raise _breach(who, f"its config {type(config).__name__} changes when rebuilt from its JSON ({shown})",
                      "from_dict(to_dict()) must give the same config: use tuples or lists of JSON values, and "
                      "keep validate() from changing values")


def _json_able(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def check_hook_state(state: Any, who: str) -> None:
    """A hook's `state_dict()` goes into checkpoints as JSON: a dict of JSON values."""
    if not isinstance(state, dict) or not _json_able(state):
        raise _breach(who, f"state_dict() returned {_describe(state)}",
                      "state_dict() must return a dict of JSON values (floats, ints, lists, ...), kept in checkpoints")


def call_hook(hook: Any, method: str, who: str, *args: Any) -> Any:
    """`hook.method(*args)`, with an exception the hook raises (other than ganzoo's own errors) turned into one line
    that names the hook and its plugin."""
    fn: Callable[..., Any] = getattr(hook, method)
    try:
        return fn(*args)
    except GanzooError:
        raise
    except Exception as exc:
        message = " ".join(str(exc).split())
        raise _breach(who, f"{method}() raised {type(exc).__name__}" + (f": {message}" if message else ""),
                      "a hook must not raise; raise ganzoo.errors.ConfigError with one line for a bad setting") \
            from exc
