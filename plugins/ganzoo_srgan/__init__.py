"""SRGAN: Ledig, Theis, Huszár, Caballero, Cunningham, Acosta, Aitken, Tejani, Totz, Wang & Shi, "Photo-Realistic
Single Image Super-Resolution Using a Generative Adversarial Network", CVPR 2017 (arXiv:1609.04802).

Super-resolution by `scale` (4 in the paper; 2 and 8 too): G maps a low-resolution image to one `scale` times its
size. G is SRResNet: a 9x9 convolution and PReLU, `blocks` residual blocks (3x3 conv, BatchNorm, PReLU, 3x3 conv,
BatchNorm, plus the block's input), a 3x3 conv and BatchNorm added to the first layer's output (the long skip), one
upsampling block per factor of two (a 3x3 conv to four times the width, pixel shuffle x2, PReLU) and a 9x9
convolution to the image, here ending in tanh so that outputs lie in [-1, 1] as every ganzoo image does (the paper's
targets are in [-1, 1] too; its inputs in [0, 1], here in [-1, 1] like everything else). G is fully convolutional:
it upscales any input size. D is the paper's: a 3x3 conv and LeakyReLU 0.2, then seven 3x3 conv + BatchNorm +
LeakyReLU 0.2 blocks whose widths double every two blocks (64, 128, 128, 256, 256, 512, 512 in the paper, from
`d_width`) and whose stride alternates 2, 1, 2, ... , then a dense layer (1024 in the paper), LeakyReLU 0.2 and a
dense layer to one logit. Here an adaptive average pool to `d_pool` x `d_pool` sits before the dense layers, so that
D takes any image size (the paper's 96 px crops gave 6 x 6 maps); D judges the high-resolution image alone.

The loss (the ``superres`` objective below): content + 10^-3 * adversarial, the adversarial term the non-saturating
-log D(G(x)). Content, the objective's `content` option:

* ``mse`` (the default): the pixel-wise mean squared error, the paper's SRGAN-MSE (and, without D, SRResNet);
* ``vgg19``: the MSE between VGG19 features of G's image and of the target, taken after the ReLU of conv5_4 (the
  paper's VGG54), on images mapped to [0, 1] and normalised with ImageNet's mean and deviation. The paper's code
  divides the features by 12.75 to bring the term near the pixel MSE's size; that is left out (the paper states the
  loss without it), so the adversarial weight's balance differs from the paper's by that factor squared. The
  ImageNet weights come from torch's cache, where torchvision puts them when it downloads them; without them this
  choice stops with one line saying how to get them;
* ``colour``: the MSE between the features of ganzoo's colour network (`ganzoo.metrics.colour`, whose weights ship
  with ganzoo) after its second convolution block (64 channels at half the size): a feature space that works
  offline, trained on emoji, so meant for emoji-like colour data.

Why pixel MSE by default: it is one of the paper's own variants, it needs nothing that cannot be had offline and it
suits any data (gray or colour, photographs or drawings), while the colour network knows emoji only and VGG19's
weights are a download away. Choose ``vgg19`` for the paper's SRGAN where its weights are at hand.

Recipe: Adam, learning rate 1e-4, betas (0.9, 0.999), batch 16 as in the paper. The paper pretrains SRResNet (MSE
only) for 10^6 updates and starts SRGAN from it; here the ``srresnet`` preset is that pretraining, D never trained,
and `ganzoo train --arch srgan --init RUN --preset srgan-mse` starts the GAN from it (a fine-tune keeps the
source's preset unless told another). Widths and depth are scaled down by default
(`blocks` 4, `g_width` 32, `d_width` 16, `d_dense` 256, 32 px targets) so that a step runs on one CPU thread in a
fraction of a second; the ``paper`` preset restores 16 blocks, 64 channels, a 1024-unit dense layer and 96 px crops.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import ConfigError, GanzooUsageError, WeightsError
from ganzoo.interfaces import ArchConfig, Architecture, Discriminator, Preset, Recipe, Translator
from ganzoo.losses import GANLoss
from ganzoo.objectives import Objective, first_inputs

__all__ = ["CONTENT_LOSSES", "SRDiscriminator", "SRGANConfig", "SRResNet", "SuperResolutionObjective",
           "architecture", "colour_features", "vgg19_features", "vgg19_weights_path"]

SCALES = (2, 4, 8)


@dataclass(frozen=True)
class SRGANConfig(ArchConfig):
    """SRGAN hyperparameters. `img_size` is the high-resolution (output) size; inputs are `img_size / scale`."""

    img_size: int = 32
    channels: int = 3
    z_dim: int = 0  # no latent input
    scale: int = 4  # upscaling factor: 2, 4 or 8 (one pixel-shuffle block per factor of two)
    blocks: int = 4  # residual blocks of G (paper: 16)
    g_width: int = 32  # channels of G (paper: 64)
    d_width: int = 16  # channels of D's first layers, doubled every two blocks up to 8x (paper: 64)
    d_dense: int = 256  # units of D's hidden dense layer (paper: 1024)
    d_pool: int = 2  # D's feature map is average-pooled to d_pool x d_pool before the dense layers

    min_z_dim = 0

    def validate(self) -> None:
        super().validate()
        if self.z_dim != 0:
            raise ConfigError(f"srgan takes no latents; set z_dim=0, got {self.z_dim}")
        if self.scale not in SCALES:
            raise ConfigError(f"scale must be one of {', '.join(map(str, SCALES))}, got {self.scale}")
        if self.img_size % self.scale:
            raise ConfigError(f"img_size {self.img_size} is not divisible by scale {self.scale}; choose an img_size "
                              f"that is a multiple of {self.scale}")
        for name in ("blocks", "g_width", "d_width", "d_dense", "d_pool"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")


class ResidualBlock(nn.Module):
    """conv 3x3, BatchNorm, PReLU, conv 3x3, BatchNorm, plus the input."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.PReLU(width), nn.Conv2d(width, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(Translator):
    """SRResNet (see the module docstring): images (N, C, h, w) -> (N, C, scale * h, scale * w), any h and w."""

    def __init__(self, cfg: SRGANConfig) -> None:
        super().__init__(cfg.channels, (cfg.channels, cfg.img_size, cfg.img_size), z_dim=0, size_multiple=1,
                         scale=cfg.scale)
        w = cfg.g_width
        self.head = nn.Sequential(nn.Conv2d(cfg.channels, w, 9, 1, 4), nn.PReLU(w))
        self.blocks = nn.Sequential(*[ResidualBlock(w) for _ in range(cfg.blocks)])
        self.fuse = nn.Sequential(nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w))
        up: list[nn.Module] = []
        for _ in range(int(math.log2(cfg.scale))):
            up += [nn.Conv2d(w, 4 * w, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(w)]
        self.up = nn.Sequential(*up)
        self.tail = nn.Conv2d(w, cfg.channels, 9, 1, 4)

    def forward(self, images: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise GanzooUsageError(f"srgan upscales (N, {self.in_channels}, H, W) images, got shape "
                                   f"{tuple(images.shape)}")
        h = self.head(images)
        x = self.fuse(self.blocks(h)) + h  # the long skip
        return torch.tanh(self.tail(self.up(x)))


class SRDiscriminator(Discriminator):
    """The paper's D with an adaptive pool before its dense layers: high-resolution images -> one logit each, (N,).
    The second argument (the low-resolution input, which the trainer passes as the batch's condition) is ignored."""

    def __init__(self, cfg: SRGANConfig) -> None:
        super().__init__((cfg.channels, cfg.img_size, cfg.img_size))
        w = cfg.d_width
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, w, 3, 1, 1), nn.LeakyReLU(0.2)]
        width = w
        for i in range(7):  # k3n64s2, k3n128s1, k3n128s2, k3n256s1, k3n256s2, k3n512s1, k3n512s2 in the paper
            nxt = w * 2 ** ((i + 1) // 2)
            layers += [nn.Conv2d(width, nxt, 3, 2 if i % 2 == 0 else 1, 1, bias=False), nn.BatchNorm2d(nxt),
                       nn.LeakyReLU(0.2)]
            width = nxt
        layers += [nn.AdaptiveAvgPool2d(cfg.d_pool), nn.Flatten(), nn.Linear(width * cfg.d_pool ** 2, cfg.d_dense),
                   nn.LeakyReLU(0.2), nn.Linear(cfg.d_dense, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(images).flatten()


# ---------------------------------------------------------------------------------------------------------------------
# Content losses: pixels, or the features of a frozen network
# ---------------------------------------------------------------------------------------------------------------------

CONTENT_LOSSES = ("mse", "vgg19", "colour")
#: the file torchvision downloads VGG19's ImageNet weights to, in torch's hub cache (`torch.hub.get_dir()`)
VGG19_FILE = "vgg19-dcbb9e9d.pth"
_VGG54 = 36  # torchvision's vgg19().features up to and including the ReLU after conv5_4
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_weights_path() -> Path:
    """Where torchvision keeps VGG19's ImageNet weights once downloaded: torch's hub cache."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


class VGGFeatures(nn.Module):
    """VGG19's layers up to the ReLU after conv5_4 (the paper's phi_5,4) on images in [-1, 1], gray or RGB: mapped to
    [0, 1] and normalised with ImageNet's mean and deviation first. `state` are torchvision's vgg19 weights (None:
    torchvision's random initialisation, for tests of the plumbing only)."""

    def __init__(self, state: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        from torchvision.models import vgg19

        net = vgg19(weights=None)
        if state is not None:
            net.load_state_dict(state, strict=True)
        self.features = net.features[:_VGG54]
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        return self.features(((x + 1) / 2 - self.mean) / self.std)


def vgg19_features() -> nn.Module:
    """VGG19's ImageNet features (`VGGFeatures`) from torch's cache; one line saying how to get them when absent."""
    path = vgg19_weights_path()
    if not path.is_file():
        raise WeightsError(f"content=vgg19 needs VGG19's ImageNet weights, and {path} does not exist; download them "
                           "once where the internet is reachable (python -c \"import torchvision; "
                           "torchvision.models.vgg19(weights='IMAGENET1K_V1')\") or copy the file there, or use "
                           "content=mse or content=colour")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return VGGFeatures(state)
    except Exception as exc:  # a truncated download, another network's file
        raise WeightsError(f"{path} is not VGG19's ImageNet weights ({type(exc).__name__}: {str(exc)[:120]}); delete "
                           "it and download it again") from None


class ColourFeatures(nn.Module):
    """ganzoo's colour network (`ganzoo.metrics.colour`, shipped weights) up to the ReLU of its second convolution
    block: 64 channels at half the input's size, on images in [-1, 1] (gray repeated to RGB)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.features = net.body[:7]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images)


def colour_features() -> nn.Module:
    """`ColourFeatures` of the shipped colour network (its sha256 checked)."""
    from ganzoo.metrics.colour import load_shipped

    return ColourFeatures(load_shipped())


_FEATURES: dict[str, Callable[[], nn.Module]] = {"vgg19": lambda: vgg19_features(), "colour": lambda: colour_features()}


class SuperResolutionObjective(Objective):
    """Super-resolution (Ledig et al. 2017): G(x_low) -> x_high, D judges high-resolution images alone, and G's loss is
    content + `adversarial_weight` * adversarial.

    The batch's condition is the low-resolution input (``srN:`` data, `ganzoo.lowres`), its real images the targets.
    The feature network of a feature content loss is built once, frozen (no gradients to its weights, eval mode)
    and moved to the batch's device; gradients flow through it to G.

    Args:
        content: "mse" (pixels), "vgg19" (VGG19 phi_5,4 features, ImageNet weights from torch's cache) or "colour"
            (ganzoo's colour network's features); see the module docstring.
        adversarial_weight: the weight of the adversarial term (the paper: 1e-3).
        adversarial: False drops D altogether: G learns the content term alone and D is never updated (SRResNet).
    """

    name = "superres"
    task = "upscale"

    def __init__(self, loss: GANLoss, *, content: str = "mse", adversarial_weight: float = 1e-3,
                 adversarial: bool = True) -> None:
        super().__init__(loss)
        if content not in CONTENT_LOSSES:
            raise ConfigError(f"objective superres: content must be one of {', '.join(CONTENT_LOSSES)}, got "
                              f"{content!r}")
        weight_ok = not isinstance(adversarial_weight, bool) and isinstance(adversarial_weight, (int, float))
        if not weight_ok or not adversarial_weight >= 0:
            raise ConfigError(f"objective superres: adversarial_weight must be a number >= 0 (the paper: 1e-3), got "
                              f"{adversarial_weight!r}")
        if not isinstance(adversarial, bool):
            raise ConfigError(f"objective superres: adversarial must be true or false, got {adversarial!r}")
        self.content = content
        self.adversarial_weight = float(adversarial_weight)
        self.adversarial = adversarial
        self.features: nn.Module | None = None
        if content != "mse":
            self.features = _FEATURES[content]().eval().requires_grad_(False)

    @property
    def trains_discriminator(self) -> bool:
        return self.adversarial

    def check(self, recipe: Any, dataset: Any | None = None) -> None:
        if dataset is not None and getattr(dataset, "inputs", None) is None:
            raise GanzooUsageError(f"super-resolution trains on low/high-resolution pairs and {dataset.name} has none; "
                                   f"make them from any images with srN:, e.g. --data sr4:{dataset.name} "
                                   "(docs/data.md)")

    def generate(self, G: Callable[..., torch.Tensor], z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        assert cond is not None, "the superres objective needs the low-resolution images as the batch's condition"
        return G(cond, None)

    def content_loss(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """The content term: the MSE of pixels, or of the feature network's features (the target's without
        gradients)."""
        if self.features is None:
            return F.mse_loss(fake.float(), real.float())
        if next(self.features.parameters()).device != fake.device:
            self.features.to(fake.device)
        with torch.no_grad():
            target = self.features(real.float())
        return F.mse_loss(self.features(fake.float()).float(), target.float())

    def d_phase(self, D: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                cond: torch.Tensor | None, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return super().d_phase(D, real, fake, None, step)  # D judges the high-resolution image alone

    def g_phase(self, D: Callable[..., torch.Tensor], G: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                cond: torch.Tensor | None, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        content = self.content_loss(fake, real)
        stats: dict[str, torch.Tensor] = {"content": content.detach()}
        if self.adversarial:
            adversarial, adv_stats = super().g_phase(D, G, real, fake, None, step)
            stats = {**adv_stats, "g_adversarial": adversarial.detach(), **stats}
            total = content + self.adversarial_weight * adversarial
        else:
            total = content
        stats["g_loss"] = total.detach()
        return total, stats

    def grid_condition(self, dataset: Any, n: int, num_classes: int) -> tuple[torch.Tensor | None, int | None]:
        """The first low-resolution inputs of the data (up to half the grid), shown beside their upscaling."""
        return first_inputs(dataset, n), 8

    def grid_picture(self, cond: torch.Tensor | None, images: torch.Tensor) -> torch.Tensor:
        """The input enlarged with nearest-neighbour (its pixels as blocks) beside G's output: input 0, output 0,
        input 1, ..."""
        assert cond is not None
        shown = F.interpolate(cond.to(images.dtype), size=images.shape[-2:], mode="nearest")
        return torch.stack([shown, images], dim=1).flatten(0, 1)


architecture = Architecture(
    name="srgan",
    summary="Super-resolution x4 (x2, x8): SRResNet G with pixel shuffle, strided-conv D, content + 1e-3 adversarial",
    paper="Ledig et al. 2017, Photo-Realistic Single Image Super-Resolution Using a GAN (arXiv:1609.04802)",
    config_cls=SRGANConfig,
    build_generator=SRResNet,
    build_discriminator=SRDiscriminator,
    recipe=Recipe(
        steps=4000, batch_size=16, loss="non-saturating", g_lr=1e-4, d_lr=1e-4, betas=(0.9, 0.999),
        objective="superres", objective_options={"content": "mse", "adversarial_weight": 1e-3},
    ),
    presets={
        "srresnet": Preset("SRResNet: G on the pixel MSE alone, D never updated (the paper's baseline and the "
                           "pretraining of SRGAN)",
                           recipe={"objective_options": {"content": "mse", "adversarial": False}}),
        "srgan-mse": Preset("the default recipe as a preset (SRGAN-MSE: pixel MSE + 1e-3 adversarial), to name when "
                            "fine-tuning from an srresnet run, whose preset --init would otherwise keep",
                            recipe={"objective_options": {"content": "mse", "adversarial_weight": 1e-3}}),
        "vgg54": Preset("the paper's SRGAN-VGG54: content on VGG19's conv5_4 features (ImageNet weights from torch's "
                        "cache)", recipe={"objective_options": {"content": "vgg19", "adversarial_weight": 1e-3}}),
        "colour": Preset("content on ganzoo's colour network's features (shipped; for emoji-like colour data)",
                         recipe={"objective_options": {"content": "colour", "adversarial_weight": 1e-3}}),
        "paper": Preset("the paper's sizes: 16 residual blocks, 64 channels, a 1024-unit dense layer, 96 px crops",
                        config={"img_size": 96, "blocks": 16, "g_width": 64, "d_width": 64, "d_dense": 1024}),
    },
    task="upscale",
    test_config={"img_size": 16, "scale": 4, "blocks": 1, "g_width": 8, "d_width": 4, "d_dense": 16},
)
