"""Shared fixtures: photos and broken files generated on the fly (nothing downloaded)."""
import os

import model  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import pytest

from model import hyperparameters as hp
from sample_images import encode, mixed_folder_files, yellow_blue_image

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
  network = embedding._build(None)  # pylint: disable=protected-access
  kernel = network.get_layer('predictions').kernel
  kernel.assign(kernel * 300.0)
  path = str(tmp_path_factory.mktemp('weights') / 'sharp_inception_resnet_v2.h5')
  network.save_weights(path)
  return embedding.resolve_weights(path)


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
  from pipeline import cli  # pylint: disable=import-outside-toplevel
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
