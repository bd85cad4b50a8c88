"""Encoded images -> pixels inside a TensorFlow graph, for the serving signature, which
TF Serving runs without Python: decoding, alpha on white and EXIF orientation, as
`decoding.decode_photo` does with Pillow.
"""
import tensorflow as tf

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
