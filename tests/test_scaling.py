"""The model's scaling and the records' quantization (model.scaling)."""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from model import colour_space
from model import decoding
from model import scaling
from sample_images import SAMPLES

pytestmark = pytest.mark.fast


def test_model_scaling_round_trips():
  l = tf.constant([0.0, 50.0, 100.0])
  assert np.allclose(scaling.scale_l(l), [-1, 0, 1])
  assert np.allclose(scaling.unscale_l(scaling.scale_l(l)), l)
  ab = tf.constant([-128.0, 0.0, 64.0])
  assert np.allclose(scaling.scale_ab(ab), [-1, 0, 0.5])
  assert np.allclose(scaling.unscale_ab(scaling.scale_ab(ab)), ab)


def test_quantization_error_in_delta_e_on_the_bundled_photos():
  """Measures what 1-byte quantization costs (figures quoted in model.scaling's docstring)."""
  means, maxima = [], []
  for path in sorted(glob.glob(os.path.join(SAMPLES, '*.jpg'))):
    rgb = tf.constant(decoding.decode_photo(open(path, 'rb').read()).rgb, tf.float32) / 255.0
    lab = colour_space.rgb_to_lab(rgb)
    restored = tf.concat([scaling.dequantize_l(scaling.quantize_l(lab[..., 0]))[..., None],
                          scaling.dequantize_ab(scaling.quantize_ab(lab[..., 1:]))], axis=-1)
    delta_e = tf.norm(lab - restored, axis=-1).numpy()
    means.append(delta_e.mean())
    maxima.append(delta_e.max())
  assert len(means) >= 24
  print(f'quantization ΔE: mean {np.mean(means):.3f}, max {np.max(maxima):.3f}')
  assert np.mean(means) < 0.5
  assert np.max(maxima) < 0.8
