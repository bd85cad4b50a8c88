"""The TFX Trainer's `run_fn`: trains the fusion colorizer on the ingested records and
exports the SavedModel that serving and the Evaluator use.

Use it as `tfx.components.Trainer(run_fn='model.trainer.run_fn', ...)`; hyperparameters
come through `custom_config` (`model.hyperparameters`), steps through TrainArgs /
EvalArgs.
"""
import contextlib
import hashlib
import json
import logging
import math
import os
import sys
from typing import Dict, Iterator, List, Optional, Tuple

import tensorflow as tf
import tqdm
# Not tfx.v1: a pipeline step imports this module (components/__init__.py says why).
from tfx.components.trainer import fn_args_utils

from model import embedding
from model import hyperparameters as hp
from model import losses
from model import metrics
from model import network
from model import records
from model import scaling
from model import serving

WARMUP_SHARE = 0.05  # of the steps, for the cosine schedule
TRAINING_LOG = 'training_log.csv'


def _to_model_inputs(features: Dict[str, tf.Tensor]) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
  inputs = {network.L_INPUT: scaling.scale_l(features['l']),
            network.EMBEDDING_INPUT: features['embedding']}
  return inputs, scaling.scale_ab(features['ab'])


def _flip(seed: tf.Tensor, inputs: Dict[str, tf.Tensor], ab: tf.Tensor):
  """Flips each example left-right, with probability 1/2, L and ab together. The
  embedding is kept: Inception-ResNet-v2 was itself trained with horizontal flips, so
  its class probabilities hardly change when a photo is mirrored. The coin is stateless,
  drawn from `seed` (the run's seed and the batch's index), so parallel calls repeat."""
  flip = tf.random.stateless_uniform([tf.shape(ab)[0], 1, 1, 1], seed) < 0.5
  l = inputs[network.L_INPUT]
  return ({network.L_INPUT: tf.where(flip, tf.reverse(l, [2]), l),
           network.EMBEDDING_INPUT: inputs[network.EMBEDDING_INPUT]},
          tf.where(flip, tf.reverse(ab, [2]), ab))


def input_fn(file_patterns: List[str], batch_size: int, training: bool,
             shuffle_buffer: int = 256, seed: Optional[int] = None) -> tf.data.Dataset:
  """GZIP TFRecord shards -> batches of ({'l', 'embedding'}, ab / 128).

  Shards are read in parallel and interleaved; records are parsed and dequantized in
  batches, and prefetched, so that the input pipeline stays ahead of the model.
  Training data is shuffled, repeated and augmented; evaluation data is read once, in
  order. With a `seed`, training batches come in the same order, flipped alike, every
  time.
  """
  files = [f for pattern in file_patterns for f in tf.io.gfile.glob(pattern)]
  if not files:
    raise ValueError(f'no record files match {file_patterns}')
  dataset = tf.data.Dataset.from_tensor_slices(files)
  if training:
    dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
  dataset = dataset.interleave(
      lambda f: tf.data.TFRecordDataset(f, compression_type=records.COMPRESSION),
      cycle_length=min(len(files), 8), num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=not training or seed is not None)
  if training:
    dataset = dataset.shuffle(shuffle_buffer, seed=seed).repeat()
  dataset = dataset.batch(batch_size, drop_remainder=training)
  dataset = dataset.map(lambda serialized: _to_model_inputs(records.parse(serialized)),
                        num_parallel_calls=tf.data.AUTOTUNE)
  if training:
    flip_seed = seed if seed is not None else int(tf.random.uniform([], 0, 2**31 - 1, tf.int64))

    def flip(index, batch):
      return _flip(tf.stack([tf.constant(flip_seed, tf.int64), index]), *batch)

    dataset = dataset.enumerate().map(flip, num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.prefetch(tf.data.AUTOTUNE)


def ingestion_report(file_patterns: List[str]) -> dict:
  """The report ingestion wrote next to the splits of these records (one Examples
  artifact's): it holds the embedding weights' and the records' fingerprints."""
  reports = {}
  for pattern in file_patterns:
    report = os.path.join(os.path.dirname(os.path.dirname(pattern)), records.REPORT_FILE)
    if not tf.io.gfile.exists(report):
      raise ValueError(f'{report} is missing: these records did not come from the '
                       'ingestion job, so their embedding weights are unknown')
    with tf.io.gfile.GFile(report) as f:
      loaded = json.load(f)
    reports[loaded['embedding_weights']] = loaded
  if len(reports) != 1:
    raise ValueError(f'the records were embedded with different weights: {sorted(reports)}')
  return reports.popitem()[1]


def cpu_has_bfloat16(cpuinfo: str = '/proc/cpuinfo') -> bool:
  """Whether the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), which oneDNN
  uses for twice the float32 convolution throughput. Elsewhere bfloat16 is emulated,
  and slower."""
  try:
    with open(cpuinfo) as f:
      flags = next((line.split(':', 1)[1].split() for line in f if line.startswith('flags')), [])
  except OSError:
    return False
  return 'avx512_bf16' in flags or 'amx_bf16' in flags


def distribution_strategy() -> Tuple[tf.distribute.Strategy, str]:
  """(strategy, Keras precision policy): MirroredStrategy over the visible GPUs in mixed
  float16; without GPUs the default (one device) strategy, in mixed bfloat16 on CPUs
  that compute it natively, else in float32. Build and train under `precision(policy)`."""
  gpus = tf.config.list_logical_devices('GPU')
  if gpus:
    return tf.distribute.MirroredStrategy([gpu.name for gpu in gpus]), 'mixed_float16'
  return tf.distribute.get_strategy(), 'mixed_bfloat16' if cpu_has_bfloat16() else 'float32'


@contextlib.contextmanager
def precision(policy: str) -> Iterator[None]:
  """Keras's global precision policy for the models built inside (the weights stay
  float32); the one before is restored on leaving."""
  before = tf.keras.mixed_precision.global_policy()
  tf.keras.mixed_precision.set_global_policy(policy)
  try:
    yield
  finally:
    tf.keras.mixed_precision.set_global_policy(before)


def _backup_dir(fn_args: fn_args_utils.FnArgs, config: dict, base: Optional[str]) -> str:
  """A folder that outlives this Trainer execution, keyed by what it trains on and from,
  so a re-run after a kill resumes from the last epoch instead of starting over."""
  key = json.dumps([sorted(fn_args.train_files), fn_args.train_steps, config, base],
                   sort_keys=True)
  trainer_root = os.path.dirname(os.path.dirname(fn_args.model_run_dir.rstrip('/')))
  return os.path.join(trainer_root, 'backup', hashlib.sha256(key.encode()).hexdigest()[:16])


def learning_rate(peak: float, schedule: str, steps: int, warmup_share: Optional[float] = None):
  """`constant`: `peak` throughout (after a linear warm-up from 0 over `warmup_share`
  of the steps, if any). `cosine`: a linear warm-up to `peak` over `warmup_share` of the
  steps (WARMUP_SHARE by default), then a cosine decay to 0 at the last step."""
  if schedule not in hp.LR_SCHEDULES:
    raise ValueError(f'unknown learning-rate schedule {schedule!r}; one of {hp.LR_SCHEDULES}')
  if warmup_share is None:
    warmup_share = WARMUP_SHARE if schedule == hp.COSINE else 0.0
  warmup = int(steps * warmup_share)
  if schedule == hp.CONSTANT and not warmup:
    return peak
  # alpha 1: after the warm-up the rate stays at `peak` (constant) instead of decaying.
  return tf.keras.optimizers.schedules.CosineDecay(
      0.0, max(1, steps - warmup), warmup_target=peak, warmup_steps=warmup,
      alpha=1.0 if schedule == hp.CONSTANT else 0.0)


def training_loss(name: str, train_files: List[str]):
  """`mse` (mean squared error on ab) or `rarity` (losses.RarityWeightedMSE, its colour distribution
  counted on `train_files`)."""
  if name == hp.MSE:
    return 'mse'
  if name == hp.RARITY:
    return losses.RarityWeightedMSE(losses.ab_distribution(train_files))
  raise ValueError(f'unknown loss {name!r}; one of {hp.LOSSES}')


def compiled_colorizer(rate, loss='mse') -> tf.keras.Model:
  """The fusion colorizer, compiled for training: Adam at `rate` (a number or a
  schedule) on `loss` of ab / 128."""
  colorizer = network.build_colorizer()
  colorizer.compile(optimizer=tf.keras.optimizers.Adam(rate), loss=loss)
  return colorizer


class ValidationMetrics(tf.keras.callbacks.Callback):
  """After each epoch, the Evaluator's metrics (model.metrics) of the model and of the
  gray baseline on the same validation batches every time, logged as `val_<name>`:
  learning curves in training_log.csv and TensorBoard, in the units of the gate and
  the report."""

  def __init__(self, batches: tf.data.Dataset):
    super().__init__()
    self._batches = batches

  def on_epoch_end(self, epoch, logs=None):
    scores = metrics.create_all()
    for inputs, ab in self._batches:
      predicted = self.model(inputs, training=False)
      label = tf.concat([inputs[network.L_INPUT], ab], axis=-1)
      for metric in scores.values():
        metric.update_state(label, predicted)
    if logs is not None:
      logs.update({f'val_{name}': float(metric.result()) for name, metric in scores.items()})


class Progress(tf.keras.callbacks.Callback):
  """A progress bar on stdout: step x/y, the loss, the time left. (Keras' own verbose
  output prints a line per epoch, with no time left for the whole run.)"""

  def __init__(self, steps_per_epoch: int, epochs: int):
    super().__init__()
    self._steps_per_epoch, self._epochs = steps_per_epoch, epochs
    self._bar = None

  def on_epoch_begin(self, epoch, logs=None):
    if self._bar is None:  # Epochs before this one were restored from a backup.
      self._bar = tqdm.tqdm(total=self._steps_per_epoch * self._epochs,
                            initial=self._steps_per_epoch * epoch, desc='Training',
                            unit='step', file=sys.stdout, dynamic_ncols=True)

  def on_train_batch_end(self, batch, logs=None):
    if logs and 'loss' in logs:
      self._bar.set_postfix(loss=f'{float(logs["loss"]):.4f}', refresh=False)
    self._bar.update(1)

  def on_train_end(self, logs=None):
    if self._bar is not None:
      self._bar.close()


def warm_start_base(config: dict) -> Optional[str]:
  """The exported model a run starts from: the served model (the newest complete
  version in config[SERVING_DIR]: only a blessed, pushed candidate is ever there),
  else config[BASE_MODEL] (a SavedModel, or a serving folder's newest version), else
  None: the seeded initial weights."""
  served = serving.served_model(config[hp.SERVING_DIR]) if config[hp.SERVING_DIR] else None
  if served:
    return served
  return serving.latest_version(config[hp.BASE_MODEL]) if config[hp.BASE_MODEL] else None


def base_weights(base: str, fingerprint: str) -> List:
  """The colorizer's weights in the exported model `base`, which must have been
  exported with the embedding weights this run embeds with."""
  exported_with = serving.weights_fingerprint(base)
  if exported_with != fingerprint:
    raise ValueError(
        f'cannot warm-start from {base}: it was exported with embedding weights '
        f'{exported_with or "(unrecorded)"}, and this run embeds with {fingerprint}, so its '
        'colorizer learned from other embeddings. Train with the same --embedding-weights, '
        'or start afresh in another serving directory.')
  return serving.colorizer_weights(base)


def recipe(config: dict, train_steps: int, warm: bool) -> Tuple[float, int, Optional[float]]:
  """(peak learning rate, steps, warm-up share): a warm-started run's own recipe
  (docs/training.md, "Warm starts"), else the run's."""
  if not warm:
    return config[hp.LEARNING_RATE], train_steps, None
  return (config[hp.WARM_LEARNING_RATE], config[hp.WARM_STEPS] or train_steps,
          config[hp.WARM_WARMUP])


def train(fn_args: fn_args_utils.FnArgs, config: dict, base: Optional[str] = None,
          start_weights: Optional[List] = None) -> tf.keras.Model:
  """Trains the colorizer on fn_args' records with `config` (`hyperparameters.parse`'s),
  from `start_weights` (those of the exported model `base`) or the seeded initial
  weights. Seeded by config[SEED], so that the same records, config and start give the
  same weights."""
  seed = config[hp.SEED]
  tf.keras.utils.set_random_seed(seed)
  batch_size = config[hp.BATCH_SIZE]
  rate, train_steps, warmup_share = recipe(config, fn_args.train_steps or 0,
                                           start_weights is not None)
  epochs = max(1, min(config[hp.EPOCHS], train_steps or 1))
  steps_per_epoch = math.ceil(train_steps / epochs)
  strategy, policy = distribution_strategy()
  with precision(policy):  # Until the model is trained: export builds float32 copies.
    global_batch = batch_size * strategy.num_replicas_in_sync
    train_batches = input_fn(fn_args.train_files, global_batch, training=True,
                             shuffle_buffer=config[hp.SHUFFLE_BUFFER], seed=seed)
    loss = training_loss(config[hp.LOSS], fn_args.train_files)
    with strategy.scope():
      colorizer = compiled_colorizer(
          learning_rate(rate, config[hp.LR_SCHEDULE], steps_per_epoch * epochs, warmup_share),
          loss)
      for variable, value in zip(colorizer.variables, start_weights or []):
        variable.assign(value)

    callbacks = []
    if fn_args.eval_steps:
      callbacks.append(ValidationMetrics(
          input_fn(fn_args.eval_files, global_batch, training=False).take(fn_args.eval_steps)))
    backup = _backup_dir(fn_args, config, base)
    callbacks += [
        tf.keras.callbacks.BackupAndRestore(backup),
        tf.keras.callbacks.TensorBoard(fn_args.model_run_dir, update_freq='epoch'),
        tf.keras.callbacks.CSVLogger(os.path.join(fn_args.model_run_dir, TRAINING_LOG),
                                     append=True),
        Progress(steps_per_epoch, epochs),
    ]
    if steps_per_epoch:
      logging.info('Training %d steps (%d epochs, batch %d, seed %d, from %s) with %s over '
                   '%d replica(s); backups in %s', train_steps, epochs, global_batch, seed,
                   base or 'the initial weights', type(strategy).__name__,
                   strategy.num_replicas_in_sync, backup)
      colorizer.fit(train_batches, epochs=epochs, steps_per_epoch=steps_per_epoch,
                    callbacks=callbacks, verbose=0)
    return colorizer


def run_fn(fn_args: fn_args_utils.FnArgs) -> None:
  """Trains the colorizer and exports it (with its embedding network) for serving."""
  config = hp.parse(fn_args.custom_config)
  weights = embedding.resolve_weights(config[hp.EMBEDDING_WEIGHTS])
  report = ingestion_report(fn_args.train_files + fn_args.eval_files)
  ingested_with = report['embedding_weights']
  if ingested_with != weights.fingerprint:
    raise ValueError(
        f'the examples were embedded with weights {ingested_with}, but the model would be '
        f'exported with {weights.fingerprint} ({config[hp.EMBEDDING_WEIGHTS]}): serving would '
        'see other embeddings than training. Re-ingest, or train with the same weights.')
  base = warm_start_base(config)
  start = base_weights(base, weights.fingerprint) if base else None
  print(f'Warm-starting from {base}' if base else
        'Training from the initial weights (no model is served yet)')
  colorizer = train(fn_args, config, base, start)
  serving.export(colorizer, weights, fn_args.serving_model_dir, warm_started_from=base,
                 trained_on=serving.trained_on_key(report.get('records_fingerprint', ''),
                                                   config[hp.TRAINING_FINGERPRINT]))
