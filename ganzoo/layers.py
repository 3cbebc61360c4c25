"""Building blocks shared by architecture plugins."""

from __future__ import annotations

from torch import nn

__all__ = ["normal_init_", "xavier_init_"]

_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def normal_init_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """DCGAN initialisation (Radford et al. 2015): weights ~ N(0, std), norm scales ~ N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, _WEIGHTED):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _NORMS) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


def xavier_init_(module: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases (the Keras default initialisation)."""
    for m in module.modules():
        if isinstance(m, _WEIGHTED):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module
