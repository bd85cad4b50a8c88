"""The `colorizer` command as a user runs it (the installed console script)."""
import glob
import json
import os
import shutil
import subprocess
import sys

from conftest import IN_MEMORY_BEAM
from sample_images import SAMPLES

COLORIZER = os.path.join(os.path.dirname(sys.executable), 'colorizer')


def colorizer(*args, env=None):
  return subprocess.run([COLORIZER, *args], capture_output=True, text=True, timeout=600,
                        check=False, env=env)


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


def test_run_keeps_the_libraries_noise_in_its_log_and_ends_with_what_to_do_next(
    yellow_blue_folder, tmp_path):
  """A tiny run (2 steps; the gray gate loosened so that it pushes): the terminal shows
  the stages and the next steps, the log what TensorFlow and Google's libraries say."""
  root = tmp_path / 'out'
  result = colorizer('run', '--data', yellow_blue_folder, '--output-root', str(root),
                     '--embedding-weights', 'none', '--eval-percent', '25', '--train-steps',
                     '2', '--eval-steps', '1', '--epochs', '1', '--batch-size', '2',
                     '--min-improvement-over-gray=-1000',
                     *[f'--beam-arg={arg}' for arg in IN_MEMORY_BEAM],
                     # As a user's shell has it: a TF_CPP_MIN_LOG_LEVEL of the caller's
                     # would silence the noise this test looks for in the log.
                     env={k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'})
  assert result.returncode == 0, result.stderr[-3000:]
  terminal = result.stdout + result.stderr
  log = (root / 'logs' / 'colorizer-run.log').read_text()
  for noise in ('Unable to register cuDNN factory', 'Could not find TensorRT', 'FutureWarning'):
    assert noise not in terminal, noise
    assert noise in log, noise
  assert 'oneDNN' not in terminal  # An INFO line: TF_CPP_MIN_LOG_LEVEL=1 (cli.py) drops it.
  assert 'RANDOM Inception-ResNet-v2 weights' in result.stderr  # Our own warning stays.
  assert 'Ingested 40 of 40 photos' in result.stdout
  assert 'Training: 100%' in result.stdout and '2/2' in result.stdout
  assert 'Evaluator: BLESSED: ab-MSE' in result.stdout and "against gray's" in result.stdout
  serving = root / 'serving_model'
  [version] = os.listdir(serving)
  assert f'as {serving / version}' in result.stdout
  assert f'open the report      {root / "report.html"}' in result.stdout
  assert f'colorizer serve --model {serving}' in result.stdout
  assert 'then open http://127.0.0.1:8501/' in result.stdout
  assert f'colorizer colorize PHOTOS... --model {serving} --out' in result.stdout
