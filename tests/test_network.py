"""The fusion network's layer shapes (the table in model/network.py)."""
import numpy as np
import pytest

from model import network

pytestmark = pytest.mark.fast


def test_layer_shapes_follow_the_table():
  model = network.build_colorizer()
  shapes = {layer.name: layer.output_shape[1:] for layer in model.layers}
  assert shapes['encoder_1'] == (128, 128, 64)
  assert shapes['encoder_3'] == (64, 64, 128)
  assert shapes['encoder_5'] == (32, 32, 256)
  assert shapes['encoder_8'] == (32, 32, 256)
  assert shapes['grid'] == (32, 32, 1000)
  assert shapes['fuse'] == (32, 32, 1256)
  assert shapes['fusion'] == (32, 32, 256)
  assert shapes['decoder_2'] == (64, 64, 64)
  assert shapes['decoder_4'] == (128, 128, 16)
  assert model.output_shape == (None, 256, 256, 2)
  assert not any('pool' in layer.name for layer in model.layers)
  out = model({'l': np.zeros((2, 256, 256, 1), np.float32),
               'embedding': np.zeros((2, 1000), np.float32)}).numpy()
  assert out.shape == (2, 256, 256, 2) and np.abs(out).max() <= 1.0
