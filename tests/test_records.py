"""The record schema: make_example -> serialized -> parse gives the same values back."""
import numpy as np
import pytest
import tensorflow as tf

from model import cropping
from model import records
from model import scaling
from sample_images import colourful_image

pytestmark = pytest.mark.fast


def _example():
  out = cropping.photo_to_records(colourful_image(3, 200, 150))
  embedding = np.linspace(0, 1, scaling.EMBEDDING_DIM, dtype=np.float32)
  example = records.make_example(l=out['l'].numpy(), ab=out['ab'].numpy(), embedding=embedding,
                                 source='gs://bucket/photo.jpg', content_sha256='ab' * 32,
                                 height=150, width=200)
  return out, embedding, example.SerializeToString()


def test_parse_single_and_batched_round_trip():
  out, embedding, serialized = _example()
  single = records.parse(tf.constant(serialized))
  assert single['l'].shape == (256, 256, 1) and single['ab'].shape == (256, 256, 2)
  assert np.array_equal(single['l'][..., 0], scaling.dequantize_l(out['l']))
  assert np.array_equal(single['ab'], scaling.dequantize_ab(out['ab']))
  assert np.allclose(single['embedding'], embedding)
  assert single['source'].numpy() == b'gs://bucket/photo.jpg'
  assert (int(single['height']), int(single['width'])) == (150, 200)
  batch = records.parse(tf.constant([serialized, serialized]))
  assert batch['l'].shape == (2, 256, 256, 1) and batch['ab'].shape == (2, 256, 256, 2)
  assert np.array_equal(batch['ab'][1], single['ab'])


def test_rejects_wrongly_shaped_arrays():
  import pytest  # pylint: disable=import-outside-toplevel
  with pytest.raises(ValueError):
    records.make_example(l=np.zeros((10, 10), np.uint8), ab=np.zeros((10, 10, 2), np.uint8),
                         embedding=np.zeros(scaling.EMBEDDING_DIM), source='x', content_sha256='0',
                         height=10, width=10)
