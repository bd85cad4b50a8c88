"""scripts/with-gcs-emulator: the namespace, the buckets, CMD's exit status, the clients'
two protocol gaps that its TLS front mends, and a clear refusal where it cannot run.

pytest itself runs inside it (make test), so the in-process tests talk to the emulated
bucket of this run; the script run again from here makes a namespace of its own.
"""
import json
import os
import subprocess
import sys

from apache_beam.io.filesystems import FileSystems
import pytest
import tensorflow as tf

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'scripts',
                      'with-gcs-emulator')
BUCKETS = """
import json, sys, urllib.request
with urllib.request.urlopen('https://storage.googleapis.com/storage/v1/b') as answer:
  print(json.dumps(sorted(item['name'] for item in json.load(answer)['items'])))
sys.exit(7)
"""

pytestmark = pytest.mark.fast


def requests_sent() -> list:
  with open(os.environ['GCS_EMULATOR_REQUEST_LOG']) as f:
    return f.read().splitlines()


def test_buckets_exit_status_and_the_hosts_route():
  """Its own buckets, reached at storage.googleapis.com by plain Python (the hosts
  file and the CA of the run); CMD's exit status is the script's."""
  result = subprocess.run([SCRIPT, sys.executable, '-c', BUCKETS], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, 'GCS_EMULATOR_BUCKETS': 'photos models'})
  assert result.returncode == 7, result.stderr
  assert json.loads(result.stdout) == ['models', 'photos']


def test_it_says_why_it_cannot_run():
  result = subprocess.run([sys.executable, SCRIPT, 'true'], capture_output=True, text=True,
                          timeout=60, check=False, env={**os.environ, 'PATH': '/nonexistent'})
  assert result.returncode == 2
  assert 'with-gcs-emulator: needs unshare' in result.stderr


def test_tensorflow_writes_and_beam_renames_through_the_front(bucket):
  """TensorFlow's uploads start with an empty POST carrying `Transfer-Encoding:
  identity` (501 from Go's server unmended); Beam renames and deletes in batches whose
  parts have no Content-ID (skipped by fake-gcs-server unmended)."""
  with tf.io.gfile.GFile(f'{bucket}/a.txt', 'w') as f:
    f.write('written by TensorFlow')
  FileSystems.rename([f'{bucket}/a.txt'], [f'{bucket}/b.txt'])
  assert tf.io.gfile.listdir(bucket) == ['b.txt']
  with FileSystems.open(f'{bucket}/b.txt') as f:
    assert f.read() == b'written by TensorFlow'
  FileSystems.delete([f'{bucket}/b.txt'])
  assert not tf.io.gfile.exists(f'{bucket}/b.txt')
  sent = requests_sent()
  assert any(line.startswith('POST www.googleapis.com /upload/') and line.endswith(' 200')
             for line in sent)
  assert any(line.startswith('POST storage.googleapis.com /batch/storage/v1 ')
             and line.endswith(' 200') for line in sent)


CUT_OFF_UPLOAD = """
import http.client, json, urllib.request
url = 'https://storage.googleapis.com/storage/v1/b/photos/o'
connection = http.client.HTTPSConnection('storage.googleapis.com', 443)
connection.putrequest('POST', '/upload/storage/v1/b/photos/o?uploadType=media&name=cut.jpg')
connection.putheader('Transfer-Encoding', 'chunked')
connection.endheaders()
connection.send(b'100\\r\\n' + b'x' * 10)  # 256 bytes promised, 10 sent: then gone
connection.close()
with urllib.request.urlopen(url) as answer:
  print(json.dumps([item['name'] for item in json.load(answer).get('items', [])]))
"""


def test_an_upload_cut_off_midway_stores_nothing_and_prints_no_traceback():
  """A push killed mid-file (tests/test_pusher.py) leaves its connection half-sent: the
  front drops it, as Cloud Storage drops an unfinished upload, and goes on serving."""
  result = subprocess.run([SCRIPT, sys.executable, '-c', CUT_OFF_UPLOAD], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, 'GCS_EMULATOR_BUCKETS': 'photos'})
  assert result.returncode == 0, result.stderr
  assert json.loads(result.stdout) == []
  assert 'Traceback' not in result.stderr, result.stderr
