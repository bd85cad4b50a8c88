"""Decoding photo files with Pillow, and the reasons for rejecting them (model.decoding)."""
import io

import numpy as np
from PIL import Image
import pytest

from model import decoding
from reference import close_to
from sample_images import (colourful_image, colourful_image16, encode, huge_png, png16, tiff16,
                           with_chunk)

pytestmark = pytest.mark.fast

RGB = colourful_image(42, 120, 90)


@pytest.mark.parametrize('fmt, kwargs, tolerance', [
    ('JPEG', {'quality': 95}, 3.0), ('PNG', {}, 0.0), ('BMP', {}, 0.0),
    ('WEBP', {'lossless': True}, 0.0), ('TIFF', {}, 0.0), ('GIF', {}, 12.0)])
def test_decodes_every_supported_format(fmt, kwargs, tolerance):
  photo = decoding.decode_photo(encode(RGB, fmt, **kwargs))
  assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == RGB.shape
  assert (photo.height, photo.width) == RGB.shape[:2]
  assert close_to(photo.rgb, RGB, tolerance)


def test_gif_takes_the_first_frame():
  frames = [Image.fromarray(RGB), Image.fromarray(255 - RGB)]
  buffer = io.BytesIO()
  frames[0].save(buffer, 'GIF', save_all=True, append_images=frames[1:])
  photo = decoding.decode_photo(buffer.getvalue())
  assert close_to(photo.rgb, RGB, 12.0) and not close_to(photo.rgb, 255 - RGB, 12.0)


def test_alpha_is_composited_on_white():
  rgba = np.concatenate([RGB, np.zeros(RGB.shape[:2] + (1,), np.uint8)], axis=2)
  rgba[:, : RGB.shape[1] // 2, 3] = 255  # Left half opaque, right half transparent.
  photo = decoding.decode_photo(encode(rgba, 'PNG'))
  half = RGB.shape[1] // 2
  assert np.array_equal(photo.rgb[:, :half], RGB[:, :half])
  assert (photo.rgb[:, half:] == 255).all()


def test_palette_png():
  data = io.BytesIO()
  Image.fromarray(RGB).quantize(64).save(data, 'PNG')
  photo = decoding.decode_photo(data.getvalue())
  assert photo.rgb.shape == RGB.shape and close_to(photo.rgb, RGB, 12.0)


def test_sixteen_bit_gray_png_is_scaled_not_clipped():
  gray16 = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
  buffer = io.BytesIO()
  Image.fromarray(gray16).save(buffer, 'PNG')
  photo = decoding.decode_photo(buffer.getvalue())
  assert photo.rgb[0, 0, 0] == 0 and photo.rgb[-1, -1, 0] == 255
  assert np.array_equal(photo.rgb[..., 0], np.round(gray16 / 257).astype(np.uint8))


def test_sixteen_bit_colour_png_keeps_its_16_bits_on_request():
  rgb16 = colourful_image16(3, 90, 70)
  data = png16(rgb16)
  photo = decoding.decode_photo(data, keep_16bit=True)
  assert photo.rgb.dtype == np.uint16 and photo.rgb.shape == (70, 90, 3)
  assert np.array_equal(photo.rgb, rgb16) and photo.format == 'PNG'
  eight_bit = decoding.decode_photo(data)  # Ingestion and serving: Pillow's 8-bit copy.
  assert eight_bit.rgb.dtype == np.uint8 and close_to(eight_bit.rgb, rgb16 // 257, 1.0)


def test_sixteen_bit_rgba_png_is_composited_on_white_at_16_bits():
  rgba = np.concatenate([colourful_image16(4, 64, 48), np.full((48, 64, 1), 65535, np.uint16)], 2)
  rgba[:, 32:, 3] = 0  # Right half transparent.
  photo = decoding.decode_photo(png16(rgba), keep_16bit=True)
  assert photo.rgb.dtype == np.uint16 and photo.rgb.shape == (48, 64, 3)
  assert np.array_equal(photo.rgb[:, :32], rgba[:, :32, :3]) and (photo.rgb[:, 32:] == 65535).all()
  gray_alpha = decoding.decode_photo(png16(rgba[..., 2:]), keep_gray=True, keep_16bit=True)
  assert gray_alpha.rgb.dtype == np.uint8 and 'gray with alpha' in gray_alpha.read_at_8_bits


@pytest.mark.parametrize('orientation', range(1, 9))
def test_sixteen_bit_colour_png_is_turned_by_its_exif_orientation_as_pillow_turns_it(orientation):
  exif = Image.Exif()
  exif[0x0112] = orientation
  data = with_chunk(png16(colourful_image16(5, 72, 40)), b'eXIf', exif.tobytes())
  photo = decoding.decode_photo(data, keep_16bit=True)
  eight_bit = decoding.decode_photo(data)
  assert photo.rgb.dtype == np.uint16 and photo.rgb.shape == eight_bit.rgb.shape
  assert (photo.height, photo.width) == (eight_bit.height, eight_bit.width)
  assert close_to(np.round(photo.rgb / 257), eight_bit.rgb, 0.5)


def test_sixteen_bit_colour_png_with_a_profile_other_than_srgb_gives_the_converted_8_bit_copy():
  from PIL import ImageCms  # pylint: disable=import-outside-toplevel
  rgb16 = png16(colourful_image16(6, 64, 48))
  srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
  xyz = ImageCms.ImageCmsProfile(ImageCms.createProfile('XYZ')).tobytes()
  kept = decoding.decode_photo(with_chunk(rgb16, b'iCCP', srgb), keep_16bit=True)
  assert kept.rgb.dtype == np.uint16 and kept.icc_profile == srgb
  assert kept.read_at_8_bits == ''
  converted = decoding.decode_photo(with_chunk(rgb16, b'iCCP', xyz), keep_16bit=True)
  assert converted.rgb.dtype == np.uint8 and 'ICC profile is not sRGB' in converted.read_at_8_bits
  assert np.array_equal(converted.rgb, decoding.decode_photo(with_chunk(rgb16, b'iCCP', xyz)).rgb)


def scan16(width: int = 90, height: int = 70, samples: int = 3) -> np.ndarray:
  """Noise in all 16 bits, under a flat white margin (runs for PackBits and LZW)."""
  pixels = np.random.default_rng(7).integers(0, 65536, (height, width, samples), np.uint16)
  pixels[:9] = 65535
  return pixels


# (compression, predictor, big_endian, tile, planar): what scanners and Photoshop write.
TIFF16_VARIANTS = [
    ('none', False, False, 0, False), ('none', False, True, 16, False),
    ('none', False, True, 0, True), ('lzw', False, False, 0, False),
    ('lzw', True, False, 0, False), ('lzw', True, True, 16, False),
    ('adobe_deflate', True, False, 0, False), ('adobe_deflate', False, True, 0, False),
    ('deflate', True, True, 16, False), ('packbits', False, False, 0, False),
    ('packbits', False, True, 16, False)]


@pytest.mark.parametrize('compression, predictor, big_endian, tile, planar', TIFF16_VARIANTS)
def test_sixteen_bit_colour_tiff_keeps_its_16_bits_on_request(compression, predictor, big_endian,
                                                              tile, planar):
  rgb16 = scan16()
  data = tiff16(rgb16, compression, predictor, big_endian, tile=tile, planar=planar)
  photo = decoding.decode_photo(data, keep_16bit=True)
  assert photo.rgb.dtype == np.uint16 and np.array_equal(photo.rgb, rgb16)
  assert (photo.format, photo.read_at_8_bits) == ('TIFF', '')
  eight_bit = decoding.decode_photo(data)  # Ingestion and serving: Pillow's 8 bits.
  assert eight_bit.rgb.dtype == np.uint8 and np.array_equal(eight_bit.rgb, rgb16 >> 8)


# EXIF orientation -> Pillow's transposition that shows the photo upright.
TRANSPOSE = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
             4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
             6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
             8: Image.Transpose.ROTATE_90}


@pytest.mark.parametrize('orientation', range(1, 9))
def test_sixteen_bit_colour_tiff_is_turned_by_its_exif_orientation(orientation):
  rgb16 = scan16(72, 40)
  photo = decoding.decode_photo(tiff16(rgb16, 'lzw', True, orientation=orientation),
                                keep_16bit=True)
  method = TRANSPOSE[orientation]
  upright = np.stack([np.asarray(Image.fromarray(rgb16[..., c]).transpose(method))
                      if method is not None else rgb16[..., c] for c in range(3)], axis=-1)
  assert photo.rgb.dtype == np.uint16 and np.array_equal(photo.rgb, upright)
  assert (photo.height, photo.width) == upright.shape[:2]


@pytest.mark.parametrize('extra_sample', [0, 1, 2])
def test_sixteen_bit_rgba_tiff_is_composited_on_white_at_16_bits(extra_sample):
  """ExtraSamples 0: not alpha (ignored); 1: premultiplied alpha; 2: plain alpha."""
  rgba = scan16(64, 48, samples=4)
  rgba[:, :32, 3] = 65535  # Left half opaque, right half see-through in places.
  colour, alpha = rgba[..., :3].astype(np.float64), rgba[..., 3:] / 65535.0
  if extra_sample == 1:
    rgba[..., :3] = np.round(colour * alpha)
    colour = rgba[..., :3] / alpha.clip(1e-9)
  photo = decoding.decode_photo(tiff16(rgba, 'lzw', True, extra_sample=extra_sample),
                                keep_16bit=True)
  assert photo.rgb.dtype == np.uint16 and photo.rgb.shape == (48, 64, 3)
  assert np.array_equal(photo.rgb[:, :32], rgba[:, :32, :3])
  if extra_sample == 0:
    assert np.array_equal(photo.rgb, rgba[..., :3])
  else:
    on_white = colour * alpha + 65535.0 * (1.0 - alpha)
    assert np.abs(photo.rgb - on_white).max() <= 1.0


def test_a_sixteen_bit_tiff_that_cannot_keep_its_16_bits_says_why():
  from PIL import ImageCms  # pylint: disable=import-outside-toplevel
  xyz = ImageCms.ImageCmsProfile(ImageCms.createProfile('XYZ')).tobytes()
  rgb16 = scan16()
  cases = {'PlanarConfiguration 2': tiff16(rgb16, 'adobe_deflate', planar=True),
           'lzma compression': tiff16(rgb16, 'lzma'),
           'ICC profile is not sRGB': tiff16(rgb16, 'lzw', icc_profile=xyz)}
  for why, data in cases.items():
    photo = decoding.decode_photo(data, keep_16bit=True)
    assert photo.rgb.dtype == np.uint8 and why in photo.read_at_8_bits, why
    eight_bit = decoding.decode_photo(data)
    assert np.array_equal(photo.rgb, eight_bit.rgb) and eight_bit.read_at_8_bits == '', why
  assert np.array_equal(decoding.decode_photo(cases['lzma compression']).rgb, rgb16 >> 8)
  # Separate uncompressed planes are read at 16 bits, or at 8 for their profile (which,
  # being XYZ, LittleCMS cannot convert RGB from: the pixels stay as they are).
  photo = decoding.decode_photo(tiff16(rgb16, planar=True, icc_profile=xyz), keep_16bit=True)
  assert 'ICC profile' in photo.read_at_8_bits and np.array_equal(photo.rgb, rgb16 >> 8)


def test_cmyk_jpeg_becomes_rgb():
  buffer = io.BytesIO()
  Image.fromarray(RGB).convert('CMYK').save(buffer, 'JPEG', quality=95)
  photo = decoding.decode_photo(buffer.getvalue())
  assert photo.rgb.shape == RGB.shape and close_to(photo.rgb, RGB, 4.0)


def test_exif_orientation_is_applied():
  exif = Image.Exif()
  exif[0x0112] = 6  # Rotated 90° clockwise for display.
  buffer = io.BytesIO()
  Image.fromarray(RGB).save(buffer, 'JPEG', quality=95, exif=exif)
  photo = decoding.decode_photo(buffer.getvalue())
  assert (photo.height, photo.width) == (RGB.shape[1], RGB.shape[0])
  assert close_to(photo.rgb, np.rot90(RGB, k=-1), 3.0)


def test_icc_profile_is_converted_to_srgb():
  from PIL import ImageCms  # pylint: disable=import-outside-toplevel
  lab_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
  photo = decoding.decode_photo(encode(RGB, 'PNG', icc_profile=lab_profile))
  assert close_to(photo.rgb, RGB, 1.0)


def test_draft_decodes_large_jpegs_reduced_but_not_below_the_requested_size():
  big = np.kron(RGB, np.ones((8, 8, 1), np.uint8))  # 960x720
  photo = decoding.decode_photo(encode(big, 'JPEG', quality=90), draft_size=256)
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
  with pytest.raises(decoding.PhotoRejected) as raised:
    decoding.decode_photo(data)
  assert raised.value.reason == reason
  assert raised.value.reason in decoding.REJECT_REASONS and raised.value.detail


def test_too_large_is_rejected_from_the_header_without_decoding(monkeypatch):
  data = huge_png()  # 120 megapixels: decoding would take 360 MB as RGB.
  loads = []
  real_load = Image.Image.load
  monkeypatch.setattr(Image.Image, 'load', lambda self: loads.append(self) or real_load(self))
  with pytest.raises(decoding.PhotoRejected) as raised:
    decoding.decode_photo(data, max_megapixels=50)
  assert raised.value.reason == 'too_large' and '120.0 megapixels' in raised.value.detail
  assert not loads  # No pixel was decoded.
  photo = decoding.decode_photo(encode(RGB, 'PNG'), max_megapixels=0.02)  # 0.0108 MP passes.
  assert photo.rgb.shape == RGB.shape and loads


def test_read_and_decode_turns_every_failure_into_a_reason():
  def fail(error):
    def raise_it(*_):
      raise error
    return raise_it

  assert decoding.read_and_decode(lambda: b'data', bytes.upper) == b'DATA'
  cases = [(fail(OSError('no such file')), bytes, 'unreadable', 'no such file'),
           (lambda: b'', decoding.decode_photo, 'empty', 'the file has 0 bytes'),
           (lambda: b'x', fail(IndexError('odd')), 'undecodable', 'IndexError: odd')]
  for read, decode, reason, detail in cases:
    with pytest.raises(decoding.PhotoRejected) as raised:
      decoding.read_and_decode(read, decode)
    assert (raised.value.reason, raised.value.detail) == (reason, detail)
