"""Training loops: mmengine's, minus what a CPU run need not pay for."""
from .pauseless_iter_based_train_loop import CyclingDataloaderIterator, PauselessIterBasedTrainLoop

__all__ = ['CyclingDataloaderIterator', 'PauselessIterBasedTrainLoop']
