"""`colorizer colorize` as an archive runs it: a tree of photos and broken files, a run
killed in the middle and run again, and the Beam options it builds.

The model (conftest's one_colour_model, exported once, random embedding weights)
answers one colour, ab = ONE_COLOUR, everywhere: inside sRGB at the photos' lightness,
so that the luminance the outputs keep is measured without any clipping of colours.
"""
import fcntl
import io
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

from absl import flags
import apache_beam as beam
from apache_beam.options import pipeline_options as po
from apache_beam.testing.util import assert_that, equal_to
import numpy as np
from PIL import Image, ImageCms
import pytest
import tensorflow as tf

from model import colour_space
from model import decoding
from commands import cli
from commands import colorize
from components import input_files
from conftest import ONE_COLOUR
from sample_images import colourful_image, colourful_image16, encode, png16, tiff16

COLORIZER = os.path.join(os.path.dirname(sys.executable), 'colorizer')
IN_MEMORY_OPTIONS = ['--direct_running_mode=in_memory', '--direct_num_workers=1']
IN_MEMORY = [f'--beam-arg={option}' for option in IN_MEMORY_OPTIONS]
ARTIST, ORIENTATION = 0x013B, 0x0112


def run(*args):
  return subprocess.run([COLORIZER, 'colorize', *args], capture_output=True, text=True,
                        timeout=600, check=False)


def lightness(rgb: np.ndarray, top: float = 255.0) -> np.ndarray:
  return colour_space.rgb_to_lab(tf.constant(rgb, tf.float32) / top).numpy()[..., 0]


def jpeg(rgb: np.ndarray, mode: str = 'RGB', **kwargs) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(rgb).convert(mode).save(buffer, 'JPEG', quality=95, **kwargs)
  return buffer.getvalue()


def exif(artist: str, orientation: int = 1) -> Image.Exif:
  tags = Image.Exif()
  tags[ARTIST] = artist
  if orientation != 1:
    tags[ORIENTATION] = orientation
  return tags


def gray16(width: int = 160, height: int = 120) -> np.ndarray:
  """A smooth 16-bit scan whose levels mostly fall between 8-bit ones."""
  y, x = np.mgrid[0:height, 0:width]
  return (26000 + 70 * x + 40 * y + 300 * np.sin(x / 7.0)).astype(np.uint16)


SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()


def archive(root) -> dict:
  """name -> (bytes, expected status or reason)."""
  photo = colourful_image(1, 120, 90)
  return {
      '1950/IMG_0001.jpg': (jpeg(photo, exif=exif('Ada').tobytes(), icc_profile=SRGB_ICC),
                            'written'),
      '1960/IMG_0001.jpg': (jpeg(colourful_image(2, 100, 70), exif=exif('Bo').tobytes()),
                            'written'),
      '1960/prints/cmyk.jpg': (jpeg(colourful_image(3, 110, 80), 'CMYK',
                                    exif=exif('Cy', orientation=6).tobytes()), 'written'),
      'scans/scan16.png': (encode(gray16(), 'PNG'), 'written'),
      'scans/colour16.png': (png16(colourful_image16(5, 150, 110)), 'written'),  # 48-bit RGB
      # A 48-bit TIFF as scanners write it, turned by EXIF; one Pillow reads at 8 bits.
      'scans/colour48.tif': (tiff16(colourful_image16(6, 140, 100), 'lzw', predictor=True,
                                    big_endian=True, orientation=6), 'written'),
      'scans/planes16.tif': (tiff16(colourful_image16(7, 90, 70), 'adobe_deflate',
                                    planar=True), 'written'),
      'scans/gray.png': (encode(np.asarray(Image.fromarray(photo).convert('L')), 'PNG'),
                         'written'),
      'scans/photo.webp': (encode(colourful_image(4, 50, 60), 'WEBP'), 'written'),
      'broken/cut.jpg': (jpeg(photo)[:400], 'truncated'),
      'broken/empty.jpg': (b'', 'empty'),
      'notes.txt': (b'box 3, shelf 2\n', 'not_an_image'),
  }


# A state of the progress line: "Colourizing:  42%|...| 11/30 [00:05<00:07, ..., written 9,
# skipped 0, rejected 2]" -> (done, total, written, skipped, rejected).
PROGRESS = re.compile(r'Colourizing: +\d+%\|?[^|\r\n]*\|? (\d+)/(\d+) \[[^\]\r\n]*'
                      r'written (\d+), skipped (\d+), rejected (\d+)\]')


def progress(text: str):
  return [tuple(map(int, state)) for state in PROGRESS.findall(text)]


def run_on_a_terminal(*args):
  """`colorizer colorize` with its stderr on a pseudo-terminal of 120 columns, as
  users run it. Returns (exit status, stdout, what the terminal showed, the line ends
  that the terminal turns into CR LF made LF again)."""
  master, terminal = pty.openpty()
  fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 120, 0, 0))
  process = subprocess.Popen([COLORIZER, 'colorize', *args], stdout=subprocess.PIPE,
                             stderr=terminal, stdin=subprocess.DEVNULL)
  os.close(terminal)
  shown, deadline = [], time.time() + 600
  while select.select([master], [], [], max(0, deadline - time.time()))[0]:
    try:
      data = os.read(master, 65536)
    except OSError:  # Every writer of the terminal has closed it.
      break
    if not data:
      break
    shown.append(data)
  os.close(master)
  if time.time() > deadline:
    process.kill()
  stdout = process.stdout.read().decode()
  process.wait(timeout=600)
  return process.returncode, stdout, b''.join(shown).decode(errors='replace').replace('\r\n', '\n')


@pytest.mark.long
def test_an_archive_tree_keeps_size_luminance_exif_and_icc(one_colour_model, tmp_path):
  """The default options: the DirectRunner in multi-processing mode, on a terminal,
  where the progress line counts what the worker processes have done as they go."""
  root, out = tmp_path / 'archive', tmp_path / 'colour'
  files = archive(root)
  roll = {f'roll/{i:02d}.jpg': (jpeg(colourful_image(10 + i, 64, 48)), 'written')
          for i in range(18)}  # Enough work to see the line advance: a few tens of files.
  files.update(roll)
  for name, (data, _) in files.items():
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(data)
  status, stdout, terminal = run_on_a_terminal(
      str(root), '--model', one_colour_model, '--out', str(out), '--batch-size', '2')
  assert status == 1, terminal[-3000:]  # Some files were rejected.
  assert 'Colourized 27 of 30 files' in stdout
  assert '16-bit colour read at 8 bits: 1;' in stdout
  assert 'cut.jpg: truncated' in terminal
  assert 'planes16.tif: read at 8 bits: ' in terminal
  states = progress(terminal)
  assert states[-1] == (30, 30, 27, 0, 3)  # The totals, as the report has them.
  assert [state[0] for state in states] == sorted(state[0] for state in states)
  assert any(0 < written < 27 for _, _, written, _, _ in states), terminal  # On its way.
  report = json.load(open(out / colorize.REPORT_FILE))
  rows = {os.path.relpath(row['source'], root): row for row in report['files']}
  assert {name: row.get('reason', row['status']) for name, row in rows.items()} == {
      name: outcome for name, (_, outcome) in files.items()}
  outputs = {name: row['output'] for name, row in rows.items() if row['status'] == 'written'}
  assert {name: os.path.relpath(path, out) for name, path in outputs.items()} == {
      '1950/IMG_0001.jpg': '1950/IMG_0001.jpg', '1960/IMG_0001.jpg': '1960/IMG_0001.jpg',
      '1960/prints/cmyk.jpg': '1960/prints/cmyk.jpg', 'scans/scan16.png': 'scans/scan16.png',
      'scans/colour16.png': 'scans/colour16.png', 'scans/colour48.tif': 'scans/colour48.png',
      'scans/planes16.tif': 'scans/planes16.png',
      'scans/gray.png': 'scans/gray.png', 'scans/photo.webp': 'scans/photo.png',
      **{name: name for name in roll}}
  assert report['read_at_8_bits'] == 1
  assert {name for name, row in rows.items() if 'read_at_8_bits' in row} == {'scans/planes16.tif'}
  assert 'PlanarConfiguration 2' in rows['scans/planes16.tif']['read_at_8_bits']
  assert open(outputs['scans/planes16.tif'], 'rb').read()[24] == 8  # An 8-bit PNG.

  for name, output in outputs.items():
    source = decoding.decode_photo(files[name][0])
    written = decoding.decode_photo(open(output, 'rb').read())
    assert (written.width, written.height) == (source.width, source.height), name
    difference = np.abs(lightness(written.rgb) - lightness(source.rgb))
    assert difference.mean() < (1.5 if output.endswith('.jpg') else 0.5), name
    assert colour_space.colourfulness(written.rgb) > 5, name  # It did colourize.
  for name in ('1950/IMG_0001.jpg', '1960/IMG_0001.jpg', '1960/prints/cmyk.jpg'):
    image = Image.open(outputs[name])
    assert image.format == 'JPEG' and image.getexif()[ARTIST] == {
        '1950': 'Ada', '1960': 'Bo', '1960/prints': 'Cy'}[os.path.dirname(name)], name
    assert image.getexif().get(ORIENTATION, 1) == 1, name  # Upright pixels, as shown.
  assert Image.open(outputs['1950/IMG_0001.jpg']).info['icc_profile'] == SRGB_ICC
  assert not (out / colorize.TMP_DIR).exists()  # Written and renamed into place.
  assert Image.open(outputs['1960/prints/cmyk.jpg']).size == (80, 110)  # Turned by EXIF.

  # The 16-bit scan and the 48-bit colour PNG and TIFF: 16-bit PNGs whose L follows the
  # source's 16 bits far closer than the source's 8-bit copy could.
  sources = {'scans/scan16.png': np.repeat(gray16()[..., None], 3, 2),
             'scans/colour16.png': colourful_image16(5, 150, 110),
             'scans/colour48.tif': np.rot90(colourful_image16(6, 140, 100), -1)}  # EXIF 6
  for name, source in sources.items():
    data = open(outputs[name], 'rb').read()
    assert data[24] == 16 and data[25] == 2, name  # The PNG header: 16-bit RGB.
    colour = tf.io.decode_png(data, dtype=tf.uint16).numpy()
    truth = lightness(source, 65535.0)
    eight_bit = np.round(source / 257.0)
    error_8 = np.abs(lightness(eight_bit) - truth).mean()
    error_16 = np.abs(lightness(colour, 65535.0) - truth).mean()
    assert error_16 < error_8 / 5, (name, error_16, error_8)
    lab = colour_space.rgb_to_lab(tf.constant(colour, tf.float32) / 65535.0).numpy()
    assert np.allclose(lab[..., 1:].mean(axis=(0, 1)), ONE_COLOUR, atol=1.0), name


def write(path: str, data: bytes) -> None:
  with tf.io.gfile.GFile(path, 'wb') as f:
    f.write(data)


def read(path: str) -> bytes:
  with tf.io.gfile.GFile(path, 'rb') as f:
    return f.read()


def objects_under(folder: str) -> dict:
  """{gs:// path: generation} of every object below a bucket folder (python-storage's
  listing: folder objects included)."""
  from google.cloud import storage  # pylint: disable=import-outside-toplevel
  bucket, prefix = folder[len('gs://'):].split('/', 1)
  return {f'gs://{bucket}/{blob.name}': blob.generation
          for blob in storage.Client().list_blobs(bucket, prefix=prefix + '/')}


def photos_under(folder: str) -> dict:
  return {path: generation for path, generation in objects_under(folder).items()
          if path.endswith('.jpg')}


@pytest.mark.long
def test_a_killed_run_resumes_where_it_stopped(one_colour_model, bucket):
  """From a bucket to a bucket, as on Dataflow: the inputs under folder objects
  (tf.io.gfile.makedirs leaves them, as the Cloud console does), each output written
  straight to its name (an object appears only once its upload is complete)."""
  photos, out = f'{bucket}/photos', f'{bucket}/out'
  tf.io.gfile.makedirs(f'{photos}/sub')
  for i in range(24):
    write(f'{photos}/{"sub/" if i % 2 else ""}{i:02d}.jpg', jpeg(colourful_image(i, 96, 80)))
  argv = [COLORIZER, 'colorize', photos, '--model', one_colour_model, '--out', out,
          '--batch-size', '2', *IN_MEMORY]
  process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
  try:
    while not photos_under(out) and process.poll() is None:
      time.sleep(0.05)
  finally:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
  done = photos_under(out)
  assert 0 < len(done) < 24  # Killed in the middle.
  for path in done:
    Image.open(io.BytesIO(read(path))).load()  # Complete: written whole or not at all.

  result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(read(f'{out}/{colorize.REPORT_FILE}'))
  assert report['total'] == 24 and report['rejected'] == {}
  statuses = {row['output']: row['status'] for row in report['files']}
  assert set(done) == {o for o, s in statuses.items() if s == 'skipped'}
  assert report['written'] == 24 - len(done)
  # Its stderr is no terminal: the progress line comes as plain lines, the resumed run
  # counting what it skipped.
  assert '\r' not in result.stderr
  lines = [line for line in result.stderr.splitlines() if line.startswith('Colourizing:')]
  assert [progress(line) for line in lines] == [[state] for state in progress(result.stderr)]
  assert progress(lines[-1]) == [(24, 24, 24 - len(done), len(done), 0)]
  after = objects_under(out)
  assert all(after[path] == generation for path, generation in done.items())  # Not redone.
  assert sorted(after) == sorted([*statuses, f'{out}/{colorize.REPORT_FILE}'])  # No folders.

  # One file: the job in this process.
  first = sorted(done)[0]
  source = next(row['source'] for row in report['files'] if row['output'] == first)
  result = run(source, '--model', one_colour_model, '--out', out, '--overwrite')
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads(read(f'{out}/{colorize.REPORT_FILE}'))['files'][0]['status'] == 'written'
  assert photos_under(out)[first] != done[first]  # Redone.


def test_a_job_keeps_the_version_it_started_with(one_colour_model, tmp_path):
  """A push that lands while a job runs does not reach it: every worker loads the
  version the job started with. (The newer version here cannot load, which shows.)"""
  serving_dir, photos = tmp_path / 'serving', tmp_path / 'photos'
  serving_dir.mkdir()
  photos.mkdir()
  os.symlink(one_colour_model, serving_dir / '1')
  (photos / 'a.jpg').write_bytes(jpeg(colourful_image(1, 96, 80)))
  job = colorize.ColorizePhotos(input_files.input_roots([str(photos)]), str(serving_dir),
                                str(tmp_path / 'out'))
  (serving_dir / '2').mkdir()
  (serving_dir / '2' / 'saved_model.pb').write_bytes(b'not a SavedModel')
  with beam.Pipeline(options=po.PipelineOptions(IN_MEMORY_OPTIONS)) as pipeline:
    statuses = pipeline | job | beam.Map(lambda status: (status.status, status.reason))
    assert_that(statuses, equal_to([('written', None)]))


def test_a_large_photo_is_a_batch_of_its_own():
  """Batches are weighed in model-size squares: small photos fill one, a large photo
  (here 21 squares, over the batch's 4) goes alone, and no batch is empty."""
  def photo(name, side):
    return colorize.Photo(name, '', np.zeros((side, side, 1), np.uint8), None)
  photos = [photo('large', 1200), photo('a', 256), photo('b', 100), photo('c', 256),
            photo('d', 256), photo('e', 256)]
  kwargs = colorize.ColorizerModelHandler('unused', batch_size=4).batch_elements_kwargs()
  with beam.Pipeline(options=po.PipelineOptions(IN_MEMORY_OPTIONS)) as pipeline:
    batches = (pipeline
               | beam.Create(photos, reshuffle=False)
               | beam.BatchElements(**kwargs)
               | beam.Map(lambda batch: [p.source for p in batch]))
    assert_that(batches, equal_to([['large'], ['a', 'b', 'c', 'd'], ['e']]))


def options(*argv) -> po.PipelineOptions:
  fv = flags.FlagValues()
  cli.COMMANDS['colorize'][0](fv)
  fv(['colorizer colorize', *argv, '--model', 'm', '--out', 'o', 'photos/'])
  return colorize.pipeline_options(fv['beam-arg'].value)


def test_beam_options_local_and_dataflow():
  local = options()
  assert local.view_as(po.StandardOptions).runner is None  # The DirectRunner.
  assert local.view_as(po.DirectOptions).direct_running_mode == 'multi_processing'
  assert local.view_as(po.DirectOptions).direct_num_workers == 0  # One per core.

  image = 'europe-docker.pkg.dev/p/images/colorizer:1.0'
  dataflow = options('--beam-arg=--runner=DataflowRunner', '--beam-arg=--project=p',
                     '--beam-arg=--region=europe-west4',
                     '--beam-arg=--temp_location=gs://b/tmp',
                     f'--beam-arg=--sdk_container_image={image}',
                     '--beam-arg=--experiments=use_runner_v2')
  assert dataflow.view_as(po.StandardOptions).runner == 'DataflowRunner'
  cloud = dataflow.view_as(po.GoogleCloudOptions)
  assert (cloud.project, cloud.region, cloud.temp_location) == ('p', 'europe-west4', 'gs://b/tmp')
  assert dataflow.view_as(po.WorkerOptions).sdk_container_image == image
  assert 'use_runner_v2' in dataflow.view_as(po.DebugOptions).experiments
  assert dataflow.view_as(po.SetupOptions).setup_file is None  # The image has the code.
