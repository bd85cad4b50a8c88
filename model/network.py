"""The fusion colorizer: an encoder on L, Inception-ResNet-v2's embedding fused at the
bottleneck, and a decoder that predicts ab.

The seed's network (Emil Wallner's "full version", after Baldassarre et al.'s Deep
Koalarization), layer by layer; every convolution is 3x3, 'same' padding, ReLU unless
noted:

| # | layer                                   | output          | as the seed?           |
|---|-----------------------------------------|-----------------|------------------------|
|   | input `l`: L / 50 - 1                   | 256x256x1       | yes                    |
| 1 | conv 64, stride 2                       | 128x128x64      | yes                    |
| 2 | conv 128                                | 128x128x128     | yes                    |
| 3 | conv 128, stride 2                      | 64x64x128       | yes                    |
| 4 | conv 256                                | 64x64x256       | yes                    |
| 5 | conv 256, stride 2                      | 32x32x256       | yes                    |
| 6 | conv 512                                | 32x32x512       | yes                    |
| 7 | conv 512                                | 32x32x512       | yes                    |
| 8 | conv 256                                | 32x32x256       | yes                    |
|   | input `embedding` (1000), repeated 32x32| 32x32x1000      | yes                    |
| 9 | concat, conv 1x1 256                    | 32x32x256       | yes                    |
|10 | conv 128, upsample x2                   | 64x64x128       | bilinear, not nearest  |
|11 | conv 64, upsample x2                    | 128x128x64      | bilinear, not nearest  |
|12 | conv 32                                 | 128x128x32      | yes                    |
|13 | conv 16                                 | 128x128x16      | yes                    |
|14 | conv 2, tanh (float32)                  | 128x128x2       | yes                    |
|15 | upsample x2                             | 256x256x2       | bilinear, not nearest  |

Output: ab / 128. Loss: mean squared error on ab (the seed's).

Departures, and why: the ReLU convolutions start from He-normal weights (He et al.
2015) instead of Keras's default Glorot-uniform: Glorot shrinks the signal about 3x at
each layer that doubles the channels, so after a few hundred steps 90% of the deep
layers' channels were dead and the model only painted the average sepia (measured on
the demo model); upsampling is bilinear instead of nearest-neighbour, since nearest
leaves 2x2 blocks in the predicted colour that show up as a grid at full resolution;
the last layer computes in float32 under mixed precision, so that tanh saturates the
same on GPU and CPU. The encoder is fully convolutional and has no pooling; the
fusion repeats the embedding over the 32x32 grid that a 256x256 input yields.
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
