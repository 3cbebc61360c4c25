"""CycleGAN: Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", ICCV 2017 (arXiv:1703.10593).

Two translators learnt together from two unpaired image sets, domain A and domain B: G_AB maps A to B and G_BA maps
B to A, each judged by a discriminator of its output domain (D_B, D_A), and each asked to undo the other: a cycle
A -> B -> A (and B -> A -> B) must give the image back, in L1. Optionally each translator also leaves an image of
its output domain unchanged (the identity term), which keeps colours from drifting.

Networks (the paper's appendix 7.2): a generator is c7s1-k, d2k, d4k, `blocks` residual blocks R4k, u2k, uk,
c7s1-C, where c7s1-k is a 7x7 stride-1 convolution with k filters, d a 3x3 stride-2 convolution, R a residual block
of two 3x3 convolutions and u a 3x3 stride-1/2 (transposed) convolution; each followed by instance norm and ReLU,
the last by tanh; reflection padding throughout. k is `g_width` (the paper's 64); `blocks` 0 takes the paper's
rule, 6 blocks up to 128 px and 9 above. A discriminator is a PatchGAN: C64-C128-C256-C512 (4x4 convolutions, the
first three of stride 2, instance norm from the second on, LeakyReLU 0.2) and a last 4x4 convolution to one
channel, one logit per patch (70x70 pixels at 256 px with `d_layers` 3); the first width is `d_width`.

To ganzoo's one trainer this is one G module (`CycleGenerator`, holding G_AB and G_BA) and one D module
(`CycleDiscriminator`, holding D_A and D_B), and the ``cycle`` objective (`CycleObjective`) owns the step. Unpaired
data (``--data 'A~B'``, `ganzoo.unpaired`) comes as batches of both domains: images [b; a] and condition [a; b]
(`ganzoo.trainer`), so that row i of G's output, the translation of condition row i, lies in the domain of image
row i. G run on such a batch (`both=True`) sends its first half A -> B and its second half B -> A, and D judges the
first half with D_B and the second with D_A; every loss of the zoo then compares like with like.

Recipe (the paper's): the least-squares GAN loss, cycle weight lambda = 10, identity weight 0.5 lambda, a history
of 50 generated images per direction of which D sees one half of the time (Shrivastava et al. 2017), Adam with
learning rate 2e-4 and betas (0.5, 0.999) for both networks, the rate held for the first half of the run and then
decayed linearly to zero. G's adversarial term is the paper's E[(D(G(x)) - 1)^2] per direction: ganzoo's loss
halves it (Mao et al.), and the objective's adversarial_weight 2 undoes that. D's loss is the loss's mean over
both discriminators; each D's share is a constant multiple of the paper's (halved) objective, which leaves Adam's
steps as they are. The paper's batch is 1; here it is 8 images of each domain, to keep a CPU busy. Default widths
are an eighth of the paper's (8 instead of 64) so a step at 32 px takes well under a second on one CPU thread
(docs/architectures/cyclegan.md: about 0.16 s of CPU time); preset ``paper`` restores them. Preset
``no-identity`` drops the identity term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganzoo.errors import ConfigError, GanzooUsageError
from ganzoo.interfaces import ArchConfig, Architecture, Discriminator, Preset, Recipe, Translator
from ganzoo.losses import GANLoss
from ganzoo.objectives import Objective, PairedObjective, Stats

__all__ = ["CycleDiscriminator", "CycleGANConfig", "CycleGenerator", "CycleObjective", "ImagePool",
           "PatchDiscriminator", "ResnetGenerator", "architecture"]


@dataclass(frozen=True)
class CycleGANConfig(ArchConfig):
    """CycleGAN hyperparameters. `channels` is both domains' channel count."""

    img_size: int = 64
    channels: int = 3
    z_dim: int = 0  # no latent input: the translators are deterministic
    g_width: int = 8  # k of c7s1-k (the paper: 64); the residual blocks run at 4k
    d_width: int = 8  # channels of the PatchGAN's first layer (the paper: 64), doubled per layer up to 8x
    blocks: int = 0  # residual blocks per generator; 0: 6 up to 128 px, 9 above (the paper's rule)
    d_layers: int = 3  # stride-2 layers of the PatchGAN (3: 70x70 patches at 256 px)

    min_z_dim = 0

    def validate(self) -> None:
        super().validate()
        if self.z_dim != 0:
            raise ConfigError(f"cyclegan takes no latents; set z_dim=0, got {self.z_dim}")
        for name in ("g_width", "d_width", "d_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.blocks < 0:
            raise ConfigError(f"blocks must be 0 (the paper's rule) or a number of residual blocks, got {self.blocks}")
        if self.img_size < 8 or self.img_size % 4:
            raise ConfigError(f"img_size {self.img_size} must be a multiple of 4 and at least 8 (two stride-2 "
                              "downsamplings); use e.g. 32, 64 or 128")

    @property
    def residual_blocks(self) -> int:
        """The residual blocks of each generator."""
        return self.blocks or (6 if self.img_size <= 128 else 9)


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)  # the paper's N(0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class _Residual(nn.Module):
    """R: two 3x3 convolutions with reflection padding and instance norm, added to the input."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3, bias=False), nn.InstanceNorm2d(width), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3, bias=False), nn.InstanceNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """One direction: c7s1-k, d2k, d4k, R4k x blocks, u2k, uk, c7s1-C, tanh (images in and out in [-1, 1])."""

    def __init__(self, cfg: CycleGANConfig) -> None:
        super().__init__()
        k, c = cfg.g_width, cfg.channels
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(c, k, 7, bias=False), nn.InstanceNorm2d(k),
                                   nn.ReLU()]
        for width in (k, 2 * k):  # d2k, d4k
            layers += [nn.Conv2d(width, 2 * width, 3, 2, 1, bias=False), nn.InstanceNorm2d(2 * width), nn.ReLU()]
        layers += [_Residual(4 * k) for _ in range(cfg.residual_blocks)]
        for width in (4 * k, 2 * k):  # u2k, uk
            layers += [nn.ConvTranspose2d(width, width // 2, 3, 2, 1, output_padding=1, bias=False),
                       nn.InstanceNorm2d(width // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(k, c, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        _init(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class CycleGenerator(Translator):
    """Both translators in one module: `forward(images)` is G_AB (A -> B), `reverse=True` G_BA (B -> A), and
    `both=True` sends the first half of the batch A -> B and the second half B -> A (the training batch)."""

    two_way = True

    def __init__(self, cfg: CycleGANConfig) -> None:
        super().__init__(cfg.channels, (cfg.channels, cfg.img_size, cfg.img_size), z_dim=0, size_multiple=4)
        self.a_to_b = ResnetGenerator(cfg)
        self.b_to_a = ResnetGenerator(cfg)

    def forward(self, images: torch.Tensor, z: torch.Tensor | None = None, reverse: bool = False,
                both: bool = False) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise GanzooUsageError(f"cyclegan translates (N, {self.in_channels}, H, W) images, got shape "
                                   f"{tuple(images.shape)}")
        if both:
            n = _half(images, "generator")
            return torch.cat([self.a_to_b(images[:n]), self.b_to_a(images[n:])])
        return self.b_to_a(images) if reverse else self.a_to_b(images)

    def check_input_size(self, height: int, width: int) -> str | None:
        if height < 8 or width < 8 or height % 4 or width % 4:
            return f"sides must be multiples of 4 (at least 8), e.g. {self.img_shape[1]}x{self.img_shape[2]}"
        return None


def _half(images: torch.Tensor, who: str) -> int:
    n = images.shape[0]
    if n % 2:
        raise GanzooUsageError(f"the cyclegan {who} takes a batch of both domains, B's half first for D and A's first "
                               f"for G, so an even number of images; got {n}")
    return n // 2


class PatchDiscriminator(nn.Module):
    """One domain's PatchGAN: images -> one logit per patch, (N, P)."""

    def __init__(self, cfg: CycleGANConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, cfg.d_width, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = cfg.d_width
        for n in range(1, cfg.d_layers + 1):
            stride = 2 if n < cfg.d_layers else 1
            nxt = cfg.d_width * min(2 ** n, 8)
            layers += [nn.Conv2d(width, nxt, 4, stride, 1, bias=False), nn.InstanceNorm2d(nxt), nn.LeakyReLU(0.2)]
            width = nxt
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        _init(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).flatten(1)


class CycleDiscriminator(Discriminator):
    """Both discriminators in one module: the first half of a batch is judged by D_B (domain B's images), the second
    by D_A; one logit per patch, (N, P), or per image, (N,), when a patch covers the image. The condition is not
    looked at (each D judges images of its domain alone)."""

    def __init__(self, cfg: CycleGANConfig) -> None:
        super().__init__((cfg.channels, cfg.img_size, cfg.img_size))
        self.d_a = PatchDiscriminator(cfg)
        self.d_b = PatchDiscriminator(cfg)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        n = _half(images, "discriminator")
        patches = torch.cat([self.d_b(images[:n]), self.d_a(images[n:])])
        return patches.flatten() if patches.shape[1] == 1 else patches


class ImagePool(nn.Module):
    """A history of `size` generated images (Shrivastava et al. 2017) as buffers, so checkpoints hold it.

    Until it is full every image goes in and comes back out. Once full, each image comes back as itself with
    probability 1/2; otherwise a stored image, drawn at random, comes back in its place, and the new one is stored
    where it was. The images of one batch draw distinct slots; all draws come from torch's generator on the pool's
    device (checkpointed by the trainer), and nothing waits on the device.
    """

    def __init__(self, size: int, shape: tuple[int, ...] = (0, 0, 0)) -> None:
        super().__init__()
        self.size = int(size)
        self.register_buffer("images", torch.zeros(self.size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def forward(self, fakes: torch.Tensor) -> torch.Tensor:
        size, n, device = self.size, fakes.shape[0], self.images.device
        if n > size:
            raise ConfigError(f"an image pool of {size} cannot serve a batch of {n}; raise pool_size or lower the "
                              "batch size")
        new = fakes.detach().float()
        index = torch.arange(n, device=device)
        fill_slot = self.count + index
        filling = fill_slot < size
        swap = ~filling & (torch.rand(n, device=device) < 0.5)
        slot = torch.randperm(size, device=device)[:n]
        # the pool after the filling images went in: a swap may return one of them, as one image at a time would
        filled = self._written(new, torch.where(filling, fill_slot, size))
        out = torch.where(swap.view(-1, 1, 1, 1), filled[slot], new)
        self.images.copy_(self._written(new, torch.where(filling, fill_slot, torch.where(swap, slot, size))))
        self.count.copy_(torch.clamp(self.count + n, max=size))
        return out.to(fakes.dtype)

    def _written(self, new: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The stored images with new[i] written to slot targets[i] (`size`: nowhere); the later image wins a slot."""
        size = self.size
        writer = torch.full((size + 1,), -1, dtype=torch.int64, device=targets.device)
        writer = writer.scatter_reduce(0, targets, torch.arange(len(new), device=targets.device), reduce="amax")[:size]
        return torch.where((writer >= 0).view(-1, 1, 1, 1), new[writer.clamp(min=0)], self.images)


class CycleObjective(Objective):
    """CycleGAN's step on unpaired data (Zhu et al. 2017); see the module docstring for the batch layout.

    G's loss: adversarial_weight times the sum of both directions' adversarial terms (each the loss's G term over
    its direction), plus cycle_weight * (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|) and identity_ratio *
    cycle_weight * (|G_AB(b) - b| + |G_BA(a) - a|), each a mean absolute error. D's loss: the loss's over both
    discriminators at once, the fakes drawn through an image pool per direction.

    Args:
        adversarial_weight: factor on the adversarial terms. ganzoo's least-squares loss gives G 0.5 * E[(D - 1)^2]
            (Mao et al.); cyclegan's recipe sets 2 to get the paper's E[(D - 1)^2] beside lambda.
        cycle_weight: lambda on the cycle terms (the paper: 10).
        identity_ratio: the identity terms' weight as a fraction of lambda (the paper: 0.5 for some tasks); 0 drops
            the term and its two extra generator passes.
        pool_size: generated images kept per direction (the paper: 50); 0 shows D the newest fakes only.
    """

    name = "cycle"
    task = "translate"
    data = "unpaired"

    def __init__(self, loss: GANLoss, *, cycle_weight: float = 10.0, identity_ratio: float = 0.5,
                 pool_size: int = 50, adversarial_weight: float = 1.0) -> None:
        super().__init__(loss)
        for option, value in (("cycle_weight", cycle_weight), ("identity_ratio", identity_ratio),
                              ("adversarial_weight", adversarial_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigError(f"objective cycle: {option} must be a number >= 0, got {value!r}")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 0:
            raise ConfigError(f"objective cycle: pool_size must be a whole number >= 0 (the paper: 50), got "
                              f"{pool_size!r}")
        self.cycle_weight = float(cycle_weight)
        self.identity_ratio = float(identity_ratio)
        self.pool_size = pool_size
        self.adversarial_weight = float(adversarial_weight)

    def check(self, recipe: Any, dataset: Any | None = None) -> None:
        if recipe.ada_target > 0:
            raise ConfigError("adaptive augmentation (ada_target) is not supported by the cycle objective; set "
                              "ada_target=0")
        if self.pool_size and recipe.batch_size > self.pool_size:
            raise ConfigError(f"batch size {recipe.batch_size} exceeds the image pool ({self.pool_size}); raise "
                              "objective_options pool_size or lower the batch size")
        if torch.distributed.is_available() and torch.distributed.is_initialized() \
                and torch.distributed.get_world_size() > 1:
            raise ConfigError("the cycle objective's image pools hold each process's own images, which a distributed "
                              "run would average; train cyclegan on one process (drop --nproc)")
        if dataset is None:
            return
        if not getattr(dataset, "unpaired", False):
            raise GanzooUsageError(f"cyclegan trains on unpaired data and {dataset.name} is not; pass two domains, "
                                   "--data 'A_FOLDER~B_FOLDER' or --data 'twemoji~openmoji' (docs/data.md)")
        if self.pool_size:  # sized from the data, before a checkpoint is loaded into them
            shape = tuple(dataset.images.shape[1:])
            self.running.pool_a = ImagePool(self.pool_size, shape)  # G_BA's outputs, for D_A
            self.running.pool_b = ImagePool(self.pool_size, shape)  # G_AB's outputs, for D_B

    def generate(self, G: Any, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        assert cond is not None, "the cycle objective needs both domains' images as the batch's condition"
        return G(cond, None, both=True)

    def d_phase(self, D: Any, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor | None,
                step: int) -> tuple[torch.Tensor, Stats]:
        if self.pool_size:
            n = fake.shape[0] // 2
            fake = torch.cat([self.running.pool_b(fake[:n]), self.running.pool_a(fake[n:])])
        return super().d_phase(D, real, fake, cond, step)

    def g_phase(self, D: Any, G: nn.Module, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor | None,
                step: int) -> tuple[torch.Tensor, Stats]:
        assert cond is not None
        n = real.shape[0] // 2
        adversarial, stats = super().g_phase(D, G, real, fake, cond, step)
        # the loss averages over both directions (halves of one size): twice that is their sum
        adversarial = self.adversarial_weight * 2 * adversarial
        # [fake_a; fake_b] through G (both) is [G_AB(G_BA(b)); G_BA(G_AB(a))], to compare with real = [b; a]
        back = G(torch.cat([fake[n:], fake[:n]]), None, both=True)
        cycle = _l1(back[n:], real[n:]) + _l1(back[:n], real[:n])
        total = adversarial + self.cycle_weight * cycle
        stats = {**stats, "g_adversarial": adversarial.detach(), "cycle": cycle.detach()}
        if self.identity_ratio and self.cycle_weight:
            same = G(real, None, both=True)  # [G_AB(b); G_BA(a)]
            identity = _l1(same[:n], real[:n]) + _l1(same[n:], real[n:])
            total = total + self.identity_ratio * self.cycle_weight * identity
            stats["identity"] = identity.detach()
        stats["g_loss"] = total.detach()
        return total, stats

    def grid_condition(self, dataset: Any, n: int, num_classes: int) -> tuple[torch.Tensor | None, int | None]:
        """The first images of A, then as many of B (a quarter of the grid each), shown as input, output pairs."""
        count = max(1, min(n // 4, len(dataset.inputs), len(dataset.images)))
        shown = torch.cat([dataset.inputs[:count], dataset.images[:count]])
        return shown.float().div(127.5).sub(1.0), 8

    def grid_picture(self, cond: torch.Tensor | None, images: torch.Tensor) -> torch.Tensor:
        """Input and output side by side, A -> B first, then B -> A."""
        return PairedObjective.grid_picture(self, cond, images)  # type: ignore[arg-type]


def _l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x.float() - y.float()).abs().mean()


def _check(cfg: CycleGANConfig, recipe: Recipe) -> None:
    smallest = 3 * 2 ** cfg.d_layers  # the last two stride-1 convolutions need a 3x3 map
    if cfg.img_size < smallest:
        raise ConfigError(f"a PatchGAN of {cfg.d_layers} stride-2 layers needs img_size >= {smallest}, got "
                          f"{cfg.img_size}; lower d_layers")


#: the paper's objective: lambda 10, identity 0.5 lambda, pools of 50, and its E[(D(G(x)) - 1)^2] for G (see
#: CycleObjective's adversarial_weight)
_OPTIONS = {"cycle_weight": 10.0, "identity_ratio": 0.5, "pool_size": 50, "adversarial_weight": 2.0}

architecture = Architecture(
    name="cyclegan",
    summary="Unpaired image-to-image translation both ways: ResNet G_AB and G_BA, PatchGAN D_A and D_B, LSGAN + cycle",
    paper="Zhu et al. 2017, Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks "
          "(arXiv:1703.10593)",
    config_cls=CycleGANConfig,
    build_generator=CycleGenerator,
    build_discriminator=CycleDiscriminator,
    recipe=Recipe(
        steps=4000, batch_size=8, loss="least-squares", g_lr=2e-4, d_lr=2e-4, betas=(0.5, 0.999),
        objective="cycle", objective_options=dict(_OPTIONS),
        schedules={"lr": {"kind": "linear", "to": 0.0, "hold_fraction": 0.5}},
    ),
    presets={
        "no-identity": Preset("without the identity term (the paper uses it for some tasks only)",
                              recipe={"objective_options": {**_OPTIONS, "identity_ratio": 0.0}}),
        "paper": Preset("the paper's widths: 64-channel generators and discriminators",
                        config={"g_width": 64, "d_width": 64}),
    },
    validate=_check,
    task="translate",
    test_config={"img_size": 16, "g_width": 4, "d_width": 4, "blocks": 2, "d_layers": 2},
)
