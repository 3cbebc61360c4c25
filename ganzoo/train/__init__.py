"""The shared trainer: one loop for every architecture."""

from ganzoo.train.loop import RunOptions, Trainer, TrainingDiverged, TrainingInterrupted
from ganzoo.train.run import train

__all__ = ["RunOptions", "Trainer", "TrainingDiverged", "TrainingInterrupted", "train"]
