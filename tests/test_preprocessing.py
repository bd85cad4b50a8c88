"""Decoding, normalisation, Lab, scaling, quantization and colourfulness."""
import glob
import io
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from model import preprocessing as pp
from sample_images import SAMPLES, colourful_image, encode, huge_png

RGB = colourful_image(42, 120, 90)


def reference_lab(rgb01: np.ndarray) -> np.ndarray:
  """CIE Lab (D65) from sRGB, written out from the standard's formulas."""
  rgb = np.asarray(rgb01, np.float64)
  linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
  m = np.array([[0.412453, 0.357580, 0.180423],
                [0.212671, 0.715160, 0.072169],
                [0.019334, 0.119193, 0.950227]])
  xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
  f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
  return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                   200 * (f[..., 1] - f[..., 2])], -1)


def close_to(decoded: np.ndarray, expected: np.ndarray, tolerance: float) -> bool:
  return np.abs(decoded.astype(np.int32) - expected.astype(np.int32)).mean() <= tolerance


@pytest.mark.parametrize('fmt, kwargs, tolerance', [
    ('JPEG', {'quality': 95}, 3.0), ('PNG', {}, 0.0), ('BMP', {}, 0.0),
    ('WEBP', {'lossless': True}, 0.0), ('TIFF', {}, 0.0), ('GIF', {}, 12.0)])
def test_decodes_every_supported_format(fmt, kwargs, tolerance):
  photo = pp.decode_photo(encode(RGB, fmt, **kwargs))
  assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == RGB.shape
  assert (photo.height, photo.width) == RGB.shape[:2]
  assert close_to(photo.rgb, RGB, tolerance)


def test_gif_takes_the_first_frame():
  frames = [Image.fromarray(RGB), Image.fromarray(255 - RGB)]
  buffer = io.BytesIO()
  frames[0].save(buffer, 'GIF', save_all=True, append_images=frames[1:])
  photo = pp.decode_photo(buffer.getvalue())
  assert close_to(photo.rgb, RGB, 12.0) and not close_to(photo.rgb, 255 - RGB, 12.0)


def test_alpha_is_composited_on_white():
  rgba = np.concatenate([RGB, np.zeros(RGB.shape[:2] + (1,), np.uint8)], axis=2)
  rgba[:, : RGB.shape[1] // 2, 3] = 255  # Left half opaque, right half transparent.
  photo = pp.decode_photo(encode(rgba, 'PNG'))
  half = RGB.shape[1] // 2
  assert np.array_equal(photo.rgb[:, :half], RGB[:, :half])
  assert (photo.rgb[:, half:] == 255).all()


def test_palette_png():
  data = io.BytesIO()
  Image.fromarray(RGB).quantize(64).save(data, 'PNG')
  photo = pp.decode_photo(data.getvalue())
  assert photo.rgb.shape == RGB.shape and close_to(photo.rgb, RGB, 12.0)


def test_sixteen_bit_gray_png_is_scaled_not_clipped():
  gray16 = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
  buffer = io.BytesIO()
  Image.fromarray(gray16).save(buffer, 'PNG')
  photo = pp.decode_photo(buffer.getvalue())
  assert photo.rgb[0, 0, 0] == 0 and photo.rgb[-1, -1, 0] == 255
  assert np.array_equal(photo.rgb[..., 0], np.round(gray16 / 257).astype(np.uint8))


def test_cmyk_jpeg_becomes_rgb():
  buffer = io.BytesIO()
  Image.fromarray(RGB).convert('CMYK').save(buffer, 'JPEG', quality=95)
  photo = pp.decode_photo(buffer.getvalue())
  assert photo.rgb.shape == RGB.shape and close_to(photo.rgb, RGB, 4.0)


def test_exif_orientation_is_applied():
  exif = Image.Exif()
  exif[0x0112] = 6  # Rotated 90° clockwise for display.
  buffer = io.BytesIO()
  Image.fromarray(RGB).save(buffer, 'JPEG', quality=95, exif=exif)
  photo = pp.decode_photo(buffer.getvalue())
  assert (photo.height, photo.width) == (RGB.shape[1], RGB.shape[0])
  assert close_to(photo.rgb, np.rot90(RGB, k=-1), 3.0)


def test_icc_profile_is_converted_to_srgb():
  from PIL import ImageCms  # pylint: disable=import-outside-toplevel
  lab_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
  photo = pp.decode_photo(encode(RGB, 'PNG', icc_profile=lab_profile))
  assert close_to(photo.rgb, RGB, 1.0)


def test_draft_decodes_large_jpegs_reduced_but_not_below_the_requested_size():
  big = np.kron(RGB, np.ones((8, 8, 1), np.uint8))  # 960x720
  photo = pp.decode_photo(encode(big, 'JPEG', quality=90), draft_size=256)
  assert (photo.height, photo.width) == big.shape[:2]  # The photo's own size is reported.
  assert min(photo.rgb.shape[:2]) >= 256 and photo.rgb.shape[0] < big.shape[0]


@pytest.mark.parametrize('data, reason', [
    (b'', 'empty'),
    (b'just some text, not an image\n', 'not_an_image'),
    (b'<svg xmlns="http://www.w3.org/2000/svg"/>', 'unsupported_format'),
    (b'%PDF-1.4 ...', 'unsupported_format'),
    (b'\x00\x00\x00\x18ftypheic' + bytes(64), 'unsupported_format'),
    (encode(RGB, 'JPEG')[:300], 'truncated'),
    (encode(RGB, 'JPEG')[:1500], 'truncated'),
    (encode(RGB, 'PNG')[:2000], 'truncated'),
    (b'\x89PNG\r\n\x1a\n' + bytes(100), 'undecodable'),
    (encode(colourful_image(1, 31, 200), 'PNG'), 'too_small'),
    (encode(RGB, 'PPM'), 'unsupported_format'),
])
def test_rejects_with_a_reason(data, reason):
  with pytest.raises(pp.PhotoRejected) as raised:
    pp.decode_photo(data)
  assert raised.value.reason == reason
  assert raised.value.reason in pp.REJECT_REASONS and raised.value.detail


def test_too_large_is_rejected_from_the_header_without_decoding(monkeypatch):
  data = huge_png()  # 120 megapixels: decoding would take 360 MB as RGB.
  loads = []
  real_load = Image.Image.load
  monkeypatch.setattr(Image.Image, 'load', lambda self: loads.append(self) or real_load(self))
  with pytest.raises(pp.PhotoRejected) as raised:
    pp.decode_photo(data, max_megapixels=50)
  assert raised.value.reason == 'too_large' and '120.0 megapixels' in raised.value.detail
  assert not loads  # No pixel was decoded.
  photo = pp.decode_photo(encode(RGB, 'PNG'), max_megapixels=0.02)  # 0.0108 MP passes.
  assert photo.rgb.shape == RGB.shape and loads


def test_lab_matches_the_reference_and_round_trips():
  rgb = tf.random.stateless_uniform([64, 64, 3], seed=[1, 2])
  lab = pp.rgb_to_lab(rgb).numpy()
  assert np.abs(lab - reference_lab(rgb.numpy())).max() < 0.005
  assert np.abs(pp.lab_to_rgb(lab).numpy() - rgb.numpy()).max() < 1e-4
  white = pp.rgb_to_lab(tf.ones([1, 1, 3])).numpy()[0, 0]
  assert np.allclose(white, [100, 0, 0], atol=0.01)


def test_model_scaling_round_trips():
  l = tf.constant([0.0, 50.0, 100.0])
  assert np.allclose(pp.scale_l(l), [-1, 0, 1])
  assert np.allclose(pp.unscale_l(pp.scale_l(l)), l)
  ab = tf.constant([-128.0, 0.0, 64.0])
  assert np.allclose(pp.scale_ab(ab), [-1, 0, 0.5])
  assert np.allclose(pp.unscale_ab(pp.scale_ab(ab)), ab)


def test_quantization_error_in_delta_e_on_the_bundled_photos():
  """Measures what 1-byte quantization costs (figures quoted in preprocessing's docstring)."""
  means, maxima = [], []
  for path in sorted(glob.glob(os.path.join(SAMPLES, '*.jpg'))):
    rgb = tf.constant(pp.decode_photo(open(path, 'rb').read()).rgb, tf.float32) / 255.0
    lab = pp.rgb_to_lab(rgb)
    restored = tf.concat([pp.dequantize_l(pp.quantize_l(lab[..., 0]))[..., None],
                          pp.dequantize_ab(pp.quantize_ab(lab[..., 1:]))], axis=-1)
    delta_e = tf.norm(lab - restored, axis=-1).numpy()
    means.append(delta_e.mean())
    maxima.append(delta_e.max())
  assert len(means) >= 24
  print(f'quantization ΔE: mean {np.mean(means):.3f}, max {np.max(maxima):.3f}')
  assert np.mean(means) < 0.5
  assert np.max(maxima) < 0.8


def test_colourfulness():
  gray = np.repeat(RGB[..., :1], 3, axis=2)
  assert float(pp.colourfulness(gray)) == pytest.approx(0.0, abs=1e-4)
  # Half pure red, half pure green: rg is +-255 (std 255, mean 0), yb is 127.5 (std 0).
  image = np.zeros((4, 4, 3), np.uint8)
  image[:2, :, 0] = 255
  image[2:, :, 1] = 255
  assert float(pp.colourfulness(image)) == pytest.approx(255 + 0.3 * 127.5, rel=1e-5)
  assert float(pp.colourfulness(RGB)) > 30


def test_photo_to_records_crops_the_centre_and_quantizes():
  wide = np.zeros((100, 300, 3), np.uint8)
  wide[:, 100:200] = [200, 30, 30]  # The centre square is red; the sides are black.
  out = pp.photo_to_records(wide)
  assert out['l'].dtype == tf.uint8 and out['l'].shape == (256, 256)
  assert out['ab'].dtype == tf.uint8 and out['ab'].shape == (256, 256, 2)
  assert out['embedding_input'].shape == (299, 299, 3)
  lab = pp.dequantize_ab(out['ab']).numpy()
  assert lab[..., 0].min() > 40  # All red (a >> 0): none of the black sides.
  l = pp.dequantize_l(out['l']).numpy()
  gray = out['embedding_input'].numpy()
  assert np.allclose(gray[..., 0], gray[..., 2])
  assert gray.min() >= -1.0 and gray.max() <= 1.0
  assert np.isclose(gray.mean(), pp.scale_l(l).mean(), atol=0.01)


def test_crop_boxes_start_with_the_centre_and_are_repeatable():
  seed = 'ab' * 32
  boxes = pp.crop_boxes(300, 400, 16, seed)
  assert len(boxes) == 16
  assert boxes[0] == pp.CropBox(0, 50, 300)           # The centred square.
  for box in boxes:
    assert pp.MIN_CROP_SCALE * 300 - 1 <= box.side <= 300
    assert 0 <= box.top <= 300 - box.side and 0 <= box.left <= 400 - box.side
  assert len(set(boxes)) == 16                        # New framings, none repeated.
  assert pp.crop_boxes(300, 400, 16, seed) == boxes   # Re-ingestion writes the same crops.
  assert pp.crop_boxes(300, 400, 16, 'cd' * 32)[1:] != boxes[1:]
  assert pp.crop_boxes(300, 400, 1, seed) == boxes[:1]


def test_photo_crops_decode_large_enough_for_the_smallest_crop():
  big = encode(colourful_image(3, 1600, 1200), 'JPEG', quality=90)
  photo, crops = pp.photo_crops(big, 'ef' * 32, crops_per_image=4)
  assert min(photo.rgb.shape[:2]) >= pp.IMAGE_SIZE / pp.MIN_CROP_SCALE  # Draft kept >= 512.
  assert (photo.height, photo.width) == (1200, 1600) and len(crops) == 4
  one_photo, one = pp.photo_crops(big, 'ef' * 32)
  assert min(one_photo.rgb.shape[:2]) < min(photo.rgb.shape[:2])       # 1 crop: drafted to 256+.
  assert len(one) == 1
  gray = encode(np.repeat(colourful_image(3)[..., :1], 3, axis=2), 'PNG')
  with pytest.raises(pp.PhotoRejected, match='no_colour'):
    pp.photo_crops(gray, 'ef' * 32, crops_per_image=4)


def test_lab_to_rgb_keeping_l_desaturates_instead_of_clipping():
  l = tf.tile(tf.linspace(5.0, 95.0, 100)[:, None, None], [1, 20, 1])
  ab = tf.concat([tf.zeros_like(l), tf.where(l > 50, 60.0, -50.0)], axis=-1)  # Partly outside sRGB.
  lab = tf.concat([l, ab], axis=-1)
  for convert, bound in ((pp.lab_to_rgb, 1.0), (pp.lab_to_rgb_keeping_l, 0.1)):
    rgb = tf.round(convert(lab) * 255.0) / 255.0
    error = float(tf.reduce_mean(tf.abs(pp.rgb_to_lab(rgb)[..., 0] - l[..., 0])))
    assert (error < bound) == (convert is pp.lab_to_rgb_keeping_l), (convert, error)
  inside = pp.rgb_to_lab(tf.random.stateless_uniform([32, 32, 3], seed=[3, 4]))
  assert np.allclose(pp.lab_to_rgb_keeping_l(inside), pp.lab_to_rgb(inside), atol=1e-5)


def reference_linear_rgb(lab: np.ndarray) -> np.ndarray:
  """Linear RGB from CIE Lab (D65), written out from the standard's formulas, unclipped."""
  lab = np.asarray(lab, np.float64)
  fy = (lab[..., 0] + 16) / 116
  f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
  xyz = np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * [0.95047, 1.0, 1.08883]
  m = np.array([[3.240479, -1.537150, -0.498535],
                [-0.969256, 1.875992, 0.041556],
                [0.055648, -0.204043, 1.057311]])
  return xyz @ m.T


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
  ab = pp.ab_in_gamut(tf.constant(lab, tf.float32)).numpy()
  assert ab.shape == (4, 30, 30, 2)
  wrong = ~np.isclose(ab, expected, atol=1e-3).all(-1)
  assert wrong.mean() < 0.002  # Float32 rounding right at the gamut's edge.


def reference_rgb8(lab: np.ndarray) -> np.ndarray:
  """8-bit sRGB from CIE Lab (D65), written out from the standard's formulas, clipped."""
  linear = np.clip(reference_linear_rgb(lab), 0, 1)
  srgb = np.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, 12.92 * linear)
  return np.round(srgb * 255).astype(np.int32)


@pytest.mark.parametrize('channels', [3, 1])
def test_photo_with_colour_is_lab_to_rgb_of_the_photos_l_and_the_stretched_ab(channels):
  pixels = tf.random.stateless_uniform([90, 70, channels], seed=[5, 6], maxval=256,
                                       dtype=tf.int32)
  pixels = tf.concat([pixels, tf.zeros([1, 70, channels], tf.int32),   # Black and white rows.
                      tf.fill([1, 70, channels], 255)], axis=0)
  pixels = tf.cast(pixels, tf.uint8)
  ab = tf.random.stateless_uniform([16, 16, 2], seed=[7, 8], minval=-60, maxval=60)
  ab = pp.ab_in_gamut(tf.concat([tf.fill([16, 16, 1], 50.0), ab], axis=-1))
  rgb = np.broadcast_to(pixels.numpy() / 255.0, (92, 70, 3))
  lab = np.concatenate([reference_lab(rgb)[..., :1], tf.image.resize(ab, [92, 70]).numpy()], -1)
  colourized = pp.photo_with_colour(pixels, ab).numpy()
  assert colourized.dtype == np.uint8 and colourized.shape == (92, 70, 3)
  difference = np.abs(colourized.astype(np.int32) - reference_rgb8(lab))
  assert difference.max() <= 1 and (difference > 0).mean() < 0.01  # Float32 rounding.


def test_decode_image_keeps_gray_single_and_composites_alpha_on_white():
  gray = RGB[..., 0]
  assert np.array_equal(pp.decode_image(encode(gray, 'PNG')).numpy(), gray[..., None])
  assert np.array_equal(pp.decode_image(encode(RGB, 'PNG')).numpy(), RGB)
  for image in (np.dstack([RGB, RGB[..., 1]]), np.dstack([gray, RGB[..., 2]])):  # RGBA, LA
    data = encode(image, 'PNG')
    decoded = pp.decode_image(data).numpy()
    assert decoded.shape == image.shape[:2] + (image.shape[2] - 1,)
    expected = pp.decode_photo(data).rgb[..., :decoded.shape[-1]]
    assert np.abs(decoded.astype(np.int32) - expected).max() <= 1


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
    expected = pp.decode_photo(data).rgb
    assert int(pp.exif_orientation(data)) == orientation, name
    decoded = pp.decode_image(data).numpy()
    assert decoded.shape == expected.shape, name
    assert close_to(decoded, expected, 3.0), name  # Two JPEG decoders: not bit-equal.
  if orientation != 1:
    assert decoded.shape != RGB.shape or not close_to(decoded, RGB, 3.0)


def test_exif_orientation_is_1_without_a_tag_and_on_odd_bytes():
  for data in (encode(RGB, 'JPEG'), encode(RGB, 'PNG'), encode(RGB, 'GIF'), b'',
               b'\xff\xd8Exif\x00\x00', b'\xff\xd8\xff\xe1\x00\x08Exif\x00\x00MM',
               b'\x89PNG\r\n\x1a\neXIfII*\x00\xff\xff\xff\x7f'):
    assert int(pp.exif_orientation(data)) == 1, data[:16]
