"""The Trainer's hyperparameters: their `custom_config` keys, defaults and allowed
values, and `parse`, which checks a `custom_config` against them.

`pipeline.configs`, the `colorizer` command and the pipeline take them from here.
Imports no TensorFlow, so that the command line stays quick to start.
"""
from typing import Any, Dict, Optional

# custom_config keys
BATCH_SIZE = 'batch_size'
LEARNING_RATE = 'learning_rate'
LR_SCHEDULE = 'lr_schedule'
LOSS = 'loss'
EPOCHS = 'epochs'
EMBEDDING_WEIGHTS = 'embedding_weights'
SHUFFLE_BUFFER = 'shuffle_buffer'
SEED = 'seed'
# Warm start (model.trainer.warm_start_base): from the newest complete version in
# SERVING_DIR, else from BASE_MODEL (a SavedModel or a serving folder); '' for neither.
SERVING_DIR = 'serving_dir'
BASE_MODEL = 'base_model'
# A warm-started run's own recipe: peak rate, steps (0: the run's train steps) and the
# share of them spent warming the rate up from 0.
WARM_LEARNING_RATE = 'warm_learning_rate'
WARM_STEPS = 'warm_steps'
WARM_WARMUP = 'warm_warmup'
# The pipeline's fingerprint of this training (hyperparameters, steps, base), which
# the exported model records with its records' (serving.trained_on_key).
TRAINING_FINGERPRINT = 'training_fingerprint'

# Learning-rate schedules (model.trainer.learning_rate)
CONSTANT = 'constant'  # the peak rate throughout
COSINE = 'cosine'      # a warm-up, then a cosine decay to 0
LR_SCHEDULES = (CONSTANT, COSINE)

# Losses (model.trainer.training_loss)
MSE = 'mse'            # mean squared error on ab
RARITY = 'rarity'      # weighted towards rare colours (model.losses.RarityWeightedMSE)
LOSSES = (MSE, RARITY)

# Embedding weights by name (model.embedding.resolve_weights); else an .h5 path or uri.
IMAGENET = 'imagenet'
RANDOM = 'none'        # seeded random weights, for tests
AUTO = 'auto'          # ImageNet when cached or downloadable, else random (the demo)

DEFAULTS: Dict[str, Any] = {
    BATCH_SIZE: 8,            # per replica
    LEARNING_RATE: 1e-3,      # Adam's (the peak, with the cosine schedule)
    LR_SCHEDULE: CONSTANT,
    LOSS: MSE,
    EPOCHS: 10,               # the training steps are spread over this many epochs
    EMBEDDING_WEIGHTS: IMAGENET,
    SHUFFLE_BUFFER: 256,
    SEED: 0,                  # of weights, shuffling and flips: a rerun trains alike
    SERVING_DIR: '',
    BASE_MODEL: '',
    WARM_LEARNING_RATE: 3e-4,  # docs/training.md, "Warm starts": chosen by measurement
    WARM_STEPS: 0,
    WARM_WARMUP: 0.1,
    TRAINING_FINGERPRINT: '',
}

_TYPES = {BATCH_SIZE: int, LEARNING_RATE: float, LR_SCHEDULE: str, LOSS: str, EPOCHS: int,
          EMBEDDING_WEIGHTS: str, SHUFFLE_BUFFER: int, SEED: int, SERVING_DIR: str,
          BASE_MODEL: str, WARM_LEARNING_RATE: float, WARM_STEPS: int, WARM_WARMUP: float,
          TRAINING_FINGERPRINT: str}
_ALLOWED = {LR_SCHEDULE: LR_SCHEDULES, LOSS: LOSSES}


def parse(custom_config: Optional[Dict[str, Any]]) -> Dict[str, Any]:
  """A Trainer's `custom_config` -> every hyperparameter, typed: the given values over
  DEFAULTS. Raises ValueError for an unknown key or a value that is not allowed."""
  unknown = sorted(set(custom_config or {}) - set(DEFAULTS))
  if unknown:
    raise ValueError(f'unknown hyperparameters {unknown}; known: {sorted(DEFAULTS)}')
  given = {**DEFAULTS, **(custom_config or {})}
  config = {key: _TYPES[key](value) for key, value in given.items()}
  for key, allowed in _ALLOWED.items():
    if config[key] not in allowed:
      raise ValueError(f'unknown {key} {config[key]!r}; one of {allowed}')
  return config
