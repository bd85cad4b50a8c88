"""Shared fixtures: photos and broken files generated on the fly (nothing downloaded)."""
import os

import model  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import pytest

from sample_images import encode, mixed_folder_files, yellow_blue_image

# A short training that is enough to learn yellow_blue_image's rule (see test_trainer).
TRAIN_STEPS = 60
TRAIN_CONFIG = {'embedding_weights': 'none', 'batch_size': 4, 'epochs': 3,
                'learning_rate': 1e-3}


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
def trained(yellow_blue_folder, tmp_path_factory):
  """PhotoExampleGen -> Trainer through LocalDagRunner on the yellow/blue photos.
  Returns {'examples': Examples artifact, 'model': Model artifact, 'root': folder}."""
  from tfx import v1 as tfx  # pylint: disable=import-outside-toplevel
  from tfx.orchestration import metadata  # pylint: disable=import-outside-toplevel
  from components import example_gen  # pylint: disable=import-outside-toplevel

  root = tmp_path_factory.mktemp('trained')
  ingest = example_gen.PhotoExampleGen(input_base=yellow_blue_folder, eval_percent=25,
                                       embedding_weights='none')
  trainer = tfx.components.Trainer(
      run_fn='model.trainer.run_fn', examples=ingest.outputs['examples'],
      train_args=tfx.proto.TrainArgs(num_steps=TRAIN_STEPS),
      eval_args=tfx.proto.EvalArgs(num_steps=2), custom_config=TRAIN_CONFIG)
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      str(root / 'metadata.db'))
  tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
      pipeline_name='train-test', pipeline_root=str(root / 'pipeline_root'),
      components=[ingest, trainer], metadata_connection_config=connection))
  with metadata.Metadata(connection) as store:
    [examples] = store.store.get_artifacts_by_type('Examples')
    [trained_model] = store.store.get_artifacts_by_type('Model')
    [model_run] = store.store.get_artifacts_by_type('ModelRun')
  return {'examples': examples, 'model': trained_model, 'model_run': model_run,
          'serving_dir': os.path.join(trained_model.uri, 'Format-Serving'), 'root': str(root)}
