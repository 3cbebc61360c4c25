"""Data-parallel training over torch.distributed: every process trains on its rows of each global batch.

A distributed run is started by torchrun (or `ganzoo train --nproc N`, which runs torchrun's launcher in the same
way): every process runs the same `ganzoo train` command, and `World.from_env()` joins the process group that
torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) describes. CPU tensors travel
over gloo and CUDA tensors over NCCL (one group with both backends when CUDA is available).

Gradients are averaged by hand right before each optimiser step, for exactly the module that steps, rather than by
DistributedDataParallel's backward hooks: D is frozen during G's step and ProGAN leaves parameters unused for
whole phases, two situations DDP's reducer does not expect (docs/distributed.md says more). What keeps the
processes in lock-step:

- identical initial weights (same seed) and identical random state: every per-sample random draw covers the global
  batch (`ganzoo.sharding.draw_rows`), so a checkpoint written by rank 0 resumes every rank;
- `average_gradients` before every optimiser step: one flattened all-reduce per step of each module, and a vote
  (on the CPU) on which parameters have a gradient anywhere, so a parameter that no process used keeps no
  gradient, exactly as in a one-process run;
- `sync_buffers` after every step: floating-point buffers (BatchNorm statistics, running averages) become the
  average over processes, and buffers that are already equal stay bit-identical;
- `convert_batchnorm` when the recipe asks for `sync_batchnorm`: BatchNorm statistics over the global batch.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import GanzooError, GanzooUsageError

__all__ = ["PeerFailed", "PeerUsageFailed", "World", "convert_batchnorm", "launch", "launched_world_size"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
E = TypeVar("E", bound=BaseException)

#: how long a process waits at a collective for the others (rank 0 may be evaluating or writing a checkpoint)
TIMEOUT = timedelta(minutes=30)
#: seconds `launch` gives the processes after an interrupt (a checkpoint and an export) before killing them
SHUTDOWN_TIMEOUT_S = 300


class PeerFailed(GanzooError):
    """Rank 0 failed at a step every process waits for; rank 0 reports the reason."""

    reported_by_rank0 = True  # the CLI prints nothing more for it


class PeerUsageFailed(GanzooUsageError):
    """Rank 0 refused the request (a usage error); rank 0 reports the reason."""

    reported_by_rank0 = True


def launched_world_size() -> int:
    """The number of processes torchrun started (WORLD_SIZE), 1 outside torchrun."""
    raw = os.environ.get("WORLD_SIZE", "1") or "1"
    try:
        size = int(raw)
    except ValueError:
        raise GanzooUsageError(f"WORLD_SIZE is {raw!r}, not a number; launch distributed runs with torchrun") from None
    if size < 1:
        raise GanzooUsageError(f"WORLD_SIZE is {size}; it must be at least 1")
    return size


def _env_int(name: str, default: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None and default is not None:
        return default
    try:
        return int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise GanzooUsageError(f"{name} is {raw!r} in a distributed run; launch it with torchrun, which sets it") \
            from None


def _groups(tensors: Iterable[torch.Tensor]) -> dict[tuple[torch.device, torch.dtype], list[int]]:
    """Indices of `tensors` grouped by (device, dtype), in order: each group travels as one flat tensor."""
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.device, t.dtype), []).append(i)
    return groups


def _bind_world_defaults_early() -> None:
    """Import, before the process group exists, the torch module that binds `group.WORLD` as default arguments.

    `torch.distributed.nn.functional` writes `group=group.WORLD` into ten function signatures, evaluated when the
    module is first imported. Imported after the group is joined (creating the first optimiser imports it, through
    torch._dynamo), those defaults hold the live group, so `destroy_process_group` cannot free it: its gloo threads
    and the TCPStore server thread then run on into the interpreter's exit, where tearing them down aborted a
    process now and then ("terminate called without an active exception") after a run had finished. Imported
    first, the defaults hold None and leaving the group ends every one of those threads.
    """
    import torch.distributed.nn.functional  # noqa: F401


@dataclass
class World:
    """This process's place in a distributed run, and the collectives the trainer needs."""

    rank: int
    world_size: int
    local_rank: int
    owns_group: bool = False  # this object initialised the process group, and destroys it in close()

    @classmethod
    def from_env(cls) -> World | None:
        """Join the process group torchrun describes; None when this is a one-process run."""
        size = launched_world_size()
        if size == 1:
            return None
        if not dist.is_available():
            raise GanzooError("this PyTorch build has no torch.distributed; install one that does to train on "
                              "several processes")
        rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK", 0)
        owns = False
        if not dist.is_initialized():
            _bind_world_defaults_early()
            cuda = torch.cuda.is_available() and dist.is_nccl_available()
            backend = "cpu:gloo,cuda:nccl" if cuda else "gloo"
            try:
                dist.init_process_group(backend, timeout=TIMEOUT)
            except ValueError as exc:  # env:// rendezvous without MASTER_ADDR / MASTER_PORT
                raise GanzooUsageError(f"cannot join the distributed run ({str(exc).splitlines()[0]}); "
                                       "launch it with torchrun or `ganzoo train --nproc N`") from None
            owns = True
        elif dist.get_world_size() != size:
            raise GanzooUsageError(f"WORLD_SIZE is {size} but the process group has {dist.get_world_size()} "
                                   "processes")
        return cls(rank=rank, world_size=size, local_rank=local_rank, owns_group=owns)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the run folder."""
        return self.rank == 0

    def close(self) -> None:
        """Wait until every process is done (rank 0's last writes included), then leave the group if we joined it."""
        self.barrier()
        self.abort()

    def abort(self) -> None:
        """Leave the group (if this object joined it) without waiting for the others: after an error."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False

    # ----------------------------------------------------------------------------------------------------------------
    # placement

    def device(self, name: str) -> torch.device:
        """The device this process trains on: cuda:LOCAL_RANK for 'auto' (when CUDA is there) and 'cuda'."""
        if name not in ("auto", "cuda", "cpu"):
            raise GanzooUsageError(f"in a distributed run every process picks its own GPU (cuda:LOCAL_RANK); use "
                                   f"--device cuda, auto or cpu instead of {name}")
        if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
            return torch.device("cpu")
        if not torch.cuda.is_available():
            raise GanzooUsageError("CUDA was asked for but is not available here; use --device cpu")
        if self.local_rank >= torch.cuda.device_count():
            raise GanzooUsageError(f"local rank {self.local_rank} has no GPU of its own ({torch.cuda.device_count()} "
                                   "here); start at most one process per GPU (--nproc_per_node)")
        if not dist.is_nccl_available():
            raise GanzooError("this PyTorch build has no NCCL, which distributed training on GPUs needs")
        device = torch.device("cuda", self.local_rank)
        torch.cuda.set_device(device)
        return device

    def rows(self, batch_size: int) -> slice:
        """This process's rows of a global batch; a batch that does not split evenly is a usage error."""
        if batch_size % self.world_size:
            lower = batch_size - batch_size % self.world_size
            options = f"--batch-size {lower} or {lower + self.world_size}" if lower else \
                f"--batch-size {self.world_size}"
            raise GanzooUsageError(f"batch size {batch_size} does not split evenly over {self.world_size} processes; "
                                   f"use a multiple of {self.world_size} ({options})")
        n = batch_size // self.world_size
        return slice(self.rank * n, (self.rank + 1) * n)

    # ----------------------------------------------------------------------------------------------------------------
    # collectives (every process calls each of them at the same point)

    def barrier(self) -> None:
        """Wait for every process (over gloo, so it never touches a GPU stream)."""
        dist.all_reduce(torch.zeros(1))

    def sum_on_cpu(self, values: Sequence[float]) -> list[float]:
        """The sum over processes of a few numbers (votes, flags), exchanged on the CPU."""
        t = torch.tensor(list(values), dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def average_gradients(self, params: Iterable[nn.Parameter], flags: Sequence[float] = ()) -> list[float]:
        """Average the gradients of `params` (those requiring grad) over processes; also sum `flags`.

        A parameter that has a gradient on no process keeps none (an optimiser then skips it, as in a one-process
        run); one that has a gradient on some processes only counts zero for the others. One flat all-reduce
        per (device, dtype) and one small vote on the CPU.
        """
        params = [p for p in params if p.requires_grad]
        votes = self.sum_on_cpu([float(p.grad is not None) for p in params] + [float(f) for f in flags])
        used = [p for p, vote in zip(params, votes, strict=False) if vote > 0]
        for (device, dtype), index in _groups(used).items():
            group = [used[i] for i in index]
            flat = torch.cat([p.grad.reshape(-1) if p.grad is not None
                              else torch.zeros(p.numel(), device=device, dtype=dtype) for p in group])
            dist.all_reduce(flat)
            flat.div_(self.world_size)
            for p, chunk in zip(group, flat.split([p.numel() for p in group]), strict=True):
                if p.grad is None:
                    p.grad = chunk.view(p.shape)
                else:
                    p.grad.copy_(chunk.view(p.shape))
        return votes[len(params):]

    def sync_buffers(self, modules: Iterable[nn.Module]) -> None:
        """Make every floating-point buffer of `modules` the average over processes.

        Computed as rank 0's value plus the average difference from it, so buffers that are equal on every
        process (a schedule's state, fixed noise) stay bit-identical whatever the number of processes.
        Integer buffers (counters) are equal on every process by construction and are left alone.
        """
        buffers = [b for m in modules for b in m.buffers() if b.is_floating_point()]
        for _, index in _groups(buffers).items():
            group = [buffers[i] for i in index]
            flat = torch.cat([b.reshape(-1) for b in group])
            reference = flat.clone()
            dist.broadcast(reference, src=0)
            flat.sub_(reference)
            dist.all_reduce(flat)
            flat.div_(self.world_size).add_(reference)
            for b, chunk in zip(group, flat.split([b.numel() for b in group]), strict=True):
                b.copy_(chunk.view(b.shape))

    def average_stats(self, stats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The average over processes of each (scalar) statistic; every process holds the same keys."""
        if not stats:
            return stats
        keys = sorted(stats)
        flat = torch.stack([stats[k].reshape(()) for k in keys])
        dist.all_reduce(flat)
        flat.div_(self.world_size)
        return dict(zip(keys, flat.unbind(), strict=True))

    def broadcast_bytes(self, data: bytes | None) -> bytes:
        """Rank 0's `data` on every process (others pass None): a run's config or checkpoint, read on rank 0 only."""
        size = torch.tensor([len(data) if self.is_main and data is not None else 0], dtype=torch.int64)
        dist.broadcast(size, src=0)
        if self.is_main:
            payload = torch.frombuffer(bytearray(data or b""), dtype=torch.uint8) if size.item() else \
                torch.empty(0, dtype=torch.uint8)
        else:
            payload = torch.empty(int(size.item()), dtype=torch.uint8)
        if size.item():
            dist.broadcast(payload, src=0)
        return payload.numpy().tobytes()

    def once(self, error: E) -> E:
        """`error`, raised by every process alike, marked so that only rank 0 prints it."""
        if not self.is_main:
            error.reported_by_rank0 = True  # type: ignore[attr-defined]
        return error

    def checked(self, fn: Callable[[], T]) -> T:
        """Run `fn` in every process; when it fails in any of them, every process fails, and the error is printed
        once: rank 0's own when it failed, else each failing rank's own, the others exiting quietly."""
        error: BaseException | None = None
        try:
            value = fn()
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the others have been told
            error = exc
        usage = isinstance(error, GanzooUsageError)
        main_failed, failed, usage_failed = self.sum_on_cpu(
            [float(error is not None and self.is_main), float(error is not None), float(usage)])
        if not failed:
            return value
        if error is not None and (self.is_main or not main_failed):
            raise error
        kind = PeerUsageFailed if usage_failed else PeerFailed
        raise kind("another process of the run failed; it reported the reason")

    def on_main(self, fn: Callable[[], str | None]) -> str | None:
        """Run `fn` on rank 0 only and hand its result to every process.

        When `fn` fails on rank 0, rank 0 raises its error and the others raise `PeerFailed` (or
        `PeerUsageFailed` for a usage error), so that no process is left waiting for rank 0.
        """
        reply: dict[str, Any]
        error: BaseException | None = None
        if self.is_main:
            try:
                reply = {"value": fn()}
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the others have been told
                error = exc
                reply = {"error": str(exc) or type(exc).__name__, "usage": isinstance(exc, GanzooUsageError)}
            raw = json.dumps(reply).encode()
        else:
            raw = None
        reply = json.loads(self.broadcast_bytes(raw).decode())
        if error is not None:
            raise error
        if "error" in reply:
            kind = PeerUsageFailed if reply["usage"] else PeerFailed
            raise kind(f"rank 0 failed: {reply['error']}")
        return reply["value"]


# ---------------------------------------------------------------------------------------------------------------------
# BatchNorm over the global batch
# ---------------------------------------------------------------------------------------------------------------------


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes with a gradient: every process's input reaches every output, so the backward pass
    sums the output gradients over processes too."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _AllReduceSum.apply(grad)


class GlobalBatchNorm(nn.Module):
    """BatchNorm whose training-mode statistics cover the rows of every process (any device, any backend).

    Stands in for a `torch.nn.BatchNorm*d` and shares its parameters and buffers (same state-dict keys), so
    checkpoints and exported weights do not change. torch's `SyncBatchNorm` does the same on GPUs only.
    """

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__()
        self.num_features = bn.num_features
        self.eps = bn.eps
        self.momentum = bn.momentum
        self.affine = bn.affine
        self.track_running_stats = bn.track_running_stats
        self.weight = bn.weight
        self.bias = bn.bias
        self.register_buffer("running_mean", bn.running_mean)
        self.register_buffer("running_var", bn.running_var)
        self.register_buffer("num_batches_tracked", bn.num_batches_tracked)
        self.train(bn.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:  # running statistics (or, without them, this batch's own): nothing to share
            use_batch = self.running_mean is None
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_batch, 0.0,
                                self.eps)
        if x.dtype in (torch.float16, torch.bfloat16):  # statistics in float32, as torch's BatchNorm under autocast
            x = x.float()
        dims = [0, *range(2, x.dim())]
        count = x.new_full((1,), x.numel() // x.shape[1])
        stats = _AllReduceSum.apply(torch.cat([x.sum(dims), x.square().sum(dims), count]))
        c = self.num_features
        total = stats[-1]
        mean = stats[:c] / total
        var = (stats[c:2 * c] / total - mean.square()).clamp_min(0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor)
                unbiased = var.detach() * (total / (total - 1).clamp_min(1))
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        shape = (1, c) + (1,) * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.weight is not None:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_batchnorm(module: nn.Module) -> Callable[[], None]:
    """Replace every BatchNorm in `module` by one over the global batch; returns a function undoing it.

    On CUDA this is torch's `SyncBatchNorm`; elsewhere (gloo on the CPU) `GlobalBatchNorm`. Both share the
    original layers' parameters and buffers, so undoing it only puts the original layers back.
    """
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, nn.SyncBatchNorm):
                on_cuda = any(t.is_cuda for t in (*child.parameters(), *child.buffers()))
                replacement = nn.SyncBatchNorm.convert_sync_batchnorm(child) if on_cuda else GlobalBatchNorm(child)
                setattr(parent, name, replacement)
                swapped.append((parent, name, child))

    def restore() -> None:
        for parent, name, original in reversed(swapped):
            setattr(parent, name, original)
        swapped.clear()

    return restore


# ---------------------------------------------------------------------------------------------------------------------
# launching
# ---------------------------------------------------------------------------------------------------------------------


def launch(nproc: int, command: Sequence[str]) -> int:
    """Run `python -m ganzoo COMMAND...` in `nproc` processes on this machine, as torchrun --standalone would.

    Returns the exit code of the run: 0, the first code in rank order that a process exited with by itself (the
    launcher stops the others with a signal once one fails), or 130 when interrupted. Processes get
    `shutdown_timeout` seconds to save a checkpoint after an interrupt before they are killed.
    """
    import sys

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser
    from torch.distributed.run import run as run_torchrun

    try:
        from torch.distributed.elastic.multiprocessing.api import SignalException
    except ImportError:  # pragma: no cover - moved in some versions
        from torch.distributed.elastic.multiprocessing import SignalException
    if "OMP_NUM_THREADS" not in os.environ:  # torchrun would pick 1 and warn; share the cores instead
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    # torchrun kills the processes 30 s after an interrupt by default: too short for a checkpoint and an export
    shutdown = os.environ.get("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", str(SHUTDOWN_TIMEOUT_S))
    args = get_args_parser().parse_args(["--standalone", "--nproc_per_node", str(nproc), "--shutdown-timeout",
                                         shutdown, "--module", "ganzoo", *command])
    elastic = logging.getLogger("torch.distributed.elastic")
    level = elastic.level
    elastic.setLevel(logging.CRITICAL)  # the processes report their own errors, one line each
    try:
        run_torchrun(args)
    except ChildFailedError as exc:
        # negative codes are deaths by signal: the processes the launcher stopped after the first failure
        codes = [failure.exitcode for _, failure in sorted(exc.failures.items()) if 0 < failure.exitcode < 256]
        return codes[0] if codes else 1
    except SignalException:
        return 130
    finally:
        elastic.setLevel(level)
        sys.stdout.flush()
    return 0
