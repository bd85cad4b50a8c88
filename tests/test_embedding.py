"""Embedding weights: resolution, fingerprints, and the refusal of mismatched weights."""
import dataclasses
import hashlib
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from model import embedding
from model import scaling

pytestmark = pytest.mark.fast


@pytest.fixture(scope='module')
def random_weights():
  return embedding.resolve_weights(embedding.RANDOM)


def test_random_weights_are_seeded_and_fingerprinted(random_weights):
  assert random_weights.is_random
  assert random_weights.fingerprint.startswith(embedding.RANDOM_INIT + ':')
  rebuilt = embedding._build(None)  # pylint: disable=protected-access
  assert f'random-init:{embedding.weights_sha256(rebuilt)}' == random_weights.fingerprint
  model = embedding.build_embedder(random_weights)
  assert model.input_shape == (None, scaling.EMBEDDING_INPUT_SIZE, scaling.EMBEDDING_INPUT_SIZE, 3)
  assert model.output_shape == (None, scaling.EMBEDDING_DIM)
  vectors = model(np.zeros((2, 299, 299, 3), np.float32), training=False).numpy()
  assert vectors.shape == (2, scaling.EMBEDDING_DIM)
  assert np.allclose(vectors.sum(axis=1), 1, atol=1e-3)


@pytest.fixture(scope='module')
def weights_file(random_weights, tmp_path_factory):
  """The random weights saved as an .h5 file, as a user would pre-stage ImageNet's."""
  path = str(tmp_path_factory.mktemp('weights') / 'inception_resnet_v2.h5')
  embedding.build_embedder(random_weights).save_weights(path)
  return path


def test_staged_weights_file_is_fingerprinted_by_its_sha256(random_weights, weights_file):
  path = weights_file
  staged = embedding.resolve_weights(path)
  assert staged.uri == path
  assert staged.fingerprint == hashlib.sha256(open(path, 'rb').read()).hexdigest()
  model = embedding.build_embedder(staged)
  assert embedding.weights_sha256(model) == random_weights.fingerprint.split(':')[1]


def test_mismatched_weights_are_refused(random_weights):
  other = dataclasses.replace(random_weights, fingerprint='random-init:0000')
  with pytest.raises(RuntimeError, match='fingerprint'):
    embedding.build_embedder(other)


def test_missing_weights_file_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match='no such file'):
    embedding.resolve_weights(str(tmp_path / 'missing.h5'))


def test_auto_falls_back_to_random_weights_when_imagenet_is_unavailable(monkeypatch):
  def offline():
    raise OSError('no network')  # What Keras's download raises on a machine without one.
  monkeypatch.setattr(embedding, 'imagenet_weights_file', offline)
  assert embedding.resolve_weights(embedding.AUTO).is_random
  with pytest.raises(OSError):
    embedding.resolve_weights(embedding.IMAGENET)  # Production stays strict.


def test_stage_weights_copies_and_verifies(weights_file, tmp_path, bucket, capsys, monkeypatch):
  """`colorizer stage-weights` to a bucket, written once, straight to its name; a
  worker's copy of it on its own disk is named by its sha256."""
  from commands import cli  # pylint: disable=import-outside-toplevel
  # The default source is the Keras cache, which Keras fills from the internet: here the
  # cached file is the random weights file.
  monkeypatch.setattr(embedding, 'imagenet_weights_file', lambda: weights_file)
  destination = f'{bucket}/weights/irv2.h5'
  assert cli.main(['colorizer', 'stage-weights', '--to', destination]) == 0
  assert f'--embedding-weights {destination}' in capsys.readouterr().out
  assert (embedding.resolve_weights(destination).fingerprint
          == embedding.resolve_weights(weights_file).fingerprint)
  assert cli.main(['colorizer', 'stage-weights', '--to', destination,
                   '--from', weights_file]) == 0  # Staged already: nothing to do.
  assert tf.io.gfile.listdir(f'{bucket}/weights') == ['irv2.h5']  # No partial, no folder.
  monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path / 'worker'))
  fingerprint = embedding.resolve_weights(destination).fingerprint
  local = embedding._local_copy(destination, fingerprint)  # pylint: disable=protected-access
  assert local == str(tmp_path / 'worker' / 'colorizer-weights' / f'{fingerprint}.h5')
  assert embedding.file_sha256(local) == fingerprint
  assert os.listdir(tmp_path / 'worker' / 'colorizer-weights') == [f'{fingerprint}.h5']

  not_weights = tmp_path / 'notes.h5'
  not_weights.write_text('not an HDF5 file')
  for args, message in (
      (['--to', str(tmp_path / 'irv2.bin')], 'ending in .h5'),
      (['--to', str(tmp_path / 'other.h5'), '--from', str(not_weights)],
       'does not load into Inception-ResNet-v2'),
      (['--to', destination, '--from', str(not_weights)], 'does not load'),
  ):
    assert cli.main(['colorizer', 'stage-weights', *args]) == 2
    assert message in capsys.readouterr().err
  monkeypatch.setattr(embedding, 'imagenet_weights_file', lambda: str(not_weights))
  assert cli.main(['colorizer', 'stage-weights', '--to', destination]) == 2
  assert 'already holds other weights' in capsys.readouterr().err
  assert not os.path.exists(tmp_path / 'other.h5')
