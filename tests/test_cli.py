"""The `colorizer` command as a user runs it (the installed console script)."""
import glob
import json
import os
import shutil
import subprocess
import sys

from sample_images import SAMPLES

COLORIZER = os.path.join(os.path.dirname(sys.executable), 'colorizer')


def colorizer(*args):
  return subprocess.run([COLORIZER, *args], capture_output=True, text=True, timeout=600,
                        check=False)


def test_ingest_a_folder_of_real_photos_and_broken_files(mixed_folder, tmp_path):
  folder, expected = mixed_folder
  photos = tmp_path / 'photos'
  shutil.copytree(folder, photos)
  real = sorted(glob.glob(os.path.join(SAMPLES, '*.jpg')))[:4]
  for path in real:
    shutil.copy(path, photos / os.path.basename(path))
  out = tmp_path / 'out'
  # The default Beam options (multi-processing DirectRunner, one worker per core).
  result = colorizer('ingest', '--data', str(photos), '--out', str(out),
                     '--embedding-weights', 'none')
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.load(open(out / 'ingest_report.json'))
  assert report['total'] == len(expected) + len(real)
  assert report['written'] == list(expected.values()).count('written') + len(real)
  assert f'written   {report["written"]:5d}' in result.stdout
  assert 'bomb.png: too_large' in result.stdout
  assert 'RANDOM Inception-ResNet-v2 weights' in result.stderr


def test_help_and_usage_errors(tmp_path):
  assert colorizer('--help').returncode == 0
  result = colorizer('ingest', '--help')
  assert result.returncode == 0 and '--embedding-weights' in result.stdout
  result = colorizer('ingest', '--out', str(tmp_path / 'out'))
  assert result.returncode == 2 and '--data' in result.stderr
  result = colorizer('ingest', '--data', str(tmp_path / 'nothing-here'), '--out',
                     str(tmp_path / 'out'), '--embedding-weights', 'none')
  assert result.returncode == 2 and 'no files match' in result.stderr
  result = colorizer('paint')
  assert result.returncode == 2 and 'unknown command' in result.stderr


def test_colorize_a_folder(trained, tmp_path):
  """Odd inputs, one broken file: the rest are written at their own size with the
  input's luminance, and the exit code says something failed."""
  import io  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel
  from model import preprocessing as pp  # pylint: disable=import-outside-toplevel
  from sample_images import colourful_image, encode  # pylint: disable=import-outside-toplevel

  photos = tmp_path / 'photos'
  photos.mkdir()
  exif = Image.Exif()
  exif[0x0112] = 6  # Shown rotated: 120 wide, 160 tall.
  buffer = io.BytesIO()
  Image.fromarray(colourful_image(1, 160, 120)).save(buffer, 'JPEG', exif=exif)
  (photos / 'rotated.jpg').write_bytes(buffer.getvalue())
  gray = np.asarray(Image.fromarray(colourful_image(2, 90, 70)).convert('L'))
  (photos / 'gray.png').write_bytes(encode(gray, 'PNG'))
  (photos / 'photo.webp').write_bytes(encode(colourful_image(3, 50, 60), 'WEBP'))
  (photos / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 broken')
  out = tmp_path / 'out'
  result = colorizer('colorize', str(photos), '--model', trained['serving_dir'],
                     '--out', str(out))
  assert result.returncode == 1
  assert 'broken.jpg: truncated' in result.stderr and 'Colourized 3 of 4' in result.stdout
  sizes = {name: Image.open(out / name).size for name in os.listdir(out)}
  assert sizes == {'rotated.png': (120, 160), 'gray.png': (90, 70), 'photo.png': (50, 60)}
  output_l = pp.rgb_to_lab(np.asarray(Image.open(out / 'gray.png'), np.float32) / 255).numpy()[..., 0]
  input_l = pp.rgb_to_lab(np.repeat(gray[..., None], 3, 2).astype(np.float32) / 255).numpy()[..., 0]
  assert np.abs(output_l - input_l).mean() < 1.0

  result = colorizer('colorize', str(photos / 'gray.png'), '--model',
                     trained['serving_dir'], '--out', str(tmp_path / 'jpg'),
                     '--format', 'jpg')
  assert result.returncode == 0 and Image.open(tmp_path / 'jpg' / 'gray.jpg').format == 'JPEG'
