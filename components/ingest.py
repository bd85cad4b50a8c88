"""Ingestion: a folder or bucket of colour photos -> CIE Lab TFRecords with embeddings.

The Beam job, step by step (each a PTransform; rejects leave through a side output):

  MatchPhotos      file patterns         -> file paths
  HashPhotos       path                  -> (sha256, path)   rejects: unreadable, empty
  DropDuplicates   (sha256, path)        -> (sha256, path)   rejects: duplicate
  LookUpRecords    (sha256, path)        -> (sha256, path)   reused: its cached Records
  DecodePhotos     (sha256, path)        -> Photo per crop   rejects: see REJECT_REASONS
  EmbedPhotos      Photo                 -> Photo with its Inception-ResNet-v2 embedding
  CacheRecords     Photo                 -> Record, kept in the record cache too
  WriteRecords     Record                -> TFRecord shards per split, FileStatus 'written'
  WriteReport      FileStatus            -> ingest_report.json

Every matched file ends as exactly one FileStatus, written (with how many examples: one
per crop, `crops_per_image`) or rejected with a reason, so nothing is skipped silently.
All crops of a photo go to its split, chosen by content hash, so evaluation never sees
a crop of a training photo. Duplicates are found on hashes alone before decoding,
and the file is read again to decode it: only (hash, path) pairs cross the shuffle,
which keeps memory flat however many photos there are.

With a record cache (RecordCache: by content hash and everything that shapes a
record), a photo ingested before, by any run with the same settings, is read back
instead of decoded and embedded again: a window of spans costs only its new photos.
"""
import dataclasses
import functools
import hashlib
import json
import logging
import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.ml.inference import base as inference
from apache_beam.options.pipeline_options import PipelineOptions
import numpy as np
import tensorflow as tf

from components import file_report
from components import input_files
from components import progress
from components import record_cache
from model import cropping
from model import decoding
from model import embedding
from model import records
from model import storage
from model import scaling

EMBEDDING_BATCH_SIZE = 32  # the embedding network's batch (docs/performance.md, "Two choices")
METRICS_NAMESPACE = 'ingest'  # the job's Beam counters (progress.count_file)
_REJECTED = 'rejected'


FileStatus = file_report.FileStatus


@dataclasses.dataclass
class Photo:
  source: str
  sha256: str
  height: int
  width: int
  l: np.ndarray                # uint8 [256, 256]
  ab: np.ndarray               # uint8 [256, 256, 2]
  embedding_input: np.ndarray  # float32 [299, 299, 3]
  embedding: Optional[np.ndarray] = None  # float32 [1000]
  crop: int = 0                # which of cropping.crop_boxes (0: the centred square)


def split_for(sha256: str, splits: Sequence[Tuple[str, int]]) -> str:
  """The split a photo belongs to, from its content hash: stable across re-ingestion.
  `splits` is [(name, hash_buckets), ...], like TFX's SplitConfig."""
  bucket = int(sha256[:16], 16) % sum(buckets for _, buckets in splits)
  for name, buckets in splits:
    if bucket < buckets:
      return name
    bucket -= buckets
  raise AssertionError('unreachable')


def _count(status: FileStatus) -> FileStatus:
  return file_report.counted(METRICS_NAMESPACE, status)


def _rejected(source: str, reason: str, detail: str) -> beam.pvalue.TaggedOutput:
  return beam.pvalue.TaggedOutput(
      _REJECTED, file_report.rejected(METRICS_NAMESPACE, source, reason, detail))


class _HashFn(beam.DoFn):

  def process(self, path: str):
    try:
      data = storage.read(path)
    except (OSError, IOError) as e:
      yield _rejected(path, 'unreadable', str(e))
      return
    if not data:
      yield _rejected(path, 'empty', 'the file has 0 bytes')
      return
    yield hashlib.sha256(data).hexdigest(), path


class HashPhotos(beam.PTransform):
  """str path -> (sha256, path); side output 'rejected': FileStatus."""

  def expand(self, paths):
    return paths | beam.ParDo(_HashFn()).with_outputs(_REJECTED, main='hashed')


class _KeepFirstFn(beam.DoFn):

  def process(self, element):
    sha256, paths = element
    kept, *duplicates = sorted(paths)
    yield sha256, kept
    for path in duplicates:
      yield _rejected(path, 'duplicate', f'same bytes as {kept}')


class DropDuplicates(beam.PTransform):
  """(sha256, path) -> (sha256, path), one per distinct content (the first path in
  sort order); side output 'rejected': the others."""

  def expand(self, hashed):
    return (hashed
            | 'GroupByContent' >> beam.GroupByKey()
            | 'KeepFirst' >> beam.ParDo(_KeepFirstFn()).with_outputs(_REJECTED, main='unique'))


class _DecodeFn(beam.DoFn):

  def __init__(self, max_megapixels: float, crops_per_image: int):
    super().__init__()
    self._max_megapixels = max_megapixels
    self._crops = crops_per_image

  def process(self, element):
    sha256, path = element
    try:
      photo, crops = decoding.read_and_decode(
          lambda: storage.read(path),
          lambda data: cropping.photo_crops(data, sha256, self._max_megapixels, self._crops))
    except decoding.PhotoRejected as e:
      yield _rejected(path, e.reason, e.detail)
      return
    for crop, lab in enumerate(crops):
      yield Photo(path, sha256, photo.height, photo.width, lab['l'].numpy(),
                  lab['ab'].numpy(), lab['embedding_input'].numpy(), crop=crop)


class DecodePhotos(beam.PTransform):
  """(sha256, path) -> a Photo (Lab, quantized, at 256x256) per crop (see
  cropping.crop_boxes); side output 'rejected'."""

  def __init__(self, max_megapixels: float, crops_per_image: int = 1):
    super().__init__()
    self._max_megapixels = max_megapixels
    self._crops = crops_per_image

  def expand(self, unique):
    return unique | beam.ParDo(_DecodeFn(self._max_megapixels, self._crops)).with_outputs(
        _REJECTED, main='photos')


class EmbeddingModelHandler(inference.ModelHandler[Photo, inference.PredictionResult,
                                                    tf.types.experimental.ConcreteFunction]):
  """RunInference handler: batches of Photos -> Inception-ResNet-v2 embeddings.

  Beam's own TFModelHandlerNumpy cannot be imported with TFX 1.16's pins (it imports
  tf.estimator, gone from TF 2.16), so this small handler does the same: the model is
  loaded once per worker process and called on whole batches.
  """

  def __init__(self, weights: embedding.EmbeddingWeights, batch_size: int = EMBEDDING_BATCH_SIZE):
    super().__init__()
    self._weights = weights
    self._batch_size = batch_size

  def load_model(self) -> tf.types.experimental.ConcreteFunction:
    network = embedding.build_embedder(self._weights)
    size = scaling.EMBEDDING_INPUT_SIZE
    # One graph for every batch size: BatchElements varies the size, and retracing
    # Inception-ResNet-v2 costs seconds; eager calls are 40% slower than the graph.
    return tf.function(lambda images: network(images, training=False)).get_concrete_function(
        tf.TensorSpec([None, size, size, 3], tf.float32))

  def run_inference(self, batch: Sequence[Photo], model: tf.types.experimental.ConcreteFunction,
                    inference_args=None) -> Iterable[inference.PredictionResult]:
    inputs = np.stack([photo.embedding_input for photo in batch])  # [N, 299, 299, 3]
    outputs = model(tf.constant(inputs)).numpy()                   # [N, 1000]
    return [inference.PredictionResult(photo, vector) for photo, vector in zip(batch, outputs)]

  def batch_elements_kwargs(self):
    # Full batches from the start: BatchElements would otherwise grow from a few photos
    # per call, and a bundle's last batch is flushed whatever its size.
    return {'min_batch_size': self._batch_size, 'max_batch_size': self._batch_size}

  def get_num_bytes(self, batch: Sequence[Photo]) -> int:
    return sum(photo.embedding_input.nbytes for photo in batch)


def _with_embedding(result: inference.PredictionResult) -> Photo:
  photo = result.example
  return dataclasses.replace(photo, embedding=np.asarray(result.inference, np.float32),
                             embedding_input=None)


class EmbedPhotos(beam.PTransform):
  """Photo -> Photo with `embedding`, through Beam's RunInference in batches."""

  def __init__(self, weights: embedding.EmbeddingWeights, batch_size: int = EMBEDDING_BATCH_SIZE):
    super().__init__()
    self._weights = weights
    self._batch_size = batch_size

  def expand(self, photos):
    return (photos
            | 'RunInference' >> inference.RunInference(
                EmbeddingModelHandler(self._weights, self._batch_size))
            | 'Attach' >> beam.Map(_with_embedding))


def _record(photo: Photo) -> record_cache.Record:
  return record_cache.Record(photo.sha256, photo.source, photo.crop, records.make_example(
      l=photo.l, ab=photo.ab, embedding=photo.embedding, source=photo.source,
      content_sha256=photo.sha256, height=photo.height, width=photo.width,
      crop=photo.crop).SerializeToString())


class CacheRecords(beam.PTransform):
  """Photo -> Record, also written to the record cache (if any)."""

  def __init__(self, cache: Optional[record_cache.RecordCache] = None):
    super().__init__()
    self._cache = cache

  def expand(self, photos):
    serialized = photos | 'Serialize' >> beam.Map(_record)
    if self._cache is None:
      return serialized
    return serialized | 'Cache' >> record_cache.WriteToCache(self._cache)


class WriteRecords(beam.PTransform):
  """Record -> FileStatus 'written', one per photo (its crop 0); writes each split's
  GZIP TFRecords to `<split_dirs[name]>/data_tfrecord-*.gz` (see model.records)."""

  def __init__(self, split_dirs: Dict[str, str], splits: Sequence[Tuple[str, int]],
               crops_per_image: int = 1):
    super().__init__()
    self._split_dirs = split_dirs
    self._splits = list(splits)
    self._crops = crops_per_image

  def expand(self, records_):
    names = [name for name, _ in self._splits]
    keyed = records_ | 'AssignSplit' >> beam.Map(
        lambda record: (split_for(record.sha256, self._splits), record))
    by_split = keyed | 'Partition' >> beam.Partition(
        lambda item, _: names.index(item[0]), len(names))
    for name, part in zip(names, by_split):
      _ = (part
           | f'Serialized[{name}]' >> beam.Map(lambda item: item[1].serialized)
           | f'Write[{name}]' >> beam.io.WriteToTFRecord(
               os.path.join(self._split_dirs[name], records.RECORD_PREFIX),
               file_name_suffix=records.RECORD_SUFFIX))
    return (keyed
            | 'OnePerPhoto' >> beam.Filter(lambda item: item[1].crop == 0)
            | 'Written' >> beam.Map(lambda item: _count(FileStatus(
                item[1].source, 'written', split=item[0], examples=self._crops,
                reused=item[1].reused or None, sha256=item[1].sha256))))


class WritePhotos(beam.PTransform):
  """Photo -> FileStatus 'written': CacheRecords (without a cache), then WriteRecords."""

  def __init__(self, split_dirs: Dict[str, str], splits: Sequence[Tuple[str, int]],
               crops_per_image: int = 1):
    super().__init__()
    self._write = WriteRecords(split_dirs, splits, crops_per_image)

  def expand(self, photos):
    return photos | 'Serialize' >> CacheRecords() | 'WriteRecords' >> self._write


def _cache_at(root: str, *settings) -> record_cache.RecordCache:
  return record_cache.RecordCache(root, *settings)  # (IngestPhotos' argument is named so.)


class IngestPhotos(beam.PTransform):
  """PBegin -> FileStatus of every file matching `pattern`, writing the records."""

  def __init__(self, pattern, weights: embedding.EmbeddingWeights,
               split_dirs: Dict[str, str], splits: Sequence[Tuple[str, int]],
               max_megapixels: float = decoding.DEFAULT_MAX_MEGAPIXELS,
               crops_per_image: int = 1, record_cache: Optional[str] = None):
    """`pattern`: one file pattern, or a list of them (a window of spans);
    `record_cache`: the root of a RecordCache, or None."""
    super().__init__()
    if crops_per_image < 1:
      raise ValueError(f'crops per image must be at least 1, got {crops_per_image}')
    self._pattern = pattern
    self._cache = (_cache_at(record_cache, weights.fingerprint, max_megapixels,
                             crops_per_image) if record_cache else None)
    self._weights = weights
    self._split_dirs = split_dirs
    self._splits = splits
    self._max_megapixels = max_megapixels
    self._crops = crops_per_image

  def expand(self, pbegin):
    paths = pbegin | 'MatchPhotos' >> input_files.MatchPhotos(self._pattern)
    hashed = paths | 'HashPhotos' >> HashPhotos()
    unique = hashed.hashed | 'DropDuplicates' >> DropDuplicates()
    to_decode, reused = unique.unique, []
    if self._cache is not None:
      looked_up = to_decode | 'LookUpRecords' >> record_cache.LookUpRecords(self._cache, METRICS_NAMESPACE)
      to_decode, reused = looked_up.new, [looked_up[record_cache.REUSED]]
    decoded = to_decode | 'DecodePhotos' >> DecodePhotos(self._max_megapixels, self._crops)
    new = (decoded.photos
           | 'EmbedPhotos' >> EmbedPhotos(self._weights)
           | 'CacheRecords' >> CacheRecords(self._cache))
    written = (([new] + reused | 'AllRecords' >> beam.Flatten()) if reused else new
               ) | 'WriteRecords' >> WriteRecords(self._split_dirs, self._splits, self._crops)
    rejects = [hashed[_REJECTED], unique[_REJECTED], decoded[_REJECTED]]
    return (rejects + [written]) | 'AllFiles' >> beam.Flatten()


def records_fingerprint(statuses: List[FileStatus], weights_fingerprint: str) -> str:
  """What the records are made of: each written photo's content, split and crop count,
  and the embedding weights. Equal fingerprints, equal training data."""
  written = sorted(f'{s.sha256} {s.split} {s.examples}' for s in statuses
                   if s.status == 'written')
  return hashlib.sha256('\n'.join([weights_fingerprint] + written).encode()).hexdigest()


def report_figures(statuses: List[FileStatus], weights_fingerprint: str) -> dict:
  """Ingestion's figures in its report (file_report.report): written and reused photos,
  and photos and examples by split."""
  splits: Dict[str, int] = {}
  examples: Dict[str, int] = {}
  for status in statuses:
    if status.status == file_report.WRITTEN:
      splits[status.split] = splits.get(status.split, 0) + 1
      examples[status.split] = examples.get(status.split, 0) + status.examples
  return {
      'written': sum(splits.values()),
      'reused': sum(1 for status in statuses if status.reused),
      'splits': dict(sorted(splits.items())),
      'examples': dict(sorted(examples.items())),
      'embedding_weights': weights_fingerprint,
      'records_fingerprint': records_fingerprint(statuses, weights_fingerprint),
  }


class WriteReport(file_report.WriteReport):
  """FileStatus -> ingest_report.json at `uri` (docs/ingestion.md, "Nothing is skipped
  silently")."""

  def __init__(self, uri: str, weights_fingerprint: str):
    super().__init__(uri, functools.partial(report_figures,
                                            weights_fingerprint=weights_fingerprint))


def splits_from_eval_percent(eval_percent: int, both: bool = False) -> List[Tuple[str, int]]:
  """[(split, hash buckets)] that put `eval_percent` percent of the photos in `eval`,
  the rest in `train`. `both`: each split must get some (the pipeline trains and
  evaluates); on its own, ingestion may write one split only."""
  low, high = (1, 99) if both else (0, 100)
  if not low <= eval_percent <= high:
    raise ValueError(f'--eval-percent must be within {low}..{high}, got {eval_percent}')
  return [('train', 100 - eval_percent), ('eval', eval_percent)]


def check_matches(pattern: str) -> int:
  """Fails early, and clearly, when the pattern matches no file at all."""
  count = len(input_files.matched_files(pattern))
  if not count:
    raise ValueError(f'no files match {pattern!r}')
  return count


def progress_job(total: Optional[int]) -> progress.Job:
  """Ingestion's progress line: files done of `total`, written (of which reused from
  the record cache) and rejected."""
  return progress.Job('Ingesting', METRICS_NAMESPACE, total, 'file',
                      done=(progress.WRITTEN, progress.REJECTED),
                      shown=(('written', progress.WRITTEN), ('reused', progress.REUSED),
                             ('rejected', progress.REJECTED)))


def run_job(pipeline: beam.Pipeline, pattern, embedding_weights: str,
            split_dirs: Dict[str, str], splits: Sequence[Tuple[str, int]], report_uri: str,
            max_megapixels: float, crops_per_image: int = 1,
            record_cache: Optional[str] = None) -> Tuple[dict, embedding.EmbeddingWeights]:
  """Runs the ingestion job on `pipeline` (standalone or a TFX executor's) over
  `pattern` (or a list of patterns, the newest first: a window of spans); returns the
  report it wrote and the weights it embedded with."""
  patterns = [pattern] if isinstance(pattern, str) else list(pattern)
  newest = check_matches(patterns[0])
  weights = embedding.resolve_weights(embedding_weights)
  with progress.show(pipeline, lambda: progress_job(
      newest + sum(len(input_files.matched_files(older)) for older in patterns[1:]))):
    _ = (pipeline
         | 'IngestPhotos' >> IngestPhotos(pattern, weights, split_dirs, splits, max_megapixels,
                                         crops_per_image, record_cache)
         | 'WriteReport' >> WriteReport(report_uri, weights.fingerprint))
  with tf.io.gfile.GFile(report_uri) as f:
    return json.load(f), weights


def ingest(data: str, out: str, embedding_weights: str = embedding.IMAGENET,
           eval_percent: int = 10, max_megapixels: float = decoding.DEFAULT_MAX_MEGAPIXELS,
           crops_per_image: int = 1, beam_args: Sequence[str] = (),
           record_cache: Optional[str] = None) -> dict:
  """Runs the ingestion job on its own; returns the report it wrote to `<out>`."""
  if tf.io.gfile.exists(out) and tf.io.gfile.listdir(out):
    raise ValueError(f'--out {out} is not empty; choose a new folder so that no earlier '
                     'records mix with these')
  pattern = input_files.file_pattern(data)
  splits = splits_from_eval_percent(eval_percent)
  split_dirs = {name: records.split_dir(out, name) for name, _ in splits}
  logging.info('Ingesting %s into %s', pattern, out)
  tf.io.gfile.makedirs(out)
  report, _ = run_job(beam.Pipeline(options=PipelineOptions(list(beam_args))), pattern,
                      embedding_weights, split_dirs, splits, os.path.join(out, records.REPORT_FILE),
                      max_megapixels, crops_per_image, record_cache)
  return report
