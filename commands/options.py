"""The flags that several `colorizer` commands share, defined once: ingestion's, the
pipeline's knobs (`run` and `compile`), the libraries' log and the model to use."""
import contextlib
from typing import Optional

from absl import flags

from model import decoding
from model import hyperparameters as hp
from pipeline import configs


def max_megapixels_flag(fv: flags.FlagValues) -> None:
  flags.DEFINE_float('max-megapixels', decoding.DEFAULT_MAX_MEGAPIXELS, 'Larger photos are '
                     'refused, judged from their header before any pixel is decoded.',
                     flag_values=fv)


def crops_flag(fv: flags.FlagValues) -> None:
  flags.DEFINE_integer('crops-per-image', configs.CROPS_PER_IMAGE, 'Examples written per '
                       'photo: the centred square, then squares of 1/2 to 1 times the short '
                       'side at random (but repeatable) positions. All crops of a photo go '
                       'to its split.', lower_bound=1, flag_values=fv)


def embedding_weights_flag(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('embedding-weights', hp.DEFAULTS[hp.EMBEDDING_WEIGHTS],
                      'Inception-ResNet-v2 weights: imagenet (downloads once through Keras), '
                      'none (random; colour quality needs real weights), auto (imagenet when '
                      'available, else none), or the path or gs:// uri of an .h5 file.',
                      flag_values=fv)


def eval_percent_flag(fv: flags.FlagValues) -> None:
  flags.DEFINE_integer('eval-percent', configs.EVAL_PERCENT, 'Percent of photos (chosen by '
                       'content hash, so stable across runs) in Split-eval.', flag_values=fv)


def beam_arg_flag(fv: flags.FlagValues, note: str = '') -> None:
  flags.DEFINE_multi_string('beam-arg', [], 'A Beam pipeline option, e.g. '
                            f'--beam-arg=--direct_num_workers=2; repeatable.{note}',
                            flag_values=fv)


def training_flags(fv: flags.FlagValues) -> None:
  """The pipeline's knobs, shared by `run` (this machine) and `compile` (a cluster)."""
  flags.DEFINE_integer('train-steps', configs.TRAIN_STEPS, 'Training steps.', flag_values=fv)
  flags.DEFINE_integer('eval-steps', configs.EVAL_STEPS, 'Validation steps per epoch.',
                       flag_values=fv)
  embedding_weights_flag(fv)
  flags.DEFINE_integer('batch-size', hp.DEFAULTS[hp.BATCH_SIZE], 'Batch size per replica.',
                       flag_values=fv)
  flags.DEFINE_float('learning-rate', hp.DEFAULTS[hp.LEARNING_RATE], 'Adam learning rate '
                     '(the peak, with --lr-schedule cosine).', flag_values=fv)
  flags.DEFINE_enum('lr-schedule', hp.DEFAULTS[hp.LR_SCHEDULE], hp.LR_SCHEDULES,
                    'constant, or cosine: a warm-up over the first 5% of the steps, then a '
                    'cosine decay to 0.', flag_values=fv)
  flags.DEFINE_enum('loss', hp.DEFAULTS[hp.LOSS], hp.LOSSES, 'mse (mean squared error), or rarity: '
                    'MSE weighted towards rarer, more saturated colours (Zhang et al. '
                    '2016), against the brown average of MSE colourizers.', flag_values=fv)
  flags.DEFINE_integer('epochs', hp.DEFAULTS[hp.EPOCHS], 'Epochs (checkpoints) the steps '
                       'are spread over.', flag_values=fv)
  flags.DEFINE_integer('seed', hp.DEFAULTS[hp.SEED], 'Seed of the initial weights, the '
                       'shuffling and the flips: the same photos and flags train the same '
                       'model.', flag_values=fv)
  flags.DEFINE_float('warm-learning-rate', hp.DEFAULTS[hp.WARM_LEARNING_RATE], 'A warm-started '
                     'run\'s peak learning rate.', flag_values=fv)
  flags.DEFINE_integer('warm-steps', hp.DEFAULTS[hp.WARM_STEPS], 'A warm-started run\'s '
                       'training steps (0: --train-steps).', lower_bound=0, flag_values=fv)
  flags.DEFINE_float('warm-warmup', hp.DEFAULTS[hp.WARM_WARMUP], 'A warm-started run\'s '
                     'share of its steps spent raising the rate from 0.', flag_values=fv)
  eval_percent_flag(fv)
  crops_flag(fv)
  flags.DEFINE_float('min-improvement-over-gray', configs.MIN_IMPROVEMENT_OVER_GRAY,
                     'Gate: ab-MSE must be at most (1 - this) x the gray baseline\'s.',
                     flag_values=fv)
  flags.DEFINE_float('max-regression', configs.MAX_REGRESSION, 'Gate: ab-MSE may exceed '
                     'the served model\'s by at most this share of it (0.01: 1%).',
                     flag_values=fv)
  flags.DEFINE_integer('keep-versions', configs.KEEP_VERSIONS, 'Pushed versions to keep.',
                       flag_values=fv)
  flags.DEFINE_integer('window-spans', configs.WINDOW_SPANS, 'With --data .../span-{SPAN}: '
                       'train on the newest this many spans (their eval splits are the '
                       'gate\'s).', lower_bound=1, flag_values=fv)
  flags.DEFINE_bool('warm-start', True, 'Start training from the served model (the newest '
                    'version in the serving directory); --nowarm-start: from the initial '
                    'weights.', flag_values=fv)
  flags.DEFINE_string('base-model', '', 'Fine-tune this model (a SavedModel exported by this '
                      'pipeline, or a serving folder) while nothing is served yet; the first '
                      'candidate must beat it on your eval photos.', flag_values=fv)
  flags.DEFINE_string('record-cache', None, 'Where ingestion keeps each photo\'s records, so '
                      'that no photo is decoded and embedded twice (default: '
                      f'<pipeline root>/{configs.RECORD_CACHE_DIR}; \'\' for none).',
                      flag_values=fv)
  beam_arg_flag(fv)


def pipeline_options(fv: flags.FlagValues) -> dict:
  """create_pipeline's keyword arguments from training_flags."""
  return dict(
      embedding_weights=fv['embedding-weights'].value, eval_percent=fv['eval-percent'].value,
      crops_per_image=fv['crops-per-image'].value,
      train_steps=fv['train-steps'].value, eval_steps=fv['eval-steps'].value,
      hyperparameters={hp.BATCH_SIZE: fv['batch-size'].value,
                       hp.LEARNING_RATE: fv['learning-rate'].value,
                       hp.LR_SCHEDULE: fv['lr-schedule'].value, hp.LOSS: fv['loss'].value,
                       hp.EPOCHS: fv['epochs'].value, hp.SEED: fv['seed'].value,
                       hp.WARM_LEARNING_RATE: fv['warm-learning-rate'].value,
                       hp.WARM_STEPS: fv['warm-steps'].value,
                       hp.WARM_WARMUP: fv['warm-warmup'].value},
      min_improvement_over_gray=fv['min-improvement-over-gray'].value,
      max_regression=fv['max-regression'].value, keep_versions=fv['keep-versions'].value,
      window_spans=fv['window-spans'].value, warm_start=fv['warm-start'].value,
      base_model=fv['base-model'].value, record_cache=fv['record-cache'].value)


def log_flag(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('log', None, 'Send the libraries\' messages (TensorFlow\'s C++ runtime, '
                      'Google\'s warnings) to this local file instead of the terminal; '
                      'errors still reach the terminal.', flag_values=fv)


def libraries_log(path: Optional[str]):
  """run_log.to_file(path) if a path is given (enter it before TensorFlow loads)."""
  if not path:
    return contextlib.nullcontext()
  from pipeline import run_log  # pylint: disable=import-outside-toplevel
  return run_log.to_file(path)


def model_flag(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('model', None, 'A SavedModel folder, or a serving folder of numbered '
                      'versions (the highest is used), local or gs://.', flag_values=fv,
                      required=True)
