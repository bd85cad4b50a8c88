"""sRGB <-> Lab, the sRGB gamut and colourfulness (model.colour_space)."""
import numpy as np
import pytest
import tensorflow as tf

from model import colour_space
from reference import reference_lab, reference_linear_rgb
from sample_images import colourful_image

pytestmark = pytest.mark.fast

RGB = colourful_image(42, 120, 90)


def test_lab_matches_the_reference_and_round_trips():
  rgb = tf.random.stateless_uniform([64, 64, 3], seed=[1, 2])
  lab = colour_space.rgb_to_lab(rgb).numpy()
  assert np.abs(lab - reference_lab(rgb.numpy())).max() < 0.005
  assert np.abs(colour_space.lab_to_rgb(lab).numpy() - rgb.numpy()).max() < 1e-4
  white = colour_space.rgb_to_lab(tf.ones([1, 1, 3])).numpy()[0, 0]
  assert np.allclose(white, [100, 0, 0], atol=0.01)


def test_colourfulness():
  gray = np.repeat(RGB[..., :1], 3, axis=2)
  assert float(colour_space.colourfulness(gray)) == pytest.approx(0.0, abs=1e-4)
  # Half pure red, half pure green: rg is +-255 (std 255, mean 0), yb is 127.5 (std 0).
  image = np.zeros((4, 4, 3), np.uint8)
  image[:2, :, 0] = 255
  image[2:, :, 1] = 255
  assert float(colour_space.colourfulness(image)) == pytest.approx(255 + 0.3 * 127.5, rel=1e-5)
  assert float(colour_space.colourfulness(RGB)) > 30


def test_lab_to_rgb_keeping_l_desaturates_instead_of_clipping():
  l = tf.tile(tf.linspace(5.0, 95.0, 100)[:, None, None], [1, 20, 1])
  ab = tf.concat([tf.zeros_like(l), tf.where(l > 50, 60.0, -50.0)], axis=-1)  # Partly outside sRGB.
  lab = tf.concat([l, ab], axis=-1)
  for convert, bound in ((colour_space.lab_to_rgb, 1.0), (colour_space.lab_to_rgb_keeping_l, 0.1)):
    rgb = tf.round(convert(lab) * 255.0) / 255.0
    error = float(tf.reduce_mean(tf.abs(colour_space.rgb_to_lab(rgb)[..., 0] - l[..., 0])))
    assert (error < bound) == (convert is colour_space.lab_to_rgb_keeping_l), (convert, error)
  inside = colour_space.rgb_to_lab(tf.random.stateless_uniform([32, 32, 3], seed=[3, 4]))
  assert np.allclose(colour_space.lab_to_rgb_keeping_l(inside), colour_space.lab_to_rgb(inside),
                     atol=1e-5)


def test_ab_in_gamut_takes_the_mildest_scale_that_fits():
  lab = np.concatenate([np.random.default_rng(0).uniform(0, 100, [4, 30, 30, 1]),
                        np.random.default_rng(1).uniform(-80, 80, [4, 30, 30, 2])], -1)
  expected = lab[..., 1:].copy()
  settled = np.zeros(lab.shape[:-1], bool)
  for step in range(7):  # Unscaled first; the last scale where none fits.
    scaled = np.concatenate([lab[..., :1], lab[..., 1:] * 0.7 ** step], -1)
    linear = reference_linear_rgb(scaled)
    fits = np.all((linear > -1e-4) & (linear < 1 + 1e-4), -1) | (step == 6)
    expected[~settled & fits] = scaled[~settled & fits][:, 1:]
    settled |= fits
  assert 0.2 < (expected != lab[..., 1:]).any(-1).mean() < 0.9      # Many pixels desaturated.
  ab = colour_space.ab_in_gamut(tf.constant(lab, tf.float32)).numpy()
  assert ab.shape == (4, 30, 30, 2)
  wrong = ~np.isclose(ab, expected, atol=1e-3).all(-1)
  assert wrong.mean() < 0.002  # Float32 rounding right at the gamut's edge.
