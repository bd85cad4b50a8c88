"""Decoding inside the serving graph, EXIF orientation included (model.graph_decoding)."""
import numpy as np
from PIL import Image
import pytest

from model import decoding
from model import graph_decoding
from reference import close_to
from sample_images import colourful_image, encode

pytestmark = pytest.mark.fast

RGB = colourful_image(42, 120, 90)


def big_endian_exif_jpeg(rgb, orientation):
  """A JPEG whose APP1 holds a Motorola-order ('MM') EXIF with the orientation, after
  a JFIF APP0 (Pillow itself writes Intel order)."""
  tiff = (b'MM\x00\x2a\x00\x00\x00\x08' + b'\x00\x02'
          + b'\x01\x0f\x00\x02\x00\x00\x00\x04' + b'TFX\x00'            # Make
          + b'\x01\x12\x00\x03\x00\x00\x00\x01' + bytes([0, orientation, 0, 0])
          + b'\x00\x00\x00\x00')
  app1 = b'Exif\x00\x00' + tiff
  jpeg = encode(rgb, 'JPEG', quality=95)
  return jpeg[:20] + b'\xff\xe1' + (len(app1) + 2).to_bytes(2, 'big') + app1 + jpeg[20:]


def test_decode_image_keeps_gray_single_and_composites_alpha_on_white():
  gray = RGB[..., 0]
  assert np.array_equal(graph_decoding.decode_image(encode(gray, 'PNG')).numpy(), gray[..., None])
  assert np.array_equal(graph_decoding.decode_image(encode(RGB, 'PNG')).numpy(), RGB)
  for image in (np.dstack([RGB, RGB[..., 1]]), np.dstack([gray, RGB[..., 2]])):  # RGBA, LA
    data = encode(image, 'PNG')
    decoded = graph_decoding.decode_image(data).numpy()
    assert decoded.shape == image.shape[:2] + (image.shape[2] - 1,)
    expected = decoding.decode_photo(data).rgb[..., :decoded.shape[-1]]
    assert np.abs(decoded.astype(np.int32) - expected).max() <= 1


@pytest.mark.parametrize('orientation', range(1, 9))
def test_decode_image_applies_exif_orientation_as_pillow_does(orientation):
  """The serving graph's decoding shows a photo as `decode_photo` (Pillow's
  exif_transpose) and a browser do, in JPEG's APP1 in either byte order and PNG's eXIf."""
  exif = Image.Exif()
  exif[0x0112] = orientation
  encoded = {
      'jpeg': encode(RGB, 'JPEG', quality=95, exif=exif),
      'png': encode(RGB, 'PNG', exif=exif),
      'big-endian jpeg': big_endian_exif_jpeg(RGB, orientation),
  }
  for name, data in encoded.items():
    expected = decoding.decode_photo(data).rgb
    assert int(graph_decoding.exif_orientation(data)) == orientation, name
    decoded = graph_decoding.decode_image(data).numpy()
    assert decoded.shape == expected.shape, name
    assert close_to(decoded, expected, 3.0), name  # Two JPEG decoders: not bit-equal.
  if orientation != 1:
    assert decoded.shape != RGB.shape or not close_to(decoded, RGB, 3.0)


def test_exif_orientation_is_1_without_a_tag_and_on_odd_bytes():
  for data in (encode(RGB, 'JPEG'), encode(RGB, 'PNG'), encode(RGB, 'GIF'), b'',
               b'\xff\xd8Exif\x00\x00', b'\xff\xd8\xff\xe1\x00\x08Exif\x00\x00MM',
               b'\x89PNG\r\n\x1a\neXIfII*\x00\xff\xff\xff\x7f'):
    assert int(graph_decoding.exif_orientation(data)) == 1, data[:16]
