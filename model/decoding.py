"""Photo files -> 8-bit sRGB with Pillow (or 16-bit, on request), or the reason a file
is rejected; and how colourized photos are encoded back (the answer's format).

Ingestion, `colorizer colorize`, `colorizer evaluate` and `colorizer serve` decode with
`decode_photo` and turn any failure into a reason with `rejection` (`read_and_decode`),
so that they all take and refuse the same files for the same reasons.
"""
import io
import struct
from typing import Callable, NamedTuple, Optional, TypeVar

import numpy as np
from PIL import Image, ImageCms, ImageOps, TiffImagePlugin, UnidentifiedImageError

from model import internals

MIN_SIDE = 32
"""Photos with a side shorter than this are rejected as too small."""

DEFAULT_MAX_MEGAPIXELS = 50.0
"""Photos above this many megapixels are rejected from their header, before decoding."""

SUPPORTED_FORMATS = ('JPEG', 'PNG', 'GIF', 'BMP', 'WEBP', 'TIFF')
"""Pillow format names that ingestion decodes; anything else is rejected as unsupported."""

JPEG_SIGNATURE = b'\xff\xd8\xff'
"""The first bytes of every JPEG file (as TensorFlow's `decode_image` tells JPEG)."""

JPEG_QUALITY = 95
"""Quality of colourized JPEGs: the serving signature's answer to a JPEG, and
`colorizer colorize`'s default."""

PNG_COMPRESSION = 1
"""zlib level of colourized PNGs: a 12-megapixel PNG encodes in a sixth of the default
level's time for about 15% more bytes."""

# The signatures of formats that Pillow cannot read but a user may well have in a photo
# folder; they are reported as unsupported formats rather than as broken files.
_UNSUPPORTED_SIGNATURES = (
    (b'<svg', 'SVG'), (b'<?xml', 'SVG/XML'), (b'%PDF', 'PDF'), (b'8BPS', 'PSD'),
    (b'\x00\x00\x00\x0cjP  ', 'JPEG 2000'), (b'\xff\x4f\xff\x51', 'JPEG 2000'),
)
_FTYP_BRANDS = {b'heic': 'HEIC', b'heix': 'HEIC', b'mif1': 'HEIF', b'avif': 'AVIF'}
# The leading bytes of the supported formats: a file that starts like one but that
# Pillow cannot even open is a broken image, not some other kind of file.
_SUPPORTED_SIGNATURES = (
    (JPEG_SIGNATURE, 'JPEG'), (b'\x89PNG\r\n\x1a\n', 'PNG'), (b'GIF8', 'GIF'),
    (b'BM', 'BMP'), (b'II*\x00', 'TIFF'), (b'MM\x00*', 'TIFF'),
)


class PhotoRejected(Exception):
  """A file that ingestion cannot use; `reason` is one of REJECT_REASONS."""

  def __init__(self, reason: str, detail: str):
    super().__init__(f'{reason}: {detail}')
    self.reason = reason
    self.detail = detail


REJECT_REASONS = (
    'unreadable',          # the file could not be read (I/O error, a directory)
    'empty',               # 0 bytes
    'not_an_image',        # not an image format that anything here recognises
    'unsupported_format',  # an image format ingestion does not take (SVG, PDF, HEIC, ...)
    'truncated',           # the image data ends early
    'undecodable',         # a supported format whose data is corrupt
    'too_small',           # a side under MIN_SIDE pixels
    'too_large',           # over --max-megapixels, judged from the header
    'no_colour',           # colourfulness under MIN_COLOURFULNESS
    'duplicate',           # the same bytes as another input file, which is written instead
)


def rejection(error: Exception) -> PhotoRejected:
  """Why decoding a file failed: a PhotoRejected as it is; any other error (Pillow,
  numpy or TensorFlow on an odd file) as 'undecodable', with its type and message."""
  if isinstance(error, PhotoRejected):
    return error
  message = getattr(error, 'message', None) or str(error)  # TensorFlow's, without its op
  return PhotoRejected('undecodable', f'{type(error).__name__}: {message}')


Decoded = TypeVar('Decoded')


def read_and_decode(read: Callable[[], bytes], decode: Callable[[bytes], Decoded]) -> Decoded:
  """`decode(read())`, every failure raised as a PhotoRejected: 'unreadable' when
  reading fails, else the decoding error's `rejection`. So one odd file is reported
  with its reason, and never stops a job."""
  try:
    data = read()
  except Exception as e:  # pylint: disable=broad-except
    raise PhotoRejected('unreadable', getattr(e, 'message', None) or str(e)) from None
  try:
    return decode(data)
  except Exception as e:  # pylint: disable=broad-except
    raise rejection(e) from None


class DecodedPhoto(NamedTuple):
  rgb: np.ndarray  # uint8 [height, width, 3] sRGB, after EXIF orientation (maybe draft-reduced);
                   # with keep_gray / keep_16bit, maybe [H, W, 1] and uint16 (see decode_photo)
  height: int      # the photo's own size after EXIF orientation, before any reduction
  width: int
  format: str = ''         # Pillow's name of the file's format: 'JPEG', 'PNG', ...
  exif: bytes = b''        # the file's EXIF, its orientation reset to upright
  icc_profile: bytes = b''
  mode: str = ''           # Pillow's mode of the file's pixels: 'L', 'RGB', 'CMYK', ...
  read_at_8_bits: str = ''  # with keep_16bit, why a file of 16-bit colour gave 8 bits


_GRAY_MODES = ('L', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'I')


def decode_photo(data: bytes, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
                 draft_size: int = 0, keep_gray: bool = False,
                 keep_16bit: bool = False) -> DecodedPhoto:
  """Decodes image bytes to 8-bit sRGB (EXIF orientation applied, alpha on white), or
  raises PhotoRejected saying why not; the size limit is checked on the header, before
  any pixel is decoded. `draft_size` > 0: a JPEG may decode at a reduced scale whose
  sides stay >= draft_size. `keep_gray`: a gray image as it is, [H, W, 1], uint16 when
  it has 16 bits. `keep_16bit`: 16-bit colour as uint16 [H, W, 3]; what cannot be read
  at 16 bits gives 8 bits, and `read_at_8_bits` says why (docs/colorize.md, "16-bit
  scans", lists the kinds).
  """
  if not data:
    raise PhotoRejected('empty', 'the file has 0 bytes')
  try:
    image = Image.open(io.BytesIO(data))
  except Image.DecompressionBombError as e:
    raise PhotoRejected('too_large', str(e)) from None
  except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
    raise _unrecognised(data, e) from None

  width, height = image.size
  file_format, mode = image.format, image.mode
  if image.format not in SUPPORTED_FORMATS:
    raise PhotoRejected('unsupported_format', f'{image.format} images are not ingested; '
                        f'supported: {", ".join(SUPPORTED_FORMATS)}')
  if width * height > max_megapixels * 1e6:
    raise PhotoRejected('too_large', f'{width}x{height} is {width * height / 1e6:.1f} '
                        f'megapixels, over the limit of {max_megapixels:g}')
  if min(width, height) < MIN_SIDE:
    raise PhotoRejected('too_small', f'{width}x{height} has a side under {MIN_SIDE} pixels')

  try:
    if draft_size and image.format == 'JPEG':
      image.draft('RGB', (draft_size, draft_size))
    # A TIFF's tags are read on opening; a PNG's profile may come after its pixels.
    why_8_bits = _why_8_bits(image, data) if file_format == 'TIFF' else None
    if why_8_bits in ('', _NOT_SRGB):
      # Pillow's own 8 bits, and the right ones for separate colour planes, whose
      # 16-bit samples its raw decoder reads as 8-bit ones.
      internals.decode_one_byte(image, high=True, as_stored=keep_16bit and why_8_bits == '')
    image.load()
    if file_format != 'TIFF':
      why_8_bits = _why_8_bits(image, data)
    orientation = image.getexif().get(0x0112, 1)
    image = ImageOps.exif_transpose(image)
    if keep_gray and image.mode in _GRAY_MODES:
      rgb = _gray(image)
    elif keep_16bit and why_8_bits == '' and file_format == 'TIFF':
      rgb = _tiff16(image, data)
    elif keep_16bit and why_8_bits == '':
      rgb = _oriented(_colour16(data), orientation)
    else:
      rgb = _to_srgb8(image)
  except Image.DecompressionBombError as e:
    raise PhotoRejected('too_large', str(e)) from None
  except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as e:
    message = str(e) or type(e).__name__
    reason = 'truncated' if 'truncated' in message or isinstance(e, EOFError) else 'undecodable'
    raise PhotoRejected(reason, f'{file_format}: {message}') from None
  if orientation in (5, 6, 7, 8):
    width, height = height, width
  return DecodedPhoto(rgb, height, width, file_format, image.info.get('exif', b''),
                      image.info.get('icc_profile') or b'', mode,
                      (why_8_bits or '') if keep_16bit else '')


def _gray(image: Image.Image) -> np.ndarray:
  """A gray Pillow image -> [H, W, 1]: uint8, or uint16 for 16 bits (Pillow's 'I' too)."""
  if image.mode == 'L':
    return np.asarray(image, np.uint8)[..., None]
  return np.clip(np.asarray(image, np.int64), 0, 65535).astype(np.uint16)[..., None]


_TIFF16_COMPRESSIONS = {'raw': 'none', 'tiff_lzw': 'LZW', 'tiff_adobe_deflate': 'Deflate',
                        'tiff_deflate': 'Deflate', 'packbits': 'PackBits'}
"""The compressions (Pillow's names) of 16-bit colour TIFFs that are read at 16 bits:
those that scanners and Photoshop write."""

_TIFF_COLOURS = {5: 'CMYK', 6: 'YCbCr', 8: 'CIELab', 9: 'ICCLab', 10: 'ITULab'}


def _why_8_bits(image: Image.Image, data: bytes) -> Optional[str]:
  """Whether a just opened image has 16-bit colour that decode_photo reads at 16 bits:
  '' when it does, else why not; None when it has no 16-bit colour (8 bits, or gray,
  which `keep_gray` keeps)."""
  if _is_16bit_png(data):
    kind = {2: 'colour', 6: 'colour', 4: '16-bit gray with alpha is read at 8 bits'}.get(data[25])
    return _why_not_srgb(image) if kind == 'colour' else kind
  if image.format != 'TIFF':
    return None
  tags = image.tag_v2
  if tags.get(TiffImagePlugin.SAMPLESPERPIXEL, 1) < 3 or set(
      tags.get(TiffImagePlugin.BITSPERSAMPLE, (1,))) != {16}:
    return None
  colours = tags.get(TiffImagePlugin.PHOTOMETRIC_INTERPRETATION)
  compression = TiffImagePlugin.COMPRESSION_INFO.get(
      tags.get(TiffImagePlugin.COMPRESSION, 1), 'unknown')
  if colours != 2:
    name = _TIFF_COLOURS.get(colours, f'PhotometricInterpretation {colours}')
    return f'its {name} colours are converted to sRGB at 8 bits'
  if compression not in _TIFF16_COMPRESSIONS:
    return (f'{compression} compression is read at 8 bits (16 bits: '
            f'{", ".join(sorted(set(_TIFF16_COMPRESSIONS.values())))})')
  if tags.get(TiffImagePlugin.PLANAR_CONFIGURATION, 1) != 1 and compression != 'raw':
    return ('its colour planes are compressed one after the other (PlanarConfiguration 2), '
            'which Pillow reads at 8 bits')
  if tags.get(TiffImagePlugin.PREDICTOR, 1) not in (1, 2):
    return f'predictor {tags[TiffImagePlugin.PREDICTOR]} is read at 8 bits (16 bits: 1, 2)'
  return _why_not_srgb(image)


_NOT_SRGB = 'its ICC profile is not sRGB, and Pillow converts colour profiles at 8 bits only'


def _why_not_srgb(image: Image.Image) -> str:
  return '' if is_srgb(image.info.get('icc_profile')) else _NOT_SRGB


def _is_16bit_png(data: bytes) -> bool:
  """A PNG whose header says 16 bits per sample (colour type: data[25])."""
  return (data.startswith(b'\x89PNG\r\n\x1a\n') and data[12:16] == b'IHDR'
          and len(data) > 25 and data[24] == 16)


def is_srgb(icc_profile: bytes) -> bool:
  """Whether pixels with this ICC profile are sRGB without a conversion: no profile, a
  broken one (treated as sRGB, as `_to_srgb8` does), or one that describes sRGB."""
  if not icc_profile:
    return True
  try:
    description = ImageCms.getProfileDescription(
        ImageCms.ImageCmsProfile(io.BytesIO(icc_profile)))
  except (ImageCms.PyCMSError, OSError):
    return True
  return 'srgb' in description.lower()


def _colour16(data: bytes) -> np.ndarray:
  """A 16-bit RGB or RGBA PNG -> uint16 [H, W, 3], alpha composited on white."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  try:
    pixels = tf.io.decode_png(data, channels=4 if data[25] == 6 else 3, dtype=tf.uint16).numpy()
  except tf.errors.OpError as e:
    raise PhotoRejected('undecodable', f'PNG: {e.message}') from None
  if pixels.shape[-1] == 3:
    return pixels
  return _on_white(pixels[..., :3], pixels[..., 3:])


def _on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
  """16-bit colour over white, by its 16-bit alpha (not premultiplied)."""
  if (alpha == 65535).all():
    return np.ascontiguousarray(rgb)
  opacity = alpha.astype(np.float32) / 65535.0
  return np.round(rgb * opacity + 65535.0 * (1.0 - opacity)).astype(np.uint16)


def _tiff16(high: Image.Image, data: bytes) -> np.ndarray:
  """A 16-bit RGB(A) TIFF -> uint16 [H, W, 3], alpha composited on white: `high`, its
  high bytes as decode_photo loaded and turned them, and its low bytes decoded and
  turned the same way. So Pillow and libtiff decompress it and undo its predictor,
  whatever its compression, strips or tiles, and byte order."""
  low = Image.open(io.BytesIO(data))
  premultiplied = low.tag_v2.get(TiffImagePlugin.EXTRASAMPLES) == (1,)
  internals.decode_one_byte(low, high=False)
  low.load()
  low = ImageOps.exif_transpose(low)
  pixels = np.asarray(high).astype(np.uint16) << 8 | np.asarray(low)
  if pixels.shape[-1] == 3:
    return pixels
  rgb, alpha = pixels[..., :3], pixels[..., 3:]
  if premultiplied:  # Colour already times alpha: over white, plus white times 1 - alpha.
    return np.minimum(rgb.astype(np.int32) + (65535 - alpha), 65535).astype(np.uint16)
  return _on_white(rgb, alpha)


# EXIF orientation as ImageOps.exif_transpose applies it, on a numpy image.
_ORIENT = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1),
}


def _oriented(pixels: np.ndarray, orientation: int) -> np.ndarray:
  if orientation not in _ORIENT:
    return pixels
  return np.ascontiguousarray(_ORIENT[orientation](pixels))


def _unrecognised(data: bytes, error: Exception) -> PhotoRejected:
  """Why Pillow could not open `data`: a broken image, another format, or no image."""
  message = str(error) or type(error).__name__
  looks_like = next((name for signature, name in _SUPPORTED_SIGNATURES
                     if data.startswith(signature)), None)
  if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
    looks_like = 'WEBP'
  if looks_like:
    reason = 'truncated' if 'runcated' in message else 'undecodable'
    return PhotoRejected(reason, f'{looks_like}: {message}')
  head = data[:64].lstrip()
  for signature, name in _UNSUPPORTED_SIGNATURES:
    if head.startswith(signature):
      return PhotoRejected('unsupported_format', f'{name} files are not ingested')
  if data[4:8] == b'ftyp' and data[8:12] in _FTYP_BRANDS:
    return PhotoRejected('unsupported_format', f'{_FTYP_BRANDS[data[8:12]]} files are not ingested')
  return PhotoRejected('not_an_image', 'no image format recognised in the file')


_SRGB_PROFILE = ImageCms.createProfile('sRGB')


def _to_srgb8(image: Image.Image) -> np.ndarray:
  """Any Pillow mode -> uint8 [H, W, 3] sRGB."""
  icc = image.info.get('icc_profile')
  if icc and image.mode in ('RGB', 'RGBA', 'CMYK'):
    try:
      source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
      mode = 'RGBA' if image.mode == 'RGBA' else 'RGB'
      image = ImageCms.profileToProfile(image, source, _SRGB_PROFILE, outputMode=mode)
    except (ImageCms.PyCMSError, OSError):
      pass  # A broken profile: fall back to treating the pixels as sRGB.
  if image.mode in ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I'):
    # Pillow's own convert('L') clips 16-bit values instead of scaling them.
    gray = np.asarray(image, dtype=np.float64)
    gray = np.clip(np.round(gray / 257.0), 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)
  if image.mode == 'F':
    gray = np.asarray(image, dtype=np.float64)
    scale = 255.0 if gray.max(initial=0.0) <= 1.0 else 1.0 / 257.0
    gray = np.clip(np.round(gray * scale), 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)
  if image.mode in ('RGBA', 'LA', 'PA') or (image.mode == 'P' and 'transparency' in image.info):
    rgba = image.convert('RGBA')
    white = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
    image = Image.alpha_composite(white, rgba)
  return np.asarray(image.convert('RGB'), dtype=np.uint8)
