"""The colour photo at the photo's own resolution (model.full_resolution)."""
import numpy as np
import pytest
import tensorflow as tf

from model import colour_space
from model import full_resolution
from reference import reference_lab, reference_rgb8

pytestmark = pytest.mark.fast


@pytest.mark.parametrize('channels', [3, 1])
def test_photo_with_colour_is_lab_to_rgb_of_the_photos_l_and_the_stretched_ab(channels):
  pixels = tf.random.stateless_uniform([90, 70, channels], seed=[5, 6], maxval=256,
                                       dtype=tf.int32)
  pixels = tf.concat([pixels, tf.zeros([1, 70, channels], tf.int32),   # Black and white rows.
                      tf.fill([1, 70, channels], 255)], axis=0)
  pixels = tf.cast(pixels, tf.uint8)
  ab = tf.random.stateless_uniform([16, 16, 2], seed=[7, 8], minval=-60, maxval=60)
  ab = colour_space.ab_in_gamut(tf.concat([tf.fill([16, 16, 1], 50.0), ab], axis=-1))
  rgb = np.broadcast_to(pixels.numpy() / 255.0, (92, 70, 3))
  lab = np.concatenate([reference_lab(rgb)[..., :1], tf.image.resize(ab, [92, 70]).numpy()], -1)
  colourized = full_resolution.photo_with_colour(pixels, ab).numpy()
  assert colourized.dtype == np.uint8 and colourized.shape == (92, 70, 3)
  difference = np.abs(colourized.astype(np.int32) - reference_rgb8(lab))
  assert difference.max() <= 1 and (difference > 0).mean() < 0.01  # Float32 rounding.
