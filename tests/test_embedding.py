"""Embedding weights: resolution, fingerprints, and the refusal of mismatched weights."""
import dataclasses
import hashlib

import numpy as np
import pytest

from model import embedding
from model import preprocessing as pp


@pytest.fixture(scope='module')
def random_weights():
  return embedding.resolve_weights(embedding.RANDOM)


def test_random_weights_are_seeded_and_fingerprinted(random_weights):
  assert random_weights.is_random
  assert random_weights.fingerprint.startswith(embedding.RANDOM_INIT + ':')
  assert embedding.resolve_weights(embedding.RANDOM) == random_weights  # Same on every build.
  model = embedding.build_embedder(random_weights)
  assert model.input_shape == (None, pp.EMBEDDING_INPUT_SIZE, pp.EMBEDDING_INPUT_SIZE, 3)
  assert model.output_shape == (None, pp.EMBEDDING_DIM)
  vectors = model(np.zeros((2, 299, 299, 3), np.float32), training=False).numpy()
  assert vectors.shape == (2, pp.EMBEDDING_DIM) and np.allclose(vectors.sum(axis=1), 1, atol=1e-3)


def test_staged_weights_file_is_fingerprinted_by_its_sha256(random_weights, tmp_path):
  path = str(tmp_path / 'inception_resnet_v2.h5')
  embedding.build_embedder(random_weights).save_weights(path)
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
