"""Adaptive augmentation's held-out overfitting signal (`ganzoo.trainer.ada`): its value, its invariance to D's
offset and scale, the images it holds back (never trained on, in memory and streamed, with their labels), what a run
records, and the combinations it refuses. The ADA tests of the paper's r_t and exact resume are in test_modern.py;
the options' effects in test_recipe_options.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.augment import Augment
from ganzoo.data import open_dataset
from ganzoo.errors import ConfigError
from ganzoo.interfaces import Recipe, TrainingContext
from ganzoo.model import build_model
from ganzoo.registry import get_architecture
from ganzoo.testing import tiny_config, tiny_train
from ganzoo.trainer.ada import AdaptiveAugment, held_out_count, held_out_signal, split_held_out
from ganzoo.trainer.loop import RunOptions, Trainer

# ---------------------------------------------------------------------------------------------------------------------
# the statistic


def test_the_held_out_signal_is_2auc_minus_1_of_training_logits_against_held_back_ones():
    same = torch.tensor([0.0, 1.0, 2.0, 3.0])
    assert held_out_signal(same, same).item() == 0.0  # one distribution: every win has its loss
    assert held_out_signal(torch.tensor([5.0, 6.0]), torch.tensor([-1.0, 0.0, 4.9])).item() == 1.0  # memorised
    assert held_out_signal(torch.tensor([-5.0]), torch.tensor([1.0, 2.0])).item() == -1.0
    # 3 > 1, 3 > 2, 3 < 5, 4 > 1, 4 > 2, 4 < 5: (4 - 2) / 6
    assert held_out_signal(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0, 5.0])).item() == pytest.approx(1 / 3)


@pytest.mark.parametrize("scale, shift", [(1.0, 37.5), (1.0, -1e3), (0.01, 0.0), (250.0, -4.0)])
def test_the_held_out_signal_ignores_ds_offset_and_scale(scale, shift):
    gen = torch.Generator().manual_seed(0)
    train, held = torch.randn(32, generator=gen) + 0.3, torch.randn(16, generator=gen)
    expected = held_out_signal(train, held).item()
    assert 0.05 < expected < 0.6  # a case between the extremes
    assert held_out_signal(train * scale + shift, held * scale + shift).item() == pytest.approx(expected)
    # and so does p: the hook fed the moved logits adjusts p exactly as with the original ones
    histories = []
    for s, b in ((1.0, 0.0), (scale, shift)):
        hook = AdaptiveAugment(target=0.2, kimg=0.1, interval=2, batch_size=10, signal="held-out")
        service = Augment("xflip", p=0.5, adaptive=True)
        hook.setup(TrainingContext(recipe=Recipe(), device=torch.device("cpu"), augment=service))
        history = []
        for step in range(8):
            hook.observe_held_out(train[step::8] * s + b, held[step::8] * s + b)
            hook.after_d_step(step, {})
            history.append((round(service.p.item(), 6), hook.stats().get("ada_held_out")))
        histories.append(history)
    assert histories[0] == histories[1]
    assert len({p for p, _ in histories[0]}) > 1  # p moved


def test_the_hook_pools_the_pairs_of_an_interval_and_moves_p_by_the_sign_of_r_minus_the_target():
    hook = AdaptiveAugment(target=0.25, kimg=0.1, interval=2, batch_size=10, signal="held-out")  # steps of 0.2
    service = Augment("xflip", p=0.0, adaptive=True)
    hook.setup(TrainingContext(recipe=Recipe(), device=torch.device("cpu"), augment=service))
    # step 0: 2 x 2 pairs, all won (+4); step 1: 1 x 4 pairs, 1 won, 3 lost (-2): r = 2 / 8 = 0.25, not above
    hook.observe_held_out(torch.tensor([5.0, 6.0]), torch.tensor([0.0, 1.0]))
    hook.after_d_step(0, {})
    assert service.p.item() == 0.0 and "ada_held_out" not in hook.stats()  # mid-interval: nothing moves
    hook.observe_held_out(torch.tensor([2.0]), torch.tensor([1.0, 3.0, 4.0, 5.0]))
    hook.after_d_step(1, {})
    assert service.p.item() == 0.0 and hook.stats()["ada_held_out"] == 0.25  # sign(0) moves nothing
    hook.observe_held_out(torch.tensor([5.0, 6.0]), torch.tensor([0.0, 1.0]))
    hook.after_d_step(2, {})
    hook.observe_held_out(torch.tensor([2.0]), torch.tensor([1.0, 0.0, 4.0, 5.0]))  # now 2 won, 2 lost: r = 0.5
    hook.after_d_step(3, {})
    assert service.p.item() == pytest.approx(0.2) and hook.stats()["ada_held_out"] == 0.5


def test_a_distributed_run_sums_the_pairs_of_every_process():
    sent = []

    def sum_across(values):  # as if a second process had 8 pairs, all lost
        sent.append(list(values))
        return [values[0] - 8.0, values[1] + 8.0]

    hook = AdaptiveAugment(target=0.1, kimg=0.1, interval=1, batch_size=10, signal="held-out")
    service = Augment("xflip", p=0.5, adaptive=True)
    hook.setup(TrainingContext(recipe=Recipe(), device=torch.device("cpu"), augment=service, world_size=2,
                               sum_across=sum_across))
    hook.observe_held_out(torch.tensor([5.0, 6.0]), torch.tensor([0.0, 1.0, 2.0, 3.0]))  # 8 pairs won: r 1 alone
    hook.after_d_step(0, {})
    assert sent == [[8.0, 8.0]]
    # r = (8 - 8) / (8 + 8) = 0 < 0.1: p goes down by 10 * 1 / 100
    assert hook.stats()["ada_held_out"] == 0.0 and service.p.item() == pytest.approx(0.4)


# ---------------------------------------------------------------------------------------------------------------------
# which images are held back


def test_the_held_back_set_is_seeded_disjoint_and_complete():
    train, held = split_held_out(100, 12, seed=3)
    assert len(held) == 12 and len(train) == 88
    assert sorted(torch.cat([train, held]).tolist()) == list(range(100))
    again_train, again_held = split_held_out(100, 12, seed=3)
    assert torch.equal(held, again_held) and torch.equal(train, again_train)
    assert not torch.equal(split_held_out(100, 12, seed=4)[1], held)
    assert held.tolist() != list(range(12))  # a permutation's, not the first images


def test_how_many_are_held_back():
    ada = {"augment": "xflip", "ada_target": 0.05, "batch_size": 8}
    assert held_out_count(Recipe(**ada), 5000) == 256  # 10 %, at most 256
    assert held_out_count(Recipe(**ada), 1000) == 100
    assert held_out_count(Recipe(**ada), 40) == 8  # at least 8
    assert held_out_count(Recipe(**ada, ada_holdout=20), 5000) == 20
    assert held_out_count(Recipe(**ada, ada_signal="train"), 5000) == 0
    assert held_out_count(Recipe(), 5000) == 0  # no ADA
    with pytest.raises(ConfigError, match=r"^ADA's held-out signal holds back the automatic 8 of the 15 images, "
                                          r"which leaves 7 to train on, fewer than the batch size 8; lower"):
        held_out_count(Recipe(**ada), 15)


def unique_folder(root: Path, n: int = 40) -> Path:
    """`n` grey images, each of one value of its own (10, 15, 20, ...); even values in class "a", odd in "b"."""
    for i in range(n):
        value = 10 + 5 * i
        folder = root / ("a" if value % 2 == 0 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((28, 28), value, dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return root


@pytest.mark.parametrize("stream", [False, True], ids=["in-memory", "streamed"])
def test_held_back_images_are_never_in_a_training_batch_and_keep_their_labels(tmp_path, stream):
    folder = unique_folder(tmp_path / "data")
    spec = f"stream:{folder}" if stream else str(folder)
    dataset = open_dataset(spec, img_size=28, channels=1, workers=0)
    options = RunOptions(data=spec, device="cpu", data_workers=0 if stream else None)
    recipe = Recipe(batch_size=8, augment="xflip", ada_target=0.05, ada_holdout=6)
    arch = get_architecture("dcgan")
    torch.manual_seed(0)
    model = build_model("dcgan", arch.make_config(None, **tiny_config("dcgan")))
    trainer = Trainer(model, recipe, dataset, options, tmp_path / "run")
    try:
        assert trainer.held_out is not None and len(trainer.held_out) == 6
        held_values = {int(v) for v in trainer.held_out.images[:, 0, 0, 0]}
        assert all((trainer.held_out.images == trainer.held_out.images[:, :, :1, :1]).flatten(1).all(1))
        assert len(held_values) == 6
        # their labels: the class of their value
        labels = trainer.held_out.labels.tolist()
        assert [int(v % 2 == 1) for v in trainer.held_out.images[:, 0, 0, 0].tolist()] == labels
        seen: set[int] = set()
        for index in range(3 * (34 // 8)):  # three epochs of the 34 images trained on
            x, y = trainer.batches.get(index)
            values = {round((float(v) + 1) * 127.5) for v in x[:, 0, 0, 0]}
            assert not values & held_values, f"batch {index} holds a held-back image"
            assert [int(v % 2 == 1) for v in (x[:, 0, 0, 0] + 1).mul(127.5).round().long().tolist()] == y.tolist()
            seen |= values
        assert seen == {10 + 5 * i for i in range(40)} - held_values  # every other image is trained on
        # the same images on another start (a resume, another process): seeded by the run's seed and the data size
        again = Trainer(model, recipe, dataset, options, tmp_path / "again")
        assert torch.equal(again.held_out.images, trainer.held_out.images)
        again.release()
    finally:
        trainer.release()


# ---------------------------------------------------------------------------------------------------------------------
# runs: what they record and what they refuse

ADA = {"augment": "xflip,translation", "ada_target": 0.05, "ada_kimg": 0.1, "ada_interval": 1}


def test_a_run_records_how_many_images_it_held_back(tmp_path):
    tiny_train("dcgan", tmp_path / "auto", steps=1, recipe=ADA)
    tiny_train("dcgan", tmp_path / "twenty", steps=1, recipe={**ADA, "ada_holdout": 20})
    tiny_train("dcgan", tmp_path / "r_t", steps=1, recipe={**ADA, "ada_signal": "train"})
    held = {}
    for name in ("auto", "twenty", "r_t"):
        plan = json.loads((tmp_path / name / "config.json").read_text())
        card = json.loads((tmp_path / name / "model" / "config.json").read_text())
        held[name] = plan["data"]["held_out"], card["training"].get("held_out", 0)
        assert plan["data"]["images"] == 5000
    assert held == {"auto": (256, 256), "twenty": (20, 20), "r_t": (0, 0)}


@pytest.mark.parametrize("signal", ["held-out", "train"])
def test_ada_is_refused_under_the_wasserstein_loss_where_no_signal_was_shown_to_work(tmp_path, signal):
    with pytest.raises(ConfigError) as info:
        tiny_train("dcgan", tmp_path / "run", steps=1,
                   recipe={**ADA, "loss": "wasserstein", "gp_weight": 10.0, "ada_signal": signal})
    message = str(info.value)
    assert "\n" not in message and message.startswith("adaptive augmentation is refused under the wasserstein loss")
    assert message.endswith("augment D's inputs with a fixed augment_p instead, or use another loss")
    assert not (tmp_path / "run").exists()
    fixed = {k: v for k, v in ADA.items() if not k.startswith("ada_")} | {"augment_p": 0.3}
    tiny_train("dcgan", tmp_path / "fixed", steps=1, recipe={**fixed, "loss": "wasserstein", "gp_weight": 10.0})


@pytest.mark.parametrize("loss", ["relativistic", "relativistic-average"])
def test_the_train_signal_is_refused_where_the_loss_has_no_decision_threshold(tmp_path, loss):
    with pytest.raises(ConfigError) as info:
        tiny_train("dcgan", tmp_path / "run", steps=1, recipe={**ADA, "loss": loss, "ada_signal": "train"})
    message = str(info.value)
    assert "\n" not in message and f"which the {loss} loss does not have" in message
    assert message.endswith("use ada_signal=held-out")
    assert not (tmp_path / "run").exists()
    tiny_train("dcgan", tmp_path / "held", steps=1, recipe={**ADA, "loss": loss})  # the held-out signal trains


def test_the_cli_refuses_the_train_signal_under_relativistic_with_exit_2_and_one_line(tmp_path):
    args = ["train", "--arch", "dcgan", "--steps", "1", "--batch-size", "8", "--device", "cpu", "--out", "run",
            "--set", "loss=relativistic", "--set", "augment=xflip", "--set", "ada_target=0.6",
            "--set", "ada_signal=train"]
    done = subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "ada_signal=train" in lines[0] and "use ada_signal=held-out" in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_ada_holdout_that_leaves_too_little_to_train_on_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"^ADA's held-out signal holds back ada_holdout=4995 of the 5000 images, "
                                          r"which leaves 5 to train on, fewer than the batch size 8"):
        tiny_train("dcgan", tmp_path / "run", steps=1, recipe={**ADA, "ada_holdout": 4995})
    assert not (tmp_path / "run").exists()  # refused after the data loaded: the folder it made is gone again
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds back ada_holdout=4995"):
        tiny_train("dcgan", tmp_path / "kept", steps=1, recipe={**ADA, "ada_holdout": 4995}, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["notes.txt"]  # a folder it did not make stays
    with pytest.raises(ConfigError, match="ada_holdout holds back images for ADA's held-out signal, which this "
                                          "recipe does not use"):
        Recipe(augment="xflip", ada_target=0.6, ada_signal="train", ada_holdout=10)
    with pytest.raises(ConfigError, match="ada_holdout must be 0"):
        Recipe(augment="xflip", ada_target=0.05, ada_holdout=-1)
