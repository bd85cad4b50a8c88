"""The fusion colorizer: an encoder on L, Inception-ResNet-v2's embedding fused at the
bottleneck, and a decoder that predicts ab / 128. Its layers, and why it departs from
Deep Koalarization's, are in docs/training.md ("The network").
"""
import tensorflow as tf

from model import internals
from model import scaling

internals.leave_tf_keras_alone()  # Before any Keras 2 model is traced.

L_INPUT = 'l'
EMBEDDING_INPUT = 'embedding'
RELU_INIT = 'he_normal'


def _conv(filters: int, strides: int = 1, name: str = None) -> tf.keras.layers.Layer:
  return tf.keras.layers.Conv2D(filters, 3, strides=strides, padding='same',
                                activation='relu', kernel_initializer=RELU_INIT, name=name)


def build_colorizer() -> tf.keras.Model:
  """{'l': [N, 256, 256, 1] in [-1, 1], 'embedding': [N, 1000]} -> ab / 128 [N, 256, 256, 2]."""
  size = scaling.IMAGE_SIZE
  grid = size // 8
  layers = tf.keras.layers
  l = layers.Input((size, size, 1), name=L_INPUT)
  embedding = layers.Input((scaling.EMBEDDING_DIM,), name=EMBEDDING_INPUT)

  x = _conv(64, 2, 'encoder_1')(l)                        # 128x128x64
  x = _conv(128, name='encoder_2')(x)                     # 128x128x128
  x = _conv(128, 2, 'encoder_3')(x)                       # 64x64x128
  x = _conv(256, name='encoder_4')(x)                     # 64x64x256
  x = _conv(256, 2, 'encoder_5')(x)                       # 32x32x256
  x = _conv(512, name='encoder_6')(x)                     # 32x32x512
  x = _conv(512, name='encoder_7')(x)                     # 32x32x512
  x = _conv(256, name='encoder_8')(x)                     # 32x32x256

  e = layers.RepeatVector(grid * grid, name='repeat')(embedding)            # 1024x1000
  e = layers.Reshape((grid, grid, scaling.EMBEDDING_DIM), name='grid')(e)  # 32x32x1000
  x = layers.Concatenate(name='fuse')([x, e])                               # 32x32x1256
  x = layers.Conv2D(256, 1, activation='relu', kernel_initializer=RELU_INIT,
                    name='fusion')(x)                                      # 32x32x256

  x = _conv(128, name='decoder_1')(x)                     # 32x32x128
  x = layers.UpSampling2D(2, interpolation='bilinear')(x)  # 64x64x128
  x = _conv(64, name='decoder_2')(x)                      # 64x64x64
  x = layers.UpSampling2D(2, interpolation='bilinear')(x)  # 128x128x64
  x = _conv(32, name='decoder_3')(x)                      # 128x128x32
  x = _conv(16, name='decoder_4')(x)                      # 128x128x16
  x = layers.Conv2D(2, 3, padding='same', name='decoder_5')(x)           # 128x128x2
  x = layers.Activation('tanh', dtype='float32', name='ab')(x)
  ab = layers.UpSampling2D(2, interpolation='bilinear', dtype='float32')(x)  # 256x256x2
  return tf.keras.Model({L_INPUT: l, EMBEDDING_INPUT: embedding}, ab, name='colorizer')
