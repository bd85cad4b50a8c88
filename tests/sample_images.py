"""Photos and broken files generated on the fly, for the tests (nothing is downloaded)."""
import io
import os

import model  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import numpy as np
from PIL import Image

SAMPLES = os.path.join(os.path.dirname(__file__), '..', 'data', 'samples')


def colourful_image(seed: int, width: int = 96, height: int = 80) -> np.ndarray:
  """A smooth, colourful uint8 RGB image that differs per seed."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:height, 0:width] / max(width, height)
  channels = [np.sin(2 * np.pi * (rng.uniform(0.5, 2) * x + rng.uniform(0.5, 2) * y
                                   + rng.uniform())) for _ in range(3)]
  return np.clip(np.stack(channels, -1) * 110 + 128, 0, 255).astype(np.uint8)


def encode(array: np.ndarray, fmt: str, **kwargs) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, fmt, **kwargs)
  return buffer.getvalue()


def colourful_image16(seed: int, width: int = 96, height: int = 80) -> np.ndarray:
  """A smooth, colourful uint16 RGB image that differs per seed, in mid tones (so that
  colour put over its L stays inside sRGB), its levels mostly between 8-bit ones."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:height, 0:width] / max(width, height)
  channels = [np.sin(2 * np.pi * (rng.uniform(0.5, 2) * x + rng.uniform(0.5, 2) * y
                                   + rng.uniform())) for _ in range(3)]
  return np.round(np.stack(channels, -1) * 12000 + 30000).astype(np.uint16)


def png16(array: np.ndarray) -> bytes:
  """A 16-bit PNG (48-bit RGB, 64-bit RGBA): Pillow cannot write one, TensorFlow can."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.encode_png(np.asarray(array, np.uint16)).numpy()


def with_chunk(png: bytes, kind: bytes, data: bytes) -> bytes:
  """The PNG with one more chunk just before IEND: eXIf (EXIF without Pillow's 'Exif'
  prefix), iCCP (name, 0, zlib-compressed profile), ..."""
  import struct, zlib  # pylint: disable=import-outside-toplevel,multiple-imports
  if kind == b'eXIf' and data.startswith(b'Exif\x00\x00'):
    data = data[6:]
  if kind == b'iCCP':
    data = b'icc\x00\x00' + zlib.compress(data)
  chunk = kind + data
  chunk = struct.pack('>I', len(data)) + chunk + struct.pack('>I', zlib.crc32(chunk))
  return png[:-12] + chunk + png[-12:]


def huge_png(width: int = 12000, height: int = 10000) -> bytes:
  """A 120-megapixel PNG that is small on disk: a decompression bomb."""
  buffer = io.BytesIO()
  Image.new('1', (width, height)).save(buffer, 'PNG')
  return buffer.getvalue()


# name -> (bytes, expected status or reject reason)
def mixed_folder_files():
  good = {
      'a.jpg': encode(colourful_image(1), 'JPEG', quality=95),
      'b.png': encode(colourful_image(2), 'PNG'),
      'c.webp': encode(colourful_image(3), 'WEBP', lossless=True),
      'd.bmp': encode(colourful_image(4), 'BMP'),
      'e.tiff': encode(colourful_image(5), 'TIFF'),
      'f.gif': encode(colourful_image(6), 'GIF'),
      'nested/g.jpg': encode(colourful_image(7, 300, 200), 'JPEG', quality=90),
      'nested/deeper/h.png': encode(colourful_image(8), 'PNG'),
  }
  gray = np.repeat(colourful_image(9)[..., :1], 3, axis=2)
  jpeg = good['nested/g.jpg']
  files = {name: (data, 'written') for name, data in good.items()}
  files.update({
      'dup-of-a.jpg': (good['a.jpg'], 'duplicate'),
      'empty.jpg': (b'', 'empty'),
      'notes.txt': (b'these are my holiday photos\n', 'not_an_image'),
      'drawing.svg': (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', 'unsupported_format'),
      'cut.jpg': (jpeg[:len(jpeg) // 2], 'truncated'),
      'tiny.png': (encode(colourful_image(10, 20, 20), 'PNG'), 'too_small'),
      'bomb.png': (huge_png(), 'too_large'),
      'gray.jpg': (encode(gray, 'JPEG'), 'no_colour'),
  })
  return files




def yellow_blue_image(seed: int, size: int = 128) -> np.ndarray:
  """A photo whose colour follows from its luminance: bright regions yellow, dark
  regions blue. A colorizer that learns anything learns this."""
  from model import colour_space  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:size, 0:size] / size
  l = 50 + 40 * np.sin(2 * np.pi * (rng.uniform(0.5, 2) * x + rng.uniform(0.5, 2) * y
                                    + rng.uniform()))
  b = np.where(l > 50, 60.0, -50.0)
  lab = np.stack([l, np.zeros_like(l), b], -1).astype(np.float32)
  return np.round(colour_space.lab_to_rgb(lab).numpy() * 255).astype(np.uint8)
