"""`colorizer serve` as a client sees it: a real server process on 127.0.0.1, TF Serving's
REST API, versions pushed while it serves, 8 clients at once, and the web page in
Debian's Chromium driven by Playwright."""
import base64
import concurrent.futures
import io
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
from PIL import Image
import pytest
import requests

from model import preprocessing as pp
from sample_images import colourful_image, encode, huge_png

COLORIZER = os.path.join(os.path.dirname(sys.executable), 'colorizer')
CHROMIUM = '/usr/bin/chromium'
MAX_UPLOAD_MB = 2


def gray_photo(seed, width, height, fmt='JPEG'):
  rgb = colourful_image(seed, width, height)
  return encode(np.asarray(Image.fromarray(rgb).convert('L')), fmt)


def request_body(*images):
  return {'instances': [{'b64': base64.b64encode(image).decode()} for image in images]}


def png_size(b64):
  return Image.open(io.BytesIO(base64.b64decode(b64))).size


def peak_rss_mb(pid):
  status = open(f'/proc/{pid}/status').read()
  return int(re.search(r'VmHWM:\s+(\d+) kB', status).group(1)) / 1024


class Server:
  """A `colorizer serve` process over a serving folder of numbered versions."""

  def __init__(self, folder, log):
    with socket.socket() as s:
      s.bind(('127.0.0.1', 0))
      self.port = s.getsockname()[1]
    self.url = f'http://127.0.0.1:{self.port}'
    self.folder, self.log = folder, log
    self.process = subprocess.Popen(
        [COLORIZER, 'serve', '--model', str(folder), '--port', str(self.port),
         '--poll-seconds', '0.5', '--max-upload-mb', str(MAX_UPLOAD_MB)],
        stdout=open(log, 'w'), stderr=subprocess.STDOUT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
    deadline = time.time() + 180
    while time.time() < deadline:
      assert self.process.poll() is None, open(log).read()[-3000:]
      try:
        if requests.get(f'{self.url}/v1/models/colorizer', timeout=5).ok:
          return
      except requests.ConnectionError:
        time.sleep(0.5)
    raise TimeoutError(open(log).read()[-3000:])

  def predict(self, body, path='/v1/models/colorizer:predict', **kwargs):
    return requests.post(self.url + path, timeout=120, **kwargs,
                         **({'json': body} if not isinstance(body, bytes) else {'data': body}))

  def version(self):
    status = requests.get(f'{self.url}/v1/models/colorizer', timeout=10).json()
    return status['model_version_status'][0]['version']

  def push(self, version, target):
    """Like the pipeline's pusher: staged under another name, then renamed."""
    staged = self.folder / f'.incoming-{version}'
    os.symlink(target, staged)
    os.rename(staged, self.folder / str(version))

  def stop(self):
    self.process.terminate()
    self.process.wait(timeout=30)


@pytest.fixture(scope='module')
def server(trained, tmp_path_factory):
  folder = tmp_path_factory.mktemp('serving')
  os.symlink(trained['serving_dir'], folder / '1')
  running = Server(folder, tmp_path_factory.mktemp('logs') / 'serve.log')
  yield running
  running.stop()


def test_status_like_tf_serving(server):
  answer = requests.get(f'{server.url}/v1/models/colorizer', timeout=10)
  assert answer.status_code == 200
  assert answer.json() == {'model_version_status': [
      {'version': '1', 'state': 'AVAILABLE', 'status': {'error_code': 'OK', 'error_message': ''}}]}
  assert requests.get(f'{server.url}/v1/models/colorizer/versions/1', timeout=10).ok
  for path in ('/v1/models/colorizer/versions/7', '/v1/models/other'):
    answer = requests.get(server.url + path, timeout=10)
    assert answer.status_code == 404 and 'error' in answer.json()


def test_predict_like_tf_serving(server):
  photo = gray_photo(1, 200, 150)
  answer = server.predict(request_body(photo))
  assert answer.status_code == 200, answer.text
  (prediction,) = answer.json()['predictions']
  colour = np.asarray(Image.open(io.BytesIO(base64.b64decode(prediction['b64']))))
  assert colour.shape == (150, 200, 3)
  gray = np.asarray(Image.open(io.BytesIO(photo)), np.float32) / 255
  input_l = pp.rgb_to_lab(np.repeat(gray[..., None], 3, 2)).numpy()[..., 0]
  output_l = pp.rgb_to_lab(colour.astype(np.float32) / 255).numpy()[..., 0]
  assert np.abs(output_l - input_l).mean() < 1.0  # The photo's own light, coloured.

  # The columnar format, a named input, a given version, and several photos at once.
  answer = server.predict({'inputs': {'image_bytes': [{'b64': base64.b64encode(photo).decode()}]}},
                          path='/v1/models/colorizer/versions/1:predict')
  assert answer.status_code == 200 and png_size(answer.json()['outputs'][0]['b64']) == (200, 150)
  answer = server.predict(request_body(gray_photo(2, 64, 96, 'PNG'), gray_photo(3, 80, 40)))
  assert [png_size(p['b64']) for p in answer.json()['predictions']] == [(64, 96), (80, 40)]


@pytest.mark.parametrize('body, path, status, message', [
    (b'{"instances": [', None, 400, 'malformed JSON'),
    ({'photos': []}, None, 400, '"instances"'),
    ({'instances': [{'b64': 'not base64!'}]}, None, 400, 'invalid base64'),
    ({'instances': ['/etc/passwd']}, None, 400, 'expected {"b64"'),
    (request_body(b'/etc/passwd'), None, 400, 'not_an_image'),
    (request_body(b'\xff\xd8\xff\xe0 broken jpeg'), None, 400, 'image 0'),
    (request_body(gray_photo(4, 100, 100)), '/v1/models/other:predict', 404, 'other'),
    (request_body(gray_photo(4, 100, 100)), '/v1/models/colorizer/versions/9:predict', 404,
     'Specific(colorizer, 9)'),
    (request_body(gray_photo(4, 100, 100)), '/v1/models/..%2F..%2Fetc%2Fpasswd:predict', 404,
     'not found'),
    ({'signature_name': 'from_examples', 'instances': []}, None, 400, 'signature'),
])
def test_errors_are_answers(server, body, path, status, message):
  answer = server.predict(body, **({'path': path} if path else {}))
  assert answer.status_code == status, answer.text
  assert message.lower() in answer.json()['error'].lower()


def test_oversized_requests_and_decompression_bombs_are_refused(server):
  before = peak_rss_mb(server.process.pid)
  answer = server.predict(b'x' * (MAX_UPLOAD_MB * 2**20 + 1))
  assert answer.status_code == 413 and 'limit' in answer.json()['error']
  bomb = huge_png()  # 120 megapixels: 360 MB decoded, a few hundred KB on the wire.
  answer = server.predict(request_body(bomb))
  assert answer.status_code == 413 and 'megapixels' in answer.json()['error']
  assert peak_rss_mb(server.process.pid) - before < 100
  assert requests.get(f'{server.url}/nothing/../../etc/passwd', timeout=10).status_code == 404
  assert server.predict(request_body(gray_photo(5, 64, 64))).status_code == 200


def test_eight_clients_at_once(server):
  """Each client sends photos of its own size and must get its own photos back."""
  sizes = [(256 + 8 * client, 256 - 4 * client) for client in range(8)]

  def client(number):
    width, height = sizes[number]
    answers = [server.predict(request_body(gray_photo(10 * number + i, width, height)))
               for i in range(2)]
    return [(a.status_code, png_size(a.json()['predictions'][0]['b64'])) for a in answers]

  start = time.time()
  for number in range(4):  # The same work from one client, in a row, to compare with.
    assert client(number) == [(200, sizes[number])] * 2
  one_client = 8 / (time.time() - start)
  start = time.time()
  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    results = list(pool.map(client, range(8)))
  eight_clients = 16 / (time.time() - start)
  for number, answers in enumerate(results):
    assert answers == [(200, sizes[number])] * 2
  print(f'\nphotos of ~256x256 on {os.cpu_count()} cores: 8 clients at once '
        f'{eight_clients:.1f} photos/s, one client in a row {one_client:.1f} photos/s')


def test_web_page_colourizes_a_photo_in_chromium(server, tmp_path):
  from playwright.sync_api import sync_playwright  # pylint: disable=import-outside-toplevel
  assert os.path.exists(CHROMIUM), f'{CHROMIUM} is missing: `make test` installs it'
  photo = tmp_path / 'grandparents.jpg'
  photo.write_bytes(gray_photo(6, 320, 200))
  broken = tmp_path / 'broken.jpg'
  broken.write_bytes(b'\xff\xd8 not a photo')
  with sync_playwright() as playwright:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-sync'])
    try:
      page = browser.new_page()
      page.goto(server.url + '/')
      page.set_input_files('#file', str(photo))
      page.wait_for_function("document.getElementById('result').naturalWidth > 0",
                             timeout=120_000)
      assert page.eval_on_selector('#result', 'i => [i.naturalWidth, i.naturalHeight]') == [320, 200]
      assert page.is_visible('#result') and page.is_visible('#slider')
      link = page.locator('#download')
      assert link.get_attribute('download') == 'grandparents-colorized.png'
      colour = base64.b64decode(link.get_attribute('href').split(',', 1)[1])
      assert Image.open(io.BytesIO(colour)).size == (320, 200)
      assert '320×200' in page.text_content('#status')

      page.set_input_files('#file', str(broken))
      page.wait_for_selector('#status.error', timeout=60_000)
      assert 'Could not colourize broken.jpg' in page.text_content('#status')
    finally:
      browser.close()


def test_versions_pushed_while_serving(server, tmp_path):
  """A new version is picked up without a restart and without failing a request in
  flight; a broken one is logged and the last good version keeps serving."""
  photo = request_body(gray_photo(7, 96, 96))
  failures, done = [], []

  def keep_asking():
    while not done:
      answer = server.predict(photo)
      if answer.status_code != 200:
        failures.append(answer.text)

  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    askers = [pool.submit(keep_asking) for _ in range(2)]
    server.push(2, os.readlink(server.folder / '1'))
    deadline = time.time() + 120
    while server.version() != '2' and time.time() < deadline:
      time.sleep(0.5)
    time.sleep(1)
    done.append(True)
    for asker in askers:
      asker.result()
  assert server.version() == '2' and not failures

  broken = tmp_path / 'broken-model'
  broken.mkdir()
  (broken / 'saved_model.pb').write_bytes(b'not a SavedModel')
  server.push(3, str(broken))
  deadline = time.time() + 60
  while 'version 3' not in open(server.log).read() and time.time() < deadline:
    time.sleep(0.5)
  assert re.search(r'version 3 at .* failed to load .*still serving version 2',
                   open(server.log).read())
  assert server.version() == '2'
  assert server.predict(photo).status_code == 200


def test_serving_a_folder_without_a_model_is_a_clear_error(tmp_path, capsys):
  from pipeline import cli  # pylint: disable=import-outside-toplevel
  (tmp_path / '.incoming-5').mkdir()  # A push in progress is not a version.
  assert cli.main(['colorizer', 'serve', '--model', str(tmp_path)]) == 2
  assert 'no loadable numbered version (none found)' in capsys.readouterr().err
