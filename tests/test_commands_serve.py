"""`colorizer serve` as a client sees it: a real server process on 127.0.0.1, TF Serving's
REST API, versions pushed by the pipeline's pusher while it serves, 8 clients at once,
the same answers as the SavedModel's own signature (what TF Serving runs), and the web
page in Debian's Chromium driven by Playwright."""
import base64
import concurrent.futures
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import anyio
import httpx
import numpy as np
from PIL import Image
import pytest
import requests
import tensorflow as tf

from components import pusher
from model import colour_space
from model import serving
from commands import serve
from conftest import bucket_folder
from sample_images import colourful_image, encode, huge_png

COLORIZER = os.path.join(os.path.dirname(sys.executable), 'colorizer')
CHROMIUM = '/usr/bin/chromium'
MAX_UPLOAD_MB = 2


def gray_photo(seed, width, height, fmt='JPEG'):
  rgb = colourful_image(seed, width, height)
  return encode(np.asarray(Image.fromarray(rgb).convert('L')), fmt)


def request_body(*images):
  return {'instances': [{'b64': base64.b64encode(image).decode()} for image in images]}


def answer_size(b64):
  return Image.open(io.BytesIO(base64.b64decode(b64))).size


def answer_format(b64):
  return Image.open(io.BytesIO(base64.b64decode(b64))).format


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

  def push(self, model_dir):
    """The pipeline's own push; returns the new version's number."""
    return os.path.basename(pusher.push_atomically(str(model_dir), str(self.folder), 0))

  def wait_for_version(self, version, seconds=120):
    deadline = time.time() + seconds
    while self.version() != version and time.time() < deadline:
      time.sleep(0.5)
    return self.version()

  def stop(self):
    self.process.terminate()
    self.process.wait(timeout=30)


@pytest.fixture(scope='module')
def server(trained, tmp_path_factory):
  folder = tmp_path_factory.mktemp('serving')
  first = os.path.basename(pusher.push_atomically(trained['serving_dir'], str(folder), 0))
  running = Server(folder, tmp_path_factory.mktemp('logs') / 'serve.log')
  running.first = first
  yield running
  running.stop()


def test_status_like_tf_serving(server):
  answer = requests.get(f'{server.url}/v1/models/colorizer', timeout=10)
  assert answer.status_code == 200
  assert answer.json() == {'model_version_status': [
      {'version': server.first, 'state': 'AVAILABLE',
       'status': {'error_code': 'OK', 'error_message': ''}}]}
  assert requests.get(f'{server.url}/v1/models/colorizer/versions/{server.first}', timeout=10).ok
  for path in ('/v1/models/colorizer/versions/7', '/v1/models/other'):
    answer = requests.get(server.url + path, timeout=10)
    assert answer.status_code == 404 and 'error' in answer.json()


def test_predict_like_tf_serving(server):
  photo = gray_photo(1, 200, 150)
  answer = server.predict(request_body(photo))
  assert answer.status_code == 200, answer.text
  (prediction,) = answer.json()['predictions']
  assert base64.b64decode(prediction['b64']).startswith(b'\xff\xd8\xff')  # JPEG for a JPEG
  colour = np.asarray(Image.open(io.BytesIO(base64.b64decode(prediction['b64']))))
  assert colour.shape == (150, 200, 3)
  gray = np.asarray(Image.open(io.BytesIO(photo)), np.float32) / 255
  input_l = colour_space.rgb_to_lab(np.repeat(gray[..., None], 3, 2)).numpy()[..., 0]
  output_l = colour_space.rgb_to_lab(colour.astype(np.float32) / 255).numpy()[..., 0]
  assert np.abs(output_l - input_l).mean() < 1.0  # The photo's own light, coloured.

  # The columnar format, a named input, a given version, and several photos at once.
  answer = server.predict({'inputs': {'image_bytes': [{'b64': base64.b64encode(photo).decode()}]}},
                          path=f'/v1/models/colorizer/versions/{server.first}:predict')
  assert answer.status_code == 200
  assert answer_size(answer.json()['outputs'][0]['b64']) == (200, 150)
  cmyk = io.BytesIO()
  Image.fromarray(colourful_image(4, 72, 48)).convert('CMYK').save(cmyk, 'JPEG')
  cmyk = cmyk.getvalue()
  answer = server.predict(request_body(gray_photo(2, 64, 96, 'PNG'), gray_photo(3, 80, 40), cmyk))
  predictions = answer.json()['predictions']
  assert [answer_size(p['b64']) for p in predictions] == [(64, 96), (80, 40), (72, 48)]
  # Each in its own format; the CMYK JPEG, which the graph does not decode as Pillow
  # does, goes through PNG and is answered in JPEG all the same.
  assert [answer_format(p['b64']) for p in predictions] == ['PNG', 'JPEG', 'JPEG']


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
    ({'signature_name': serving.FROM_EXAMPLES, 'instances': []}, None, 400, 'signature'),
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


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(server):
  """No Content-Length to check first: the limit holds while the body is read."""
  sent = []

  def chunks():
    for _ in range(4 * MAX_UPLOAD_MB * 16):  # 64 KiB each: up to 4 times the limit
      sent.append(1)
      yield b'x' * 2**16

  answer = requests.post(f'{server.url}/v1/models/colorizer:predict', data=chunks(), timeout=60)
  assert answer.request.headers['Transfer-Encoding'] == 'chunked'
  assert 'Content-Length' not in answer.request.headers
  assert answer.status_code == 413, answer.text
  assert answer.json()['error'] == f'the request is over the limit of {MAX_UPLOAD_MB} MB'


@pytest.fixture(scope='module')
def versions(trained):
  """The trained model pushed to a serving folder in the emulated bucket, loaded from
  there in this process (as `colorizer serve --model gs://...` does), for apps run in it."""
  folder = f'{bucket_folder("in_process_serving")}/serving_model'
  pushed = pusher.push_atomically(trained['serving_dir'], folder, 0)
  loaded = serve.ModelVersions(folder)
  loaded.refresh()
  assert loaded.current.path == pushed
  return loaded


@pytest.fixture(scope='module')
def signature(versions):
  return versions.current.signature


def alone(signature, photo):
  """The signature's answer for one photo, in a call of its own, as pixels."""
  answer = signature(image_bytes=tf.constant([photo]))[serving.OUTPUT_KEY].numpy()[0]
  return np.asarray(Image.open(io.BytesIO(answer)), np.int32)


def same_answer(colour, expected):
  """A batch of several photos may round a level here and there otherwise than a call
  of one (the networks' kernels are chosen by batch size); another photo, or another
  photo's colours, is tens of levels off."""
  return colour.shape == expected.shape and np.abs(colour - expected).mean() < 0.5


def test_eight_clients_at_once_each_get_their_own_answers(server, signature):
  """Each client sends photos of its own size and must get its own photos back, as the
  signature colourizes each alone; a ninth client's broken photo, sent at the same
  time, fails only its own request, with the reason."""
  sizes = [(256 + 8 * client, 256 - 4 * client) for client in range(8)]
  photos = [[gray_photo(10 * number + i, *sizes[number]) for i in range(2)]
            for number in range(8)]

  def client(number):
    if number == 8:
      broken = gray_photo(99, 256, 256)
      answer = server.predict(request_body(broken[:len(broken) // 2]))
      return [(answer.status_code, answer.json()['error'])]
    answers = [server.predict(request_body(photo)) for photo in photos[number]]
    return [(a.status_code, np.asarray(Image.open(io.BytesIO(base64.b64decode(
        a.json()['predictions'][0]['b64']))), np.int32)) for a in answers]

  start = time.time()
  for number in range(4):  # The same work from one client, in a row, to compare with.
    assert [status for status, _ in client(number)] == [200, 200]
  one_client = 8 / (time.time() - start)
  start = time.time()
  with concurrent.futures.ThreadPoolExecutor(9) as pool:
    results = list(pool.map(client, range(9)))
  eight_clients = 16 / (time.time() - start)
  [(status, error)] = results.pop()
  assert status == 400 and error.startswith('image 0: truncated'), error
  for number, answers in enumerate(results):
    for photo, (status, colour) in zip(photos[number], answers):
      assert status == 200 and colour.shape == sizes[number][::-1] + (3,)
      expected = alone(signature, serve.photo_for_serving(photo).data)
      assert same_answer(colour, expected), (number, np.abs(colour - expected).mean())
  print(f'\nphotos of ~256x256 on {os.cpu_count()} cores: 8 clients at once '
        f'{eight_clients:.1f} photos/s, one client in a row {one_client:.1f} photos/s')


def test_web_page_colourizes_a_photo_in_chromium(server, tmp_path):
  from playwright.sync_api import sync_playwright  # pylint: disable=import-outside-toplevel
  assert os.path.exists(CHROMIUM), f'{CHROMIUM} is missing: `make test` installs it'
  photo = tmp_path / 'grandparents.jpg'
  photo.write_bytes(gray_photo(6, 320, 200))
  tiff = tmp_path / 'scan.tiff'  # Chromium cannot show TIFF; the server reads it.
  tiff.write_bytes(gray_photo(8, 240, 180, 'TIFF'))
  broken = tmp_path / 'broken.jpg'
  broken.write_bytes(b'\xff\xd8 not a photo')
  reason = server.predict(request_body(broken.read_bytes())).json()['error']
  with sync_playwright() as playwright:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-sync'])
    try:
      page = browser.new_page()
      page.goto(server.url + '/')
      for path, size in ((photo, [320, 200]), (tiff, [240, 180])):
        page.set_input_files('#file', str(path))
        page.wait_for_function(
            f"document.getElementById('status').textContent.startsWith('{path.name}')"
            " || document.getElementById('status').className === 'error'", timeout=120_000)
        assert page.text_content('#status') == f'{path.name}: {size[0]}×{size[1]}'
        for image in ('#before', '#result'):
          assert page.eval_on_selector(image, 'i => [i.naturalWidth, i.naturalHeight]') == size
        assert page.is_visible('#result') and page.is_visible('#slider')
        link = page.locator('#download')
        kind, extension = ('jpeg', 'jpg') if path.suffix == '.jpg' else ('png', 'png')
        assert link.get_attribute('download') == f'{path.stem}-colorized.{extension}'
        assert link.get_attribute('href').startswith(f'data:image/{kind};base64,')
        colour = base64.b64decode(link.get_attribute('href').split(',', 1)[1])
        assert Image.open(io.BytesIO(colour)).format == kind.upper()
        assert Image.open(io.BytesIO(colour)).size == tuple(size)

      page.set_input_files('#file', str(broken))
      page.wait_for_selector('#status.error', timeout=60_000)
      assert page.text_content('#status') == f'Could not colourize broken.jpg: {reason}'
    finally:
      browser.close()


def test_versions_pushed_while_serving(server, trained, tmp_path):
  """A new version is picked up without a restart and without failing a request in
  flight; a broken one is logged and the last good version keeps serving."""
  photo = request_body(gray_photo(7, 96, 96))
  failures, done = [], []

  def keep_asking():
    while not done:
      answer = server.predict(photo)
      if answer.status_code != 200:
        failures.append(answer.text)

  retrained = tmp_path / 'retrained'  # Another model to the pusher: a copy elsewhere.
  shutil.copytree(trained['serving_dir'], retrained)
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    askers = [pool.submit(keep_asking) for _ in range(2)]
    second = server.push(retrained)
    server.wait_for_version(second)
    time.sleep(1)
    done.append(True)
    for asker in askers:
      asker.result()
  assert server.version() == second and not failures

  broken = tmp_path / 'broken-model'
  broken.mkdir()
  (broken / 'saved_model.pb').write_bytes(b'not a SavedModel')
  third = server.push(broken)
  deadline = time.time() + 60
  while f'version {third}' not in open(server.log).read() and time.time() < deadline:
    time.sleep(0.5)
  assert re.search(rf'version {third} at .* failed to load .*still serving version {second}; '
                   r'retrying in', open(server.log).read())
  assert server.version() == second
  assert server.predict(photo).status_code == 200


def test_a_version_is_retried_until_its_files_have_all_arrived(server, trained):
  """On gs://, files land one by one. A version whose saved_model.pb came before its
  variables (as TFX's own Pusher or `gsutil cp -r` copy) fails to load, and is served
  once the rest is there; a version without saved_model.pb (a push killed halfway) is
  not tried at all, and is served once a re-push finishes it."""
  model = trained['serving_dir']
  early = str(max(serving.numbered_versions(str(server.folder))) + 1)
  os.makedirs(server.folder / early)
  shutil.copy(os.path.join(model, 'saved_model.pb'), server.folder / early)
  deadline = time.time() + 60
  while f'version {early} at' not in open(server.log).read() and time.time() < deadline:
    time.sleep(0.5)
  assert f'version {early} at' in open(server.log).read()
  shutil.copytree(os.path.join(model, 'variables'), server.folder / early / 'variables')
  assert server.wait_for_version(early) == early

  half = server.folder / str(int(early) + 1)
  shutil.copytree(os.path.join(model, 'variables'), half / 'variables')
  time.sleep(2)  # Four polls of the folder, none of which may try it.
  assert server.version() == early
  shutil.copy(os.path.join(model, 'saved_model.pb'), half)
  assert server.wait_for_version(half.name) == half.name
  assert f'version {half.name} at' not in open(server.log).read()
  assert server.predict(request_body(gray_photo(9, 64, 64))).status_code == 200


def test_the_savedmodel_and_colorizer_serve_give_the_same_answer(server, trained):
  """What TF Serving runs (the raw `serving_default` on the file's bytes) and `colorizer
  serve` (Pillow first) agree on every photo both take, EXIF-rotated ones included."""
  signature = tf.saved_model.load(trained['serving_dir']).signatures[serving.SERVING_DEFAULT]
  photo = np.asarray(Image.fromarray(colourful_image(11, 160, 96)).convert('L'))
  photos = {'png': encode(photo, 'PNG'), 'bmp': encode(photo, 'BMP'),
            'jpeg': encode(photo, 'JPEG', quality=95)}
  for orientation in (3, 6, 8):
    exif = Image.Exif()
    exif[0x0112] = orientation
    photos[f'jpeg, exif orientation {orientation}'] = encode(photo, 'JPEG', quality=95,
                                                             exif=exif)
  for name, data in photos.items():
    raw = signature(image_bytes=tf.constant([data]))['colorized_bytes'].numpy()[0]
    answer = server.predict(request_body(data))
    assert answer.status_code == 200, answer.text
    served = base64.b64decode(answer.json()['predictions'][0]['b64'])
    if name.startswith('jpeg'):  # The JPEG itself goes to the signature: TF Serving's answer.
      assert served == raw, name
      continue
    raw = np.asarray(Image.open(io.BytesIO(raw)), np.int32)
    served = np.asarray(Image.open(io.BytesIO(served)), np.int32)
    assert served.shape == raw.shape, name
    # Lossless, but Pillow hands the signature a gray photo as RGB: its L comes through
    # the colour tables (Y at 16-bit steps) rather than the gray one.
    assert np.abs(served - raw).max() <= 1, name


def test_bodies_in_flight_are_bounded(versions):
  """--max-batch 1: two request bodies are read at once, however many clients send;
  the others wait before theirs is read. In process, through the ASGI app, with bodies
  that stop halfway until released."""
  app = serve.create_app(versions, max_batch=1)
  data = base64.b64encode(gray_photo(12, 64, 48)).decode().encode()
  reading, answers = [], {}

  async def main():
    release = anyio.Event()

    async def client(number, http):
      async def body():
        reading.append(number)
        yield b'{"instances": [{"b64": "' + data[:100]
        await release.wait()
        yield data[100:] + b'"}]}'
      answer = await http.post('/v1/models/colorizer:predict', content=body())
      answers[number] = (answer.status_code, answer_size(answer.json()['predictions'][0]['b64']))

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url='http://colorizer',
                                 timeout=120) as http:
      async with anyio.create_task_group() as tasks:
        for number in range(6):
          tasks.start_soon(client, number, http)
        await anyio.wait_all_tasks_blocked()
        assert len(reading) == 2, reading
        release.set()

  anyio.run(main)
  assert answers == {number: (200, (64, 48)) for number in range(6)}


@pytest.mark.fast
def test_serving_a_folder_without_a_model_is_a_clear_error(tmp_path, capsys):
  from commands import cli  # pylint: disable=import-outside-toplevel
  (tmp_path / '.incoming-5').mkdir()  # A push in progress is not a version.
  assert cli.main(['colorizer', 'serve', '--model', str(tmp_path)]) == 2
  assert 'no loadable numbered version (none found)' in capsys.readouterr().err


def behind_a_call(batcher, servable, photos):
  """Queues `photos` ((bytes, pixels) each) while the batcher colourizes another photo,
  so that they are queued together when its next batch is taken."""
  first = batcher.colorize(servable, encode(colourful_image(30, 64, 64), 'PNG'))
  while not first.running() and not first.done():  # The batcher has taken it.
    time.sleep(0.001)
  answers = [batcher.colorize(servable, photo, pixels) for photo, pixels in photos]
  first.result(timeout=120)
  return answers


def test_a_photo_that_fails_in_a_batch_fails_alone(versions, signature):
  """Bytes that the graph cannot decode (`colorizer serve` would have refused them
  before; TF Serving hands them over as they are) share a batch with two photos: the
  batch's call fails, and its photos are colourized again one by one."""
  batcher = serve.Batcher(max_batch=8, timeout_s=0)
  photos = [encode(colourful_image(31, 96, 64), 'PNG'), b'not a photo',
            gray_photo(32, 48, 80)]
  answers = behind_a_call(batcher, versions.current, [(photo, 1) for photo in photos])
  with pytest.raises(tf.errors.InvalidArgumentError):
    answers[1].result(timeout=120)
  for photo, answer in zip(photos[::2], answers[::2]):
    colour = np.asarray(Image.open(io.BytesIO(answer.result(timeout=120))), np.int32)
    assert same_answer(colour, alone(signature, photo))
  assert batcher.batch_sizes == {1: 1, 3: 1}


def test_a_large_photo_is_a_batch_of_its_own(versions):
  """A batch holds --max-batch photos of the model's size: a photo of 16 model-size
  squares goes alone, after the two small photos queued before it."""
  batcher = serve.Batcher(max_batch=8, timeout_s=0)
  photos = [(gray_photo(34, 64, 64), 64 * 64), (gray_photo(35, 200, 100), 200 * 100),
            (gray_photo(36, 1024, 1024), 1024 * 1024)]
  answers = behind_a_call(batcher, versions.current, photos)
  sizes = [Image.open(io.BytesIO(answer.result(timeout=120))).size for answer in answers]
  assert sizes == [(64, 64), (200, 100), (1024, 1024)]
  assert batcher.batch_sizes == {1: 2, 2: 1}


def test_a_lone_client_does_not_wait_for_the_window(versions):
  """With a window of a minute, a lone client's requests, each sent once the last is
  answered, are answered in far less: a batch of one photo waits for nobody."""
  app = serve.create_app(versions, batch_timeout_ms=60_000)
  photo = request_body(gray_photo(33, 64, 48))

  async def main():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url='http://colorizer',
                                 timeout=120) as http:
      for _ in range(3):
        start = time.monotonic()
        answer = await http.post('/v1/models/colorizer:predict', json=photo)
        assert answer.status_code == 200 and time.monotonic() - start < 30

  anyio.run(main)
  assert app.state.batcher.batch_sizes == {1: 3}


def test_after_a_batch_of_two_the_next_waits_for_two(versions):
  """The window at work: after a batch of two photos, the next photo waits (here up
  to a minute) for a second one, and they share a call."""
  batcher = serve.Batcher(max_batch=8, timeout_s=60)
  photos = [encode(colourful_image(40 + i, 64, 64), 'PNG') for i in range(4)]
  for answer in behind_a_call(batcher, versions.current, [(p, 1) for p in photos[:2]]):
    answer.result(timeout=120)
  assert batcher.batch_sizes == {1: 1, 2: 1}
  late = batcher.colorize(versions.current, photos[2])
  time.sleep(1)
  assert not late.done()  # It waits for a second photo ...
  later = batcher.colorize(versions.current, photos[3])
  late.result(timeout=120)
  later.result(timeout=120)
  assert batcher.batch_sizes == {1: 1, 2: 2}  # ... and goes with it.
