"""The shared trainer: one loop for every architecture."""

from ganzoo.trainer.loop import RunOptions, Trainer, TrainingDiverged, TrainingInterrupted
from ganzoo.trainer.run import train

__all__ = ["RunOptions", "Trainer", "TrainingDiverged", "TrainingInterrupted", "train"]
