"""The colour photo at the photo's own resolution: the model's ab at 256x256 stretched
over the photo's own L, for the server, `colorizer colorize` and the serving signature.
"""
import numpy as np
import tensorflow as tf

from model import colour_space
from model import scaling

# At 12 megapixels every float operation over the image costs about
# 20 ms on two cores and a power function ten times that, so the sRGB transfer curve
# and CIE's cube root are looked up in tables (exact to the 8-bit output), with the
# constants folded into the tables and the matrix.
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


_LINEAR8 = _srgb_to_linear(np.arange(256) / 255.0)
_GRAY_F = _lab_f(_LINEAR8).astype(np.float32)                       # gray -> f(Y)
_RGB_Y = (np.array(_LINEAR_RGB_TO_Y)[:, None] * _LINEAR8 * _STEPS).reshape(-1).astype(np.float32)
_Y_F = _lab_f(_AT_STEPS).astype(np.float32)                         # Y * _STEPS -> f(Y)
_LINEAR_SRGB8 = np.round(255 * _linear_to_srgb(_AT_STEPS)).astype(np.uint8)
# 16-bit scans, gray or colour: f(Y) or Y from every 16-bit level, and 16-bit sRGB out.
_LINEAR16 = _srgb_to_linear(np.arange(65536) / 65535.0)
_GRAY16_F = _lab_f(_LINEAR16).astype(np.float32)
_RGB16_Y = (np.array(_LINEAR_RGB_TO_Y)[:, None] * _LINEAR16 * _STEPS).reshape(-1).astype(np.float32)
_LINEAR_SRGB16 = np.round(65535 * _linear_to_srgb(_AT_STEPS)).astype(np.uint16)


def _lookup(table: np.ndarray, index: tf.Tensor) -> tf.Tensor:
  return tf.gather(tf.constant(table), tf.cast(index, tf.int32))


def _lab_fy(pixels: tf.Tensor) -> tf.Tensor:
  """sRGB [H, W, C] (C = 1 or 3), uint8 or uint16 -> Lab's fy = (L + 16) / 116
  [H, W, 1], from the luminance: every channel linearized through a table of all its
  levels (all 16 bits of a 16-bit photo), Y = 0.212671 R + 0.715160 G + 0.072169 B
  folded into the tables, then f(Y) looked up at Y's 16-bit step."""
  if pixels.dtype == tf.uint16:
    gray_f, rgb_y, levels = _GRAY16_F, _RGB16_Y, 65536
  else:
    gray_f, rgb_y, levels = _GRAY_F, _RGB_Y, 256

  def from_gray():
    return _lookup(gray_f, pixels)

  def from_colour():
    y = tf.reduce_sum(_lookup(rgb_y, tf.cast(pixels, tf.int32) + [0, levels, 2 * levels]),
                      axis=-1, keepdims=True)                         # Y * _STEPS
    return _lookup(_Y_F, tf.saturate_cast(y, tf.uint16))

  return tf.cond(tf.shape(pixels)[-1] == 1, from_gray, from_colour)


def photo_with_colour(pixels: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
  """The colourized photo at its own resolution: 8-bit sRGB [H, W, C] (C = 1 or 3)
  and ab [h, w, 2] (Lab units, any size, inside sRGB's gamut) -> 8-bit sRGB
  [H, W, 3] with the photo's own L and ab stretched over it (bilinear). A 16-bit
  photo (uint16 [H, W, 1 or 3]) gives 16-bit sRGB, its L from all 16 bits.

  `colour_space.rgb_to_lab`'s L and `colour_space.lab_to_rgb` written out so that they
  take a few passes over the full-size image; out-of-gamut colours are clipped, as
  `lab_to_rgb` does.
  """
  size = tf.shape(pixels)[:2]
  a, b = tf.unstack(ab, axis=-1)
  # Lab: (fx, fy, fz) = fy + (a / 500, 0, -b / 200); d = f - delta.
  shift = tf.stack([a / 500, tf.zeros_like(a), -b / 200], axis=-1) - _DELTA
  d = _lab_fy(pixels) + tf.image.resize(shift, size)                  # [H, W, 3]
  # f^-1 is f^3 above delta and its tangent 3 delta^2 (f - 4/29) below, which is
  # 3 delta^2 (d + 2/29) + max(d, 0)^2 (d + 3 delta): no branch.
  xyz = 3 * _DELTA ** 2 * (d + 2 / 29) + tf.square(tf.nn.relu(d)) * (d + 3 * _DELTA)
  # XYZ -> linear RGB * _STEPS
  to_rgb = np.array(colour_space.XYZ_TO_LINEAR_RGB) * np.array(colour_space.D65) * _STEPS
  linear = tf.matmul(tf.reshape(xyz, [-1, 3]), tf.constant(to_rgb.T, tf.float32))
  table = _LINEAR_SRGB16 if pixels.dtype == tf.uint16 else _LINEAR_SRGB8
  srgb = _lookup(table, tf.saturate_cast(linear, tf.uint16))         # [H * W, 3]
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
