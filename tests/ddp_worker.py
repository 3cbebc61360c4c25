"""One process of a distributed test run (started by tests/test_distributed.py, which sets torchrun's variables).

Trains a tiny config with the shared `Trainer` for a few steps and writes, into OUT:
- `rank<R>.json`: after every step, a sha256 over every parameter and buffer of G, D and the EMA generator, the
  kinds of BatchNorm layer G has after the run (`Trainer.release`), and the names of the native threads still
  running once the process left the group (Linux; None elsewhere);
- `rank<R>.safetensors`: the final G, D and EMA state.

    python tests/ddp_worker.py OUT --arch dcgan --steps 3 --batch-size 8 [--config JSON] [--recipe JSON]

Without WORLD_SIZE (or with WORLD_SIZE=1) it is the one-process reference run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from ganzoo.data import load_dataset
from ganzoo.model import build_model
from ganzoo.registry import get_architecture
from ganzoo.testing import tiny_config
from ganzoo.trainer.distributed import World
from ganzoo.trainer.loop import RunOptions, Trainer


def state(trainer: Trainer) -> dict[str, torch.Tensor]:
    modules = {"G": trainer.G, "D": trainer.D, "EMA": trainer.model.ema}
    return {f"{name}.{key}": value.detach().clone().contiguous()
            for name, module in modules.items() if module is not None
            for key, value in module.state_dict().items()}


def digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        h.update(key.encode())
        h.update(tensors[key].reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def native_threads() -> list[str] | None:
    """Names of this process's threads, native ones included (Linux only)."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return None
    names = []
    for task in tasks.iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except OSError:  # the thread ended while we looked
            continue
    return sorted(names)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--config", default="{}", help="JSON overrides of the tiny config")
    parser.add_argument("--recipe", default="{}", help="JSON overrides of the recipe")
    args = parser.parse_args()

    torch.set_num_threads(1)
    world = World.from_env()
    rank = world.rank if world is not None else 0
    arch = get_architecture(args.arch)
    cfg = arch.make_config(None, **tiny_config(arch.name, **json.loads(args.config)))
    recipe = arch.make_recipe(None, batch_size=args.batch_size, steps=max(1, args.steps), **json.loads(args.recipe))
    data = load_dataset("mnist-5k", img_size=cfg.img_size, channels=cfg.channels)
    torch.manual_seed(0)
    model = build_model(arch.name, cfg)
    trainer = Trainer(model, recipe, data, RunOptions(device="cpu", seed=0), args.out / f"run-{rank}",
                      hooks=arch.hooks(cfg, recipe), world=world)
    torch.manual_seed(0)  # as Trainer.run does
    digests = []
    for _ in range(args.steps):
        trainer.train_step()
        digests.append(digest(state(trainer)))
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(state(trainer), str(args.out / f"rank{rank}.safetensors"))
    trainer.release()
    if world is not None:
        world.close()
    # after the run the generator is the model it was built as, usable without a process group
    norms = sorted({type(m).__name__ for m in trainer.G.modules() if "BatchNorm" in type(m).__name__})
    trainer.G.train()(trainer.G.sample_latents(4), None)
    threads = native_threads()
    (args.out / f"rank{rank}.json").write_text(json.dumps({"digests": digests, "norms": norms, "threads": threads}))


if __name__ == "__main__":
    main()
