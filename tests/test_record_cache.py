"""components/record_cache.py: the cache's key, and what it gives back. Its use by
ingestion (a window of spans embeds only the new span) is in test_ingest."""
import pytest

from components import record_cache
from model import records


@pytest.mark.fast
def test_the_record_cache_key_changes_with_everything_that_shapes_a_record(monkeypatch):
  settings = dict(root='gs://b/cache', weights_fingerprint='random-init:1',
                  max_megapixels=50.0, crops_per_image=1)
  folder = record_cache.RecordCache(**settings).folder
  assert folder.startswith('gs://b/cache/')
  for key, other in (('weights_fingerprint', 'sha256:2'), ('max_megapixels', 12.0),
                     ('crops_per_image', 3)):
    assert record_cache.RecordCache(**{**settings, key: other}).folder != folder, key
  monkeypatch.setattr(records, 'SCHEMA_VERSION', records.SCHEMA_VERSION + 1)
  assert record_cache.RecordCache(**settings).folder != folder
  monkeypatch.undo()
  assert record_cache.RecordCache(**settings).folder == folder


@pytest.mark.fast
@pytest.mark.parametrize('where', ['local', 'bucket'])
def test_the_record_cache_gives_back_what_it_was_given(where, tmp_path, request):
  """Every crop, byte for byte, on local disk and in a bucket; a photo with a crop
  missing is not in the cache."""
  root = str(tmp_path) if where == 'local' else request.getfixturevalue('bucket')
  cache = record_cache.RecordCache(root, 'random-init:1', 50.0, crops_per_image=2)
  records_ = [record_cache.Record('ab' * 32, 'x.png', crop, bytes([crop]) * 1000) for crop in (0, 1)]
  cache.write(records_[0])
  assert cache.read('ab' * 32) is None
  cache.write(records_[1])
  assert cache.read('ab' * 32) == [r.serialized for r in records_]
  assert cache.read('cd' * 32) is None
