"""The record cache: each photo's records by content hash, so that a photo already
ingested with the same settings is read back instead of being decoded and embedded
again (docs/pipeline.md, "New data")."""
import gzip
import hashlib
import json
import os
import posixpath
from typing import List, NamedTuple, Optional

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from components import progress
from model import records
from model import storage

REUSED = 'reused'  # LookUpRecords' side output


class Record(NamedTuple):
  """One example (a crop of a photo), serialized, on its way to the shards."""
  sha256: str
  source: str
  crop: int
  serialized: bytes
  reused: bool = False


class RecordCache:
  """Each photo's records, by content hash, under `root`/<settings>/: the settings
  folder is named by everything that changes a photo's records (the embedding
  weights, max_megapixels, crops_per_image and the record schema), so a change of any
  of them starts a new cache. One gzip file per crop, written whole or not at all."""

  def __init__(self, root: str, weights_fingerprint: str, max_megapixels: float,
               crops_per_image: int):
    settings = {'embedding_weights': weights_fingerprint,
                'max_megapixels': float(max_megapixels),
                'crops_per_image': int(crops_per_image), 'records': records.SCHEMA_VERSION}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    self.folder = posixpath.join(root.rstrip('/'), key)
    self.crops = int(crops_per_image)

  def path(self, sha256: str, crop: int) -> str:
    return posixpath.join(self.folder, sha256[:2], f'{sha256}-{crop}.example.gz')

  def read(self, sha256: str) -> Optional[List[bytes]]:
    """Every crop's serialized example, or None unless all of them are cached."""
    paths = [self.path(sha256, crop) for crop in range(self.crops)]
    if not all(FileSystems.exists(path) for path in paths):
      return None
    return [gzip.decompress(storage.read(path)) for path in paths]

  def write(self, record: 'Record') -> None:
    data = gzip.compress(record.serialized, compresslevel=1)
    path = self.path(record.sha256, record.crop)
    if '://' in path:  # An object appears only once its upload is complete.
      with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)  # Gzipped already: Beam would gzip a `.gz` name again.
      return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f'{path}.partial-{os.getpid()}'
    with open(partial, 'wb') as f:
      f.write(data)
    os.replace(partial, path)


class _LookUpFn(beam.DoFn):

  def __init__(self, cache: RecordCache, namespace: str):
    super().__init__()
    self._cache = cache
    self._namespace = namespace

  def process(self, element):
    sha256, path = element
    cached = self._cache.read(sha256)
    if cached is None:
      yield element
      return
    beam.metrics.Metrics.counter(self._namespace, progress.REUSED).inc()
    for crop, serialized in enumerate(cached):
      yield beam.pvalue.TaggedOutput(REUSED, Record(
          sha256, path, crop, records.with_source(serialized, path), reused=True))


class LookUpRecords(beam.PTransform):
  """(sha256, path) -> (sha256, path) of the photos not in the cache; side output
  'reused': the cached photos' Records, their source set to this path."""

  def __init__(self, cache: RecordCache, namespace: str = 'ingest'):
    super().__init__()
    self._cache = cache
    self._namespace = namespace  # of the job's counters: `photos_reused` counts them

  def expand(self, unique):
    return unique | beam.ParDo(_LookUpFn(self._cache, self._namespace)).with_outputs(
        REUSED, main='new')


class _CacheFn(beam.DoFn):

  def __init__(self, cache: RecordCache):
    super().__init__()
    self._cache = cache

  def process(self, record: Record):
    self._cache.write(record)
    yield record


class WriteToCache(beam.PTransform):
  """Record -> the same Record, written to the cache."""

  def __init__(self, cache: RecordCache):
    super().__init__()
    self._cache = cache

  def expand(self, serialized):
    return serialized | beam.ParDo(_CacheFn(self._cache))
