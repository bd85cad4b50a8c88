"""Inception-ResNet-v2, whose view of the gray photo is fused into the colorizer.

Ingestion embeds every photo once (the records carry the embedding) and the exported
model embeds inside the serving graph, so both must use the same weights. Each set of
weights therefore has a fingerprint, recorded with the ingested examples and checked
wherever the network is built:
- an .h5 weights file (ImageNet from the Keras cache, a local path, a gs:// uri): the
  sha256 of the file;
- random weights (`none`, for tests and offline demos): `random-init:` and the sha256 of
  the weights, which are seeded and so the same on every build.
"""
import dataclasses
import functools
import hashlib
import logging
import os
import socket
import tempfile
import uuid
from typing import Optional

import tensorflow as tf

from model import internals
from model import scaling
from model import storage
from model.hyperparameters import AUTO, IMAGENET, RANDOM  # the names resolve_weights takes

internals.leave_tf_keras_alone()  # Before any Keras 2 model is traced.

RANDOM_INIT = 'random-init'

_RANDOM_SEED = 0
_IMAGENET_FILE = 'inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5'
_IMAGENET_URL = ('https://storage.googleapis.com/tensorflow/keras-applications/'
                 'inception_resnet_v2/' + _IMAGENET_FILE)
_IMAGENET_MD5 = 'e693bd0210a403b3192acc6073ad2e96'  # The hash Keras itself checks.

_RANDOM_WARNING = """
******************************************************************************
  Embedding with RANDOM Inception-ResNet-v2 weights (--embedding-weights none).
  The pipeline runs end to end, but colour quality needs pretrained weights:
  use --embedding-weights imagenet, or a pre-staged .h5 file or gs:// uri.
******************************************************************************"""


@dataclasses.dataclass(frozen=True)
class EmbeddingWeights:
  """Where the embedding network's weights come from, and their fingerprint."""
  uri: Optional[str]  # The .h5 file to load; None for seeded random weights.
  fingerprint: str

  @property
  def is_random(self) -> bool:
    return self.uri is None


def resolve_weights(spec: str) -> EmbeddingWeights:
  """'imagenet' | 'none' | 'auto' | the path or gs:// uri of an .h5 file -> weights.

  'imagenet' downloads through Keras into ~/.keras/models once (the production path);
  'auto' (for the demo only) takes ImageNet when it is cached or downloadable and
  random weights otherwise, with a warning.
  """
  if spec == IMAGENET:
    path = imagenet_weights_file()
    return EmbeddingWeights(path, file_sha256(path))
  if spec == RANDOM:
    logging.warning(_RANDOM_WARNING)
    return EmbeddingWeights(None, _random_fingerprint())
  if spec == AUTO:
    try:
      return resolve_weights(IMAGENET)
    except Exception as e:  # pylint: disable=broad-except
      logging.warning('ImageNet weights for Inception-ResNet-v2 are neither cached nor '
                      'downloadable (%s); falling back to random weights.', e)
      return resolve_weights(RANDOM)
  if not tf.io.gfile.exists(spec):
    raise ValueError(f'--embedding-weights {spec!r}: no such file; expected "imagenet", '
                     '"none", or the path or gs:// uri of an Inception-ResNet-v2 .h5 file')
  return EmbeddingWeights(spec, file_sha256(spec))


def imagenet_weights_file() -> str:
  """The ImageNet weights in the Keras cache, downloading them there if missing."""
  previous = socket.getdefaulttimeout()
  socket.setdefaulttimeout(30)  # Fail, don't hang, where there is no network.
  try:
    return tf.keras.utils.get_file(_IMAGENET_FILE, _IMAGENET_URL, cache_subdir='models',
                                   file_hash=_IMAGENET_MD5)
  finally:
    socket.setdefaulttimeout(previous)


def stage_weights(destination: str, source: Optional[str] = None) -> EmbeddingWeights:
  """Copies Inception-ResNet-v2 weights to `destination` (a path or gs:// uri ending in
  .h5), so a cluster without internet egress can use `--embedding-weights destination`.

  `source` defaults to the ImageNet weights in the Keras cache (downloaded there first if
  missing, checked against Keras's md5); another file must load into the network. The
  copy is checked against the source's sha256 (and removed if it differs); staging the
  same file again is a no-op. A bucket gets the file straight under its name, in one
  upload (an object appears only once its upload is complete); a disk, under another
  name, then renamed.
  """
  if not destination.endswith('.h5'):
    raise ValueError(f'--to {destination!r}: name the destination file, ending in .h5 '
                     '(Keras reads weights files by their extension)')
  if source is None:
    source = imagenet_weights_file()
    expected = file_sha256(source)
  elif not tf.io.gfile.exists(source):
    raise ValueError(f'--from {source!r}: no such file')
  else:
    expected = file_sha256(source)
    try:
      _build(_local_copy(source, expected))
    except Exception as e:  # pylint: disable=broad-except
      raise ValueError(f'--from {source!r} does not load into Inception-ResNet-v2 '
                       f'(299x299, with the 1000-class top): {e}') from e
  if tf.io.gfile.exists(destination):
    if file_sha256(destination) == expected:
      return EmbeddingWeights(destination, expected)
    raise ValueError(f'--to {destination!r} already holds other weights; choose another '
                     'name (runs recorded with those weights refer to it)')
  if storage.is_object_store(destination):
    tf.io.gfile.copy(source, destination)
  else:
    tf.io.gfile.makedirs(os.path.dirname(destination))
    partial = f'{destination}.{uuid.uuid4().hex}.partial'
    tf.io.gfile.copy(source, partial)
    tf.io.gfile.rename(partial, destination)
  actual = file_sha256(destination)
  if actual != expected:
    tf.io.gfile.remove(destination)
    raise RuntimeError(f'{destination}: sha256 {actual} after copying, {expected} before')
  return EmbeddingWeights(destination, actual)


def file_sha256(uri: str) -> str:
  digest = hashlib.sha256()
  with tf.io.gfile.GFile(uri, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 22), b''):
      digest.update(chunk)
  return digest.hexdigest()


def weights_sha256(model: tf.keras.Model) -> str:
  digest = hashlib.sha256()
  for weight in model.weights:
    digest.update(weight.numpy().tobytes())
  return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _random_model() -> tf.keras.Model:
  """The seeded random network, built once per process (4 s a build): inference only."""
  return _build(None)


@functools.lru_cache(maxsize=1)
def _random_fingerprint() -> str:
  return f'{RANDOM_INIT}:{weights_sha256(_random_model())}'


def _build(weights_file: Optional[str]) -> tf.keras.Model:
  if weights_file is None:
    tf.keras.utils.set_random_seed(_RANDOM_SEED)
  size = scaling.EMBEDDING_INPUT_SIZE
  return tf.keras.applications.InceptionResNetV2(
      weights=weights_file, input_shape=(size, size, 3), include_top=True)


def _local_copy(uri: str, sha256: str) -> str:
  """Keras loads weights from a local file only: gs:// and other remote files are copied
  once per machine, named by their sha256. Each process copies into a partial file of
  its own and renames it into place, so that the processes of one machine (Dataflow's
  workers, the multi-processing DirectRunner) never publish each other's half-written
  copies."""
  if os.path.exists(uri):
    return uri
  local = os.path.join(tempfile.gettempdir(), 'colorizer-weights', f'{sha256}.h5')
  if not os.path.exists(local):
    os.makedirs(os.path.dirname(local), exist_ok=True)
    partial = f'{local}.{os.getpid()}-{uuid.uuid4().hex}.partial'
    try:
      tf.io.gfile.copy(uri, partial)
      os.replace(partial, local)
    finally:
      if os.path.exists(partial):
        os.remove(partial)
  return local


def build_embedder(weights: EmbeddingWeights) -> tf.keras.Model:
  """Inception-ResNet-v2 with `weights`: [N, 299, 299, 3] (`scaling.embedding_input`)
  -> [N, 1000]. Raises if the weights built do not match the fingerprint."""
  if weights.is_random:
    model = _random_model()
    actual = _random_fingerprint()
  else:
    local = _local_copy(weights.uri, weights.fingerprint)
    actual = file_sha256(local)
    model = _build(local)
  if actual != weights.fingerprint:
    raise RuntimeError(f'embedding weights fingerprint {actual} differs from the expected '
                       f'{weights.fingerprint}: these are not the weights the run chose')
  return model
