"""Ingestion's crops and what it stores of them (model.cropping)."""
import numpy as np
import pytest
import tensorflow as tf

from model import cropping
from model import decoding
from model import scaling
from sample_images import colourful_image, encode

pytestmark = pytest.mark.fast


def test_photo_to_records_crops_the_centre_and_quantizes():
  wide = np.zeros((100, 300, 3), np.uint8)
  wide[:, 100:200] = [200, 30, 30]  # The centre square is red; the sides are black.
  out = cropping.photo_to_records(wide)
  assert out['l'].dtype == tf.uint8 and out['l'].shape == (256, 256)
  assert out['ab'].dtype == tf.uint8 and out['ab'].shape == (256, 256, 2)
  assert out['embedding_input'].shape == (299, 299, 3)
  lab = scaling.dequantize_ab(out['ab']).numpy()
  assert lab[..., 0].min() > 40  # All red (a >> 0): none of the black sides.
  l = scaling.dequantize_l(out['l']).numpy()
  gray = out['embedding_input'].numpy()
  assert np.allclose(gray[..., 0], gray[..., 2])
  assert gray.min() >= -1.0 and gray.max() <= 1.0
  assert np.isclose(gray.mean(), scaling.scale_l(l).mean(), atol=0.01)


def test_crop_boxes_start_with_the_centre_and_are_repeatable():
  seed = 'ab' * 32
  boxes = cropping.crop_boxes(300, 400, 16, seed)
  assert len(boxes) == 16
  assert boxes[0] == cropping.CropBox(0, 50, 300)           # The centred square.
  for box in boxes:
    assert cropping.MIN_CROP_SCALE * 300 - 1 <= box.side <= 300
    assert 0 <= box.top <= 300 - box.side and 0 <= box.left <= 400 - box.side
  assert len(set(boxes)) == 16                        # New framings, none repeated.
  assert cropping.crop_boxes(300, 400, 16, seed) == boxes   # Re-ingestion writes the same crops.
  assert cropping.crop_boxes(300, 400, 16, 'cd' * 32)[1:] != boxes[1:]
  assert cropping.crop_boxes(300, 400, 1, seed) == boxes[:1]


def test_photo_crops_decode_large_enough_for_the_smallest_crop():
  big = encode(colourful_image(3, 1600, 1200), 'JPEG', quality=90)
  photo, crops = cropping.photo_crops(big, 'ef' * 32, crops_per_image=4)
  # The draft is kept >= 512.
  assert min(photo.rgb.shape[:2]) >= scaling.IMAGE_SIZE / cropping.MIN_CROP_SCALE
  assert (photo.height, photo.width) == (1200, 1600) and len(crops) == 4
  one_photo, one = cropping.photo_crops(big, 'ef' * 32)
  assert min(one_photo.rgb.shape[:2]) < min(photo.rgb.shape[:2])       # 1 crop: drafted to 256+.
  assert len(one) == 1
  gray = encode(np.repeat(colourful_image(3)[..., :1], 3, axis=2), 'PNG')
  with pytest.raises(decoding.PhotoRejected, match='no_colour'):
    cropping.photo_crops(gray, 'ef' * 32, crops_per_image=4)
