"""The one home of the image facts that ingestion, training and serving share.

Image size, decoding, the CIE Lab conversion, the model's Lab scaling and the
quantization of the stored records all live here, so that the three stages cannot
drift apart: ingestion (`components.ingest`), the Trainer and the serving signature
import these functions rather than re-implementing them.

Colour space: CIE Lab, D65 white point, from sRGB (tensorflow-io's colour ops; at a
photo's full resolution, `photo_with_colour` has the same formulas written out as table
lookups and one matrix product, to within one 8-bit level).
L is in [0, 100]; a and b of sRGB colours lie within about [-86, 98] and [-108, 95].

Model scaling: L enters the model as `L / 50 - 1` in [-1, 1]; the model predicts
`ab / 128` in [-1, 1] (tanh).

Quantization (1 byte per channel-pixel): L is stored as round(L * 2.55) and ab as
round(ab) + 128, both uint8. Worst case the error is 0.2 in L and 0.5 in a and b,
0.73 Lab ΔE; measured on the bundled photos it averages about 0.4 ΔE
(tests/test_preprocessing.py asserts mean < 0.5 and max < 0.8), well under the
just-noticeable difference of about 2.3.
"""
import io
import math
import struct
from typing import List, NamedTuple

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
import tensorflow as tf
import tensorflow_io as tfio

IMAGE_SIZE = 256
"""Side of the square L and ab images the model trains on and the records store."""

EMBEDDING_INPUT_SIZE = 299
"""Side of the gray image Inception-ResNet-v2 embeds."""

EMBEDDING_DIM = 1000
"""Length of the embedding: Inception-ResNet-v2's 1000 ImageNet class probabilities,
as in Deep Koalarization and Emil Wallner's full model."""

MIN_SIDE = 32
"""Photos with a side shorter than this are rejected as too small."""

DEFAULT_MAX_MEGAPIXELS = 50.0
"""Photos above this many megapixels are rejected from their header, before decoding."""

MIN_COLOURFULNESS = 5.0
"""Photos whose Hasler-Suesstrunk colourfulness (on the 256x256 crop) is below this are
rejected as having no colour. Gray photos, also when saved as RGB JPEGs, score under 1;
the least colourful bundled photos (the Hubble deep field, a wood grain) score 9.6 and
13, and a sepia-toned photo 13 to 23, so 5 rejects gray and faintly tinted scans
without rejecting muted colour."""

SUPPORTED_FORMATS = ('JPEG', 'PNG', 'GIF', 'BMP', 'WEBP', 'TIFF')
"""Pillow format names that ingestion decodes; anything else is rejected as unsupported."""

# The signatures of formats that Pillow cannot read but a user may well have in a photo
# folder; they are reported as unsupported formats rather than as broken files.
_UNSUPPORTED_SIGNATURES = (
    (b'<svg', 'SVG'), (b'<?xml', 'SVG/XML'), (b'%PDF', 'PDF'), (b'8BPS', 'PSD'),
    (b'\x00\x00\x00\x0cjP  ', 'JPEG 2000'), (b'\xff\x4f\xff\x51', 'JPEG 2000'),
)
_FTYP_BRANDS = {b'heic': 'HEIC', b'heix': 'HEIC', b'mif1': 'HEIF', b'avif': 'AVIF'}
# The leading bytes of the supported formats: a file that starts like one but that
# Pillow cannot even open is a broken image, not some other kind of file.
_SUPPORTED_SIGNATURES = (
    (b'\xff\xd8\xff', 'JPEG'), (b'\x89PNG\r\n\x1a\n', 'PNG'), (b'GIF8', 'GIF'),
    (b'BM', 'BMP'), (b'II*\x00', 'TIFF'), (b'MM\x00*', 'TIFF'),
)


class PhotoRejected(Exception):
  """A file that ingestion cannot use; `reason` is one of REJECT_REASONS."""

  def __init__(self, reason: str, detail: str):
    super().__init__(f'{reason}: {detail}')
    self.reason = reason
    self.detail = detail


REJECT_REASONS = (
    'unreadable',          # the file could not be read (I/O error, a directory)
    'empty',               # 0 bytes
    'not_an_image',        # not an image format that anything here recognises
    'unsupported_format',  # an image format ingestion does not take (SVG, PDF, HEIC, ...)
    'truncated',           # the image data ends early
    'undecodable',         # a supported format whose data is corrupt
    'too_small',           # a side under MIN_SIDE pixels
    'too_large',           # over --max-megapixels, judged from the header
    'no_colour',           # colourfulness under MIN_COLOURFULNESS
    'duplicate',           # the same bytes as another input file, which is written instead
)


class DecodedPhoto(NamedTuple):
  rgb: np.ndarray  # uint8 [height, width, 3] sRGB, after EXIF orientation (maybe draft-reduced)
  height: int      # the photo's own size after EXIF orientation, before any reduction
  width: int
  format: str = ''         # Pillow's name of the file's format: 'JPEG', 'PNG', ...
  exif: bytes = b''        # the file's EXIF, its orientation reset to upright
  icc_profile: bytes = b''


_GRAY_MODES = ('L', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'I')


def decode_photo(data: bytes, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
                 draft_size: int = 0, keep_gray: bool = False) -> DecodedPhoto:
  """Decodes image bytes to 8-bit sRGB, or raises PhotoRejected saying why not.

  Takes JPEG, PNG, GIF (first frame), BMP, WebP and TIFF; applies EXIF orientation;
  turns CMYK, palette, 16-bit and alpha images into 8-bit sRGB (alpha composited on
  white; an embedded ICC profile is converted to sRGB). The size limit is checked on
  the header, before any pixel is decoded, so a decompression bomb costs nothing.
  `draft_size` > 0 lets JPEG decode at a reduced scale whose sides stay >= draft_size,
  which is several times faster for large photos that are resized afterwards anyway.
  `keep_gray` returns a gray image as it is, [H, W, 1], uint16 when it has 16 bits
  (`colorizer colorize` takes a scan's luminance from all of its bits).
  """
  if not data:
    raise PhotoRejected('empty', 'the file has 0 bytes')
  try:
    image = Image.open(io.BytesIO(data))
  except Image.DecompressionBombError as e:
    raise PhotoRejected('too_large', str(e)) from None
  except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
    raise _unrecognised(data, e) from None

  width, height = image.size
  file_format = image.format
  if image.format not in SUPPORTED_FORMATS:
    raise PhotoRejected('unsupported_format', f'{image.format} images are not ingested; '
                        f'supported: {", ".join(SUPPORTED_FORMATS)}')
  if width * height > max_megapixels * 1e6:
    raise PhotoRejected('too_large', f'{width}x{height} is {width * height / 1e6:.1f} '
                        f'megapixels, over the limit of {max_megapixels:g}')
  if min(width, height) < MIN_SIDE:
    raise PhotoRejected('too_small', f'{width}x{height} has a side under {MIN_SIDE} pixels')

  try:
    if draft_size and image.format == 'JPEG':
      image.draft('RGB', (draft_size, draft_size))
    image.load()
    orientation = image.getexif().get(0x0112, 1)
    image = ImageOps.exif_transpose(image)
    if keep_gray and image.mode in _GRAY_MODES:
      rgb = _gray(image)
    else:
      rgb = _to_srgb8(image)
  except Image.DecompressionBombError as e:
    raise PhotoRejected('too_large', str(e)) from None
  except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as e:
    message = str(e) or type(e).__name__
    reason = 'truncated' if 'truncated' in message or isinstance(e, EOFError) else 'undecodable'
    raise PhotoRejected(reason, f'{file_format}: {message}') from None
  if orientation in (5, 6, 7, 8):
    width, height = height, width
  return DecodedPhoto(rgb, height, width, file_format, image.info.get('exif', b''),
                      image.info.get('icc_profile') or b'')


def _gray(image: Image.Image) -> np.ndarray:
  """A gray Pillow image -> [H, W, 1]: uint8, or uint16 for 16 bits (Pillow's 'I' too)."""
  if image.mode == 'L':
    return np.asarray(image, np.uint8)[..., None]
  return np.clip(np.asarray(image, np.int64), 0, 65535).astype(np.uint16)[..., None]


def _unrecognised(data: bytes, error: Exception) -> PhotoRejected:
  """Why Pillow could not open `data`: a broken image, another format, or no image."""
  message = str(error) or type(error).__name__
  looks_like = next((name for signature, name in _SUPPORTED_SIGNATURES
                     if data.startswith(signature)), None)
  if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
    looks_like = 'WEBP'
  if looks_like:
    reason = 'truncated' if 'runcated' in message else 'undecodable'
    return PhotoRejected(reason, f'{looks_like}: {message}')
  head = data[:64].lstrip()
  for signature, name in _UNSUPPORTED_SIGNATURES:
    if head.startswith(signature):
      return PhotoRejected('unsupported_format', f'{name} files are not ingested')
  if data[4:8] == b'ftyp' and data[8:12] in _FTYP_BRANDS:
    return PhotoRejected('unsupported_format', f'{_FTYP_BRANDS[data[8:12]]} files are not ingested')
  return PhotoRejected('not_an_image', 'no image format recognised in the file')


_SRGB_PROFILE = ImageCms.createProfile('sRGB')


def _to_srgb8(image: Image.Image) -> np.ndarray:
  """Any Pillow mode -> uint8 [H, W, 3] sRGB."""
  icc = image.info.get('icc_profile')
  if icc and image.mode in ('RGB', 'RGBA', 'CMYK'):
    try:
      source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
      mode = 'RGBA' if image.mode == 'RGBA' else 'RGB'
      image = ImageCms.profileToProfile(image, source, _SRGB_PROFILE, outputMode=mode)
    except (ImageCms.PyCMSError, OSError):
      pass  # A broken profile: fall back to treating the pixels as sRGB.
  if image.mode in ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I'):
    # Pillow's own convert('L') clips 16-bit values instead of scaling them.
    gray = np.asarray(image, dtype=np.float64)
    gray = np.clip(np.round(gray / 257.0), 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)
  if image.mode == 'F':
    gray = np.asarray(image, dtype=np.float64)
    scale = 255.0 if gray.max(initial=0.0) <= 1.0 else 1.0 / 257.0
    gray = np.clip(np.round(gray * scale), 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)
  if image.mode in ('RGBA', 'LA', 'PA') or (image.mode == 'P' and 'transparency' in image.info):
    rgba = image.convert('RGBA')
    white = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
    image = Image.alpha_composite(white, rgba)
  return np.asarray(image.convert('RGB'), dtype=np.uint8)


# ---- TensorFlow ops: usable eagerly, in tf.data and inside the serving graph. ----

def center_crop_square(image: tf.Tensor) -> tf.Tensor:
  """The largest centred square of an [H, W, C] image.

  Ingestion crops rather than pads: padding would add flat gray borders whose ab is 0
  and teach the model to paint gray; a crop loses the edges of the photo but every
  pixel the model sees is real.
  """
  shape = tf.shape(image)
  height, width = shape[0], shape[1]
  side = tf.minimum(height, width)
  return tf.image.crop_to_bounding_box(image, (height - side) // 2, (width - side) // 2,
                                       side, side)


MIN_CROP_SCALE = 0.5
"""The smallest extra crop (`--crops-per-image` > 1) has sides of this times the
photo's short side."""


class CropBox(NamedTuple):
  top: int
  left: int
  side: int


def crop_boxes(height: int, width: int, count: int, seed: str) -> List[CropBox]:
  """The squares ingestion cuts from a photo of height x width, `count` of them.

  The first is the largest centred square, the one crop of `--crops-per-image 1`. Each
  other one has a side drawn uniformly between MIN_CROP_SCALE and 1 times the short side
  and a position drawn uniformly over the photo: new framings and scales of the same
  scene, each later resized to IMAGE_SIZE. They are drawn from `seed` (the photo's
  content hash), so re-ingesting a photo writes the same crops.
  """
  short = min(height, width)
  boxes = [CropBox((height - short) // 2, (width - short) // 2, short)]
  rng = np.random.default_rng(int(seed[:16], 16))
  for _ in range(count - 1):
    side = max(1, int(round(short * rng.uniform(MIN_CROP_SCALE, 1.0))))
    boxes.append(CropBox(int(rng.integers(0, height - side + 1)),
                         int(rng.integers(0, width - side + 1)), side))
  return boxes


def resize(image: tf.Tensor, size: int) -> tf.Tensor:
  """Resizes an [H, W, C] image to floats [size, size, C], antialiased (no aliasing
  when a large photo shrinks)."""
  return tf.image.resize(image, [size, size], method='bilinear', antialias=True)


def rgb_to_lab(rgb: tf.Tensor) -> tf.Tensor:
  """sRGB floats in [0, 1] -> CIE Lab (D65)."""
  return tfio.experimental.color.rgb_to_lab(rgb)


def lab_to_rgb(lab: tf.Tensor) -> tf.Tensor:
  """CIE Lab (D65) -> sRGB floats, clipped to [0, 1]."""
  return tf.clip_by_value(tfio.experimental.color.lab_to_rgb(lab), 0.0, 1.0)


_XYZ_TO_LINEAR_RGB = ((3.24048134, -1.53715152, -0.49853633),  # sRGB primaries, D65
                      (-0.96925495, 1.87599, 0.04155593),
                      (0.05564664, -0.20404134, 1.05731107))
_D65 = (0.95047, 1.0, 1.08883)
_LINEAR_RGB_TO_Y = (0.212671, 0.715160, 0.072169)


def _outside_srgb(lab: tf.Tensor) -> tf.Tensor:
  """Whether each Lab colour lies outside the sRGB gamut (tensorflow-io's lab_to_rgb
  clips, which hides it): Lab -> XYZ -> linear RGB, checked against [0, 1]."""
  l, a, b = tf.unstack(lab, axis=-1)
  fy = (l + 16.0) / 116.0
  f = tf.stack([fy + a / 500.0, fy, fy - b / 200.0], axis=-1)
  xyz = tf.where(f > 6.0 / 29.0, f ** 3, (f - 16.0 / 116.0) * (3 * (6.0 / 29.0) ** 2))
  # One [N, 3] x [3, 3] product (matvec would multiply a 3x3 matrix per pixel: slower).
  linear = tf.reshape(
      tf.matmul(tf.reshape(xyz * tf.constant(_D65), [-1, 3]),
                tf.constant(_XYZ_TO_LINEAR_RGB), transpose_b=True), tf.shape(xyz))
  return tf.reduce_any((linear < -1e-4) | (linear > 1.0 + 1e-4), axis=-1, keepdims=True)


_DESATURATION = 0.7 ** np.arange(1, 7)  # ab's scales, tried mildest first


def ab_in_gamut(lab: tf.Tensor) -> tf.Tensor:
  """The ab of `lab` [..., 3], desaturated where sRGB cannot show the colour: an
  out-of-gamut pixel's ab takes the mildest of the scales 0.7, 0.49, ... 0.7^6 that
  brings it inside (or the last), keeping its L (clipping would change it).

  Only the pixels outside (0 to 23% of the demo model's predictions on the held-out
  photos) are tried at every scale, all scales in one pass: no loop.
  """
  colours = tf.reshape(lab, [-1, 3])
  outside = tf.where(_outside_srgb(colours)[:, 0])                     # [K, 1]
  l, ab = tf.split(tf.gather_nd(colours, outside)[:, None], [1, 2], axis=-1)  # [K, 1, 1|2]
  scaled = ab * tf.constant(_DESATURATION, tf.float32)[:, None]        # [K, 6, 2]
  still_outside = _outside_srgb(tf.concat([l + tf.zeros_like(scaled[..., :1]), scaled], -1))
  failed = tf.reduce_sum(tf.math.cumprod(tf.cast(still_outside[..., 0], tf.int32), axis=-1),
                         axis=-1)                                      # [K] scales that failed
  mildest = tf.gather(scaled, tf.minimum(failed, len(_DESATURATION) - 1), batch_dims=1)
  ab = tf.tensor_scatter_nd_update(colours[:, 1:], outside, mildest)
  return tf.reshape(ab, tf.concat([tf.shape(lab)[:-1], [2]], axis=0))


def lab_to_rgb_keeping_l(lab: tf.Tensor) -> tf.Tensor:
  """CIE Lab -> sRGB floats in [0, 1], desaturating the colours that sRGB cannot show
  instead of clipping them, because clipping changes the lightness: the colourized
  photo keeps the gray photo's L."""
  return lab_to_rgb(tf.concat([lab[..., :1], ab_in_gamut(lab)], axis=-1))


def lab_to_rgb8_keeping_l(lab: tf.Tensor) -> tf.Tensor:
  """`lab_to_rgb_keeping_l` as 8-bit sRGB: the pictures of predictions in reports."""
  return tf.cast(tf.round(lab_to_rgb_keeping_l(lab) * 255.0), tf.uint8)


# Full resolution. At 12 megapixels every float operation over the image costs about
# 20 ms on two cores and a power function ten times that, so the sRGB transfer curve
# and CIE's cube root are looked up in tables (exact to the 8-bit output), with the
# constants folded into the tables and the matrix.
_DELTA = 6.0 / 29.0
_STEPS = 65535  # a table's index: value * _STEPS, truncated (uint16's range)
_AT_STEPS = (np.arange(_STEPS + 1) + 0.5) / _STEPS  # the value each index stands for


def _srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
  return np.where(srgb > 0.04045, ((srgb + 0.055) / 1.055) ** 2.4, srgb / 12.92)


def _linear_to_srgb(linear: np.ndarray) -> np.ndarray:
  linear = np.clip(linear, 0.0, 1.0)
  return np.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, 12.92 * linear)


def _lab_f(t: np.ndarray) -> np.ndarray:
  return np.where(t > _DELTA ** 3, np.cbrt(t), t / (3 * _DELTA ** 2) + 4.0 / 29.0)


_LINEAR8 = _srgb_to_linear(np.arange(256) / 255.0)
_GRAY_F = _lab_f(_LINEAR8).astype(np.float32)                       # gray -> f(Y)
_RGB_Y = (np.array(_LINEAR_RGB_TO_Y)[:, None] * _LINEAR8 * _STEPS).reshape(-1).astype(np.float32)
_Y_F = _lab_f(_AT_STEPS).astype(np.float32)                         # Y * _STEPS -> f(Y)
_LINEAR_SRGB8 = np.round(255 * _linear_to_srgb(_AT_STEPS)).astype(np.uint8)
# 16-bit gray scans: their f(Y) from every 16-bit level, and 16-bit sRGB out.
_GRAY16_F = _lab_f(_srgb_to_linear(np.arange(65536) / 65535.0)).astype(np.float32)
_LINEAR_SRGB16 = np.round(65535 * _linear_to_srgb(_AT_STEPS)).astype(np.uint16)


def _lookup(table: np.ndarray, index: tf.Tensor) -> tf.Tensor:
  return tf.gather(tf.constant(table), tf.cast(index, tf.int32))


def _lab_fy(pixels: tf.Tensor) -> tf.Tensor:
  """8-bit sRGB [H, W, C] -> Lab's fy = (L + 16) / 116 [H, W, 1], from the luminance;
  16-bit gray [H, W, 1] likewise, from all 16 bits."""
  if pixels.dtype == tf.uint16:
    return _lookup(_GRAY16_F, pixels)

  def gray():
    return _lookup(_GRAY_F, pixels)

  def colour():
    y = tf.reduce_sum(_lookup(_RGB_Y, tf.cast(pixels, tf.int32) + [0, 256, 512]),
                      axis=-1, keepdims=True)                         # Y * _STEPS
    return _lookup(_Y_F, tf.saturate_cast(y, tf.uint16))

  return tf.cond(tf.shape(pixels)[-1] == 1, gray, colour)


def photo_with_colour(pixels: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
  """The colourized photo at its own resolution: 8-bit sRGB [H, W, C] (C = 1 or 3)
  and ab [h, w, 2] (Lab units, any size, inside sRGB's gamut) -> 8-bit sRGB
  [H, W, 3] with the photo's own L and ab stretched over it (bilinear). A 16-bit
  gray photo [H, W, 1] gives 16-bit sRGB.

  `rgb_to_lab`'s L and `lab_to_rgb` written out so that they take a few passes over
  the full-size image; out-of-gamut colours are clipped, as `lab_to_rgb` does.
  """
  size = tf.shape(pixels)[:2]
  a, b = tf.unstack(ab, axis=-1)
  # Lab: (fx, fy, fz) = fy + (a / 500, 0, -b / 200); d = f - delta.
  shift = tf.stack([a / 500, tf.zeros_like(a), -b / 200], axis=-1) - _DELTA
  d = _lab_fy(pixels) + tf.image.resize(shift, size)                  # [H, W, 3]
  # f^-1 is f^3 above delta and its tangent 3 delta^2 (f - 4/29) below, which is
  # 3 delta^2 (d + 2/29) + max(d, 0)^2 (d + 3 delta): no branch.
  xyz = 3 * _DELTA ** 2 * (d + 2 / 29) + tf.square(tf.nn.relu(d)) * (d + 3 * _DELTA)
  to_rgb = np.array(_XYZ_TO_LINEAR_RGB) * np.array(_D65) * _STEPS     # XYZ -> RGB * _STEPS
  linear = tf.matmul(tf.reshape(xyz, [-1, 3]), tf.constant(to_rgb.T, tf.float32))
  table = _LINEAR_SRGB16 if pixels.dtype == tf.uint16 else _LINEAR_SRGB8
  srgb = _lookup(table, tf.saturate_cast(linear, tf.uint16))         # [H * W, 3]
  return tf.reshape(srgb, tf.concat([size, [3]], axis=0))


def l_at_model_size(pixels: tf.Tensor) -> tf.Tensor:
  """What the model sees of a photo: sRGB [H, W, C] (uint8, or uint16 gray) -> its L
  [256, 256, 1], the whole image squeezed to the model's square."""
  return rgb_to_lab(at_model_size(pixels, crop=False))[..., :1]


def colourized(pixels: tf.Tensor, l_small: tf.Tensor, ab_scaled: tf.Tensor) -> tf.Tensor:
  """The one recombination of the server, `colorizer colorize` and its job: the
  model's ab / 128 [256, 256, 2] for `l_small` and the photo's pixels [H, W, C] -> the
  colour photo [H, W, 3] at full resolution, of the photo's bit depth.

  Out-of-gamut colours are desaturated at the model's size, where it is cheap; the
  full-resolution work is the photo's own L, the stretched ab and one Lab -> RGB.
  """
  ab = ab_in_gamut(tf.concat([l_small, unscale_ab(ab_scaled)], axis=-1))  # [256, 256, 2]
  return photo_with_colour(pixels, ab)


def scale_l(l: tf.Tensor) -> tf.Tensor:
  """L in [0, 100] -> the model's input scale [-1, 1]."""
  return l / 50.0 - 1.0


def unscale_l(l_scaled: tf.Tensor) -> tf.Tensor:
  return (l_scaled + 1.0) * 50.0


AB_SCALE = 128.0


def scale_ab(ab: tf.Tensor) -> tf.Tensor:
  """ab in Lab units -> the model's target scale [-1, 1]."""
  return ab / AB_SCALE


def unscale_ab(ab_scaled: tf.Tensor) -> tf.Tensor:
  return ab_scaled * AB_SCALE


def quantize_l(l: tf.Tensor) -> tf.Tensor:
  """L in [0, 100] -> uint8 (step 100/255)."""
  return tf.cast(tf.round(tf.clip_by_value(l, 0.0, 100.0) * 2.55), tf.uint8)


def dequantize_l(l_q: tf.Tensor) -> tf.Tensor:
  return tf.cast(l_q, tf.float32) / 2.55


def quantize_ab(ab: tf.Tensor) -> tf.Tensor:
  """ab in Lab units -> uint8 (step 1, offset 128)."""
  return tf.cast(tf.round(tf.clip_by_value(ab, -128.0, 127.0)) + 128.0, tf.uint8)


def dequantize_ab(ab_q: tf.Tensor) -> tf.Tensor:
  return tf.cast(ab_q, tf.float32) - 128.0


def embedding_input(l: tf.Tensor) -> tf.Tensor:
  """L [..., H, W, 1] in [0, 100] -> the gray image Inception-ResNet-v2 embeds:
  [..., 299, 299, 3], L stacked to 3 channels and put through the network's own
  `preprocess_input` (which maps 0..255 to [-1, 1])."""
  gray = tf.image.resize(l * 2.55, [EMBEDDING_INPUT_SIZE, EMBEDDING_INPUT_SIZE],
                         method='bilinear')
  gray = tf.concat([gray, gray, gray], axis=-1)
  return tf.keras.applications.inception_resnet_v2.preprocess_input(gray)


def colourfulness(rgb: tf.Tensor) -> tf.Tensor:
  """Hasler and Suesstrunk (2003) colourfulness of [..., H, W, 3] RGB in 0..255.

  rg = R - G, yb = (R + G) / 2 - B;
  sqrt(std(rg)^2 + std(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2). Gray scores 0.
  """
  r, g, b = tf.unstack(tf.cast(rgb, tf.float32), axis=-1)
  rg = r - g
  yb = 0.5 * (r + g) - b
  axes = [-2, -1]
  std = tf.sqrt(tf.math.reduce_variance(rg, axes) + tf.math.reduce_variance(yb, axes))
  mean = tf.sqrt(tf.reduce_mean(rg, axes) ** 2 + tf.reduce_mean(yb, axes) ** 2)
  return std + 0.3 * mean


_EXIF_SEARCH_BYTES = 1 << 20  # The EXIF header comes before the pixels: in the head.
_IFD_ENTRIES = 64             # IFD0 entries read; orientation (0x0112) is among the first.
_ORIENTATION_TAG = 0x0112


def exif_orientation(image_bytes: tf.Tensor) -> tf.Tensor:
  """The EXIF orientation (1..8; 1 when there is none) of JPEG (APP1 `Exif`) or PNG
  (`eXIf` before `IDAT`) bytes, the tag Pillow's `exif_transpose` and browsers apply,
  read with core string ops (TF Serving has no EXIF parser)."""
  head = tf.strings.substr(image_bytes, 0, _EXIF_SEARCH_BYTES)
  size = tf.strings.length(head)
  # Every read is at most 12 * _IFD_ENTRIES bytes from a position clamped to the head.
  padded = tf.strings.join([head, tf.constant(b'\0' * (12 * _IFD_ENTRIES + 16))])

  def read(position, length):
    position = tf.clip_by_value(tf.cast(position, tf.int32), 0, size)
    return tf.cast(tf.io.decode_raw(tf.strings.substr(padded, position, length), tf.uint8),
                   tf.int32)

  def find(needle):  # The position of the first `needle`, or the head's length.
    return tf.strings.length(tf.strings.split(head, needle, maxsplit=1)[0])

  jpeg_header = find(b'Exif\0\0')
  in_app1 = tf.reduce_all(tf.equal(read(jpeg_header - 4, 2), [0xFF, 0xE1]))
  is_jpeg = tf.equal(tf.strings.substr(head, 0, 2), b'\xff\xd8')
  png_chunk = find(b'eXIf')
  is_png = tf.equal(tf.strings.substr(head, 0, 8), b'\x89PNG\r\n\x1a\n')
  found = ((is_jpeg & (jpeg_header >= 4) & (jpeg_header < size) & in_app1)
           | (is_png & (png_chunk < find(b'IDAT'))))
  tiff = tf.where(is_jpeg, jpeg_header + 6, png_chunk + 4)  # The TIFF header.

  order = read(tiff, 2)
  little = tf.reduce_all(tf.equal(order, [0x49, 0x49]))     # 'II'
  big = tf.reduce_all(tf.equal(order, [0x4D, 0x4D]))        # 'MM'

  def number(data):  # [..., n] bytes -> their unsigned value in the file's byte order
    weights = 256 ** tf.range(tf.shape(data)[-1])
    weights = tf.where(little, weights, tf.reverse(weights, [0]))
    return tf.reduce_sum(data * weights, axis=-1)

  ifd = tiff + number(read(tiff + 4, 4))
  count = number(read(ifd, 2))
  entries = tf.reshape(read(ifd + 2, 12 * _IFD_ENTRIES), [_IFD_ENTRIES, 12])
  hit = ((number(entries[:, :2]) == _ORIENTATION_TAG)
         & (tf.range(_IFD_ENTRIES) < count))
  value = tf.reduce_max(tf.where(hit, number(entries[:, 8:10]), 0))
  valid = found & (little | big) & (value >= 1) & (value <= 8)
  return tf.where(valid, value, 1)


def apply_orientation(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
  """[H, W, C] as stored -> as displayed, for EXIF orientation 1..8 (Pillow's
  `exif_transpose`): transposed for 5..8, then flipped."""
  image = tf.cond(orientation >= 5, lambda: tf.transpose(image, [1, 0, 2]), lambda: image)
  flip_columns = tf.reduce_any(tf.equal(orientation, [2, 3, 6, 7]))
  flip_rows = tf.reduce_any(tf.equal(orientation, [3, 4, 7, 8]))
  image = tf.cond(flip_columns, lambda: tf.reverse(image, [1]), lambda: image)
  return tf.cond(flip_rows, lambda: tf.reverse(image, [0]), lambda: image)


def decode_image(image_bytes: tf.Tensor) -> tf.Tensor:
  """In-graph decoding for the serving signature: JPEG, PNG, GIF (first frame) or BMP
  bytes -> 8-bit sRGB [H, W, C], C = 1 for a gray image (kept single: the
  full-resolution work on it is a third) or 3, alpha composited on white and EXIF
  orientation applied, as `decode_photo` does. (WebP and TIFF need tensorflow-io's
  kernels, which TF Serving lacks; `colorizer colorize` and `colorizer serve` convert
  them first.)"""
  image = tf.io.decode_image(image_bytes, channels=0, expand_animations=False)

  def on_white():
    colour, alpha = tf.cast(image[..., :-1], tf.int32), tf.cast(image[..., -1:], tf.int32)
    return tf.cast((colour * alpha + 255 * (255 - alpha) + 127) // 255, tf.uint8)

  image = tf.cond(tf.shape(image)[-1] % 2 == 0, on_white, lambda: image)
  return apply_orientation(image, exif_orientation(image_bytes))


def at_model_size(pixels: tf.Tensor, crop: bool) -> tf.Tensor:
  """8-bit (or 16-bit) sRGB [H, W, C] (C = 1 or 3) -> sRGB floats [256, 256, 3] in [0, 1]: the
  centred square (ingestion) or the whole image squeezed to a square (serving, which
  then stretches the predicted colour back over the photo's own shape)."""
  if crop:
    pixels = center_crop_square(pixels)
  square = tf.clip_by_value(resize(pixels, IMAGE_SIZE) / pixels.dtype.max, 0.0, 1.0)
  return tf.broadcast_to(square, [IMAGE_SIZE, IMAGE_SIZE, 3])


def photo_crops(data: bytes, sha256: str, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
                crops_per_image: int = 1):
  """What ingestion stores for one file: its DecodedPhoto and `photo_to_records` of each
  of its `crop_boxes`. Raises PhotoRejected as `decode_photo` does, and with 'no_colour'
  when the centred square's colourfulness is under MIN_COLOURFULNESS."""
  # Extra crops may be down to MIN_CROP_SCALE of the short side: JPEGs are decoded large
  # enough that those still have IMAGE_SIZE pixels.
  scale = 1.0 if crops_per_image == 1 else MIN_CROP_SCALE
  photo = decode_photo(data, max_megapixels, draft_size=math.ceil(IMAGE_SIZE / scale))
  height, width = photo.rgb.shape[:2]
  crops = [photo_to_records(photo.rgb[box.top:box.top + box.side, box.left:box.left + box.side])
           for box in crop_boxes(height, width, crops_per_image, sha256)]
  colourfulness = float(crops[0]['colourfulness'])
  if colourfulness < MIN_COLOURFULNESS:
    raise PhotoRejected('no_colour', f'colourfulness {colourfulness:.1f} is under '
                        f'{MIN_COLOURFULNESS:g}: a gray photo would teach gray')
  return photo, crops


@tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
def photo_to_records(rgb: tf.Tensor):
  """What ingestion stores for one decoded photo: uint8 sRGB [H, W, 3] ->
  quantized L [256, 256] and ab [256, 256, 2], the embedding network's input
  [299, 299, 3] and the crop's colourfulness."""
  square = at_model_size(rgb, crop=True)                           # [256, 256, 3]
  lab = rgb_to_lab(square)
  l_q = quantize_l(lab[..., 0])                                    # [256, 256]
  ab_q = quantize_ab(lab[..., 1:])                                 # [256, 256, 2]
  gray = embedding_input(dequantize_l(l_q)[..., None])             # [299, 299, 3]
  return {
      'l': l_q,
      'ab': ab_q,
      'embedding_input': gray,
      'colourfulness': colourfulness(square * 255.0),
  }
