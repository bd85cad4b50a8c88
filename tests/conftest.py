"""Shared fixtures: photos and broken files generated on the fly (nothing downloaded)."""
import csv
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

import model  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import pytest

from components import beam_workers
from model import hyperparameters as hp
from sample_images import encode, mixed_folder_files, yellow_blue_image

# make test's pytest-xdist workers share the machine's cores: each worker's TensorFlow
# (and what it starts, which inherits the variables) sizes its two pools to its share, as
# components/beam_workers.py does for Beam's workers, rather than every worker's to every
# core (a pair of pipeline runs side by side took 12% less CPU time: docs/development.md).
# Before TensorFlow loads (nothing above loads it), which reads them once; a value of the
# caller's is kept.
_WORKERS = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
if _WORKERS > 1:
  for _pool in beam_workers.THREADS:
    os.environ.setdefault(_pool, str(beam_workers.share(_WORKERS)))

# make test runs the tests in two pytest-xdist workers (--dist loadgroup). The tests that
# share one of these runs go to one worker, so that the run is made once; they are listed
# in the order of precedence, for a test that uses two.
SHARED_RUNS = ('trained', 'resumed_run', 'backend_runs')


def pytest_itemcollected(item):
  # As each test is collected: xdist reads the groups in its own
  # pytest_collection_modifyitems, which may run before a conftest's.
  shared = [name for name in SHARED_RUNS if name in item.fixturenames]
  if shared:
    item.add_marker(pytest.mark.xdist_group(shared[0]))


def pytest_collection_modifyitems(items):
  # pytest-xdist hands out the shared runs first (the group of most tests first), then
  # the other tests in this order: the long ones first, so that none is left running on
  # one core while the other idles at the end (the continual-learning test was, 3:40).
  items.sort(key=lambda item: item.get_closest_marker('long') is None)


def built_once(tmp_path_factory, name, build):
  """A folder that `build(folder)` fills, built by one pytest-xdist worker (or the one
  process) and reused by the others: the first to take the lock builds it."""
  shared = tmp_path_factory.getbasetemp()
  if os.environ.get('PYTEST_XDIST_WORKER'):
    shared = shared.parent  # The workers' base folders are beside each other.
  folder = shared / name
  with open(shared / f'{name}.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (shared / f'{name}.built').exists():
      shutil.rmtree(folder, ignore_errors=True)
      folder.mkdir()
      build(folder)
      (shared / f'{name}.built').touch()
  return folder


# A short training that is enough to learn yellow_blue_image's rule (see test_trainer).
TRAIN_STEPS = 60
TRAIN_CONFIG = {hp.EMBEDDING_WEIGHTS: hp.RANDOM, hp.BATCH_SIZE: 4, hp.EPOCHS: 3,
                hp.LEARNING_RATE: 1e-3}


@pytest.fixture(scope='session')
def mixed_folder(tmp_path_factory):
  """A folder of good photos in every format, with broken and odd files among them.
  Returns (folder, {relative path: expected status or reason})."""
  folder = tmp_path_factory.mktemp('photos')
  expected = {}
  for name, (data, outcome) in mixed_folder_files().items():
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    expected[name] = outcome
  return str(folder), expected


@pytest.fixture(scope='session')
def yellow_blue_folder(tmp_path_factory):
  folder = tmp_path_factory.mktemp('yellow_blue')
  for seed in range(40):
    (folder / f'{seed}.png').write_bytes(encode(yellow_blue_image(seed), 'PNG'))
  return str(folder)


@pytest.fixture(scope='session')
def sharp_weights(tmp_path_factory):
  """Inception-ResNet-v2 weights whose class probabilities depend on the photo, as an
  .h5 file. Random weights answer about 0.001 for every class whatever the input (a
  black image is within 4e-5 of a photo), so equal embeddings would prove nothing: here
  the last Dense kernel is 300 times larger, and two photos' embeddings differ by ~0.03."""
  from model import embedding  # pylint: disable=import-outside-toplevel

  def build(folder):
    network = embedding._build(None)  # pylint: disable=protected-access
    kernel = network.get_layer('predictions').kernel
    kernel.assign(kernel * 300.0)
    network.save_weights(str(folder / 'sharp_inception_resnet_v2.h5'))

  path = str(built_once(tmp_path_factory, 'sharp_weights', build) /
             'sharp_inception_resnet_v2.h5')
  return embedding.resolve_weights(path)


# The colour (a, b) that one_colour_model answers everywhere: an orange inside sRGB at
# the lightness of the photos test_colorize and test_commands_evaluate give it (L 35..75).
ONE_COLOUR = (12.0, 18.0)


@pytest.fixture(scope='session')
def one_colour_model(tmp_path_factory):
  """A real exported model of the fusion architecture (random embedding weights) that
  answers ONE_COLOUR at every pixel through its last layer's bias, every other weight
  being 0. Exported once for test_colorize and test_commands_evaluate: an export takes ~40 s."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from model import embedding, network, scaling, serving  # pylint: disable=import-outside-toplevel

  def build(folder):
    colorizer = network.build_colorizer()
    colorizer.set_weights([np.zeros_like(w) for w in colorizer.get_weights()])
    colorizer.get_layer('decoder_5').bias.assign(
        np.arctanh(np.asarray(ONE_COLOUR) / scaling.AB_SCALE))
    serving.export(colorizer, embedding.resolve_weights(embedding.RANDOM), str(folder))

  return str(built_once(tmp_path_factory, 'one_colour_model', build))


# The emulated bucket that scripts/with-gcs-emulator makes (make test runs pytest inside it).
BUCKET = 'colorizer-test'


def bucket_folder(name: str) -> str:
  """A new folder of the emulated bucket, gs://colorizer-test/<name>-<random>; fails
  (never skips) outside scripts/with-gcs-emulator."""
  if BUCKET not in os.environ.get('GCS_EMULATOR_BUCKETS', '').split():
    pytest.fail(f'gs:// tests need the Cloud Storage emulator: run pytest as '
                f'`scripts/with-gcs-emulator .venv/bin/python -m pytest ...` (make test does)')
  return f'gs://{BUCKET}/{re.sub(r"[^A-Za-z0-9_-]+", "-", name)[:60]}-{uuid.uuid4().hex[:8]}'


@pytest.fixture
def bucket(request):
  """A new folder in the emulated bucket for this test (bucket_folder)."""
  return bucket_folder(request.node.name)


@pytest.fixture(scope='session')
def served_in_bucket(one_colour_model):
  """one_colour_model pushed into a serving folder of the emulated bucket, as the
  Pusher pushes (components/pusher.py); returns the serving folder."""
  from components import pusher  # pylint: disable=import-outside-toplevel
  serving_dir = f'{bucket_folder("served")}/serving_model'
  pusher.push_atomically(one_colour_model, serving_dir, keep_versions=0)
  return serving_dir


IN_MEMORY_BEAM = ['--direct_running_mode=in_memory', '--direct_num_workers=1']
RUN_OPTIONS = dict(embedding_weights='none', eval_percent=25, train_steps=TRAIN_STEPS,
                   eval_steps=2, hyperparameters=TRAIN_CONFIG)


def newest(store, type_name):
  return max(store.get_artifacts_by_type(type_name), key=lambda a: a.id)


@pytest.fixture(scope='session')
def trained(yellow_blue_folder, tmp_path_factory):
  """The whole pipeline, run once through `local_runner.run` (LocalDagRunner) on the
  yellow/blue photos. Returns its artifacts and folders."""
  from tfx import v1 as tfx  # pylint: disable=import-outside-toplevel
  from tfx.orchestration import metadata  # pylint: disable=import-outside-toplevel
  from pipeline import local_runner  # pylint: disable=import-outside-toplevel

  root = str(tmp_path_factory.mktemp('run'))
  local_runner.run(yellow_blue_folder, root, beam_args=IN_MEMORY_BEAM, **RUN_OPTIONS)
  where = local_runner.paths(root)
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(where['metadata'])
  with metadata.Metadata(connection) as store:
    artifacts = {name: newest(store.store, name)
                 for name in ('Examples', 'Model', 'ModelRun', 'ModelBlessing', 'PushedModel')}
  return {'examples': artifacts['Examples'], 'model': artifacts['Model'],
          'model_run': artifacts['ModelRun'], 'blessing': artifacts['ModelBlessing'],
          'pushed': artifacts['PushedModel'], 'connection': connection,
          'serving_dir': os.path.join(artifacts['Model'].uri, 'Format-Serving'),
          'data': yellow_blue_folder, 'root': root, **where}


COLORIZER = os.path.join(os.path.dirname(sys.executable), 'colorizer')
RESUMED_EPOCHS = 5


def epochs_logged(training_log):
  """The epochs a Trainer's training log (CSVLogger) holds so far."""
  if not os.path.exists(training_log):
    return []
  with open(training_log) as f:
    return [int(row['epoch']) for row in csv.DictReader(f)]


@pytest.fixture(scope='session')
def resumed_run(yellow_blue_folder, tmp_path_factory):
  """`colorizer run` as users run it, killed during training and run again. Beam's
  multi-processing DirectRunner (no --beam-arg), on photos not ingested before, so
  ingestion runs in worker processes; the caller's environment without
  TF_CPP_MIN_LOG_LEVEL, as a user's shell has it (it would silence the noise that the
  log must hold). The gray gate is loosened so that the finished run pushes.
  test_pipeline checks the resuming, test_cli the terminal and the log: one pipeline
  run serves both. Returns each run's output, the epochs logged when the first was
  killed, those of the resumed training, and the part of the log the second run wrote."""
  folder = tmp_path_factory.mktemp('resumed')
  data, root = folder / 'photos', folder / 'out'
  data.mkdir()
  for name in sorted(os.listdir(yellow_blue_folder))[:20]:
    shutil.copy(os.path.join(yellow_blue_folder, name), data / name)
  from model import trainer  # pylint: disable=import-outside-toplevel
  model_runs = os.path.join(root, 'pipeline_root', 'Trainer', 'model_run')
  log = root / 'logs' / 'colorizer-run.log'
  command = [COLORIZER, 'run', '--data', str(data), '--output-root', str(root),
             '--embedding-weights', 'none', '--eval-percent', '25', '--train-steps', '20',
             '--eval-steps', '1', '--epochs', str(RESUMED_EPOCHS), '--batch-size', '2',
             '--min-improvement-over-gray=-1000']
  env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}

  def training_logs():
    names = os.listdir(model_runs) if os.path.isdir(model_runs) else []
    return [os.path.join(model_runs, name, trainer.TRAINING_LOG) for name in names]

  # The first run's output goes to files unbuffered: the kill would lose a buffer.
  with open(folder / 'first.out', 'w') as out, open(folder / 'first.err', 'w') as err:
    first = subprocess.Popen(command, stdout=out, stderr=err, start_new_session=True,
                             env={**env, 'PYTHONUNBUFFERED': '1'})
    deadline = time.time() + 900  # Ingestion first, in worker processes.
    while first.poll() is None and time.time() < deadline:
      logs = training_logs()
      if logs and epochs_logged(logs[0]):
        break
      time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
  killed_logs = training_logs()
  killed_at = epochs_logged(killed_logs[0]) if killed_logs else []
  log_size = log.stat().st_size
  second = subprocess.run(command, capture_output=True, text=True, timeout=1200, check=False,
                          env=env)
  resumed = [path for path in training_logs() if path not in killed_logs]
  with open(log, errors='replace') as f:
    f.seek(log_size)
    second_log = f.read()
  return {'first_stdout': (folder / 'first.out').read_text(),
          'first_stderr': (folder / 'first.err').read_text(),
          'epochs_when_killed': killed_at, 'second': second,
          'resumed_epochs': epochs_logged(resumed[0]) if resumed else [],
          'second_log': second_log, 'root': root}


# What `colorizer compile` is given in the Kubeflow tests: a Vertex-style GPU Trainer and
# ingestion and evaluation on Dataflow.
CLUSTER = dict(pipeline_root='gs://colorizer-test/root',
               data='gs://colorizer-test/photos/span-{SPAN}',
               image='europe-docker.pkg.dev/colorizer-test/images/colorizer:1.0',
               gpu_type='NVIDIA_TESLA_T4', gpu_count=2, project='colorizer-test',
               region='europe-west4', temp_location='gs://colorizer-test/tmp',
               embedding_weights='gs://colorizer-test/weights/inception_resnet_v2.h5')


@pytest.fixture(scope='session')
def compiled(tmp_path_factory):
  """The pipeline compiled by `colorizer compile` (in this process) for Kubeflow
  Pipelines (.yaml) and Vertex AI (.json). Returns {'.yaml': path, '.json': path}."""
  from commands import cli  # pylint: disable=import-outside-toplevel
  folder = tmp_path_factory.mktemp('compiled')
  paths = {}
  for suffix in ('.yaml', '.json'):
    paths[suffix] = str(folder / f'pipeline{suffix}')
    assert cli.main([
        'colorizer', 'compile', '--output', paths[suffix],
        '--pipeline-root', CLUSTER['pipeline_root'], '--data', CLUSTER['data'],
        '--image', CLUSTER['image'], '--gpu-type', CLUSTER['gpu_type'],
        '--gpu-count', str(CLUSTER['gpu_count']), '--beam-runner', 'DataflowRunner',
        '--project', CLUSTER['project'], '--region', CLUSTER['region'],
        '--temp-location', CLUSTER['temp_location'],
        '--embedding-weights', CLUSTER['embedding_weights']]) == 0
  return paths


@pytest.fixture(scope='session')
def image(tmp_path_factory):
  """The pipeline's image as far as it can be built here (tests/kfp_backend.py)."""
  import kfp_backend  # pylint: disable=import-outside-toplevel
  return kfp_backend.Image(str(tmp_path_factory.mktemp('image')))
