"""`colorizer colorize`: files, folders or globs -> colourized images, with a trained model.

Reads every format ingestion reads (Pillow, EXIF orientation applied), hands the pixels
to the model's `serving_default` signature as PNG, and writes `<out>/<stem>.<format>`
at the input's own size. A file that cannot be read gets one line on stderr and the
rest go on.
"""
import io
import os
import sys
from typing import Iterable, List

import model  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from PIL import Image
import tensorflow as tf
from tqdm import tqdm

from model import preprocessing
from model import serving


def expand_inputs(inputs: Iterable[str]) -> List[str]:
  """Files as given, folders as every file below them, globs as their matches."""
  files = []
  for item in inputs:
    if tf.io.gfile.isdir(item):
      files += sorted(os.path.join(root, name) for root, _, names in tf.io.gfile.walk(item)
                      for name in names)
    elif tf.io.gfile.exists(item):
      files.append(item)
    else:
      files += sorted(tf.io.gfile.glob(item)) or [item]  # A missing file fails below.
  return files


def _output_name(path: str, fmt: str, taken: set) -> str:
  stem = os.path.splitext(os.path.basename(path))[0]
  name, n = f'{stem}.{fmt}', 1
  while name in taken:  # Two inputs with one stem: keep both.
    n += 1
    name = f'{stem}-{n}.{fmt}'
  taken.add(name)
  return name


def colorize_photo(signature, data: bytes,
                   max_megapixels: float = preprocessing.DEFAULT_MAX_MEGAPIXELS) -> bytes:
  """One encoded photo (any format ingestion reads) -> the colourized PNG, at its size.

  Pillow decodes it (with the same checks as ingestion: size from the header first, so a
  decompression bomb is refused before it is decoded) and hands `serving_default`
  lossless PNG. Raises preprocessing.PhotoRejected for a photo it cannot take.
  """
  photo = preprocessing.decode_photo(data, max_megapixels)
  png = io.BytesIO()
  Image.fromarray(photo.rgb).save(png, 'PNG', compress_level=0)
  result = signature(**{serving.INPUT_KEY: tf.constant([png.getvalue()])})
  return result[serving.OUTPUT_KEY].numpy()[0]


def colorize_files(inputs: Iterable[str], model_dir: str, out: str, fmt: str = 'png',
                   max_megapixels: float = preprocessing.DEFAULT_MAX_MEGAPIXELS) -> List[str]:
  """Colourizes every input into `out`; returns the inputs that failed."""
  files = expand_inputs(inputs)
  signature = tf.saved_model.load(serving.latest_version(model_dir)).signatures['serving_default']
  tf.io.gfile.makedirs(out)
  failures, taken = [], set()
  for path in tqdm(files, desc='colorize', unit='photo', disable=len(files) < 2):
    try:
      with tf.io.gfile.GFile(path, 'rb') as f:
        colour = colorize_photo(signature, f.read(), max_megapixels)
      if fmt == 'jpg':
        jpeg = io.BytesIO()
        Image.open(io.BytesIO(colour)).save(jpeg, 'JPEG', quality=95)
        colour = jpeg.getvalue()
      with tf.io.gfile.GFile(os.path.join(out, _output_name(path, fmt, taken)), 'wb') as f:
        f.write(colour)
    except preprocessing.PhotoRejected as e:
      failures.append(path)
      tqdm.write(f'colorizer colorize: {path}: {e.reason}: {e.detail}', file=sys.stderr)
    except (OSError, tf.errors.OpError) as e:
      failures.append(path)
      message = getattr(e, 'message', None) or str(e)
      tqdm.write(f'colorizer colorize: {path}: {message}', file=sys.stderr)
  print(f'Colourized {len(files) - len(failures)} of {len(files)} files into {out}')
  return failures
