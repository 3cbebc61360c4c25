"""Which rows of the global batch this process trains on, and per-sample random draws that respect it.

In a distributed run each of W processes holds rows [rank * n, (rank + 1) * n) of every global batch of W * n
rows. A per-sample random draw made through `draw_rows` draws the values for all W * n rows from the random
state, which is identical on every process, and keeps this process's n rows. So every process consumes the
random stream exactly as one process training on the whole batch would: a 2-process run draws the noise of a
1-process run (latents, gradient-penalty interpolation weights, augmentations, instance and layer noise), and
the random state stays identical on all processes, so one checkpoint resumes them all.

Outside a distributed training step (one process, sampling, evaluation) `draw_rows(n, draw)` is `draw(n)`.
Plugins with per-sample randomness of their own use it the same way:

    from ganzoo.sharding import draw_rows

    mix = draw_rows(z.shape[0], lambda m: torch.rand(m, device=z.device))
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

import torch

__all__ = ["batch_shard", "current_shard", "draw_rows"]

_SHARD: ContextVar[tuple[int, int]] = ContextVar("ganzoo_batch_shard", default=(0, 1))


def current_shard() -> tuple[int, int]:
    """(rank, world size) of the batch rows this process holds; (0, 1) outside a distributed training step."""
    return _SHARD.get()


@contextlib.contextmanager
def batch_shard(rank: int, world_size: int) -> Iterator[None]:
    """Within the block, this process holds rows of shard `rank` out of `world_size` equal shards of each batch."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must lie in [0, {world_size}) for a world size of {world_size}, got {rank}")
    token = _SHARD.set((rank, world_size))
    try:
        yield
    finally:
        _SHARD.reset(token)


def draw_rows(n: int, draw: Callable[[int], torch.Tensor]) -> torch.Tensor:
    """`draw(m)` returns m rows of random values; this returns this process's `n` rows of the global draw.

    `n` is the number of rows this process holds (its share of the global batch).
    """
    rank, world_size = _SHARD.get()
    if world_size == 1:
        return draw(n)
    return draw(n * world_size)[rank * n:(rank + 1) * n]
