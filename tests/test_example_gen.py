"""PhotoExampleGen in a real TFX pipeline (LocalDagRunner, SQLite metadata)."""
import json
import os

import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.example_gen import utils
from tfx.orchestration import metadata
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components import example_gen
from model import embedding
from model import records
from sample_images import colourful_image, encode


def write(path: str, data: bytes) -> None:
  with tf.io.gfile.GFile(path, 'wb') as f:
    f.write(data)


@pytest.fixture(scope='module')
def span_root(tmp_path_factory):
  """<root>/span-1 (2 photos) and <root>/span-2 (3 photos and a broken file)."""
  root = tmp_path_factory.mktemp('spans')
  for span, seeds in ((1, (11, 12)), (2, (21, 22, 23))):
    (root / f'span-{span}').mkdir()
    for seed in seeds:
      (root / f'span-{span}' / f'{seed}.png').write_bytes(encode(colourful_image(seed), 'PNG'))
  (root / 'span-2' / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 not really')
  return str(root)


def test_component_ingests_the_newest_span_into_an_examples_artifact(span_root, tmp_path):
  base, pattern = example_gen.input_base_and_pattern(os.path.join(span_root, 'span-{SPAN}'))
  component = example_gen.PhotoExampleGen(
      input_base=base, pattern=pattern, eval_percent=50, embedding_weights=embedding.RANDOM)
  metadata_path = str(tmp_path / 'metadata.db')
  pipeline = tfx.dsl.Pipeline(
      pipeline_name='ingest-test', pipeline_root=str(tmp_path / 'root'),
      components=[component], enable_cache=True,
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          metadata_path))
  tfx.orchestration.LocalDagRunner().run(pipeline)

  with metadata.Metadata(tfx.orchestration.metadata.sqlite_metadata_connection_config(
      metadata_path)) as store:
    [examples] = store.store.get_artifacts_by_type('Examples')
  assert examples.custom_properties['span'].int_value == 2
  assert examples.custom_properties['embedding_weights'].string_value.startswith('random-init:')
  assert examples.custom_properties['written'].int_value == 3
  assert examples.custom_properties['rejected'].int_value == 1
  assert json.loads(examples.properties['split_names'].string_value) == ['train', 'eval']

  report = json.load(open(os.path.join(examples.uri, records.REPORT_FILE)))
  assert report['total'] == 4 and report['rejected'] == {'truncated': 1}
  assert all('/span-2/' in f['source'] for f in report['files'])
  count = 0
  for split in ('train', 'eval'):
    files = tf.io.gfile.glob(os.path.join(examples.uri, f'Split-{split}', '*.gz'))
    dataset = tf.data.TFRecordDataset(files, compression_type=records.COMPRESSION)
    count += sum(1 for _ in dataset.map(records.parse))
  assert count == 3


@pytest.mark.fast
def test_input_base_and_pattern():
  assert example_gen.input_base_and_pattern('photos') == ('photos', '**')
  assert example_gen.input_base_and_pattern('gs://b/photos/') == ('gs://b/photos', '**')
  assert example_gen.input_base_and_pattern('gs://b/p/span-{SPAN}') == ('gs://b/p', 'span-{SPAN}/**')
  assert example_gen.input_base_and_pattern('p/span-{SPAN}/*.jpg') == ('p', 'span-{SPAN}/*.jpg')
  assert example_gen.input_base_and_pattern('p/*.jpg') == ('p', '*.jpg')


@pytest.mark.fast
def test_eval_percent_must_leave_both_splits_something():
  with pytest.raises(ValueError):
    example_gen.PhotoExampleGen(input_base='x', eval_percent=0)


@pytest.mark.fast
def test_a_window_takes_the_newest_spans_that_exist(tmp_path):
  for span in (1, 2, 3, 5, 10):
    (tmp_path / f'span-{span}').mkdir()
  (tmp_path / 'span-x').mkdir()
  window = lambda span, count, pattern='span-{SPAN}/**': example_gen.window_spans(
      str(tmp_path), pattern, span, count)
  assert window(5, 3) == [(5, 'span-5/**'), (3, 'span-3/**'), (2, 'span-2/**')]
  assert [span for span, _ in window(10, 9)] == [10, 5, 3, 2, 1]
  assert window(10, 1) == [(10, 'span-{SPAN}/**')]
  assert window(0, 4, '*.jpg') == [(0, '*.jpg')]
  assert window(3, 2, 'span-{SPAN:2}/**') == [(3, 'span-03/**')]  # Width-2 names only.
  with pytest.raises(ValueError, match='plain {SPAN} pattern'):
    window(3, 2, 'span-{SPAN}/v{VERSION}/*')
  with pytest.raises(ValueError, match='at least 1'):
    window(3, 0)


def input_fingerprints(base: str, pattern: str):
  """The input fingerprint, as the local runner's driver and as `resolve_span` (what
  runs on Kubeflow Pipelines) compute it."""
  splits = [example_gen_pb2.Input.Split(name='photos', pattern=pattern)]
  processor = example_gen.PhotoExampleGen.DRIVER_CLASS(None).get_input_processor(
      splits=splits, range_config=None, input_base_uri=base)
  span, version = processor.resolve_span_and_version()
  resolved = example_gen.resolve_span({
      standard_component_specs.INPUT_BASE_KEY: base,
      standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(
          example_gen_pb2.Input(splits=splits))}, standard_artifacts.Examples())
  return (processor.get_input_fingerprint(span, version),
          resolved[utils.FINGERPRINT_PROPERTY_NAME])


@pytest.mark.fast
def test_a_new_photo_in_a_sub_prefix_changes_the_input_fingerprint(bucket):
  """With the cache on, an unchanged fingerprint reuses the Examples of the last run."""
  photos = f'{bucket}/photos'
  tf.io.gfile.makedirs(f'{photos}/sub/deeper')  # Folder objects, as the console makes.
  write(f'{photos}/a.png', encode(colourful_image(1), 'PNG'))
  write(f'{photos}/sub/b.png', encode(colourful_image(2), 'PNG'))
  base, pattern = example_gen.input_base_and_pattern(photos)
  before = input_fingerprints(base, pattern)
  assert before[0] == before[1]
  write(f'{photos}/sub/deeper/new.png', encode(colourful_image(3), 'PNG'))
  after = input_fingerprints(base, pattern)
  assert after[0] != before[0] and after[1] != before[1]
