"""The exported SavedModel: the trained colorizer with its embedding network inside, and
its signatures.

- `serving_default`: `image_bytes` (a batch of encoded JPEG, PNG, GIF or BMP images of
  any size; `{"b64": ...}` under TF Serving's REST API) -> `colorized_bytes`, each
  input's colour photo at its own resolution, in the input's format: JPEG for a JPEG,
  PNG for anything else (`full_resolution.encoded_like`). Inside: decode; the image at
  256x256 for the encoder and its gray image at 299x299 for Inception-ResNet-v2 (the
  same weights as at ingestion; both networks run once on the whole batch); the
  predicted ab desaturated where sRGB cannot show it (at 256x256, rather than clipping,
  which would change the lightness), upsampled bilinearly to full size and recombined
  with the full-resolution L; Lab to RGB; encoded. (The `_bytes` suffixes make TF
  Serving's REST API base64 the strings.)
- `from_examples`: serialized tf.Examples (the ingested records) -> `ab`, the predicted
  ab / 128 [N, 256, 256, 2] (the report's pictures).
- `evaluation_statistics`: serialized tf.Examples -> `statistics`, each example's
  sufficient statistics for the model's colours against the record's own
  (`metrics.statistics`, [N, 155] float32): the Evaluator's predictions.
- `gray_statistics`: serialized tf.Examples -> `gray_statistics`, the same for the gray
  baseline (ab = 0), which depend on the records alone: the Evaluator's labels. TFMA
  keeps every label and prediction of a bundle until its metrics add them up, so these
  are the few hundred numbers the metrics need rather than the 256x256 maps (704 KB an
  example) that they come from (docs/performance.md, "The Evaluator at scale"). Their
  statistics are XLA-compiled, which TF Serving refuses unless started with
  `--xla_cpu_compilation_enabled`: they are for the Evaluator, in Python.
- `prepare_image`: encoded images -> `l` [N, 256, 256, 1] (L in [0, 100]) and
  `embedding` [N, 1000]: what the colorizer sees, to check serving against ingestion.
- `from_l`: `l` [N, 256, 256, 1] (L in [0, 100], as the records store it) -> `ab`, the
  predicted ab / 128, embedding computed inside: `colorizer evaluate` scores photos
  that were never ingested with it.

The fingerprint of the embedding weights is written to
`assets.extra/embedding_weights`.
"""
import functools
import hashlib
import os
import types
from typing import Dict, List, Optional, Set

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from model import embedding
from model import full_resolution
from model import graph_decoding
from model import metrics
from model import network
from model import records
from model import scaling

WEIGHTS_FINGERPRINT_FILE = os.path.join('assets.extra', 'embedding_weights')
# The model a warm-started Trainer began from (its path), beside it.
WARM_STARTED_FROM_FILE = os.path.join('assets.extra', 'warm_started_from')
# What it was trained on: the records' fingerprint and the training's (trained_on_key).
TRAINED_ON_FILE = os.path.join('assets.extra', 'trained_on')
INPUT_KEY = 'image_bytes'
OUTPUT_KEY = 'colorized_bytes'

# The signatures' names (see above).
SERVING_DEFAULT = 'serving_default'
PREPARE_IMAGE = 'prepare_image'
FROM_L = 'from_l'
FROM_EXAMPLES = 'from_examples'
EVALUATION_STATISTICS = 'evaluation_statistics'
GRAY_STATISTICS = 'gray_statistics'
SIGNATURES = (SERVING_DEFAULT, PREPARE_IMAGE, FROM_L, FROM_EXAMPLES, EVALUATION_STATISTICS,
              GRAY_STATISTICS)
"""The signatures `export` writes (each the `_Colorize` method of its name)."""
TRANSFORM_FEATURES = 'transform_features'  # exports before the statistics: the labels
EVALUATOR_MODEL_TYPE = 'tf_generic'  # tfma.TF_GENERIC: signatures, not a Keras model
# The graphs below use TensorFlow's own control flow (tf.while_loop, tf.map_fn, tf.cond):
# AutoGraph has nothing to rewrite, and tracing them unconverted takes ~3 s off each
# export (docs/performance.md, "Start-up of a pipeline step").
_graph_function = functools.partial(tf.function, autograph=False)


class _Colorize(tf.Module):
  """The graph functions of the signatures, over one colorizer and one embedder.

  The two networks are traced once each, with batch-polymorphic signatures, and the
  signatures call those traces. The module tracks the networks' variables, not the
  Keras objects: saving Keras layers would trace every one of Inception-ResNet-v2's
  ~800 layers again and take minutes. Nor does it track the two networks' functions
  (they sit in a plain namespace): saving would trace each once more, outside the
  signatures, to keep it as a function of its own, which nothing calls (a quarter of
  the export's time), and loading would restore it.
  """

  def __init__(self, colorizer: tf.keras.Model, embedder: tf.keras.Model):
    super().__init__()
    size = scaling.IMAGE_SIZE
    self._network_variables = list(colorizer.variables) + list(embedder.variables)
    self._networks = types.SimpleNamespace(
        embed=_graph_function(
            lambda images: embedder(images, training=False),
            input_signature=[tf.TensorSpec([None, scaling.EMBEDDING_INPUT_SIZE,
                                            scaling.EMBEDDING_INPUT_SIZE, 3], tf.float32)]),
        colorize=_graph_function(
            lambda l, vectors: colorizer(
                {network.L_INPUT: l, network.EMBEDDING_INPUT: vectors}, training=False),
            input_signature=[tf.TensorSpec([None, size, size, 1], tf.float32),
                             tf.TensorSpec([None, scaling.EMBEDDING_DIM], tf.float32)]))

  def _prepare(self, image_bytes: tf.Tensor):
    pixels = graph_decoding.decode_image(image_bytes)  # [H, W, 1 or 3] uint8
    l_small = full_resolution.l_at_model_size(pixels)  # [256, 256, 1]
    return pixels, l_small

  def _predict_ab(self, l_small: tf.Tensor) -> tf.Tensor:
    """L [N, 256, 256, 1] in [0, 100] -> ab / 128 [N, 256, 256, 2]."""
    vectors = self._networks.embed(scaling.embedding_input(l_small))
    return self._networks.colorize(scaling.scale_l(l_small), vectors)

  def answer(self, image_bytes: tf.Tensor, pixels: tf.Tensor, l_small: tf.Tensor,
             ab_scaled: tf.Tensor) -> tf.Tensor:
    """One photo's answer: its encoded bytes, its decoded pixels [H, W, C], its L at the
    model's size and the predicted ab / 128 -> the colour photo at its size, encoded in
    the input's format."""
    colourized = full_resolution.colourized(pixels, l_small, ab_scaled)  # [H, W, 3]
    return full_resolution.encoded_like(image_bytes, colourized)

  @_graph_function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_KEY)])
  def serving_default(self, image_bytes):
    """Decoding and the answer run photo by photo, the networks once on the whole batch,
    so that batching requests (TF Serving's `--enable_batching`, `colorizer serve`'s
    batcher) pays. Each photo is decoded once: its pixels wait in a TensorArray, whose
    elements may each have their own shape."""
    count = tf.shape(image_bytes)[0]
    size = scaling.IMAGE_SIZE

    def prepare(i, decoded, l_small):
      pixels, l = self._prepare(image_bytes[i])
      return i + 1, decoded.write(i, pixels), l_small.write(i, l)

    _, decoded, l_small = tf.while_loop(
        lambda i, *_: i < count, prepare,
        (0, tf.TensorArray(tf.uint8, count, infer_shape=False, element_shape=[None] * 3),
         tf.TensorArray(tf.float32, count, element_shape=[size, size, 1])))
    l_small = l_small.stack()
    ab_scaled = self._predict_ab(l_small)

    def respond(i, answers):
      return i + 1, answers.write(i, self.answer(image_bytes[i], decoded.read(i),
                                                 l_small[i], ab_scaled[i]))

    _, answers = tf.while_loop(lambda i, _: i < count, respond,
                               (0, tf.TensorArray(tf.string, count, element_shape=[])))
    return {OUTPUT_KEY: answers.stack()}

  @_graph_function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_KEY)])
  def prepare_image(self, image_bytes):
    l_small = tf.map_fn(lambda data: self._prepare(data)[1], image_bytes,
                        fn_output_signature=tf.TensorSpec([scaling.IMAGE_SIZE] * 2 + [1]))
    return {'l': l_small,
            'embedding': self._networks.embed(scaling.embedding_input(l_small))}

  @_graph_function(input_signature=[
      tf.TensorSpec([None, scaling.IMAGE_SIZE, scaling.IMAGE_SIZE, 1], tf.float32,
                    name='l')])
  def from_l(self, l):
    return {'ab': self._predict_ab(l)}

  @_graph_function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def from_examples(self, examples):
    features = records.parse(examples)
    return {'ab': self._networks.colorize(scaling.scale_l(features['l']), features['embedding'])}

  @staticmethod
  def _one_by_one(statistics_of, examples: tf.Tensor) -> tf.Tensor:
    """Each example's statistics, the examples one at a time: their memory does not
    grow with the batches that Beam gives the Evaluator (which it grows during a run),
    and XLA compiles the statistics once. On CPU the colorizer takes as long per
    example one at a time as 16 at once."""
    return tf.map_fn(lambda example: statistics_of(example[None])[0], examples,
                     fn_output_signature=tf.TensorSpec([metrics.STATISTICS], tf.float32),
                     parallel_iterations=1)

  @_graph_function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def evaluation_statistics(self, examples):
    def statistics_of(example):
      features = tf.io.parse_example(example, records.FEATURES)
      ab = self._networks.colorize(scaling.scale_l(records.decode_lab(features)['l']),
                                   features['embedding'])
      return metrics.statistics(records.quantized_lab(features), ab, False)

    return {'statistics': self._one_by_one(statistics_of, examples)}

  @_graph_function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def gray_statistics(self, examples):
    stored = {name: records.FEATURES[name] for name in ('l', 'ab')}
    return {'gray_statistics': self._one_by_one(
        lambda example: metrics.statistics(
            records.quantized_lab(tf.io.parse_example(example, stored)), None, True),
        examples)}


def export(colorizer: tf.keras.Model, weights: embedding.EmbeddingWeights, export_dir: str,
           warm_started_from: Optional[str] = None, trained_on: Optional[str] = None) -> None:
  """Saves the colorizer, in float32 whatever it trained in, with the embedding network
  of `weights` inside and the signatures above (and the model it started from, and what
  it was trained on: trained_on_key)."""
  exported = network.build_colorizer()
  exported.set_weights(colorizer.get_weights())
  module = _Colorize(exported, embedding.build_embedder(weights))
  tf.saved_model.save(module, export_dir, signatures={
      name: getattr(module, name) for name in SIGNATURES})
  notes = {WEIGHTS_FINGERPRINT_FILE: weights.fingerprint}
  if warm_started_from:
    notes[WARM_STARTED_FROM_FILE] = warm_started_from
  if trained_on:
    notes[TRAINED_ON_FILE] = trained_on
  for name, text in notes.items():
    path = os.path.join(export_dir, name)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, 'w') as f:
      f.write(text)


def _note(export_dir: str, name: str) -> str:
  path = os.path.join(export_dir, name)
  if not tf.io.gfile.exists(path):
    return ''
  with tf.io.gfile.GFile(path) as f:
    return f.read().strip()


def weights_fingerprint(export_dir: str) -> str:
  """The fingerprint of the embedding weights an exported model was exported with."""
  return _note(export_dir, WEIGHTS_FINGERPRINT_FILE)


def warm_started_from(export_dir: str) -> str:
  """The model an exported model's training started from; '' if it started afresh."""
  return _note(export_dir, WARM_STARTED_FROM_FILE)


def trained_on(export_dir: str) -> str:
  """An exported model's trained_on_key; '' if unrecorded."""
  return _note(export_dir, TRAINED_ON_FILE)


def trained_on_key(records_fingerprint: str, training_fingerprint: str) -> str:
  """The same records and the same training (hyperparameters, steps) train the same
  model: a run that would only repeat the served model's training is skipped."""
  return f'{records_fingerprint}/{training_fingerprint}'


# Where the Evaluator notes candidates it rejected (serving_dir/.rejected/: TF Serving
# loads numbered folders only): the same records and training, from the same served
# model, would train the same candidate again.
REJECTED_DIR = '.rejected'


def _rejected_marker(serving_dir: str, served: Optional[str], trained_on_: str) -> str:
  digest = hashlib.sha256(trained_on_.encode()).hexdigest()[:16]
  return os.path.join(serving_dir, REJECTED_DIR,
                      f'{os.path.basename(served) if served else "none"}-{digest}')


def note_rejected(serving_dir: str, served: Optional[str], trained_on_: str) -> None:
  """Notes that a candidate trained on `trained_on_` was rejected against `served`."""
  marker = _rejected_marker(serving_dir, served, trained_on_)
  tf.io.gfile.makedirs(os.path.dirname(marker))
  with tf.io.gfile.GFile(marker, 'w') as f:
    f.write(trained_on_)


def already_trained(serving_dir: str, trained_on_: str) -> bool:
  """Whether training on `trained_on_` would only repeat a training: the served model's,
  or a candidate's that the Evaluator rejected against the model served now."""
  served = served_model(serving_dir)
  if served and trained_on(served) == trained_on_:
    return True
  return tf.io.gfile.exists(_rejected_marker(serving_dir, served, trained_on_))


def colorizer_weights(export_dir: str) -> List:
  """The colorizer's weights in an exported model, in `network.build_colorizer()`'s
  order, read from its checkpoint (loading the SavedModel would trace both networks).
  _Colorize tracks the colorizer's variables first, then the embedder's."""
  expected = network.build_colorizer().variables
  reader = tf.train.load_checkpoint(os.path.join(export_dir, 'variables', 'variables'))
  values = []
  for i, variable in enumerate(expected):
    key = f'_network_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE'
    if not reader.has_tensor(key):
      raise ValueError(f'{export_dir} is not a colorizer exported by this pipeline ({key} '
                       'is missing)')
    value = reader.get_tensor(key)
    if tuple(value.shape) != tuple(variable.shape):
      raise ValueError(f'{export_dir}: the colorizer\'s {variable.name} has shape '
                       f'{value.shape}, this pipeline\'s {tuple(variable.shape)}')
    values.append(value)
  return values


def signature_names(model_dir: str) -> Set[str]:
  """The signatures of the SavedModel in `model_dir`, read from its graph's file
  without loading it."""
  saved_model = saved_model_pb2.SavedModel()
  with tf.io.gfile.GFile(os.path.join(model_dir, 'saved_model.pb'), 'rb') as f:
    saved_model.ParseFromString(f.read())
  return set(saved_model.meta_graphs[0].signature_def)


def evaluator_spec(signatures: Set[str]) -> Dict[str, object]:
  """What the Evaluator calls on a SavedModel with these signatures, as
  `tfma.ModelSpec` fields: the statistics signatures, or, on a model exported before
  them (a served model as the baseline, on the first run after an upgrade), the maps of
  `from_examples` and `transform_features`, which `model.metrics` also scores.

  The model type is named, as TFMA would otherwise find it out by loading the whole
  model as a Keras model first (tensorflow_model_analysis/utils/model_util.py,
  `get_model_type`): 256 MB read for nothing, for each model, on each run."""
  if EVALUATION_STATISTICS in signatures:
    return dict(model_type=EVALUATOR_MODEL_TYPE, signature_name=EVALUATION_STATISTICS,
                prediction_key='statistics', label_key='gray_statistics',
                preprocessing_function_names=[GRAY_STATISTICS])
  return dict(model_type=EVALUATOR_MODEL_TYPE, signature_name=FROM_EXAMPLES,
              prediction_key='ab', label_key='lab',
              preprocessing_function_names=[TRANSFORM_FEATURES])


def numbered_versions(serving_dir: str) -> List[int]:
  """The numbered versions in a serving folder, oldest first; [] when there is no
  folder. (A push in progress, `.incoming-<v>`, is not one.)"""
  try:
    names = tf.io.gfile.listdir(serving_dir)
  except tf.errors.NotFoundError:
    return []
  return sorted(int(name.rstrip('/')) for name in names if name.rstrip('/').isdigit())


def served_model(serving_dir: str) -> Optional[str]:
  """The newest numbered version in a serving folder that a model server can load, or
  None. One without `saved_model.pb` is a push in progress or one that died: on gs://
  the Pusher copies that file after every other but its marker (components/pusher.py)."""
  for version in reversed(numbered_versions(serving_dir)):
    path = os.path.join(serving_dir, str(version))
    if tf.io.gfile.exists(os.path.join(path, 'saved_model.pb')):
      return path
  return None


def latest_version(model_dir: str) -> str:
  """A SavedModel folder, or a serving folder of numbered versions -> the SavedModel
  folder to load (`served_model`)."""
  if tf.io.gfile.exists(os.path.join(model_dir, 'saved_model.pb')):
    return model_dir
  version = served_model(model_dir)
  if version is None:
    raise ValueError(f'{model_dir} holds neither a SavedModel nor a complete numbered '
                     'version of one')
  return version
