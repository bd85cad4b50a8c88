"""`colorizer serve`: TF Serving's REST API over the pushed models, and a web page.

Speaks the part of TF Serving's REST API that a colorizer client uses, so a client
written against it works against TF Serving unchanged:

  GET  /v1/models/<name>[/versions/<v>]             model status
  POST /v1/models/<name>[/versions/<v>]:predict     {"instances": [{"b64": ...}]} ->
                                                    {"predictions": [{"b64": ...}]},
                                                    JPEG for a JPEG, else PNG
  GET  /                                            the web page (pick or drop a photo)

The newest numbered version under the model folder is served; a newly pushed one is
loaded in the background, once its `saved_model.pb` is there, and swapped in between
requests; one that fails to load is logged and tried again with backoff while the old
one keeps serving. Photos are decoded by `photo_for_serving` (size checked
from the header first: no decompression bomb is ever decoded), then the photos of
concurrent requests share model calls (`Batcher`: at most `max_batch` photos a call).
At most twice `max_batch` requests are read, decoded and colourized at once (the others
wait before their body is read), which bounds the memory of requests whatever the
number of clients.
"""
import asyncio
import base64
import binascii
import collections
import concurrent.futures
import dataclasses
import html
import io
import json
import logging
import os
import threading
import time
from typing import Deque, Dict, List, NamedTuple, Optional, Tuple

import anyio
import fastapi
from fastapi import responses
import starlette.exceptions
from PIL import Image
import tensorflow as tf

from model import decoding
from model import full_resolution
from model import scaling
from model import serving
from pipeline import configs

PAGE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'serve_page.html')
SIGNATURE = serving.SERVING_DEFAULT


@dataclasses.dataclass(frozen=True)
class Servable:
  version: int
  path: str
  signature: object  # The loaded `serving_default` concrete function.
  loaded: object     # The loaded SavedModel, kept alive with its signature.


class ModelVersions:
  """The newest loadable version under `base_path`, swapped when a newer one appears.

  A version is tried once its `saved_model.pb` is there (the file a pusher writes last).
  One that fails to load is tried again after `retry_seconds`, doubling up to
  `max_retry_seconds`, as TF Serving retries loads: on gs://, files are copied one by
  one, so a version can fail while the rest of its files are still on their way.
  """

  def __init__(self, base_path: str, retry_seconds: float = 2.0,
               max_retry_seconds: float = 300.0):
    self.base_path = base_path
    self.retry_seconds = retry_seconds
    self.max_retry_seconds = max_retry_seconds
    self.failed: Dict[int, str] = {}  # version -> why its last load failed
    self._retry_at: Dict[int, Tuple[float, float]] = {}  # version -> (when, next delay)
    self._current: Optional[Servable] = None
    self._lock = threading.Lock()
    self._stop = threading.Event()

  @property
  def current(self) -> Optional[Servable]:
    with self._lock:
      return self._current

  def _ready(self, version: int, now: float) -> bool:
    if now < self._retry_at.get(version, (0.0, 0.0))[0]:
      return False
    return tf.io.gfile.exists(os.path.join(self.base_path, str(version), 'saved_model.pb'))

  def refresh(self) -> None:
    """Loads the newest version on disk that has its saved_model.pb and is not waiting
    to be retried, if it is not the one serving."""
    current = self.current
    now = time.monotonic()
    versions = [v for v in serving.numbered_versions(self.base_path)
                if (current and v == current.version) or self._ready(v, now)]
    if not versions or (current and versions[-1] == current.version):
      return
    version = versions[-1]
    path = os.path.join(self.base_path, str(version))
    try:
      loaded = tf.saved_model.load(path)
      signature = loaded.signatures[SIGNATURE]
      if serving.INPUT_KEY not in signature.structured_input_signature[1]:
        raise ValueError(f'{SIGNATURE} takes {list(signature.structured_input_signature[1])}, '
                         f'not {serving.INPUT_KEY!r}: not a colorizer model')
    except Exception as e:  # pylint: disable=broad-except
      self.failed[version] = f'{type(e).__name__}: {e}'
      delay = self._retry_at.get(version, (0.0, self.retry_seconds))[1]
      self._retry_at[version] = (now + delay, min(2 * delay, self.max_retry_seconds))
      serving_now = f'still serving version {current.version}' if current else 'nothing to serve'
      logging.error('version %d at %s failed to load (%s); %s; retrying in %g s', version,
                    path, self.failed[version], serving_now, delay)
      return
    self.failed.pop(version, None)
    self._retry_at.pop(version, None)
    with self._lock:
      self._current = Servable(version, path, signature, loaded)
    logging.warning('serving version %d from %s', version, path)

  def watch(self, poll_seconds: float) -> threading.Thread:
    def loop():
      while not self._stop.wait(poll_seconds):
        self.refresh()
    thread = threading.Thread(target=loop, name='model-versions', daemon=True)
    thread.start()
    return thread

  def stop(self) -> None:
    self._stop.set()


class _Queued(NamedTuple):
  servable: Servable
  photo: bytes  # what the signature takes
  units: int    # its weight in a batch: the model-size squares its pixels fill
  answer: concurrent.futures.Future


class Batcher:
  """The photos of concurrent requests -> one `serving_default` call per batch, on one
  thread (a call already keeps every core busy).

  A batch holds up to `max_batch` photos of the model's size; a larger photo counts as
  the model-size squares its pixels fill, so that a large photo goes alone, as in
  `colorizer colorize`, and a call's memory stays bounded. A photo that finds the model
  idle starts at once. Photos that come while a batch runs queue up for the next. After
  a batch of k, the next waits up to `timeout_s` (from the end of that batch) until k
  are queued: the k clients just answered tend to send their next photos together, so
  under a steady load batches keep their size, while a lone client, whose batches hold
  one photo, never waits. (TF Serving's `batch_timeout_micros` makes every batch wait
  to fill, a lone client's too.) A batch whose call fails is tried again photo by
  photo, so that a photo the graph cannot take fails only its own request.
  """

  def __init__(self, max_batch: int, timeout_s: float):
    if max_batch < 1:
      raise ValueError(f'a batch must hold at least 1 photo, not {max_batch}')
    self.max_batch, self.timeout_s = max_batch, timeout_s
    self.batch_sizes = collections.Counter()  # photos in a call -> calls
    self._queue: Deque[_Queued] = collections.deque()
    self._queued = threading.Condition()
    self._last_units, self._last_end = 1, 0.0
    threading.Thread(target=self._loop, name='batcher', daemon=True).start()

  def colorize(self, servable: Servable, photo: bytes,
               pixels: int = scaling.IMAGE_SIZE ** 2) -> concurrent.futures.Future:
    """Queues one photo of `pixels` pixels for `servable`; its future gives the encoded
    answer, or the error of the call that colourized it alone."""
    answer = concurrent.futures.Future()
    units = full_resolution.model_size_units(pixels, self.max_batch)
    with self._queued:
      self._queue.append(_Queued(servable, photo, units, answer))
      self._queued.notify()
    return answer

  def _next_batch(self) -> List[_Queued]:
    with self._queued:
      while not self._queue:
        self._queued.wait()
      wanted = min(self._last_units, self.max_batch)
      deadline = self._last_end + self.timeout_s
      while (sum(item.units for item in self._queue) < wanted
             and time.monotonic() < deadline):
        self._queued.wait(deadline - time.monotonic())
      batch, units = [], 0
      while self._queue:  # In order; one call runs one version.
        item = self._queue[0]
        if batch and (item.servable is not batch[0].servable
                      or units + item.units > self.max_batch):
          break
        self._queue.popleft()
        if item.answer.set_running_or_notify_cancel():  # False: its client has gone.
          batch.append(item)
          units += item.units
      return batch

  def _loop(self) -> None:
    while True:
      batch = self._next_batch()
      if batch:
        self.batch_sizes[len(batch)] += 1
        self._run(batch)
        self._last_units, self._last_end = sum(i.units for i in batch), time.monotonic()

  def _run(self, batch: List[_Queued]) -> None:
    try:
      answers = batch[0].servable.signature(**{serving.INPUT_KEY: tf.constant(
          [item.photo for item in batch])})[serving.OUTPUT_KEY].numpy()
    except tf.errors.OpError as error:
      if len(batch) == 1:
        batch[0].answer.set_exception(error)
      else:
        for item in batch:
          self._run([item])
      return
    except Exception as error:  # pylint: disable=broad-except
      for item in batch:  # Not the photos' fault: each request answers 500.
        item.answer.set_exception(error)
      return
    for item, answer in zip(batch, answers):
      item.answer.set_result(answer)


class ApiError(Exception):
  """An answer in TF Serving's error format: {"error": message}."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status
    self.message = message


def _status(servable: Servable) -> dict:
  return {'version': str(servable.version), 'state': 'AVAILABLE',
          'status': {'error_code': 'OK', 'error_message': ''}}


def _images(request: dict) -> List[bytes]:
  """The encoded photos in a TF Serving predict request (row or columnar format)."""
  if not isinstance(request, dict):
    raise ApiError(400, 'the request must be a JSON object with "instances" or "inputs"')
  name = request.get('signature_name', SIGNATURE)
  if name != SIGNATURE:
    raise ApiError(400, f'signature {name!r} not found; this server serves {SIGNATURE!r}')
  if ('instances' in request) == ('inputs' in request):
    raise ApiError(400, 'give exactly one of "instances" (row format) or "inputs" '
                   '(columnar format)')
  values = request['instances'] if 'instances' in request else request['inputs']
  if isinstance(values, dict) and serving.INPUT_KEY in values:
    values = values[serving.INPUT_KEY]
  if isinstance(values, dict):
    values = [values]
  if not isinstance(values, list) or not values:
    raise ApiError(400, 'expected a non-empty list of images, each {"b64": "..."}')
  images = []
  for i, value in enumerate(values):
    if isinstance(value, dict) and serving.INPUT_KEY in value:
      value = value[serving.INPUT_KEY]
    if not (isinstance(value, dict) and isinstance(value.get('b64'), str)):
      raise ApiError(400, f'image {i}: expected {{"b64": "<base64 of the image file>"}}')
    try:
      images.append(base64.b64decode(value['b64'], validate=True))
    except (binascii.Error, ValueError) as e:
      raise ApiError(400, f'image {i}: invalid base64: {e}') from None
  return images


def _graph_decodes_alike(photo: decoding.DecodedPhoto) -> bool:
  """Whether `serving_default`'s own decoder gives the photo that Pillow gave: a gray or
  RGB JPEG whose pixels are sRGB as they are (a CMYK one, or one with another colour
  profile, Pillow converts to sRGB; TensorFlow does not)."""
  return (photo.format == 'JPEG' and photo.mode in ('L', 'RGB')
          and decoding.is_srgb(photo.icc_profile))


class ServingInput(NamedTuple):
  """A photo as `colorizer serve` hands it to `serving_default`."""
  data: bytes         # the encoded photo the signature decodes
  pixels: int         # its width times height
  jpeg_answer: bool   # a JPEG that went as PNG: its PNG answer is re-encoded as JPEG


def photo_for_serving(data: bytes,
                      max_megapixels: float = decoding.DEFAULT_MAX_MEGAPIXELS) -> ServingInput:
  """One encoded photo (any format ingestion reads) -> what `colorizer serve` hands
  `serving_default`, so that the answer is in the format TF Serving answers it with:
  JPEG for a JPEG, PNG for anything else.

  Pillow decodes it first (with the same checks as ingestion: size from the header
  first, so a decompression bomb is refused before it is decoded). A JPEG that the
  signature decodes alike goes as it came, so the answer is TF Serving's to the byte;
  any other photo goes as lossless PNG of Pillow's pixels, and the PNG answer to an odd
  JPEG (CMYK, or another colour profile) is re-encoded as JPEG (`answer_for`). Raises
  decoding.PhotoRejected for a photo it cannot take.
  """
  photo = decoding.decode_photo(data, max_megapixels)
  pixels = photo.height * photo.width
  if _graph_decodes_alike(photo):
    return ServingInput(data, pixels, False)
  png = io.BytesIO()
  Image.fromarray(photo.rgb).save(png, 'PNG', compress_level=0)
  return ServingInput(png.getvalue(), pixels, photo.format == 'JPEG')


def answer_for(photo: ServingInput, answer: bytes) -> bytes:
  """The signature's answer to `photo` -> the answer in the request's own format."""
  if not photo.jpeg_answer:
    return answer
  jpeg = io.BytesIO()
  Image.open(io.BytesIO(answer)).save(jpeg, 'JPEG', quality=decoding.JPEG_QUALITY)
  return jpeg.getvalue()


def create_app(versions: ModelVersions, model_name: str = configs.PIPELINE_NAME,
               max_upload_mb: float = configs.SERVE_MAX_UPLOAD_MB,
               max_megapixels: float = decoding.DEFAULT_MAX_MEGAPIXELS,
               max_batch: int = configs.SERVE_MAX_BATCH,
               batch_timeout_ms: float = configs.SERVE_BATCH_TIMEOUT_MS) -> fastapi.FastAPI:
  """The FastAPI application over `versions` (already refreshed once); its batcher is
  `app.state.batcher`."""
  app = fastapi.FastAPI(title='colorizer', docs_url=None, redoc_url=None, openapi_url=None)
  limit = int(max_upload_mb * 1024 * 1024)
  app.state.batcher = batcher = Batcher(max_batch, batch_timeout_ms / 1000)
  # Held from before a request's body is read until its answer is made: twice a batch,
  # so that the next batch's bodies are read and decoded while one is colourized.
  bodies = anyio.CapacityLimiter(2 * max_batch)
  with open(PAGE_FILE) as f:
    page = (f.read().replace('{{MODEL_NAME_JSON}}', json.dumps(model_name))
            .replace('{{MODEL_NAME}}', html.escape(model_name))
            .replace('{{MAX_UPLOAD_MB}}', f'{max_upload_mb:g}'))

  @app.exception_handler(ApiError)
  async def api_error(_, error: ApiError):
    return responses.JSONResponse({'error': error.message}, status_code=error.status)

  @app.exception_handler(starlette.exceptions.HTTPException)
  async def http_error(_, error: starlette.exceptions.HTTPException):
    return responses.JSONResponse({'error': str(error.detail)}, status_code=error.status_code)

  def servable(name: str, version: Optional[str]) -> Servable:
    if name != model_name:
      raise ApiError(404, f'Servable not found for request: Latest({name})')
    current = versions.current
    if current is None:
      raise ApiError(404, f'no version of {name} is loaded')
    if version is not None and version != str(current.version):
      raise ApiError(404, f'Servable not found for request: Specific({name}, {version}); '
                     f'serving version {current.version}')
    return current

  async def body(request: fastapi.Request) -> dict:
    declared = request.headers.get('content-length')
    if declared and declared.isdigit() and int(declared) > limit:
      raise ApiError(413, f'the request is {int(declared) / 2**20:.1f} MB, over the limit of '
                     f'{max_upload_mb:g} MB')
    data = bytearray()
    async for chunk in request.stream():
      data += chunk
      if len(data) > limit:
        raise ApiError(413, f'the request is over the limit of {max_upload_mb:g} MB')
    try:
      return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
      raise ApiError(400, f'malformed JSON: {e}') from None

  def refused(i: int, error: Exception) -> ApiError:
    rejected = decoding.rejection(error)
    return ApiError(413 if rejected.reason == 'too_large' else 400,
                    f'image {i}: {rejected.reason}: {rejected.detail}')

  def prepare_all(images: List[bytes]) -> List[ServingInput]:
    """Each photo as the signature takes it, with its pixel count."""
    prepared = []
    for i, image in enumerate(images):
      try:
        prepared.append(photo_for_serving(image, max_megapixels))
      except decoding.PhotoRejected as e:
        raise refused(i, e) from None
    return prepared

  async def colorize_all(current: Servable, images: List[bytes]) -> List[dict]:
    """Decoded in a worker thread, then colourized in the batcher's next batches."""
    photos = await anyio.to_thread.run_sync(prepare_all, images)
    answers = [batcher.colorize(current, photo.data, photo.pixels) for photo in photos]
    results = []
    try:
      for i, (photo, answer) in enumerate(zip(photos, answers)):
        try:
          encoded = await asyncio.wrap_future(answer)
          if photo.jpeg_answer:  # Re-encoding takes a while: not on the event loop.
            encoded = await anyio.to_thread.run_sync(answer_for, photo, encoded)
        except tf.errors.InvalidArgumentError as e:
          raise refused(i, e) from None
        results.append({'b64': base64.b64encode(encoded).decode('ascii')})
    finally:  # A refused photo or a client gone: its other photos need no call.
      for answer in answers:
        answer.cancel()
    return results

  async def predict(name: str, version: Optional[str], request: fastapi.Request):
    current = servable(name, version)
    async with bodies:
      payload = await body(request)
      images = _images(payload)
      key = 'predictions' if 'instances' in payload else 'outputs'
      del payload  # The base64 text is not needed once decoded.
      results = await colorize_all(current, images)
    return {key: results}

  @app.get('/', response_class=responses.HTMLResponse)
  async def index():
    return page

  @app.get('/v1/models/{name}')
  async def model_status(name: str):
    return {'model_version_status': [_status(servable(name, None))]}

  @app.get('/v1/models/{name}/versions/{version}')
  async def version_status(name: str, version: str):
    return {'model_version_status': [_status(servable(name, version))]}

  @app.post('/v1/models/{name}:predict')
  async def predict_latest(name: str, request: fastapi.Request):
    return await predict(name, None, request)

  @app.post('/v1/models/{name}/versions/{version}:predict')
  async def predict_version(name: str, version: str, request: fastapi.Request):
    return await predict(name, version, request)

  return app


def serve(model_dir: str, host: str = configs.SERVE_HOST, port: int = configs.SERVE_PORT,
          model_name: str = configs.PIPELINE_NAME,
          max_upload_mb: float = configs.SERVE_MAX_UPLOAD_MB,
          max_megapixels: float = decoding.DEFAULT_MAX_MEGAPIXELS,
          max_batch: int = configs.SERVE_MAX_BATCH,
          batch_timeout_ms: float = configs.SERVE_BATCH_TIMEOUT_MS,
          poll_seconds: float = configs.SERVE_POLL_SECONDS) -> None:
  """Loads the newest version under `model_dir` and serves until interrupted."""
  import uvicorn  # pylint: disable=import-outside-toplevel
  versions = ModelVersions(model_dir)
  versions.refresh()
  if versions.current is None:
    reasons = '; '.join(f'version {v}: {why}' for v, why in versions.failed.items())
    raise ValueError(f'--model {model_dir}: no loadable numbered version '
                     f'({reasons or "none found"}); give the serving folder the pipeline '
                     'pushes to, e.g. outputs/serving_model')
  versions.watch(poll_seconds)
  app = create_app(versions, model_name, max_upload_mb, max_megapixels, max_batch,
                   batch_timeout_ms)
  print(f'Serving {model_name} version {versions.current.version} from {model_dir}\n'
        f'  web page  http://{host}:{port}/\n'
        f'  REST API  http://{host}:{port}/v1/models/{model_name}:predict', flush=True)
  try:
    uvicorn.run(app, host=host, port=port, log_level='warning', timeout_graceful_shutdown=10)
  finally:
    versions.stop()
