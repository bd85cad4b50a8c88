"""The colour photo at the photo's own resolution (model.full_resolution)."""
import numpy as np
import pytest
import tensorflow as tf

from model import colour_space
from model import full_resolution
from reference import reference_lab, reference_rgb8
from sample_images import colourful_image16

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


def test_a_16_bit_colour_photo_keeps_the_l_of_its_16_bits():
  """L from all 16 bits of each channel, and 16-bit sRGB out: the output's L follows a
  float64 reference from the 16-bit values far closer than an 8-bit copy can."""
  rgb16 = colourful_image16(9, 120, 90)
  ab = tf.random.stateless_uniform([16, 16, 2], seed=[3, 4], minval=-25, maxval=25)
  ab = colour_space.ab_in_gamut(tf.concat([tf.fill([16, 16, 1], 50.0), ab], axis=-1))
  truth = reference_lab(rgb16 / 65535.0)[..., 0]

  luminance = full_resolution._luminance  # pylint: disable=protected-access
  fy = luminance(tf.constant(rgb16))[1].numpy().reshape(truth.shape)  # A row of the pixels.
  assert np.abs(116 * fy - 16 - truth).max() < 0.02  # The tables, exact to 16 bits.

  colourized = full_resolution.photo_with_colour(tf.constant(rgb16), ab).numpy()
  assert colourized.dtype == np.uint16 and colourized.shape == (90, 120, 3)
  error_16 = np.abs(reference_lab(colourized / 65535.0)[..., 0] - truth).mean()
  copy8 = np.round(rgb16 / 257.0).astype(np.uint8)
  from_8 = full_resolution.photo_with_colour(tf.constant(copy8), ab).numpy()
  error_8 = np.abs(reference_lab(from_8 / 255.0)[..., 0] - truth).mean()
  assert error_16 < error_8 / 10, (error_16, error_8)
  lab = reference_lab(colourized / 65535.0)
  assert np.abs(lab[..., 1:] - tf.image.resize(ab, [90, 120]).numpy()).mean() < 0.5

  recombined = full_resolution.colourized(  # The one recombination, as the job calls it.
      tf.constant(rgb16), full_resolution.l_at_model_size(tf.constant(rgb16)),
      tf.zeros([256, 256, 2]))
  assert recombined.dtype == tf.uint16
  assert np.abs(reference_lab(recombined.numpy() / 65535.0)[..., 0] - truth).mean() < error_8 / 10
