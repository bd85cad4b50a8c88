"""The ingestion Beam job, on the DirectRunner, over generated photos and broken files."""
import glob
import json
import os
import shutil

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf

from components import ingest
from components import input_files
from components import progress
from model import cropping
from model import decoding
from model import embedding
from model import records
from model import scaling
from sample_images import colourful_image, encode

SPLITS = [('train', 50), ('eval', 50)]


def read_split(folder, split):
  files = sorted(glob.glob(os.path.join(folder, f'Split-{split}', 'data_tfrecord-*.gz')))
  assert files, f'no shards in Split-{split}'
  dataset = tf.data.TFRecordDataset(files, compression_type=records.COMPRESSION)
  return [records.parse(serialized) for serialized in dataset]


@pytest.fixture(scope='module')
def weights(sharp_weights):
  return sharp_weights


@pytest.fixture(scope='module')
def ingested(mixed_folder, weights, tmp_path_factory):
  """Runs the job once; returns (input folder, expected outcomes, output folder, result)."""
  folder, expected = mixed_folder
  out = str(tmp_path_factory.mktemp('ingested'))
  split_dirs = {name: os.path.join(out, f'Split-{name}') for name, _ in SPLITS}
  pipeline = beam.Pipeline()
  _ = (pipeline
       | ingest.IngestPhotos(input_files.file_pattern(folder), weights, split_dirs, SPLITS)
       | ingest.WriteReport(os.path.join(out, records.REPORT_FILE), weights.fingerprint))
  result = pipeline.run()
  result.wait_until_finish()
  return folder, expected, out, result


def test_report_accounts_for_every_file(ingested, weights):
  folder, expected, out, _ = ingested
  report = json.load(open(os.path.join(out, records.REPORT_FILE)))
  assert report['total'] == len(expected)
  outcomes = {os.path.relpath(f['source'], folder): f.get('reason', f['status'])
              for f in report['files']}
  assert outcomes == expected
  reasons = [outcome for outcome in expected.values() if outcome != 'written']
  assert report['rejected'] == {reason: reasons.count(reason) for reason in set(reasons)}
  assert report['written'] == list(expected.values()).count('written')
  assert sum(report['splits'].values()) == report['written']
  assert report['embedding_weights'] == weights.fingerprint
  for entry in report['files']:
    assert (entry['status'] == 'written') == ('split' in entry) == ('reason' not in entry)
    if entry['status'] == 'rejected':
      assert entry['detail']
  duplicate = next(f for f in report['files'] if f.get('reason') == 'duplicate')
  assert duplicate['detail'].endswith(os.path.join(folder, 'a.jpg'))


def test_rejections_are_counted_as_beam_metrics(ingested):
  _, expected, _, result = ingested
  counters = progress.counts(result.metrics(), 'ingest')  # Summed over the steps.
  outcomes = list(expected.values())
  assert counters['photos_written'] == outcomes.count('written')
  assert counters['photos_rejected'] == len(outcomes) - outcomes.count('written')
  for reason in set(outcomes) - {'written'}:
    assert counters[f'rejected_{reason}'] == outcomes.count(reason)


def test_records_parse_with_the_schema_and_match_the_photos(ingested):
  folder, _, out, _ = ingested
  report = json.load(open(os.path.join(out, records.REPORT_FILE)))
  parsed = {split: read_split(out, split) for split, _ in SPLITS}
  assert {split: len(examples) for split, examples in parsed.items()} == report['splits']
  for split, examples in parsed.items():
    for example in examples:
      source = example['source'].numpy().decode()
      data = open(source, 'rb').read()
      assert example['content_sha256'].numpy().decode() == __import__('hashlib').sha256(data).hexdigest()
      assert ingest.split_for(example['content_sha256'].numpy().decode(), SPLITS) == split
      photo = decoding.decode_photo(data, draft_size=scaling.IMAGE_SIZE)
      expected = cropping.photo_to_records(photo.rgb)
      assert np.array_equal(example['l'][..., 0], scaling.dequantize_l(expected['l']))
      assert np.array_equal(example['ab'], scaling.dequantize_ab(expected['ab']))
      assert (int(example['height']), int(example['width'])) == (photo.height, photo.width)
      assert example['embedding'].shape == (scaling.EMBEDDING_DIM,)
      assert np.isclose(float(tf.reduce_sum(example['embedding'])), 1.0, atol=1e-3)


def test_embeddings_equal_the_network_on_the_stored_gray_image(ingested, weights):
  _, _, out, _ = ingested
  examples = read_split(out, 'train') + read_split(out, 'eval')
  network = embedding.build_embedder(weights)
  gray = scaling.embedding_input(tf.stack([example['l'] for example in examples]))
  expected = network(gray, training=False).numpy()
  stored = np.stack([example['embedding'] for example in examples])
  assert np.abs(stored - expected).max() < 1e-4
  # Each photo's own: another photo's embedding is far further off than that.
  assert np.abs(stored - np.roll(expected, 1, axis=0)).max(axis=1).min() > 1e-3


def test_crops_are_all_written_to_their_photos_split_which_is_by_content(
    ingested, weights, tmp_path):
  """Re-ingesting the same photos under other names and among other files, with 3 crops
  each: every crop is written, as cropping.crop_boxes cuts it from the photo, and
  all crops of a photo land in the split the photo had before."""
  folder, expected, out, _ = ingested
  first = {e['content_sha256'].numpy().decode(): split
           for split, _ in SPLITS for e in read_split(out, split)}
  renamed = tmp_path / 'renamed'
  renamed.mkdir()
  for i, name in enumerate(sorted(n for n, outcome in expected.items() if outcome == 'written')):
    shutil.copy(os.path.join(folder, name), renamed / f'photo-{i}{os.path.splitext(name)[1]}')
  again = str(tmp_path / 'again')
  report = ingest.ingest(str(renamed), again, embedding_weights=embedding.RANDOM,
                         eval_percent=50, crops_per_image=3)

  crops = {}
  for split, _ in SPLITS:
    for example in read_split(again, split):
      crops.setdefault(example['content_sha256'].numpy().decode(), []).append(
          (split, int(example['crop']), example))
  assert {sha: {split for split, _, _ in found} for sha, found in crops.items()} == {
      sha: {split} for sha, split in first.items()}
  assert all(sorted(crop for _, crop, _ in found) == [0, 1, 2] for found in crops.values())
  assert report['written'] == len(first)
  assert report['examples'] == {split: 3 * report['splits'][split] for split in report['splits']}
  assert all(f['examples'] == 3 for f in report['files'] if f['status'] == 'written')

  for sha, found in crops.items():
    source = found[0][2]['source'].numpy().decode()
    photo, _ = cropping.photo_crops(open(source, 'rb').read(), sha, crops_per_image=3)
    boxes = cropping.crop_boxes(*photo.rgb.shape[:2], 3, sha)
    for _, crop, example in found:
      box = boxes[crop]
      cut = cropping.photo_to_records(
          photo.rgb[box.top:box.top + box.side, box.left:box.left + box.side])
      assert np.array_equal(example['ab'], scaling.dequantize_ab(cut['ab']))


def test_split_for_spreads_hashes_by_their_buckets():
  import hashlib  # pylint: disable=import-outside-toplevel
  hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(2000)]
  splits = [ingest.split_for(h, [('train', 90), ('eval', 10)]) for h in hashes]
  assert 0.07 < splits.count('eval') / len(splits) < 0.13
  assert splits == [ingest.split_for(h, [('train', 90), ('eval', 10)]) for h in hashes]


def test_ingest_refuses_a_non_empty_output_and_an_empty_match(tmp_path):
  (tmp_path / 'out').mkdir()
  (tmp_path / 'out' / 'old.txt').write_text('x')
  with pytest.raises(ValueError, match='not empty'):
    ingest.ingest(str(tmp_path), str(tmp_path / 'out'), embedding_weights=embedding.RANDOM)
  (tmp_path / 'empty').mkdir()
  with pytest.raises(ValueError, match='no files match'):
    ingest.ingest(str(tmp_path / 'empty'), str(tmp_path / 'new'), embedding_weights=embedding.RANDOM)


def test_a_window_of_spans_embeds_only_the_new_span_and_keeps_the_splits(tmp_path):
  """Span 1 ingested, then the window [2, 1] with the same record cache: span 1's
  photos are read back (none decoded or embedded again), its records are the same
  bytes in the same splits, and span 2's photos are new."""
  from sample_images import colourful_image, encode  # pylint: disable=import-outside-toplevel
  for span, seeds in ((1, range(6)), (2, range(10, 14))):
    (tmp_path / f'span-{span}').mkdir()
    for seed in seeds:
      (tmp_path / f'span-{span}' / f'{seed}.png').write_bytes(
          encode(colourful_image(seed, 64, 48), 'PNG'))
  weights = embedding.resolve_weights(embedding.RANDOM)
  cache = str(tmp_path / 'cache')

  def ingest_spans(name, spans):
    out = tmp_path / name
    split_dirs = {split: str(out / f'Split-{split}') for split, _ in SPLITS}
    report, _ = ingest.run_job(
        beam.Pipeline(), [str(tmp_path / f'span-{span}' / '*') for span in spans],
        embedding.RANDOM, split_dirs, SPLITS, str(out / records.REPORT_FILE), 50.0,
        record_cache=cache)
    shards = {split: {e['source'].numpy().decode(): e for e in read_split(str(out), split)}
              for split, _ in SPLITS}
    return report, shards

  first, first_shards = ingest_spans('first', [1])
  assert first['written'] == 6 and first['reused'] == 0
  second, second_shards = ingest_spans('second', [2, 1])
  assert second['total'] == second['written'] == 10 and second['reused'] == 6
  reused = {f['source'] for f in second['files'] if f.get('reused')}
  assert reused == {os.path.join(str(tmp_path), 'span-1', f'{i}.png') for i in range(6)}
  for split, _ in SPLITS:
    for source, example in first_shards[split].items():
      again = second_shards[split][source]  # The same split, by content.
      for feature in ('l', 'ab', 'embedding', 'content_sha256', 'crop'):
        assert np.array_equal(example[feature].numpy(), again[feature].numpy()), feature
  assert sum(len(found) for found in second_shards.values()) == 10
  assert weights.fingerprint == second['embedding_weights']


def test_a_bucket_with_folder_objects_and_nested_prefixes(bucket):
  """Photos at three depths of a bucket, with the zero-byte folder objects `photos/`,
  `photos/sub/` and `photos/sub/deeper/` that the Cloud console's "Create folder" and
  tf.io.gfile.makedirs leave: they are no files, neither counted nor reported."""
  photos = f'{bucket}/photos'
  tf.io.gfile.makedirs(f'{photos}/sub/deeper')
  names = ['a.png', 'sub/b.png', 'sub/deeper/c.png']
  for seed, name in enumerate(names):
    with tf.io.gfile.GFile(f'{photos}/{name}', 'wb') as f:
      f.write(encode(colourful_image(seed), 'PNG'))
  assert ingest.check_matches(input_files.file_pattern(photos)) == len(names)
  out = f'{bucket}/records'
  report = ingest.ingest(photos, out, embedding_weights=embedding.RANDOM, eval_percent=50,
                         beam_args=['--direct_running_mode=in_memory', '--direct_num_workers=1'])
  assert [(f['source'], f['status']) for f in report['files']] == [
      (f'{photos}/{name}', 'written') for name in names]
  shards = tf.io.gfile.glob(f'{out}/Split-*/*{records.RECORD_SUFFIX}')
  assert sum(1 for _ in tf.data.TFRecordDataset(shards, records.COMPRESSION)) == len(names)
