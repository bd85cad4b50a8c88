"""The Trainer: its run_fn in the LocalDagRunner pipeline, the input pipeline, the
fingerprint check, and that it learns. (Kill-and-resume: tests/test_pipeline.py.)"""
import csv
import glob
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tfx import v1 as tfx

from conftest import TRAIN_CONFIG
from model import hyperparameters as hp
from model import records
from model import scaling
from model import serving
from model import trainer


def split_files(examples, split):
  return [os.path.join(examples.uri, f'Split-{split}', '*')]


def epochs_logged(model_run_dir):
  path = os.path.join(model_run_dir, trainer.TRAINING_LOG)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [int(row['epoch']) for row in csv.DictReader(f)]


def test_trainer_exports_a_serving_model_with_its_weights_fingerprint(trained):
  serving_dir = trained['serving_dir']
  assert os.path.exists(os.path.join(serving_dir, 'saved_model.pb'))
  with open(os.path.join(serving_dir, serving.WEIGHTS_FINGERPRINT_FILE)) as f:
    assert f.read() == trained['examples'].custom_properties['embedding_weights'].string_value
  loaded = tf.saved_model.load(serving_dir)
  assert set(loaded.signatures) == {'serving_default', 'prepare_image', 'from_l', 'from_examples',
                                    'evaluation_statistics', 'gray_statistics'}
  run_dir = trained['model_run'].uri
  assert epochs_logged(run_dir) == [0, 1, 2]
  with open(os.path.join(run_dir, trainer.TRAINING_LOG)) as f:
    curve = list(csv.DictReader(f))
  # Learning curves in the gate's units, next to the gray baseline's.
  for name in ('ab_mse', 'psnr', 'auc', 'colourfulness', 'ab_mse_vs_gray'):
    assert all(float(row[f'val_{name}']) >= 0 for row in curve), name
  assert len({row['val_gray_psnr'] for row in curve}) == 1  # The same batches every epoch.
  assert float(curve[-1]['val_ab_mse']) < float(curve[-1]['val_gray_ab_mse'])
  assert glob.glob(os.path.join(run_dir, '**', 'events.out.tfevents.*'), recursive=True)


def test_it_learns_colour_that_follows_from_the_image(trained):
  """On held-out photos (the eval split) the model's ab error is far below the gray
  baseline's (ab = 0) after 60 steps."""
  loaded = tf.saved_model.load(trained['serving_dir'])
  files = glob.glob(split_files(trained['examples'], 'eval')[0])
  examples = tf.constant([r.numpy() for r in tf.data.TFRecordDataset(files, 'GZIP')])
  assert examples.shape[0] >= 5
  predicted = loaded.signatures[serving.FROM_EXAMPLES](examples=examples)['ab'].numpy()
  truth = scaling.scale_ab(records.parse(examples)['ab']).numpy()
  model_mse = float(np.mean((predicted - truth) ** 2))
  gray_mse = float(np.mean(truth ** 2))
  print(f'held-out ab-MSE: model {model_mse:.4f}, gray baseline {gray_mse:.4f}, '
        f'ratio {model_mse / gray_mse:.3f}')
  assert model_mse < 0.3 * gray_mse


def test_input_fn_batches_parse_and_flip_consistently(trained):
  examples = trained['examples']
  dataset = trainer.input_fn(split_files(examples, 'train'), batch_size=4, training=True)
  inputs, ab = next(iter(dataset))
  assert inputs['l'].shape == (4, 256, 256, 1) and inputs['embedding'].shape == (4, 1000)
  assert ab.shape == (4, 256, 256, 2)
  assert -1 <= float(tf.reduce_min(inputs['l'])) and float(tf.reduce_max(inputs['l'])) <= 1
  # Flipped or not, colour still follows luminance: bright pixels are yellow (b > 0).
  bright = inputs['l'][..., 0] > 0.2
  assert float(tf.reduce_mean(tf.cast(tf.boolean_mask(ab[..., 1], bright) > 0, tf.float32))) > 0.95
  evaluation = trainer.input_fn(split_files(examples, 'eval'), batch_size=4, training=False)
  assert sum(int(batch[1].shape[0]) for batch in evaluation) == len(
      list(tf.data.TFRecordDataset(glob.glob(split_files(examples, 'eval')[0]), 'GZIP')))


def test_refuses_examples_embedded_with_other_weights(trained, tmp_path):
  copy = tmp_path / 'examples'
  shutil.copytree(trained['examples'].uri, copy)
  report = json.load(open(copy / records.REPORT_FILE))
  report['embedding_weights'] = 'a' * 64  # As if ingested with an ImageNet weights file.
  json.dump(report, open(copy / records.REPORT_FILE, 'w'))
  args = tfx.components.FnArgs(
      train_files=[str(copy / 'Split-train' / '*')], eval_files=[str(copy / 'Split-eval' / '*')],
      train_steps=1, eval_steps=1, serving_model_dir=str(tmp_path / 'serving'),
      model_run_dir=str(tmp_path / 'Trainer' / 'model_run' / '1'), custom_config=TRAIN_CONFIG)
  with pytest.raises(ValueError, match='embedded with weights'):
    trainer.run_fn(args)
  assert not os.path.exists(tmp_path / 'serving')


@pytest.mark.fast
def test_cosine_schedule_warms_up_then_decays_to_zero():
  assert trainer.learning_rate(2e-3, hp.CONSTANT, 100) == 2e-3
  schedule = trainer.learning_rate(2e-3, hp.COSINE, 200)
  rates = [float(schedule(step)) for step in (0, 5, 10, 105, 199, 200)]
  assert rates[0] == 0.0 and rates[1] == pytest.approx(1e-3) and rates[2] == pytest.approx(2e-3)
  assert rates[3] == pytest.approx(1e-3, rel=0.02)      # Half-way through the decay.
  assert rates[4] < 1e-6 and rates[5] == pytest.approx(0.0, abs=1e-9)
  with pytest.raises(ValueError, match='unknown learning-rate schedule'):
    trainer.learning_rate(1e-3, 'linear', 100)


def seeded_weights(examples, folder, seed):
  """The weights after 4 steps (batch 2) from trainer.train, in a folder of its own so
  that no BackupAndRestore backup is shared between trainings."""
  args = tfx.components.FnArgs(
      train_files=split_files(examples, 'train'), eval_files=split_files(examples, 'eval'),
      train_steps=4, eval_steps=0, serving_model_dir=str(folder / 'serving'),
      model_run_dir=str(folder / 'Trainer' / 'model_run' / '1'), custom_config={})
  try:
    return trainer.train(args, hp.parse({**TRAIN_CONFIG, hp.BATCH_SIZE: 2, hp.EPOCHS: 2,
                                         hp.SEED: seed})).get_weights()
  finally:
    tf.keras.mixed_precision.set_global_policy('float32')


def test_the_same_seed_trains_the_same_weights(trained, tmp_path):
  """Initial weights, shuffling and flips all follow the seed: two trainings agree to
  the bit; another seed trains other weights."""
  first, again, other = (seeded_weights(trained['examples'], tmp_path / name, seed)
                         for name, seed in (('first', 7), ('again', 7), ('other', 8)))
  assert len(first) == len(again) == len(other)
  differing = [i for i, (a, b) in enumerate(zip(first, again)) if not np.array_equal(a, b)]
  assert not differing, f'{len(differing)} of {len(first)} weight tensors differ'
  assert max(float(np.max(np.abs(a - b))) for a, b in zip(first, other)) > 1e-3
