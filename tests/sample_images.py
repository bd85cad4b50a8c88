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


TIFF_COMPRESSIONS = {'none': 1, 'lzw': 5, 'adobe_deflate': 8, 'packbits': 32773,
                     'deflate': 32946, 'lzma': 34925}


def tiff16(array: np.ndarray, compression: str = 'none', predictor: bool = False,
           big_endian: bool = False, rows_per_strip: int = 7, tile: int = 0,
           planar: bool = False, orientation: int = 1, icc_profile: bytes = b'',
           extra_sample: int = -1) -> bytes:
  """A TIFF of 16-bit samples (48-bit RGB, or 64-bit RGBA with `extra_sample` 0, 1 or 2)
  as scanners and Photoshop write them, which Pillow cannot write: strips of
  `rows_per_strip` rows (or `tile`-square tiles), compressed (TIFF_COMPRESSIONS), with
  the horizontal-differencing predictor or not, in either byte order, its samples side
  by side or in separate planes (`planar`)."""
  import struct  # pylint: disable=import-outside-toplevel
  array = np.asarray(array, np.uint16)
  height, width, samples = array.shape
  order = '>' if big_endian else '<'
  planes = [array[..., i:i + 1] for i in range(samples)] if planar else [array]
  blocks = []  # (top, left, rows, columns) of each strip or tile, in the file's order
  for _ in planes:
    if tile:
      blocks += [(y, x, tile, tile) for y in range(0, height, tile) for x in range(0, width, tile)]
    else:
      blocks += [(y, 0, min(rows_per_strip, height - y), width)
                 for y in range(0, height, rows_per_strip)]
  per_plane = len(blocks) // len(planes)
  chunks = []
  for index, (top, left, rows, columns) in enumerate(blocks):
    plane = planes[index // per_plane]
    block = np.zeros((rows, columns, plane.shape[2]), np.uint16)  # Edge tiles are padded.
    part = plane[top:top + rows, left:left + columns]
    block[:part.shape[0], :part.shape[1]] = part
    if predictor:
      block[:, 1:] = block[:, 1:] - block[:, :-1]  # Wraps around modulo 2**16, as TIFF's does.
    raw = block.astype(order + 'u2').tobytes()
    chunks.append(_tiff_compressed(raw, compression, columns * plane.shape[2] * 2))
  tags = {256: ('H', [width]), 257: ('H', [height]), 258: ('H', [16] * samples),
          259: ('H', [TIFF_COMPRESSIONS[compression]]), 262: ('H', [2]),
          277: ('H', [samples]), 284: ('H', [2 if planar else 1]),
          317: ('H', [2 if predictor else 1])}
  if orientation != 1:
    tags[274] = ('H', [orientation])
  if extra_sample >= 0:
    tags[338] = ('H', [extra_sample])
  if icc_profile:
    tags[34675] = ('B', list(icc_profile))
  offsets, counts = (324, 325) if tile else (273, 279)
  if tile:
    tags.update({322: ('H', [tile]), 323: ('H', [tile])})
  else:
    tags[278] = ('H', [rows_per_strip])
  data = bytearray(b'MM\x00*' if big_endian else b'II*\x00') + bytes(4)
  positions = []
  for chunk in chunks:
    positions.append(len(data))
    data += chunk + bytes(len(chunk) % 2)
  tags[offsets] = ('I', positions)
  tags[counts] = ('I', [len(chunk) for chunk in chunks])
  kinds = {'B': 7, 'H': 3, 'I': 4}  # UNDEFINED (the ICC profile's bytes), SHORT, LONG
  ifd = len(data)
  data[4:8] = struct.pack(order + 'I', ifd)
  values_at = ifd + 2 + 12 * len(tags) + 4
  entries, values = b'', b''
  for tag in sorted(tags):
    kind, items = tags[tag]
    packed = struct.pack(f'{order}{len(items)}{kind}', *items)
    if len(packed) <= 4:
      field = packed.ljust(4, b'\x00')
    else:
      field = struct.pack(order + 'I', values_at + len(values))
      values += packed + bytes(len(packed) % 2)
    entries += struct.pack(order + 'HHI', tag, kinds[kind], len(items)) + field
  return bytes(data + struct.pack(order + 'H', len(tags)) + entries + bytes(4) + values)


def _tiff_compressed(raw: bytes, compression: str, row_bytes: int) -> bytes:
  import lzma, zlib  # pylint: disable=import-outside-toplevel,multiple-imports
  if compression in ('deflate', 'adobe_deflate'):
    return zlib.compress(raw)
  if compression == 'lzma':
    return lzma.compress(raw)
  if compression == 'packbits':
    return b''.join(_packbits(raw[i:i + row_bytes]) for i in range(0, len(raw), row_bytes))
  if compression == 'lzw':
    return _lzw(raw)
  return raw


def _packbits(row: bytes) -> bytes:
  """PackBits (one row): runs of 2 to 128 equal bytes, literals of up to 128 between."""
  out, i = bytearray(), 0
  while i < len(row):
    run = 1
    while i + run < len(row) and run < 128 and row[i + run] == row[i]:
      run += 1
    if run > 1:
      out += bytes([257 - run, row[i]])
      i += run
      continue
    end = i + 1
    while end < len(row) and end - i < 128 and (end + 1 >= len(row) or row[end] != row[end + 1]):
      end += 1
    out += bytes([end - i - 1]) + row[i:end]
    i = end
  return bytes(out)


def _lzw(data: bytes) -> bytes:
  """TIFF's LZW as libtiff writes it: codes of 9 to 12 bits, most significant bit first,
  one bit wider once the table has 512, 1024 and 2048 entries, cleared at 4094."""
  codes, table, string = [(256, 9)], {bytes([i]): i for i in range(256)}, b''  # Clear.
  size, width = 258, 9

  def emit(code):
    nonlocal size, width, table
    codes.append((code, width))
    size += 1  # The entry the decoder adds on reading `code`.
    if size == 4094:
      codes.append((256, width))
      table, size, width = {bytes([i]): i for i in range(256)}, 258, 9
    elif size == 1 << width:
      width += 1

  for byte in data:
    longer = string + bytes([byte])
    if longer in table:
      string = longer
      continue
    table[longer] = size
    emit(table[string])
    string = bytes([byte])
  if string:
    emit(table[string])
  codes.append((257, width))  # End of information.
  bits = ''.join(format(code, f'0{width}b') for code, width in codes)
  bits += '0' * (-len(bits) % 8)
  return int(bits, 2).to_bytes(len(bits) // 8, 'big')


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
