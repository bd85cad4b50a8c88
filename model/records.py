"""The schema of the ingested records (tf.Example), in one place.

| feature          | type   | shape       | meaning                                          |
|------------------|--------|-------------|--------------------------------------------------|
| `l`              | bytes  | 256*256     | L, uint8 quantized (`scaling.quantize_l`)  |
| `ab`             | bytes  | 256*256*2   | ab, uint8 quantized, channels last (`quantize_ab`)|
| `embedding`      | float  | 1000        | Inception-ResNet-v2 output for the gray image    |
| `source`         | bytes  | 1           | URI of the original file                         |
| `content_sha256` | bytes  | 1           | sha256 of the file's bytes (split and dedup key) |
| `height`,`width` | int64  | 1           | the photo's own size, after EXIF orientation     |
| `crop`           | int64  | 1           | which crop of the photo (0: the centred square; `cropping.crop_boxes`); 0 when absent |

Records are written as GZIP-compressed TFRecords, like TFX's own ExampleGen, in the
layout of a TFX Examples artifact: `Split-<name>/data_tfrecord-*.gz` (`split_dir`,
RECORD_PREFIX, RECORD_SUFFIX), with ingestion's report (REPORT_FILE) beside the splits.
"""
import os
from typing import Dict, Tuple

import numpy as np
import tensorflow as tf

from model import scaling

FEATURES = {
    'l': tf.io.FixedLenFeature([], tf.string),
    'ab': tf.io.FixedLenFeature([], tf.string),
    'embedding': tf.io.FixedLenFeature([scaling.EMBEDDING_DIM], tf.float32),
    'source': tf.io.FixedLenFeature([], tf.string),
    'content_sha256': tf.io.FixedLenFeature([], tf.string),
    'height': tf.io.FixedLenFeature([], tf.int64),
    'width': tf.io.FixedLenFeature([], tf.int64),
    'crop': tf.io.FixedLenFeature([], tf.int64, default_value=0),
}

COMPRESSION = 'GZIP'
# Changes whenever a record of the same photo would change (a feature, the quantization,
# the crops): ingestion's record cache keeps what was written under another version apart.
SCHEMA_VERSION = 1
RECORD_PREFIX = 'data_tfrecord'
RECORD_SUFFIX = '.gz'
REPORT_FILE = 'ingest_report.json'


def split_dir(examples_dir: str, split: str) -> str:
  """The folder of one split's shards, as TFX names it."""
  return os.path.join(examples_dir, f'Split-{split}')


def make_example(*, l: np.ndarray, ab: np.ndarray, embedding: np.ndarray, source: str,
                 content_sha256: str, height: int, width: int, crop: int = 0) -> tf.train.Example:
  """One record; `l` and `ab` are the uint8 arrays of `model.cropping.photo_to_records`."""
  size = scaling.IMAGE_SIZE
  if l.shape != (size, size) or ab.shape != (size, size, 2):
    raise ValueError(f'expected L {size}x{size} and ab {size}x{size}x2, got {l.shape} and {ab.shape}')
  feature = tf.train.Feature
  return tf.train.Example(features=tf.train.Features(feature={
      'l': feature(bytes_list=tf.train.BytesList(value=[l.astype(np.uint8).tobytes()])),
      'ab': feature(bytes_list=tf.train.BytesList(value=[ab.astype(np.uint8).tobytes()])),
      'embedding': feature(float_list=tf.train.FloatList(value=np.asarray(embedding, np.float32))),
      'source': feature(bytes_list=tf.train.BytesList(value=[source.encode('utf-8')])),
      'content_sha256': feature(bytes_list=tf.train.BytesList(value=[content_sha256.encode()])),
      'height': feature(int64_list=tf.train.Int64List(value=[height])),
      'width': feature(int64_list=tf.train.Int64List(value=[width])),
      'crop': feature(int64_list=tf.train.Int64List(value=[crop])),
  }))


def with_source(serialized: bytes, source: str) -> bytes:
  """A serialized record, its `source` replaced: a cached record of the same bytes found
  at another path."""
  example = tf.train.Example.FromString(serialized)
  example.features.feature['source'].bytes_list.value[:] = [source.encode('utf-8')]
  return example.SerializeToString()


def _quantized(features: Dict[str, tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor]:
  """Parsed features (single or batched) -> L and ab as stored: uint8 [..., 256, 256, 1]
  and [..., 256, 256, 2]."""
  size = scaling.IMAGE_SIZE
  l_q = tf.io.decode_raw(features['l'], tf.uint8)
  ab_q = tf.io.decode_raw(features['ab'], tf.uint8)
  batch_shape = tf.shape(l_q)[:-1]
  return (tf.reshape(l_q, tf.concat([batch_shape, [size, size, 1]], 0)),
          tf.reshape(ab_q, tf.concat([batch_shape, [size, size, 2]], 0)))


def quantized_lab(features: Dict[str, tf.Tensor]) -> tf.Tensor:
  """Parsed features -> L and ab as stored, in one uint8 [..., 256, 256, 3]
  (`scaling.quantize_l`, `quantize_ab`): a quarter of the bytes of the floats."""
  return tf.concat(_quantized(features), axis=-1)


def decode_lab(features: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """Parsed features (single or batched) -> float L [..., 256, 256, 1] in [0, 100] and
  ab [..., 256, 256, 2] in Lab units."""
  l_q, ab_q = _quantized(features)
  return {'l': scaling.dequantize_l(l_q), 'ab': scaling.dequantize_ab(ab_q)}


def parse(serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
  """Serialized tf.Examples (a scalar or a batch) -> the features, with `l` and `ab`
  decoded to floats (see `decode_lab`)."""
  parse_fn = tf.io.parse_example if serialized.shape.rank else tf.io.parse_single_example
  features = parse_fn(serialized, FEATURES)
  features.update(decode_lab(features))
  return features
