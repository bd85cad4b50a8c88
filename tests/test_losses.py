"""The rarity-weighted loss: its colour distribution and weights."""
import os

import numpy as np
import pytest
import tensorflow as tf

from model import losses
from model import scaling
from model import trainer


def ab_image(a, b, shape=(2, 8, 8)):
  return tf.constant(scaling.scale_ab(np.stack([np.full(shape, a), np.full(shape, b)], -1)),
                     tf.float32)


@pytest.mark.fast
def test_ab_bins_cover_every_quantized_colour():
  bins = losses.ab_bin(scaling.scale_ab(tf.constant([[-128.0, -128.0], [127.0, 127.0], [0.0, 0.0],
                                               [9.9, -0.1]])))
  n = losses.BINS_PER_AXIS
  assert bins.numpy().tolist() == [0, n * n - 1, 13 * n + 13, 13 * n + 12]


@pytest.mark.fast
def test_weights_favour_rare_colours_and_average_one_over_the_training_pixels():
  distribution = np.full(losses.BINS_PER_AXIS ** 2, 0.1 / (losses.BINS_PER_AXIS ** 2 - 1))
  common = int(losses.ab_bin(tf.constant([0.0, 0.0])))
  distribution[common] = 0.9
  loss = losses.RarityWeightedMSE(distribution)
  weights = loss.pixel_weights.numpy()
  assert float(np.sum(distribution * weights)) == pytest.approx(1.0, rel=1e-5)
  assert weights[common] < 1.0 < weights[0]
  # The loss of a pixel is its weight times its squared error.
  truth, miss = ab_image(0, 0), ab_image(12.8, 0)
  assert float(loss(truth, miss)) == pytest.approx(weights[common] * 0.1 ** 2 / 2, rel=1e-5)
  rare = ab_image(-128, -128)
  assert float(loss(rare, rare + 0.1)) == pytest.approx(weights[0] * 0.1 ** 2, rel=1e-5)


@pytest.mark.fast
def test_with_evenly_spread_colours_it_is_the_mse():
  loss = losses.RarityWeightedMSE(np.full(losses.BINS_PER_AXIS ** 2, 1 / losses.BINS_PER_AXIS ** 2))
  truth, prediction = ab_image(30, -40), ab_image(10, 5)
  assert float(loss(truth, prediction)) == pytest.approx(
      float(tf.keras.losses.MeanSquaredError()(truth, prediction)), rel=1e-5)


def test_distribution_of_the_training_records(trained):
  """The yellow/blue photos: nearly all pixels are yellow (b > 0) or blue (b < 0)."""
  files = [os.path.join(trained['examples'].uri, 'Split-train', '*')]
  distribution = losses.ab_distribution(files)
  assert distribution.shape == (losses.BINS_PER_AXIS ** 2,)
  assert distribution.sum() == pytest.approx(1.0)
  by_b = distribution.reshape(losses.BINS_PER_AXIS, losses.BINS_PER_AXIS).sum(axis=0)
  assert by_b[:13].sum() > 0.2 and by_b[13:].sum() > 0.2
  assert isinstance(trainer.training_loss('rarity', files), losses.RarityWeightedMSE)
  assert trainer.training_loss('mse', files) == 'mse'
  with pytest.raises(ValueError, match='unknown loss'):
    trainer.training_loss('l1', files)
  with pytest.raises(ValueError, match='no record files'):
    losses.ab_distribution([os.path.join(str(trained['root']), 'nothing', '*')])
