"""The colour photo at the photo's own resolution: the model's ab at 256x256 stretched
over the photo's own L, for the server, `colorizer colorize` and the serving signature.
"""
import numpy as np
import tensorflow as tf

from model import colour_space
from model import decoding
from model import scaling

# At 12 megapixels a power function costs ten times a table lookup, so the sRGB
# transfer curve and CIE's cube root are looked up in tables (exact to the 8-bit
# output), with the constants folded into the tables and the matrix. The image's
# channels go through as rows, [C, H * W]: TensorFlow adds, broadcasts and concatenates
# rows at memory speed, and interleaved channels (the last axis) two to four times
# slower (docs/performance.md, "Full resolution: where the time goes").
_LINEAR_RGB_TO_Y = (0.212671, 0.715160, 0.072169)
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


class _Tables:
  """The lookup tables for photos of `levels` levels per channel (256 or 65536)."""

  def __init__(self, levels: int):
    linear = _srgb_to_linear(np.arange(levels) / (levels - 1))
    # gray -> (Y * _STEPS, f(Y)): one lookup for both
    self.gray = np.stack([linear * _STEPS, _lab_f(linear)], axis=1).astype(np.float32)
    # R, G and B -> their part of Y * _STEPS, a row each
    self.rgb_y = (np.array(_LINEAR_RGB_TO_Y)[:, None] * linear * _STEPS).astype(np.float32)
    # 8 bits: R and G together, at R + 256 G (one lookup instead of two)
    self.rg_y = ((self.rgb_y[0][None, :] + self.rgb_y[1][:, None]).reshape(-1)
                 if levels == 256 else None)
    # linear RGB * _STEPS -> sRGB, of the photo's bit depth
    self.srgb = np.round((levels - 1) * _linear_to_srgb(_AT_STEPS)).astype(
        np.uint8 if levels == 256 else np.uint16)


_TABLES = {tf.uint8: _Tables(256), tf.uint16: _Tables(65536)}  # 16-bit: scans
_Y_F = _lab_f(_AT_STEPS).astype(np.float32)                          # Y * _STEPS -> f(Y)
# Linear RGB * _STEPS from (X / Xn, Z / Zn, Y * _STEPS): the sRGB matrix with D65's
# white folded in, one row per input.
_TO_LINEAR = np.array(colour_space.XYZ_TO_LINEAR_RGB) * np.array(colour_space.D65) * _STEPS
_XZY_TO_LINEAR = np.stack([_TO_LINEAR[:, 0], _TO_LINEAR[:, 2], _TO_LINEAR[:, 1] / _STEPS]
                          ).astype(np.float32)


def _lookup(table: np.ndarray, index: tf.Tensor) -> tf.Tensor:
  """table[index], elementwise (a row of the table for each index of a 2-D table).
  (GatherNd: Gather takes half as long again for these 1-element slices.)"""
  return tf.gather_nd(tf.constant(table), tf.cast(index, tf.int32)[..., None])


def _index(value: tf.Tensor) -> tf.Tensor:
  """A table index: the value (its steps), clipped to the table and truncated. (The
  ClipByValue kernel clips in one pass; tf.clip_by_value takes two.)"""
  return tf.cast(tf.raw_ops.ClipByValue(t=value, clip_value_min=0.0,
                                        clip_value_max=float(_STEPS)), tf.int32)


def _luminance(pixels: tf.Tensor):
  """sRGB [H, W, C] (C = 1 or 3), uint8 or uint16 -> (Y * _STEPS, Lab's fy = (L + 16) /
  116), each a row [1, H * W]: every channel linearized through a table of all its
  levels (all 16 bits of a 16-bit photo), Y = 0.212671 R + 0.715160 G + 0.072169 B
  folded into the tables, then f(Y) looked up at Y's 16-bit step."""
  tables = _TABLES[pixels.dtype]

  def from_gray():
    both = _lookup(tables.gray, tf.reshape(pixels, [-1]))           # [H * W, 2]
    return tuple(tf.split(tf.transpose(both), 2))

  def from_colour():
    r, g, b = tf.split(tf.cast(tf.transpose(tf.reshape(pixels, [-1, 3])), tf.int32), 3)
    if tables.rg_y is None:
      y = _lookup(tables.rgb_y[0], r) + _lookup(tables.rgb_y[1], g)
    else:
      y = _lookup(tables.rg_y, r + 256 * g)
    y += _lookup(tables.rgb_y[2], b)
    return y, _lookup(_Y_F, y)  # The weights add up to 1: Y * _STEPS is within the table.

  return tf.cond(tf.shape(pixels)[-1] == 1, from_gray, from_colour)


def photo_with_colour(pixels: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
  """The colourized photo at its own resolution: 8-bit sRGB [H, W, C] (C = 1 or 3)
  and ab [h, w, 2] (Lab units, any size, inside sRGB's gamut) -> 8-bit sRGB
  [H, W, 3] with the photo's own L and ab stretched over it (bilinear). A 16-bit
  photo (uint16 [H, W, 1 or 3]) gives 16-bit sRGB, its L from all 16 bits.

  `colour_space.rgb_to_lab`'s L and `colour_space.lab_to_rgb` written out: with
  d = (fx, fz) - delta, CIE's inverse of f (f^3 above delta, its tangent
  3 delta^2 (f - 4/29) below) is 3 delta^2 d + p + relu(d)^2 (relu(d) + 3 delta),
  p = 6 delta^2 / 29, with no branch; and Y needs no inverse: it is looked up with fy.
  The rows of X, Z and Y go through the matrix into interleaved RGB (the product
  transposes its input at no cost; a bias would make TensorFlow fuse it into a slower
  kernel, so p is added to X and Z).
  Out-of-gamut colours are clipped, as `lab_to_rgb` does.
  """
  size = tf.shape(pixels)[:2]
  y, fy = _luminance(pixels)                                           # [1, H * W] each
  shift = tf.image.resize(ab * tf.constant([1 / 500, -1 / 200]) - _DELTA, size)  # [H, W, 2]
  d = fy + tf.transpose(tf.reshape(shift, [-1, 2]))                    # [2, H * W]
  positive = tf.nn.relu(d)
  xz = ((3 * _DELTA ** 2) * d + tf.square(positive) * (positive + 3 * _DELTA)
        + 6 * _DELTA ** 2 / 29)
  linear = tf.matmul(tf.concat([xz, y], axis=0), tf.constant(_XZY_TO_LINEAR),
                     transpose_a=True)                                 # [H * W, 3]
  srgb = _lookup(_TABLES[pixels.dtype].srgb, _index(linear))
  return tf.reshape(srgb, tf.concat([size, [3]], axis=0))


def l_at_model_size(pixels: tf.Tensor) -> tf.Tensor:
  """What the model sees of a photo: sRGB [H, W, C] (uint8 or uint16) -> its L
  [256, 256, 1], the whole image squeezed to the model's square."""
  return colour_space.rgb_to_lab(scaling.at_model_size(pixels))[..., :1]


def colourized(pixels: tf.Tensor, l_small: tf.Tensor, ab_scaled: tf.Tensor) -> tf.Tensor:
  """The one recombination of the server, `colorizer colorize` and its job: the
  model's ab / 128 [256, 256, 2] for `l_small` and the photo's pixels [H, W, C] -> the
  colour photo [H, W, 3] at full resolution, of the photo's bit depth.

  Out-of-gamut colours are desaturated at the model's size, where it is cheap; the
  full-resolution work is the photo's own L, the stretched ab and one Lab -> RGB.
  """
  ab = colour_space.ab_in_gamut(
      tf.concat([l_small, scaling.unscale_ab(ab_scaled)], axis=-1))  # [256, 256, 2]
  return photo_with_colour(pixels, ab)


def encoded_like(image_bytes: tf.Tensor, colour: tf.Tensor) -> tf.Tensor:
  """The colour photo (8-bit [H, W, 3]) encoded in the format of the photo it came from:
  JPEG at `decoding.JPEG_QUALITY` for a JPEG, PNG for anything else (GIF and BMP too).
  A 12-megapixel answer's JPEG takes a twentieth of its PNG's time (32 against 670 ms
  of CPU) at a sixth of the size (3.2 against 18.5 MB), and a JPEG's owner expects a
  JPEG back."""
  is_jpeg = tf.equal(tf.strings.substr(image_bytes, 0, len(decoding.JPEG_SIGNATURE)),
                     decoding.JPEG_SIGNATURE)
  return tf.cond(is_jpeg,
                 lambda: tf.io.encode_jpeg(colour, quality=decoding.JPEG_QUALITY),
                 lambda: tf.io.encode_png(colour, compression=decoding.PNG_COMPRESSION))


def model_size_units(pixels: int, batch_size: int) -> int:
  """A photo's weight in a batch (in `colorizer colorize` and `colorizer serve`): how many model-size
  squares its pixels fill, from one to `batch_size`, so that a batch holds `batch_size`
  small photos or one large one. (Beam's BatchElements would send an empty batch ahead
  of a photo heavier than that.)"""
  return min(batch_size, max(1, pixels // scaling.IMAGE_SIZE ** 2))
