"""Colorization metrics, as Keras metrics that TFMA's Evaluator runs on Beam workers.

Each takes a label and a prediction, in one of two forms, and with `gray=True` scores
the gray baseline (ab = 0) on the same examples instead:

- maps: the label `lab`, L and ab either as the records store them (uint8) or on the
  model's scale (floats L / 50 - 1 and ab / 128: the Trainer's, `colorizer
  evaluate`'s), and the prediction `ab` (ab / 128) [N, 256, 256, 2]. Served models
  exported before the statistics signatures (below) are evaluated this way, through
  their `transform_features` and `from_examples`.
- statistics: each example's sufficient statistics [N, STATISTICS] (`statistics`), the
  label the gray baseline's and the prediction the model's, as the SavedModel's
  `gray_statistics` and `evaluation_statistics` signatures compute them in the graph.
  The metrics then only add them up and divide: TFMA holds a few hundred numbers per
  example instead of its maps (docs/performance.md, "The Evaluator at scale").

The definitions:

- `AbMSE`: mean squared error of ab on the model's scale.
- `PSNR`: 20 log10(255 / RMSE) of 8-bit RGB rebuilt from the true L and the predicted
  ab against the true RGB, per image, averaged.
- `AuC` (Zhang et al. 2016): per pixel the ab distance in Lab units between prediction
  and truth; the share of pixels within t for t = 0..150; the area under that curve
  divided by 150, as a percentage.
- `Colourfulness` (Hasler and Suesstrunk 2003) of the output RGB, averaged per image.
- `AbMSEVsGray`: the model's ab-MSE divided by the gray baseline's, the gate that holds
  on a first run too.
"""
import math
from typing import Dict, Tuple

import tensorflow as tf

from model import colour_space
from model import scaling

AUC_MAX_DISTANCE = 150

REPORTED = (('ab_mse', 'ab-MSE (lower is better)'), ('psnr', 'PSNR, dB'), ('auc', 'AuC, %'),
            ('colourfulness', 'colourfulness'))
"""The figures shown for the model and for the gray baseline (`gray_<name>`), with
their labels."""

# One example's sufficient statistics, for one colouring of it (the model's or gray's):
SQUARED_AB_ERROR = 0  # the sum of its squared ab errors on the model's scale
PSNR_DB = 1           # its PSNR
COLOURFULNESS = 2     # its colourfulness
WITHIN = 3            # then its pixels within t for t = 0..150, then its pixel count
STATISTICS = WITHIN + AUC_MAX_DISTANCE + 2
"""The length of an example's statistics (155 float32: 620 bytes)."""


def _split(y_true: tf.Tensor, y_pred: tf.Tensor, gray: bool):
  """-> L in [0, 100] [N, H, W, 1], true and predicted ab in Lab units [N, H, W, 2]."""
  y_true = tf.convert_to_tensor(y_true)
  if y_true.dtype == tf.uint8:
    l = scaling.dequantize_l(y_true[..., :1])
    ab_true = scaling.dequantize_ab(y_true[..., 1:])
  elif y_true.dtype.is_floating:
    y_true = tf.cast(y_true, tf.float32)
    l = scaling.unscale_l(y_true[..., :1])
    ab_true = scaling.unscale_ab(y_true[..., 1:])
  else:
    raise TypeError(f'labels must be uint8 (as stored) or floats (scaled), not {y_true.dtype}')
  ab_pred = tf.zeros_like(ab_true) if gray else scaling.unscale_ab(
      tf.reshape(tf.cast(y_pred, tf.float32), tf.shape(ab_true)))
  return l, ab_true, ab_pred


def _rgb255(l: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
  return tf.round(colour_space.lab_to_rgb(tf.concat([l, ab], axis=-1)) * 255.0)


# Each statistic per example, from L and the true and predicted ab.

def _squared_ab_errors(ab_true, ab_pred):
  return tf.reduce_sum(scaling.scale_ab(ab_pred - ab_true) ** 2, axis=[1, 2, 3])


def _psnr(rgb_true, rgb_pred):
  mse = tf.reduce_mean((rgb_pred - rgb_true) ** 2, axis=[1, 2, 3])
  return 20.0 * tf.math.log(255.0 / tf.sqrt(tf.maximum(mse, 1e-10))) / math.log(10.0)


def _within(ab_true, ab_pred):
  """-> [N, 152]: pixels within t for t = 0..150, then the pixel count."""
  distance = tf.norm(ab_pred - ab_true, axis=-1)                          # [N, H, W]
  examples, pixels = tf.shape(distance)[0], tf.size(distance[0])
  # A histogram of each example's distances, summed cumulatively. A segment sum, as
  # XLA's bincount needs a constant length.
  bins = tf.cast(tf.math.ceil(tf.minimum(distance, AUC_MAX_DISTANCE + 1.0)), tf.int32)
  bins += tf.range(examples)[:, None, None] * (AUC_MAX_DISTANCE + 2)
  histogram = tf.reshape(tf.math.unsorted_segment_sum(
      tf.ones_like(distance), bins, examples * (AUC_MAX_DISTANCE + 2)),
      [examples, AUC_MAX_DISTANCE + 2])
  count = tf.fill([examples, 1], tf.cast(pixels, tf.float32))
  return tf.concat([tf.cumsum(histogram, axis=-1)[:, :AUC_MAX_DISTANCE + 1], count], -1)


# Each metric's statistics as one XLA-compiled graph: TFMA calls update_state eagerly, op
# by op otherwise (docs/performance.md, "The Evaluator at scale"). One trace per label
# type and `gray`; XLA compiles once per batch shape. Unconverted by AutoGraph, as
# serving's graphs (model/serving.py).
_graph = tf.function(reduce_retracing=True, jit_compile=True, autograph=False)


@_graph
def statistics(y_true, y_pred, gray: bool):
  """Labels and predictions as maps (see above) -> each example's statistics
  [N, STATISTICS] (SQUARED_AB_ERROR, PSNR_DB, ...), of the prediction or of gray."""
  l, ab_true, ab_pred = _split(y_true, y_pred, gray)
  rgb_pred = _rgb255(l, ab_pred)
  return tf.concat([_squared_ab_errors(ab_true, ab_pred)[:, None],
                    _psnr(_rgb255(l, ab_true), rgb_pred)[:, None],
                    colour_space.colourfulness(rgb_pred)[:, None],
                    _within(ab_true, ab_pred)], axis=-1)


@_graph
def _squared_ab_errors_and_pixels(y_true, y_pred, gray: bool):
  """-> [N, 2]: each example's sum of squared ab errors, and its pixel count."""
  _, ab_true, ab_pred = _split(y_true, y_pred, gray)
  pixels = tf.cast(tf.size(ab_true[0, ..., 0]), tf.float32)
  errors = _squared_ab_errors(ab_true, ab_pred)
  return tf.stack([errors, tf.fill(tf.shape(errors), pixels)], axis=1)


@_graph
def _psnr_of(y_true, y_pred, gray: bool):
  l, ab_true, ab_pred = _split(y_true, y_pred, gray)
  return _psnr(_rgb255(l, ab_true), _rgb255(l, ab_pred))


@_graph
def _within_of(y_true, y_pred, gray: bool):
  _, ab_true, ab_pred = _split(y_true, y_pred, gray)
  return _within(ab_true, ab_pred)


@_graph
def _colourfulness_of(y_true, y_pred, gray: bool):
  l, _, ab_pred = _split(y_true, y_pred, gray)
  return colour_space.colourfulness(_rgb255(l, ab_pred))


@_graph
def _squared_ab_errors_and_gray(y_true, y_pred):
  """-> the sums of the squared ab errors of the prediction and of gray (ab = 0)."""
  _, ab_true, ab_pred = _split(y_true, y_pred, False)
  return (tf.reduce_sum(_squared_ab_errors(ab_true, ab_pred)),
          tf.reduce_sum(_squared_ab_errors(ab_true, tf.zeros_like(ab_true))))


SLICE_EXAMPLES = 16
"""At most this many examples of maps per compiled call: TFMA may hand `update_state`
a whole eval split at once, and memory grows with the call (docs/performance.md, "The
Evaluator at scale")."""


def _is_statistics(y_pred) -> bool:
  """Whether a prediction is examples' statistics [N, STATISTICS] rather than ab maps."""
  return len(y_pred.shape) == 2


def _slices(y_true, y_pred):
  """(y_true, y_pred) in slices of at most SLICE_EXAMPLES examples when called eagerly
  (TFMA, and our own loops over batches); whole inside a graph (Keras's fit: one
  batch)."""
  if not tf.executing_eagerly():
    yield y_true, y_pred
    return
  for start in range(0, len(y_true), SLICE_EXAMPLES):
    yield y_true[start:start + SLICE_EXAMPLES], y_pred[start:start + SLICE_EXAMPLES]


class _ColorizationMetric(tf.keras.metrics.Metric):
  """Adds up some of the examples' statistics (`_COLUMNS`), given as such or computed
  from maps by `_from_maps`; `gray` scores ab = 0 instead of the prediction."""

  _COLUMNS: Tuple[int, ...]

  def __init__(self, name: str, gray: bool = False, dtype=None, **kwargs):
    super().__init__(name=name, dtype=dtype, **kwargs)
    self.gray = gray

  def get_config(self):
    return {**super().get_config(), 'gray': self.gray}

  @staticmethod
  def _from_maps(y_true, y_pred, gray: bool) -> tf.Tensor:
    raise NotImplementedError

  def update_state(self, y_true, y_pred, sample_weight=None):
    if _is_statistics(y_pred):
      chosen = tf.convert_to_tensor(y_true if self.gray else y_pred, tf.float32)
      self._add(tf.gather(chosen, self._COLUMNS, axis=1))
      return
    for labels, predictions in _slices(y_true, y_pred):
      self._add(self._from_maps(labels, predictions, self.gray))

  def _add(self, per_example: tf.Tensor) -> None:
    """Adds [n, len(_COLUMNS)] statistics."""
    raise NotImplementedError


class _Mean(_ColorizationMetric):
  """The mean of one statistic per example."""

  def __init__(self, name: str, gray: bool = False, dtype=None, **kwargs):
    super().__init__(name, gray, dtype, **kwargs)
    self.total = self.add_weight('total', initializer='zeros')
    self.count = self.add_weight('count', initializer='zeros')

  def _add(self, per_example):
    self.total.assign_add(tf.reduce_sum(per_example))
    self.count.assign_add(tf.cast(tf.shape(per_example)[0], tf.float32))

  def result(self):
    return tf.math.divide_no_nan(self.total, self.count)


class AbMSE(_Mean):
  _COLUMNS = (SQUARED_AB_ERROR, STATISTICS - 1)

  def __init__(self, name='ab_mse', gray=False, **kwargs):
    super().__init__(name, gray, **kwargs)

  @staticmethod
  def _from_maps(y_true, y_pred, gray):
    return _squared_ab_errors_and_pixels(y_true, y_pred, gray)

  def _add(self, per_example):
    errors, pixels = tf.unstack(per_example, axis=1)
    self.total.assign_add(tf.reduce_sum(errors))
    self.count.assign_add(2.0 * tf.reduce_sum(pixels))  # a and b


class PSNR(_Mean):
  _COLUMNS = (PSNR_DB,)

  def __init__(self, name='psnr', gray=False, **kwargs):
    super().__init__(name, gray, **kwargs)

  @staticmethod
  def _from_maps(y_true, y_pred, gray):
    return _psnr_of(y_true, y_pred, gray)[:, None]


class Colourfulness(_Mean):
  _COLUMNS = (COLOURFULNESS,)

  def __init__(self, name='colourfulness', gray=False, **kwargs):
    super().__init__(name, gray, **kwargs)

  @staticmethod
  def _from_maps(y_true, y_pred, gray):
    return _colourfulness_of(y_true, y_pred, gray)[:, None]


class AuC(_ColorizationMetric):
  """One variable only, [within t for t = 0..150, pixel count]: TFMA merges a metric's
  variables with one numpy addition, which fails when their shapes differ."""
  _COLUMNS = tuple(range(WITHIN, STATISTICS))

  def __init__(self, name='auc', gray=False, dtype=None, **kwargs):
    super().__init__(name, gray, dtype, **kwargs)
    self.state = self.add_weight('state', shape=[AUC_MAX_DISTANCE + 2], initializer='zeros')

  @staticmethod
  def _from_maps(y_true, y_pred, gray):
    return _within_of(y_true, y_pred, gray)

  def _add(self, per_example):
    self.state.assign_add(tf.reduce_sum(per_example, axis=0))

  def result(self):
    within, count = self.state[:-1], self.state[-1]
    return 100.0 * tf.reduce_mean(tf.math.divide_no_nan(within, count))

  def reset_state(self):
    self.state.assign(tf.zeros_like(self.state))  # Keras's own reset assigns a scalar 0.


class AbMSEVsGray(tf.keras.metrics.Metric):
  """The model's ab-MSE over the gray baseline's on the same examples (< 1 is better)."""

  def __init__(self, name='ab_mse_vs_gray', dtype=None, **kwargs):
    kwargs.pop('gray', None)
    super().__init__(name=name, dtype=dtype, **kwargs)
    self.total = self.add_weight('total', initializer='zeros')
    self.gray_total = self.add_weight('gray_total', initializer='zeros')

  def update_state(self, y_true, y_pred, sample_weight=None):
    if _is_statistics(y_pred):
      self.total.assign_add(tf.reduce_sum(tf.cast(y_pred, tf.float32)[:, SQUARED_AB_ERROR]))
      self.gray_total.assign_add(tf.reduce_sum(tf.cast(y_true, tf.float32)[:, SQUARED_AB_ERROR]))
      return
    for labels, predictions in _slices(y_true, y_pred):
      total, gray_total = _squared_ab_errors_and_gray(labels, predictions)
      self.total.assign_add(total)
      self.gray_total.assign_add(gray_total)

  def result(self):
    return tf.math.divide_no_nan(self.total, self.gray_total)


EVALUATED: Tuple[Tuple[str, type, bool], ...] = (
    ('ab_mse', AbMSE, False), ('psnr', PSNR, False), ('auc', AuC, False),
    ('colourfulness', Colourfulness, False), ('ab_mse_vs_gray', AbMSEVsGray, False),
    ('gray_ab_mse', AbMSE, True), ('gray_psnr', PSNR, True), ('gray_auc', AuC, True),
    ('gray_colourfulness', Colourfulness, True))
"""Every metric the Evaluator computes, as (name, class, gray); the Trainer's learning
curves and `colorizer evaluate` compute the same ones."""


def create_all() -> Dict[str, tf.keras.metrics.Metric]:
  """Fresh objects of every metric in EVALUATED, by name."""
  return {name: metric(name=name, gray=gray) for name, metric, gray in EVALUATED}
