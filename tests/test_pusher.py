"""`push_atomically` to a bucket (the emulated one of scripts/with-gcs-emulator, through
TensorFlow's gs:// client), with every file copy watched, and pushes that die halfway.
"""
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.dsl.io import fileio

from components import pusher
from model import serving


class Scale(tf.Module):

  def __init__(self, factor: float):
    super().__init__()
    self.factor = tf.Variable(np.full([64], factor, np.float32))

  @tf.function(input_signature=[tf.TensorSpec([64], tf.float32)])
  def __call__(self, x):
    return {'y': x * self.factor}


def saved_model(folder, factor: float) -> str:
  path = str(folder / f'model-{factor:g}')
  tf.saved_model.save(Scale(factor), path)
  return path


def files_under(folder: str) -> dict:
  """{relative path: bytes} of every file below `folder` (local or gs://)."""
  paths = [os.path.join(root, name) for root, _, names in fileio.walk(folder) for name in names]
  return {os.path.relpath(path, folder): fileio.open(path, 'rb').read() for path in paths}


@pytest.fixture(name='models', scope='module')
def fixture_models(tmp_path_factory):
  folder = tmp_path_factory.mktemp('models')
  return [saved_model(folder, factor) for factor in (1.0, 2.0, 3.0)]


@pytest.fixture(name='serving_dir')
def fixture_serving_dir(bucket):
  return f'{bucket}/serving'


def check_versions(serving_dir, models):
  """Every numbered version either has every file of one of `models` or no
  saved_model.pb (the file a server waits for)."""
  sources = [files_under(model) for model in models]
  for version in serving.numbered_versions(serving_dir):
    folder = os.path.join(serving_dir, str(version))
    if not fileio.exists(os.path.join(folder, 'saved_model.pb')):
      continue
    there = files_under(folder)
    assert any(all(there.get(name) == data for name, data in source.items())
               for source in sources), f'version {version} is loadable but incomplete'


@pytest.fixture(name='watched_copy')
def fixture_watched_copy(monkeypatch, models):
  """fileio.copy, checking the serving folder after every file; `fail_on` names a file
  whose copy raises instead, as a push killed there would."""
  real_copy = fileio.copy
  state = {'serving_dir': None, 'fail_on': None, 'copies': 0}

  def copy(src, dst, overwrite=False):
    if state['fail_on'] and os.path.basename(dst) == state['fail_on']:
      raise OSError(f'killed while copying {dst}')
    real_copy(src, dst, overwrite)
    state['copies'] += 1
    check_versions(state['serving_dir'], models)

  monkeypatch.setattr(fileio, 'copy', copy)
  return state


def test_every_version_is_complete_or_not_loadable_after_every_file(
    models, serving_dir, watched_copy):
  watched_copy['serving_dir'] = serving_dir
  pushed = [pusher.push_atomically(model, serving_dir, keep_versions=0) for model in models]
  assert watched_copy['copies'] >= 3 * len(files_under(models[0]))
  assert pusher.push_atomically(models[-1], serving_dir, keep_versions=0) == pushed[-1]
  assert serving.numbered_versions(serving_dir) == [int(os.path.basename(p)) for p in pushed]
  for model, path in zip(models, pushed):
    assert pusher.is_complete(path)
    assert files_under(path) == {**files_under(model), pusher.PUSHED_FROM: model.encode()}
    loaded = tf.saved_model.load(path)
    assert float(loaded(tf.ones([64]))['y'][0]) == float(loaded.factor[0])
  # Retention: the two newest are kept, whole; the older ones are gone, every object.
  kept = [pushed[-1], pusher.push_atomically(models[0], serving_dir, keep_versions=2)]
  assert serving.numbered_versions(serving_dir) == [int(os.path.basename(p)) for p in kept]
  assert not fileio.glob(f'{pushed[0]}*') and not fileio.glob(f'{pushed[1]}*')


def test_a_push_killed_before_saved_model_pb_is_finished_by_the_next(
    models, serving_dir, watched_copy):
  watched_copy['serving_dir'] = serving_dir
  first = pusher.push_atomically(models[0], serving_dir, keep_versions=0)
  watched_copy['fail_on'] = 'saved_model.pb'
  with pytest.raises(OSError, match='killed'):
    pusher.push_atomically(models[1], serving_dir, keep_versions=0)
  [_, half] = serving.numbered_versions(serving_dir)
  half = os.path.join(serving_dir, str(half))
  assert not pusher.is_complete(half)
  assert fileio.exists(os.path.join(half, 'variables'))

  watched_copy['fail_on'] = None
  again = pusher.push_atomically(models[1], serving_dir, keep_versions=0)
  assert again == half  # The same version, finished: not a new one beside it.
  assert pusher.is_complete(again)
  assert files_under(again) == {**files_under(models[1]), pusher.PUSHED_FROM: models[1].encode()}
  assert serving.numbered_versions(serving_dir) == [int(os.path.basename(p)) for p in (first, again)]

  # Killed again, then another model is pushed: it takes the unfinished version's place.
  watched_copy['fail_on'] = 'saved_model.pb'
  with pytest.raises(OSError, match='killed'):
    pusher.push_atomically(models[0], serving_dir, keep_versions=0)
  watched_copy['fail_on'] = None
  last = pusher.push_atomically(models[2], serving_dir, keep_versions=0)
  assert len(serving.numbered_versions(serving_dir)) == 3
  assert files_under(last) == {**files_under(models[2]), pusher.PUSHED_FROM: models[2].encode()}
