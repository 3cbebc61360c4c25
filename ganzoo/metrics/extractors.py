"""Feature extractors: the networks whose feature space the metrics compare real and generated images in.

Every extractor is a torch-fidelity `FeatureExtractorBase` (ganzoo's own are registered with torch-fidelity under
`ganzoo-digits`, `ganzoo-colour` and `ganzoo-timm-<model>`, so its `calculate_metrics` can use them too), wrapped in
an `Extractor` that knows the feature layer per metric, the sha256 of its weights and how images are prepared for it.

- `digits`: ganzoo's digit classifier (`ganzoo.metrics.digits`), shipped with the package: offline, small, for
  digit data. Features: the 128-unit feature layer before its ReLU, L2-normalised and scaled to length sqrt(128)
  (why: `ganzoo.metrics.digits`); logits: 10 classes.
- `colour`: ganzoo's colour feature network (`ganzoo.metrics.colour`), shipped with the package: offline, small,
  trained on the emoji sets' train parts; the default for emoji data (`default_extractor`). Features: the 128-unit
  feature layer before its ReLU, L2-normalised and scaled to length sqrt(128); logits: the 9 Unicode emoji groups.
- `inception`: the TensorFlow Inception-v3 of the original FID and Inception Score, as ported by torch-fidelity
  (`inception-v3-compat`), so the numbers compare with published FIDs. The weights are downloaded on first use
  into ganzoo's cache, checked against the sha256 prefix in their file name and read with
  `torch.load(weights_only=True)`; they never unpickle code.
- `timm:<model>`: any timm model with pretrained weights, at the input size of its pretrained config. Features:
  the pooled pre-logits embedding; logits when the model has a classifier head. Weights come from the Hugging Face
  Hub through timm (cached by huggingface_hub).
- `dinov2` (`timm:vit_large_patch14_dinov2.lvd142m`; `dinov2-small` for ViT-S/14) and every timm DINOv2 model: the
  Fréchet DINOv2 distance's protocol (Stein et al. 2023, "Exposing flaws of generative model evaluation metrics",
  and its code, dgm-eval): RGB resized to 224x224 with bicubic interpolation, ImageNet mean and std, the class
  token after the final norm as features; not timm's default 518x518. Two differences remain, named in the
  provenance: the resize is torch's bicubic (antialiased), not PIL's, and timm resamples the position embeddings to
  the 16x16 grid once when loading (bicubic, antialiased), where DINOv2's own code interpolates them at run time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ganzoo.errors import GanzooError, GanzooUsageError, WeightsError

__all__ = ["ALIASES", "Extractor", "default_extractor", "extractor_names", "get_extractor"]

logger = logging.getLogger(__name__)

#: short names for long timm model names
ALIASES = {"dinov2": "timm:vit_large_patch14_dinov2.lvd142m", "dinov2-small": "timm:vit_small_patch14_dinov2.lvd142m"}

INCEPTION_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth")
INCEPTION_SHA256_PREFIX = "6726825d"  # the file name's hash prefix (torch.hub's convention: sha256 of the file)


@dataclass(frozen=True)
class Extractor:
    """A feature extractor ready to use: `extractor(images)` gives {"features": (N, D), "logits": (N, K) | absent}."""

    name: str
    network: Any  # torch_fidelity.FeatureExtractorBase
    feature_layer: str
    logits_layer: str | None
    weights_sha256: str
    preprocessing: str
    device: torch.device
    #: the value range in which the network also reads float images as they are, unrounded ((-1, 1) for digits,
    #: (0, 255) for timm models); None when it takes uint8 only (torch-fidelity's Inception checks the dtype)
    float_range: tuple[float, float] | None = None

    @property
    def has_logits(self) -> bool:
        return self.logits_layer is not None

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of uint8 images (N, 1 or 3, H, W); returned on the CPU as float32."""
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise GanzooUsageError(f"the {self.name} extractor takes uint8 images (N, 1 or 3, H, W), got "
                                   f"{tuple(images.shape)} {images.dtype}")
        return self._run(images.to(self.device))

    @torch.no_grad()
    def float_features(self, images: torch.Tensor) -> torch.Tensor:
        """Features (N, D) of float images in [-1, 1] (N, 1 or 3, H, W), not rounded to 8 bits first: the
        perceptual path length compares images 1e-4 apart in latent space, which rounding would make equal."""
        if self.float_range is None:
            raise GanzooUsageError(f"the {self.name} extractor reads 8-bit images only; the perceptual path length "
                                   "needs unrounded ones: use --extractor digits, colour or timm:<model>")
        if not images.is_floating_point() or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise GanzooUsageError(f"float_features takes float images (N, 1 or 3, H, W) in [-1, 1], got "
                                   f"{tuple(images.shape)} {images.dtype}")
        low, high = self.float_range
        x = images.to(self.device).float().add(1.0).mul((high - low) / 2).add(low)
        return self._run(x)["features"]

    def _run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.network(x)
        named = self.network.convert_features_tuple_to_dict(out)
        result = {"features": named[self.feature_layer].float().cpu()}
        if self.logits_layer is not None:
            result["logits"] = named[self.logits_layer].float().cpu()
        return result

    def provenance(self) -> dict[str, str]:
        return {"extractor": self.name, "extractor_weights_sha256": self.weights_sha256,
                "feature_layer": self.feature_layer, "preprocessing": self.preprocessing}


def extractor_names() -> list[str]:
    return ["digits", "colour", "inception", "timm:<model name>", *ALIASES]


def default_extractor(data: str) -> str:
    """The extractor a dataset is measured with when none is named: `colour` for the emoji sets (any spelling of
    their names: ``twemoji``, ``openmoji+tones``, ``stream:noto-emoji``), `digits` for everything else."""
    from ganzoo.metrics.colour import is_emoji_data

    return "colour" if is_emoji_data(data) else "digits"


def canonical_name(name: str) -> str:
    """Check an extractor name's form (without loading anything); aliases resolve to their timm name."""
    name = ALIASES.get(name.strip(), name.strip())
    if name in ("digits", "colour", "inception"):
        return name
    if name.startswith("timm:") and len(name) > len("timm:"):
        return name
    from ganzoo.errors import unknown_name

    raise unknown_name("feature extractor", name, ["digits", "colour", "inception", *ALIASES],
                       hint="or timm:<model name> for any pretrained timm model")


def get_extractor(name: str, device: str | torch.device | None = None) -> Extractor:
    """The extractor called `name` on `device` (default CPU); built once per process and device."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    return _build(canonical_name(name), dev)


@functools.lru_cache(maxsize=8)
def _build(name: str, device: torch.device) -> Extractor:
    if name == "digits":
        return _digits(device)
    if name == "colour":
        return _colour(device)
    if name == "inception":
        return _inception(device)
    return _timm(name.removeprefix("timm:"), device)


def _home() -> Path:
    from ganzoo.data import cache_dir

    return cache_dir().parent


def state_dict_sha256(module: torch.nn.Module) -> str:
    """sha256 over a module's tensors (names, dtypes, shapes, bytes, in name order): identifies weights that were not
    read from one file."""
    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------------- digits


def _fidelity_base() -> type:
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase

    return FeatureExtractorBase


#: the digits and colour extractors' feature layer: 128 values before the ReLU, L2-normalised, length sqrt(128)
FEATURES = "128-l2"


def _shipped_class(module: Any, registered: str, channels: int, what: str) -> type:
    """A torch-fidelity extractor class over one of ganzoo's shipped networks (`module`: `ganzoo.metrics.digits` or
    `ganzoo.metrics.colour`, each with `load_shipped`, `to_input` and `IMG_SIZE`): features '128-l2' (the normalised
    feature layer) and 'logits' of uint8 images; registered as `registered`."""

    class ShippedFeatureExtractor(_fidelity_base()):  # type: ignore[misc]
        __doc__ = f"ganzoo's {what}: features '128-l2' and 'logits' of uint8 images."

        def __init__(self, name: str, features_list: list[str], **kwargs: Any) -> None:
            super().__init__(name, features_list)
            self.network = module.load_shipped()

        @staticmethod
        def get_provided_features_list() -> tuple[str, ...]:
            return (FEATURES, "logits")

        @staticmethod
        def get_default_feature_layer_for_metric(metric: str) -> str:
            return "logits" if metric == "isc" else FEATURES

        @staticmethod
        def can_be_compiled() -> bool:
            return False

        @staticmethod
        def get_dummy_input_for_compile() -> torch.Tensor:
            return torch.zeros(1, channels, module.IMG_SIZE, module.IMG_SIZE, dtype=torch.uint8)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            features, logits = self.network.features(module.to_input(x))
            named = {FEATURES: features, "logits": logits}
            return tuple(named[k] for k in self.features_list)

    _register(registered, ShippedFeatureExtractor)
    return ShippedFeatureExtractor


@functools.cache
def digits_class() -> type:
    """torch-fidelity extractor class for the digits classifier (registered as `ganzoo-digits`; 10 class logits)."""
    import ganzoo.metrics.digits as digits

    return _shipped_class(digits, "ganzoo-digits", 1, "digit classifier")


def _register(name: str, cls: type) -> None:
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    if name not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(name, cls)


def _digits(device: torch.device) -> Extractor:
    import ganzoo.metrics.digits as digits

    network = digits_class()("ganzoo-digits", [FEATURES, "logits"]).eval().requires_grad_(False).to(device)
    return Extractor("digits", network, FEATURES, "logits", digits.SHA256,
                     "gray (channel mean), bilinear antialiased resize to 28x28, scaled to [-1, 1]", device,
                     float_range=(-1.0, 1.0))


# ------------------------------------------------------------------------------------------------------- colour


@functools.cache
def colour_class() -> type:
    """torch-fidelity extractor class for the colour feature network (registered as `ganzoo-colour`; logits: the 9
    Unicode emoji groups)."""
    import ganzoo.metrics.colour as colour

    return _shipped_class(colour, "ganzoo-colour", 3, "colour feature network")


def _colour(device: torch.device) -> Extractor:
    import ganzoo.metrics.colour as colour

    network = colour_class()("ganzoo-colour", [FEATURES, "logits"]).eval().requires_grad_(False).to(device)
    return Extractor("colour", network, FEATURES, "logits", colour.SHA256,
                     "RGB (gray repeated), bilinear antialiased resize to 32x32, scaled to [-1, 1]", device,
                     float_range=(-1.0, 1.0))


# ---------------------------------------------------------------------------------------------------- inception


@contextlib.contextmanager
def _weights_only_loads() -> Iterator[None]:
    """Make every torch.load inside the block load tensors only, whatever its caller asks for."""
    previous = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = previous


def inception_weights() -> tuple[Path, str]:
    """The Inception-v3 weights file in ganzoo's cache (downloaded and checked on first use) and its sha256."""
    from ganzoo._io import sha256_of
    from ganzoo.hub import _offline

    target = _home() / "extractors" / INCEPTION_URL.rsplit("/", 1)[1]
    if not target.is_file():
        if _offline():
            raise GanzooError(f"the inception extractor's weights are not cached ({target}) and HF_HUB_OFFLINE is "
                              "set; run once online, or use --extractor digits")
        from torch.hub import download_url_to_file

        target.parent.mkdir(parents=True, exist_ok=True)
        logger.info("downloading the Inception-v3 weights to %s", target)
        try:  # writes a temporary file and renames it only after the hash prefix matched
            download_url_to_file(INCEPTION_URL, str(target), hash_prefix=INCEPTION_SHA256_PREFIX, progress=False)
        except RuntimeError as exc:
            raise WeightsError(f"the downloaded Inception-v3 weights failed their check ({exc}); try again") from None
        except OSError as exc:
            raise GanzooError(f"cannot download the inception extractor's weights ({exc}); check the connection, "
                              "or use --extractor digits, which works offline") from None
    digest = sha256_of(target)
    if not digest.startswith(INCEPTION_SHA256_PREFIX):
        raise WeightsError(f"{target} has sha256 {digest[:12]}..., expected {INCEPTION_SHA256_PREFIX}...; delete the "
                           "file to download it again")
    return target, digest


def _inception(device: torch.device) -> Extractor:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path, digest = inception_weights()
    with _weights_only_loads():
        network = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                              feature_extractor_weights_path=str(path))
    network = _GrayToRGB(network).to(device)
    return Extractor("inception", network, "2048", "logits_unbiased", digest,
                     "gray repeated to RGB, TF1-compatible bilinear resize to 299x299", device)


class _GrayToRGB(torch.nn.Module):
    """Repeats one-channel images to three before a network that only takes RGB."""

    def __init__(self, network: Any) -> None:
        super().__init__()
        self.network = network

    def convert_features_tuple_to_dict(self, features: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        return self.network.convert_features_tuple_to_dict(features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.network(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x)


# --------------------------------------------------------------------------------------------------------- timm

#: input size of the Fréchet DINOv2 distance (Stein et al. 2023; dgm-eval resizes every image to 224x224)
FD_DINOV2_SIZE = 224


def is_dinov2(model_name: str) -> bool:
    """Whether a timm model is a DINOv2 backbone, measured with the FD-DINOv2 protocol's 224x224 input."""
    return "dinov2" in model_name


@functools.cache
def timm_class(model_name: str) -> type:
    """torch-fidelity extractor class for one timm model (registered as `ganzoo-timm-<model>`)."""

    class TimmFeatureExtractor(_fidelity_base()):  # type: ignore[misc]
        """A pretrained timm model: 'pooled' pre-logits features and, when it has a classifier, 'logits'."""

        def __init__(self, name: str, features_list: list[str], **kwargs: Any) -> None:
            super().__init__(name, features_list)
            import timm
            from timm.data import resolve_model_data_config

            size = {"img_size": FD_DINOV2_SIZE} if is_dinov2(model_name) else {}
            self.model = timm.create_model(model_name, pretrained=True, **size).eval().requires_grad_(False)
            if not self.model.num_classes:  # a headless model (DINOv2's backbone, say): features only
                self.features_list = [f for f in self.features_list if f != "logits"]
            cfg = resolve_model_data_config(self.model)
            self.size = (FD_DINOV2_SIZE, FD_DINOV2_SIZE) if size else tuple(cfg["input_size"][-2:])
            self.register_buffer("mean", torch.tensor(cfg["mean"]).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(cfg["std"]).view(1, 3, 1, 1), persistent=False)

        @staticmethod
        def get_provided_features_list() -> tuple[str, ...]:
            return ("pooled", "logits")

        @staticmethod
        def get_default_feature_layer_for_metric(metric: str) -> str:
            return "logits" if metric == "isc" else "pooled"

        @staticmethod
        def can_be_compiled() -> bool:
            return False

        @staticmethod
        def get_dummy_input_for_compile() -> torch.Tensor:
            return torch.zeros(1, 3, 32, 32, dtype=torch.uint8)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            x = x.float().div(255.0)
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            x = F.interpolate(x, size=self.size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
            hidden = self.model.forward_features((x - self.mean) / self.std)
            named = {"pooled": self.model.forward_head(hidden, pre_logits=True)}
            if "logits" in self.features_list:
                named["logits"] = self.model.forward_head(hidden)
            return tuple(named[k] for k in self.features_list)

    _register(f"ganzoo-timm-{model_name}".replace("/", "_"), TimmFeatureExtractor)
    return TimmFeatureExtractor


def _timm(model_name: str, device: torch.device) -> Extractor:
    try:
        import timm
    except ImportError:
        raise GanzooError("timm extractors need timm: pip install timm") from None
    if not timm.is_model(model_name):
        from ganzoo.errors import unknown_name

        raise unknown_name("timm model", model_name, timm.list_models(pretrained=True),
                           hint="see timm.list_models(pretrained=True)")
    cls = timm_class(model_name)
    try:
        network = cls(f"ganzoo-timm-{model_name}", ["pooled", "logits"])
    except Exception as exc:  # noqa: BLE001 - download/offline errors from huggingface_hub or timm
        raise GanzooError(f"cannot load the pretrained weights of timm model {model_name} ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); connect to the Hub once so "
                          "they are cached, or use --extractor digits") from None
    network = network.to(device)
    cfg = network.model.pretrained_cfg
    preprocessing = (f"RGB (gray repeated), bicubic antialiased resize to {network.size[0]}x{network.size[1]}, "
                     f"normalised with mean {cfg.get('mean')} std {cfg.get('std')}")
    if is_dinov2(model_name):
        trained = cfg.get("input_size", (3, 518, 518))[-1]
        patch = network.size[0] // network.model.patch_embed.grid_size[0]
        preprocessing += (f"; the FD-DINOv2 protocol (Stein et al. 2023, dgm-eval) at {FD_DINOV2_SIZE}x"
                          f"{FD_DINOV2_SIZE}, class token as features, except: torch's bicubic resize, not PIL's, and "
                          f"position embeddings resampled by timm from {trained // patch}x{trained // patch} to "
                          f"{network.size[0] // patch}x{network.size[1] // patch} once at load (bicubic, "
                          "antialiased), not at run time as DINOv2's code does")
    return Extractor(f"timm:{model_name}", network, "pooled", "logits" if "logits" in network.features_list else None,
                     state_dict_sha256(network.model), preprocessing, device, float_range=(0.0, 255.0))
