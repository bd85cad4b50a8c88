"""The `colorizer` command as a user runs it (the installed console script)."""
import glob
import json
import os
import shutil
import subprocess

import pytest

from conftest import COLORIZER
from sample_images import SAMPLES


def colorizer(*args):
  return subprocess.run([COLORIZER, *args], capture_output=True, text=True, timeout=600,
                        check=False)


@pytest.mark.long
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
  # Its stderr is no terminal: the progress line's plain lines, the last with the totals.
  assert '\r' not in result.stderr
  progress = [line for line in result.stderr.splitlines() if line.startswith('Ingesting:')]
  rejected = report['total'] - report['written']
  assert progress[-1].startswith(f'Ingesting: 100% {report["total"]}/{report["total"]} [')
  assert progress[-1].endswith(f'written {report["written"]}, reused 0, rejected {rejected}]')


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


def test_run_keeps_the_libraries_noise_in_its_log_and_ends_with_what_to_do_next(resumed_run):
  """`colorizer run` killed during training and run again (conftest's resumed_run, the
  gray gate loosened so that it pushes): the terminal shows the stages and the next
  steps, the log what TensorFlow and Google's libraries say, in the Beam worker
  processes too."""
  first_stdout, second = resumed_run['first_stdout'], resumed_run['second']
  assert second.returncode == 0, second.stderr[-3000:]
  terminal = first_stdout + resumed_run['first_stderr'] + second.stdout + second.stderr
  log = resumed_run['second_log']
  for noise in ('Unable to register cuDNN factory', 'Could not find TensorRT', 'FutureWarning'):
    assert noise not in terminal, noise
    assert noise in log, noise
  assert 'oneDNN' not in terminal  # An INFO line: TF_CPP_MIN_LOG_LEVEL=1 (cli.py) drops it.
  for stderr in (resumed_run['first_stderr'], second.stderr):
    assert 'RANDOM Inception-ResNet-v2 weights' in stderr  # Our own warning stays.
  # The second run takes ingestion from TFX's cache: the first one reported it, and
  # showed its progress, as plain lines since its stderr was a file.
  assert 'Ingested 20 of 20 photos' in first_stdout
  assert 'Ingesting: 100% 20/20 [' in resumed_run['first_stderr']
  assert 'written 20, reused 0, rejected 0]' in resumed_run['first_stderr']
  # The Evaluator's progress: every eval example, run through both models. It reaches
  # the terminal, not the log (where the run routes descriptor 2).
  [report] = glob.glob(str(resumed_run['root'] / 'pipeline_root' / 'PhotoExampleGen' /
                           'examples' / '*' / 'ingest_report.json'))
  evaluated = json.load(open(report))['examples']['eval']
  assert f'Evaluating: 100% {evaluated}/{evaluated} [' in second.stderr
  whole_log = (resumed_run['root'] / 'logs' / 'colorizer-run.log').read_text(errors='replace')
  for output in (resumed_run['first_stderr'], second.stderr, whole_log):
    assert '\r' not in output
  assert 'Evaluating:' not in whole_log and 'Ingesting:' not in whole_log
  assert 'Training: 100%' in second.stdout and '20/20' in second.stdout
  assert 'Evaluator: BLESSED: ab-MSE' in second.stdout and "against gray's" in second.stdout
  root = resumed_run['root']
  serving = root / 'serving_model'
  [version] = os.listdir(serving)
  assert f'as {serving / version}' in second.stdout
  assert f'open the report      {root / "report.html"}' in second.stdout
  assert f'colorizer serve --model {serving}' in second.stdout
  assert 'then open http://127.0.0.1:8501/' in second.stdout
  assert f'colorizer colorize PHOTOS... --model {serving} --out' in second.stdout


def test_run_refuses_a_bucket_as_output_root(tmp_path):
  """`colorizer run` keeps its SQLite metadata and lock in --output-root, on this
  machine; a gs:// one would have been taken for a folder named `gs:` here."""
  result = subprocess.run([COLORIZER, 'run', '--data', str(tmp_path / 'photos'),
                           '--output-root', 'gs://colorizer-test/run'], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 2
  assert 'colorizer run: error: --output-root gs://colorizer-test/run:' in result.stderr
  assert 'colorizer compile' in result.stderr
  assert os.listdir(tmp_path) == []
