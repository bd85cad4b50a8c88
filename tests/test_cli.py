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
