"""tinygrad_rnn.optim — optimizers and learning-rate schedulers, as in torch.optim. Read after nn/.

optimizer.py     the Optimizer base: parameter groups, state, state_dict
algorithms.py    SGD, Adam, AdamW, RMSprop, Adagrad (PyTorch's update rules)
lr_scheduler.py  StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LambdaLR, ReduceLROnPlateau
"""

from . import lr_scheduler
from .algorithms import SGD, Adagrad, Adam, AdamW, RMSprop
from .optimizer import Optimizer

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
