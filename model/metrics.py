"""Colorization metrics, as Keras metrics that TFMA's Evaluator runs on Beam workers.

Each takes the label `lab` and the prediction `ab` (ab / 128), and with `gray=True`
scores the gray baseline (ab = 0) on the same examples instead. The label is L and ab
either as the records store them (uint8, from the SavedModel's `transform_features`
signature: the Evaluator's) or on the model's scale (floats L / 50 - 1 and ab / 128:
the Trainer's, `colorizer evaluate`'s, and older exports' `transform_features`). The
definitions:

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


# Each metric's batch statistics as one XLA-compiled graph. TFMA calls update_state
# eagerly (tensorflow_model_analysis/metrics/tf_metric_wrapper.py,
# _CompilableMetricsCombiner._process_batch), where each of the Lab -> sRGB conversion's
# ops ran on its own over the whole batch: all nine metrics took about 370 ms an example,
# fused about 70 (batches of 16, on a loaded 2-core machine). One trace per label type
# and `gray`, the batch size left free; XLA compiles once per batch shape (here a
# slice's: SLICE_EXAMPLES, or what is left over), which is why AuC's histogram is a
# segment sum: XLA's bincount needs a constant length.
_graph = tf.function(reduce_retracing=True, jit_compile=True)

SLICE_EXAMPLES = 16
"""At most this many examples per compiled call. TFMA hands `update_state` every label
and prediction it has collected at once (tf_metric_wrapper.py, `_process_batch`), and
in the Evaluator that is the whole eval split: its size estimate divides each array's
bytes by the array's references (tensorflow_model_analysis/utils/size_estimator.py), so
270 examples' 186 MiB counted as 12.6 and its 16 MiB limit was never reached. The
statistics' float intermediates took about 6 MB an example on top, so the Evaluator's
peak grew with the eval split (docs/performance.md, "The Evaluator at scale")."""


def _slices(y_true, y_pred):
  """(y_true, y_pred) in slices of at most SLICE_EXAMPLES examples when called eagerly
  (TFMA, and our own loops over batches); whole inside a graph (Keras's fit: one
  batch)."""
  if not tf.executing_eagerly():
    yield y_true, y_pred
    return
  for start in range(0, len(y_true), SLICE_EXAMPLES):
    yield y_true[start:start + SLICE_EXAMPLES], y_pred[start:start + SLICE_EXAMPLES]


@_graph
def _squared_ab_errors(y_true, y_pred, gray: bool):
  """-> the sum of the squared ab errors on the model's scale, and their count."""
  _, ab_true, ab_pred = _split(y_true, y_pred, gray)
  error = scaling.scale_ab(ab_pred - ab_true) ** 2
  return tf.reduce_sum(error), tf.cast(tf.size(error), tf.float32)


@_graph
def _psnr_per_image(y_true, y_pred, gray: bool):
  l, ab_true, ab_pred = _split(y_true, y_pred, gray)
  mse = tf.reduce_mean((_rgb255(l, ab_pred) - _rgb255(l, ab_true)) ** 2, axis=[1, 2, 3])
  return 20.0 * tf.math.log(255.0 / tf.sqrt(tf.maximum(mse, 1e-10))) / math.log(10.0)


@_graph
def _within(y_true, y_pred, gray: bool):
  """-> [pixels within t for t = 0..150, pixel count]."""
  _, ab_true, ab_pred = _split(y_true, y_pred, gray)
  distance = tf.reshape(tf.norm(ab_pred - ab_true, axis=-1), [-1])
  # Pixels within t for every t: a histogram of the distance, summed cumulatively.
  bins = tf.cast(tf.math.ceil(tf.minimum(distance, AUC_MAX_DISTANCE + 1.0)), tf.int32)
  histogram = tf.math.unsorted_segment_sum(tf.ones_like(distance), bins, AUC_MAX_DISTANCE + 2)
  count = tf.cast(tf.size(distance), tf.float32)
  return tf.concat([tf.cumsum(histogram)[:AUC_MAX_DISTANCE + 1], [count]], 0)


@_graph
def _colourfulness_per_image(y_true, y_pred, gray: bool):
  l, _, ab_pred = _split(y_true, y_pred, gray)
  return colour_space.colourfulness(_rgb255(l, ab_pred))


@_graph
def _squared_ab_errors_and_gray(y_true, y_pred):
  """-> the sums of the squared ab errors of the prediction and of gray (ab = 0)."""
  _, ab_true, ab_pred = _split(y_true, y_pred, False)
  return (tf.reduce_sum(scaling.scale_ab(ab_pred - ab_true) ** 2),
          tf.reduce_sum(scaling.scale_ab(ab_true) ** 2))


class _ColorizationMetric(tf.keras.metrics.Metric):
  """Sums over batches; `gray` scores ab = 0 instead of the prediction."""

  def __init__(self, name: str, gray: bool = False, dtype=None, **kwargs):
    super().__init__(name=name, dtype=dtype, **kwargs)
    self.gray = gray
    self.total = self.add_weight('total', initializer='zeros')
    self.count = self.add_weight('count', initializer='zeros')

  def get_config(self):
    return {**super().get_config(), 'gray': self.gray}

  def result(self):
    return tf.math.divide_no_nan(self.total, self.count)


class AbMSE(_ColorizationMetric):

  def __init__(self, name='ab_mse', gray=False, **kwargs):
    super().__init__(name, gray, **kwargs)

  def update_state(self, y_true, y_pred, sample_weight=None):
    for labels, predictions in _slices(y_true, y_pred):
      total, count = _squared_ab_errors(labels, predictions, self.gray)
      self.total.assign_add(total)
      self.count.assign_add(count)


class PSNR(_ColorizationMetric):

  def __init__(self, name='psnr', gray=False, **kwargs):
    super().__init__(name, gray, **kwargs)

  def update_state(self, y_true, y_pred, sample_weight=None):
    for labels, predictions in _slices(y_true, y_pred):
      psnr = _psnr_per_image(labels, predictions, self.gray)
      self.total.assign_add(tf.reduce_sum(psnr))
      self.count.assign_add(tf.cast(tf.shape(psnr)[0], tf.float32))


class AuC(tf.keras.metrics.Metric):
  """One variable only, [within t for t = 0..150, pixel count]: TFMA merges a metric's
  variables with one numpy addition, which fails when their shapes differ."""

  def __init__(self, name='auc', gray=False, dtype=None, **kwargs):
    super().__init__(name=name, dtype=dtype, **kwargs)
    self.gray = gray
    self.state = self.add_weight('state', shape=[AUC_MAX_DISTANCE + 2], initializer='zeros')

  def get_config(self):
    return {**super().get_config(), 'gray': self.gray}

  def update_state(self, y_true, y_pred, sample_weight=None):
    for labels, predictions in _slices(y_true, y_pred):
      self.state.assign_add(_within(labels, predictions, self.gray))

  def result(self):
    within, count = self.state[:-1], self.state[-1]
    return 100.0 * tf.reduce_mean(tf.math.divide_no_nan(within, count))

  def reset_state(self):
    self.state.assign(tf.zeros_like(self.state))  # Keras's own reset assigns a scalar 0.


class Colourfulness(_ColorizationMetric):

  def __init__(self, name='colourfulness', gray=False, **kwargs):
    super().__init__(name, gray, **kwargs)

  def update_state(self, y_true, y_pred, sample_weight=None):
    for labels, predictions in _slices(y_true, y_pred):
      per_image = _colourfulness_per_image(labels, predictions, self.gray)
      self.total.assign_add(tf.reduce_sum(per_image))
      self.count.assign_add(tf.cast(tf.shape(per_image)[0], tf.float32))


class AbMSEVsGray(_ColorizationMetric):
  """The model's ab-MSE over the gray baseline's on the same examples (< 1 is better)."""

  def __init__(self, name='ab_mse_vs_gray', **kwargs):
    kwargs.pop('gray', None)
    super().__init__(name, False, **kwargs)
    self.gray_total = self.add_weight('gray_total', initializer='zeros')

  def update_state(self, y_true, y_pred, sample_weight=None):
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
