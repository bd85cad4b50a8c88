"""The model's sizes and value scales, and the records' quantization.

Model scaling: L enters the model as `L / 50 - 1` in [-1, 1]; the model predicts
`ab / 128` in [-1, 1] (tanh).

Quantization (1 byte per channel-pixel): L is stored as round(L * 2.55) and ab as
round(ab) + 128, both uint8. Worst case the error is 0.2 in L and 0.5 in a and b,
0.73 Lab ΔE; measured on the bundled photos it averages about 0.4 ΔE
(tests/test_scaling.py asserts mean < 0.5 and max < 0.8), well under the
just-noticeable difference of about 2.3.
"""
import tensorflow as tf

IMAGE_SIZE = 256
"""Side of the square L and ab images the model trains on and the records store."""

EMBEDDING_INPUT_SIZE = 299
"""Side of the gray image Inception-ResNet-v2 embeds."""

EMBEDDING_DIM = 1000
"""Length of the embedding: Inception-ResNet-v2's 1000 ImageNet class probabilities,
as in Deep Koalarization and Emil Wallner's full model."""


def resize(image: tf.Tensor, size: int) -> tf.Tensor:
  """Resizes an [H, W, C] image to floats [size, size, C], antialiased (no aliasing
  when a large photo shrinks)."""
  return tf.image.resize(image, [size, size], method='bilinear', antialias=True)


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


def at_model_size(pixels: tf.Tensor) -> tf.Tensor:
  """8-bit (or 16-bit) sRGB [H, W, C] (C = 1 or 3) -> sRGB floats [256, 256, 3] in [0, 1]:
  the image squeezed to the model's square (ingestion gives it its crops; serving
  stretches the predicted colour back over the photo's own shape)."""
  square = tf.clip_by_value(resize(pixels, IMAGE_SIZE) / pixels.dtype.max, 0.0, 1.0)
  return tf.broadcast_to(square, [IMAGE_SIZE, IMAGE_SIZE, 3])
