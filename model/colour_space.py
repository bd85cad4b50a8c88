"""Colour: sRGB <-> CIE Lab, the sRGB gamut in Lab, and colourfulness.

Colour space: CIE Lab, D65 white point, from sRGB (tensorflow-io's colour ops; at a
photo's full resolution, `full_resolution.photo_with_colour` has the same formulas
written out as table lookups and one matrix product, to within one 8-bit level).
L is in [0, 100]; a and b of sRGB colours lie within about [-86, 98] and [-108, 95].
"""
import numpy as np
import tensorflow as tf
import tensorflow_io as tfio


def rgb_to_lab(rgb: tf.Tensor) -> tf.Tensor:
  """sRGB floats in [0, 1] -> CIE Lab (D65)."""
  return tfio.experimental.color.rgb_to_lab(rgb)


def lab_to_rgb(lab: tf.Tensor) -> tf.Tensor:
  """CIE Lab (D65) -> sRGB floats, clipped to [0, 1]."""
  return tf.clip_by_value(tfio.experimental.color.lab_to_rgb(lab), 0.0, 1.0)


XYZ_TO_LINEAR_RGB = ((3.24048134, -1.53715152, -0.49853633),  # sRGB primaries, D65
                     (-0.96925495, 1.87599, 0.04155593),
                     (0.05564664, -0.20404134, 1.05731107))
D65 = (0.95047, 1.0, 1.08883)


def _outside_srgb(lab: tf.Tensor) -> tf.Tensor:
  """Whether each Lab colour lies outside the sRGB gamut (tensorflow-io's lab_to_rgb
  clips, which hides it): Lab -> XYZ -> linear RGB, checked against [0, 1]."""
  l, a, b = tf.unstack(lab, axis=-1)
  fy = (l + 16.0) / 116.0
  f = tf.stack([fy + a / 500.0, fy, fy - b / 200.0], axis=-1)
  xyz = tf.where(f > 6.0 / 29.0, f ** 3, (f - 16.0 / 116.0) * (3 * (6.0 / 29.0) ** 2))
  # One [N, 3] x [3, 3] product (matvec would multiply a 3x3 matrix per pixel: slower).
  linear = tf.reshape(
      tf.matmul(tf.reshape(xyz * tf.constant(D65), [-1, 3]),
                tf.constant(XYZ_TO_LINEAR_RGB), transpose_b=True), tf.shape(xyz))
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
