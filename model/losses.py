"""Training losses: MSE on ab, and a rarity-weighted MSE against the sepia average.

An MSE colourizer predicts, for each pixel, the mean of the colours that its
surroundings could have: where blue, green and red are all plausible the mean is a dull
brown, so MSE models paint photos brown or gray. Zhang et al. (2016, "Colorful Image
Colorization", section 2.2) counter it by weighting each pixel's loss by how rare its
true colour is in the training set. `RarityWeightedMSE` does that for regression:

  p   = distribution of the true ab over the training examples, in AB_BIN x AB_BIN
        Lab-unit bins, smoothed with a [1, 2, 1] / 4 kernel (about Zhang's sigma = 5)
  w   = 1 / ((1 - mix) p + mix / bins), scaled so that the mean weight over the
        training pixels is 1 (mix = 0.5 as in Zhang et al.)
  loss = mean over pixels of w(true ab) * squared error of ab / 128

The weighted optimum is the weighted mean of the plausible colours, pulled towards the
rarer, more saturated ones.
"""
from typing import List

import numpy as np
import tensorflow as tf

from model import records
from model import scaling

AB_BIN = 10.0
"""Side of the ab bins, in Lab units."""
_AB_MIN = -130.0
BINS_PER_AXIS = 26   # [-130, 130): every quantized ab (-128..127) falls in one bin.
DISTRIBUTION_EXAMPLES = 2000
"""The ab distribution is counted over at most this many training examples."""


def ab_bin(ab_scaled: tf.Tensor) -> tf.Tensor:
  """ab / 128 [..., 2] -> the index of its AB_BIN x AB_BIN bin [...], row-major (a, b)."""
  ab = scaling.unscale_ab(tf.cast(ab_scaled, tf.float32))
  index = tf.cast(tf.floor((ab - _AB_MIN) / AB_BIN), tf.int32)
  index = tf.clip_by_value(index, 0, BINS_PER_AXIS - 1)
  return index[..., 0] * BINS_PER_AXIS + index[..., 1]


def ab_distribution(file_patterns: List[str],
                    max_examples: int = DISTRIBUTION_EXAMPLES) -> np.ndarray:
  """The share of training pixels in each ab bin [BINS_PER_AXIS ** 2], smoothed."""
  files = [f for pattern in file_patterns for f in tf.io.gfile.glob(pattern)]
  if not files:
    raise ValueError(f'no record files match {file_patterns}')
  counts = np.zeros(BINS_PER_AXIS ** 2)
  dataset = (tf.data.TFRecordDataset(files, compression_type=records.COMPRESSION)
             .take(max_examples).batch(64))
  for serialized in dataset:
    bins = ab_bin(scaling.scale_ab(records.parse(serialized)['ab']))
    counts += tf.math.bincount(tf.reshape(bins, [-1]), minlength=BINS_PER_AXIS ** 2,
                               maxlength=BINS_PER_AXIS ** 2, dtype=tf.float64).numpy()
  grid = counts.reshape(BINS_PER_AXIS, BINS_PER_AXIS)
  kernel = np.array([0.25, 0.5, 0.25])
  for axis in (0, 1):
    grid = np.apply_along_axis(lambda row: np.convolve(row, kernel, mode='same'), axis, grid)
  return (grid / grid.sum()).reshape(-1)


class RarityWeightedMSE(tf.keras.losses.Loss):
  """MSE of ab / 128, each pixel weighted by the rarity of its true colour (see above)."""

  def __init__(self, distribution: np.ndarray, mix: float = 0.5,
               name: str = 'rarity_weighted_mse'):
    super().__init__(name=name)
    p = np.asarray(distribution, np.float64)
    weights = 1.0 / ((1.0 - mix) * p + mix / p.size)
    self.pixel_weights = tf.constant(weights / np.sum(p * weights), tf.float32)

  def call(self, y_true, y_pred):
    y_true = tf.cast(y_true, tf.float32)
    weights = tf.gather(self.pixel_weights, ab_bin(y_true))           # [N, H, W]
    return weights * tf.reduce_mean(tf.square(tf.cast(y_pred, tf.float32) - y_true), -1)
