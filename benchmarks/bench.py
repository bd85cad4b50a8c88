"""`make bench`: each stage measured against the raw operation under it, in one run.

Absolute figures depend on the machine; ratios to the raw TensorFlow or Beam operation
on the same machine, in the same run, on the same data, do not (much). Each figure is
the median of several runs, ours and the raw operation taking turns so that the
machine's drift touches both alike. One-time costs (start-up, model loading, tracing)
are excluded from both sides: by warm-up calls before timing; for the embedding stage,
by timing from its first batch's results to its last; for the ingestion job, by timing a
short and a long run and dividing the extra items by the extra time.

  embed_ratio             the ingestion job's embedding stage (RunInference) / raw
                          batched calls of the same Inception-ResNet-v2      goal >= 0.9
  ingest_ratio            the ingestion job without embeddings (with its progress line)
                          / the same decode and TF operations, serialization and
                          writing in a plain loop                           >= 0.8
  record_bytes_per_image  bytes on disk per example                          <= 200000
  train_input_ratio       training steps/s from the TFRecords / from the same batches
                          in memory, in the Trainer's precision              >= 0.95
                          (train_step_s: seconds per training step, reported)
  serve_overhead_ratio    serving_default latency, 256x256 JPEG in, JPEG out / the bare
                          networks on prepared tensors                       <= 1.15
  serve_batch_ratio       photos/s that `colorizer serve` answers to 8 clients posting
                          256x256 JPEGs at once / the same networks (`from_l`) on the
                          same photos' L in batches of 8                     >= 0.8
                          (serve_lone_client_s: a lone client's seconds per request)
  fullres_ratio           serving_default latency, 12 megapixels / 256x256, JPEG in and
                          JPEG out                                           <= 3
                          (fullres_codecs_ratio: decoding the 12-megapixel JPEG and
                          encoding its JPEG answer alone / 256x256 serving_default;
                          fullres_png_s: the same photo as PNG in, PNG out, reported)
  ingest_rss_ratio        peak memory of `colorizer ingest` on 10x the photos / 1x  <= 1.2
  colorize_ratio          the `colorizer colorize` job's photos/s on 256x256 photos (its
                          default options, its progress line) / raw batched `from_l`
                          calls (embedding included) on the same photos' L   >= 0.8
  colorize_rss_ratio      peak memory of `colorizer colorize` on 10x the photos / 1x  <= 1.2
  colorize_fullres_s      seconds per 12-megapixel photo inside the job, in one process
                          (reported, no goal)
  evaluator_ratio         eval examples/s through TFX's Evaluator (our executor's Do, TFMA
                          on the DirectRunner as the pipeline runs it) / raw batched
                          calls of the same signatures (`evaluation_statistics`,
                          `gray_statistics`) with the same metrics adding up their
                          statistics in plain TensorFlow, on the same records  >= 1.0
  evaluator_rss_ratio     peak memory of the Evaluator on 10x the eval examples / 1x  <= 1.1
  evaluator_kb_per_example  its growth between 1x and 100x the eval examples, KB per extra
                          example  <= 16 (a peak moves 5 to 20 MB from one run to the next:
                          over 10x's 243 extra examples that alone is 20 to 80 KB, over
                          100x's 2,673 it is 2 to 8; the 10x figure is reported beside it)
  ingest_ratio_without_line, colorize_ratio_without_line
                          the same jobs without their progress line, the three measures
                          taking turns (reported beside the two: within 2%, issue 31;
                          docs/performance.md, "The progress line's cost")
  colorize_gcs_requests_per_photo  HTTP requests to Cloud Storage per photo of a colorize
                          job from a bucket to a bucket (reported, no goal)
  push_gcs_requests_per_mb  HTTP requests of a push to a bucket per MB of the model
                          (reported; push_gcs_requests: per version)
The last two are counted by the emulator of scripts/with-gcs-emulator (make bench runs
under it); elsewhere they are not measured, and the table says so.

"""
import base64
import concurrent.futures
import dataclasses
import glob
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Callable, Dict, List, Optional, Sequence

import apache_beam as beam
import numpy as np
from PIL import Image, ImageOps
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import path_utils
from tfx.utils import proto_utils

from commands import colorize
from components import evaluator as served_model_evaluator
from components import ingest
from components import input_files
from components import progress
from components import pusher
from model import cropping
from model import decoding
from model import embedding
from model import hyperparameters as hp
from model import metrics
from model import network
from model import records
from model import scaling
from model import serving
from model import trainer
from pipeline import configs
from pipeline import pipeline as colorizer_pipeline

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       'data', 'samples')
IN_MEMORY = ['--direct_running_mode=in_memory', '--direct_num_workers=1']

GOALS = {  # key: (comparison, goal)
    'embed_ratio': ('>=', 0.9),
    'ingest_ratio': ('>=', 0.8),
    'record_bytes_per_image': ('<=', 200000),
    'train_input_ratio': ('>=', 0.95),
    'serve_overhead_ratio': ('<=', 1.15),
    'serve_batch_ratio': ('>=', 0.8),
    'fullres_ratio': ('<=', 3.0),
    'ingest_rss_ratio': ('<=', 1.2),
    'colorize_ratio': ('>=', 0.8),
    'colorize_rss_ratio': ('<=', 1.2),
    'evaluator_ratio': ('>=', 1.0),
    'evaluator_rss_ratio': ('<=', 1.1),
    'evaluator_kb_per_example': ('<=', 16),
}


@dataclasses.dataclass
class Sizes:
  """How much work each benchmark does; `make bench` uses FULL, the test TINY."""
  repeats: int = 5
  embed_batch: int = ingest.EMBEDDING_BATCH_SIZE  # the ingestion job's batch size
  embed_photos: int = 96          # timed after the first batch, on both sides
  ingest_copies: int = 10         # the bundled photos, this many times (varied)
  ingest_short_copies: int = 2
  train_batch: int = 8
  train_steps: int = 12
  latency_calls: int = 10
  fullres_side: Sequence[int] = (4000, 3000)  # 12 megapixels
  fullres_calls: int = 3
  colorize_fullres_photos: int = 9  # the long run; a 3-photo run's extra 1.4 s drowned in
                                    # the start-up's noise, and read -0.15 s a photo
  rss_copies: int = 10
  rss_side_by_side: bool = False  # the 1x and 10x processes at once (_peak_rss_mb)
  photo_limit: Optional[int] = 27   # of the bundled photos (in name order), per copy
  beam_args: Sequence[str] = configs.LOCAL_BEAM_ARGS  # the jobs', as users run them
  colorize_photos: int = 160        # 256x256 photos in the long colorize run
  colorize_short_photos: int = 32
  eval_examples: int = 480          # eval examples in the long Evaluator run: at 160, the
                                    # start-ups' noise moved turns by 10% either way
  eval_short_examples: int = 16
  eval_repeats: int = 3             # fewer: each repeat runs the Evaluator twice (minutes)
  eval_batch: int = 16              # the raw side's batch
  eval_rss_examples: int = 27       # the Evaluator's 1x; rss_copies times that is its 10x
  eval_rss_long_copies: int = 100   # its longest run, for evaluator_kb_per_example (above)
  serve_clients: int = 8            # posting 256x256 JPEGs to `colorizer serve` at once
  serve_photos_per_client: int = 8
  gcs_photos: int = 8               # colorize from a bucket: this many photos, then twice as many


FULL = Sizes()
TINY = Sizes(repeats=1, embed_batch=2, embed_photos=4, ingest_copies=1, ingest_short_copies=1,
             train_batch=2, train_steps=2, latency_calls=2, fullres_side=(640, 480),
             fullres_calls=1, colorize_fullres_photos=1, rss_copies=2, rss_side_by_side=True,
             photo_limit=3, beam_args=IN_MEMORY, colorize_photos=2, colorize_short_photos=2,
             eval_examples=2, eval_short_examples=2, eval_repeats=1, eval_batch=2,
             eval_rss_examples=2, eval_rss_long_copies=3, serve_clients=2,
             serve_photos_per_client=1, gcs_photos=1)


def interleaved(repeats: int, *measures: Callable[[], float]) -> List[Dict]:
  """Each measure's median of `repeats` runs, the measures taking turns."""
  runs = [[] for _ in measures]
  for _ in range(repeats):
    for measure, its_runs in zip(measures, runs):
      its_runs.append(measure())
  return [{'median': statistics.median(its_runs), 'runs': its_runs} for its_runs in runs]


def machine() -> Dict:
  model_name = platform.processor()
  if os.path.exists('/proc/cpuinfo'):
    for line in open('/proc/cpuinfo'):
      if line.startswith('model name'):
        model_name = line.split(':', 1)[1].strip()
        break
  import tfx  # pylint: disable=import-outside-toplevel
  return {'cpu': model_name, 'cores': os.cpu_count(), 'python': platform.python_version(),
          'tensorflow': tf.__version__, 'tfx': tfx.__version__, 'apache_beam': beam.__version__,
          'gpus': len(tf.config.list_physical_devices('GPU'))}


def make_photos(folder: str, copies: int, limit: Optional[int] = None) -> List[str]:
  """The bundled photos, `copies` times, each copy cropped and mirrored differently so
  that no two files are the same (ingestion drops duplicates)."""
  os.makedirs(folder, exist_ok=True)
  sources = sorted(glob.glob(os.path.join(SAMPLES, '*.jpg')))[:limit]
  paths = []
  for copy in range(copies):
    for i, source in enumerate(sources):
      image = Image.open(source).convert('RGB')
      w, h = image.size
      image = image.crop((copy % 5, copy // 5, w - copy % 3, h - copy // 3))
      if copy % 2:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
      path = os.path.join(folder, f'{copy:03d}-{i:03d}.jpg')
      image.save(path, 'JPEG', quality=92)
      paths.append(path)
  return paths


def decoded_photos(paths: Sequence[str]) -> List[ingest.Photo]:
  """Photos as ingestion's decode stage hands them to the embedding stage."""
  photos = []
  for path in paths:
    with open(path, 'rb') as f:
      photo = decoding.decode_photo(f.read(), draft_size=scaling.IMAGE_SIZE)
    lab = cropping.photo_to_records(photo.rgb)
    photos.append(ingest.Photo(path, path, photo.height, photo.width, lab['l'].numpy(),
                               lab['ab'].numpy(), lab['embedding_input'].numpy()))
  return photos


def _timed_beam(build: Callable[[beam.Pipeline], None], beam_args: Sequence[str],
                job: Optional[Callable[[], progress.Job]] = None) -> float:
  """Seconds to build and run a pipeline; with `job`, showing its progress line."""
  start = time.perf_counter()
  pipeline = beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(
      list(beam_args)))
  with progress.show(pipeline, job) if job else pipeline:
    build(pipeline)
  return time.perf_counter() - start


def steady_rate(run: Callable[[int], float], short: int, long: int) -> float:
  """Items/s of a job in steady state: (long - short) items / the extra time, so the
  job's start-up (the same in both runs) cancels out. When short == long (bench.TINY:
  too small to separate the steady state from start-up), one run's items/s."""
  if long == short:
    return long / run(long)
  return (long - short) / max(run(long) - run(short), 1e-9)


def _stamp(photo: ingest.Photo) -> ingest.Photo:
  """Records when `photo` left the embedding stage, in a Beam metric (so that it is
  collected from any runner's workers): microseconds of the wall clock, which every
  worker process shares."""
  beam.metrics.Metrics.distribution('bench', 'embedded_at_us').update(int(time.time() * 1e6))
  return photo


def bench_embed(photos: List[ingest.Photo], weights: embedding.EmbeddingWeights,
                sizes: Sizes) -> Dict:
  batch = sizes.embed_batch
  count = batch + sizes.embed_photos

  def ours() -> float:
    """Photos/s from the first batch's results to the last's: loading the model and
    its first call come before the first results, so they are not counted (the raw
    side skips them with a warm-up call). Photos enter as indices: beam.Create would
    encode every 1 MB photo into the pipeline and time that instead."""
    pipeline = beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(
        list(IN_MEMORY)))
    _ = (pipeline
         | beam.Create(range(count), reshuffle=False)
         | beam.Map(lambda i, photos: photos[i % len(photos)], photos)
         | ingest.EmbedPhotos(weights, batch)
         | beam.Map(_stamp))
    result = pipeline.run()
    result.wait_until_finish()
    [stamps] = result.metrics().query(beam.metrics.MetricsFilter().with_name(
        'embedded_at_us'))['distributions']
    # The first batch's photos leave together: from then to the last photo's leaving.
    first, last = stamps.committed.min, stamps.committed.max
    return (count - batch) / max((last - first) / 1e6, 1e-9)

  network_ = embedding.build_embedder(weights)
  size = scaling.EMBEDDING_INPUT_SIZE
  call = tf.function(lambda x: network_(x, training=False)).get_concrete_function(
      tf.TensorSpec([None, size, size, 3], tf.float32))
  pool = (photos * (count // len(photos) + 1))[batch:count]
  inputs = np.stack([p.embedding_input for p in pool])

  def raw() -> float:
    call(tf.constant(inputs[:batch]))  # warm-up
    start = time.perf_counter()
    for i in range(0, len(inputs), batch):
      call(tf.constant(inputs[i:i + batch])).numpy()
    return len(inputs) / (time.perf_counter() - start)

  ours_rate, raw_rate = interleaved(sizes.repeats, ours, raw)
  return {'embed_ratio': ours_rate['median'] / raw_rate['median'],
          'embed_images_per_s': ours_rate, 'raw_predict_images_per_s': raw_rate,
          'embed_batch_size': batch}


class _ZeroEmbedding(beam.PTransform):
  """Stands in for EmbedPhotos when the embedding stage is measured on its own."""

  def expand(self, photos):
    zeros = np.zeros(scaling.EMBEDDING_DIM, np.float32)
    return photos | beam.Map(
        lambda p: dataclasses.replace(p, embedding=zeros, embedding_input=None))


def _ingest_without_embeddings(pipeline: beam.Pipeline, pattern: str, out: str) -> None:
  splits = ingest.splits_from_eval_percent(configs.EVAL_PERCENT)
  split_dirs = {name: records.split_dir(out, name) for name, _ in splits}
  paths = pipeline | input_files.MatchPhotos(pattern)
  hashed = paths | ingest.HashPhotos()
  unique = hashed.hashed | ingest.DropDuplicates()
  decoded = unique.unique | ingest.DecodePhotos(decoding.DEFAULT_MAX_MEGAPIXELS)
  _ = (decoded.photos | _ZeroEmbedding() | ingest.WritePhotos(split_dirs, splits))


def _plain_loop(paths: Sequence[str], out: str) -> None:
  """The same work without Beam: read, hash, decode, Lab, quantize, serialize, write."""
  import hashlib  # pylint: disable=import-outside-toplevel
  zeros = np.zeros(scaling.EMBEDDING_DIM, np.float32)
  options = tf.io.TFRecordOptions(compression_type=records.COMPRESSION)
  with tf.io.TFRecordWriter(os.path.join(out, 'plain.gz'), options) as writer:
    for path in paths:
      data = open(path, 'rb').read()
      sha = hashlib.sha256(data).hexdigest()
      photo = decoding.decode_photo(data, draft_size=scaling.IMAGE_SIZE)
      lab = cropping.photo_to_records(photo.rgb)
      float(lab['colourfulness'])
      writer.write(records.make_example(
          l=lab['l'].numpy(), ab=lab['ab'].numpy(), embedding=zeros, source=path,
          content_sha256=sha, height=photo.height, width=photo.width).SerializeToString())


def bench_ingest(workdir: str, sizes: Sizes, beam_args: Sequence[str],
                 without_line: bool = False) -> Dict:
  """With `without_line`, also the ratio of the job without its progress line, the
  three measures taking turns (docs/performance.md, "The progress line's cost")."""
  short, long = sizes.ingest_short_copies, sizes.ingest_copies
  folders = {n: os.path.join(workdir, f'photos-{n}') for n in (short, long)}
  files = {n: make_photos(folder, n, sizes.photo_limit) for n, folder in folders.items()}
  outputs = []  # (copies, folder) of each Beam run

  def ours(copies: int, line: bool = True) -> float:
    out = os.path.join(workdir, f'ingested-{len(outputs)}')
    outputs.append((copies, out))
    return _timed_beam(  # With its progress line, as users run it.
        lambda p: _ingest_without_embeddings(p, os.path.join(folders[copies], '*'), out),
        beam_args, (lambda: ingest.progress_job(len(files[copies]))) if line else None)

  def plain(copies: int) -> float:
    start = time.perf_counter()
    _plain_loop(files[copies], tempfile.mkdtemp(dir=workdir))
    return time.perf_counter() - start

  def rate(run: Callable[[int], float]) -> Callable[[], float]:
    per_copy = len(files[long]) // long
    return lambda: per_copy * steady_rate(run, short, long)

  plain(short)  # TensorFlow's and tfio's kernels load once, for both sides.
  without = [rate(lambda copies: ours(copies, line=False))] if without_line else []
  ours_rate, plain_rate, *bare_rate = interleaved(sizes.repeats, rate(ours), rate(plain),
                                                  *without)
  written = glob.glob(os.path.join(records.split_dir(outputs[-1][1], '*'),
                                   '*' + records.RECORD_SUFFIX))
  count = sum(1 for f in written
              for _ in tf.data.TFRecordDataset(f, compression_type=records.COMPRESSION))
  results = {'ingest_ratio': ours_rate['median'] / plain_rate['median'],
             'ingest_images_per_s': ours_rate, 'plain_loop_images_per_s': plain_rate,
             'ingest_photos': len(files[long]), 'records_dir': outputs[-1][1],
             'record_bytes_per_image': sum(os.path.getsize(f) for f in written) / count}
  for bare in bare_rate:
    results.update(ingest_ratio_without_line=bare['median'] / plain_rate['median'],
                   ingest_images_per_s_without_line=bare)
  return results


def bench_train_input(records_dir: str, sizes: Sizes) -> Dict:
  pattern = [os.path.join(records.split_dir(records_dir, '*'), '*' + records.RECORD_SUFFIX)]
  from_records = trainer.input_fn(pattern, sizes.train_batch, training=True)
  in_memory = from_records.take(sizes.train_steps).cache().repeat()
  for _ in in_memory.take(sizes.train_steps):  # Fills the cache.
    pass
  _, precision = trainer.distribution_strategy()  # mixed bfloat16 where the CPU has it
  with trainer.precision(precision):
    colorizer = trainer.compiled_colorizer(hp.DEFAULTS[hp.LEARNING_RATE])

  def steps_per_s(dataset) -> float:
    batches = iter(dataset)  # Filling the shuffle buffer is start-up: not timed.
    for _ in range(2):
      colorizer.train_on_batch(*next(batches))
    start = time.perf_counter()
    for _ in range(sizes.train_steps):
      colorizer.train_on_batch(*next(batches))
    return sizes.train_steps / (time.perf_counter() - start)

  ours, memory = interleaved(sizes.repeats, lambda: steps_per_s(from_records),
                             lambda: steps_per_s(in_memory))
  return {'train_input_ratio': ours['median'] / memory['median'],
          'train_steps_per_s_from_records': ours, 'train_steps_per_s_in_memory': memory,
          'train_batch_size': sizes.train_batch, 'train_precision': precision,
          'train_step_s': 1 / ours['median']}


def _latency(call: Callable[[], object], calls: int) -> Dict:
  call()  # warm-up (tracing, first allocations)
  times = []
  for _ in range(calls):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  return {'median': statistics.median(times), 'runs': times}


def _jpeg(seed: int, width: int, height: int) -> bytes:
  rng = np.random.default_rng(seed)
  small = rng.integers(0, 255, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
  image = Image.fromarray(small).resize((width, height), Image.BICUBIC)
  buffer = io.BytesIO()
  image.save(buffer, 'JPEG', quality=90)
  return buffer.getvalue()


def bench_serve(export_dir: str, weights: embedding.EmbeddingWeights, sizes: Sizes) -> Dict:
  """The exported model's serving_default against the bare networks (the same
  architecture; latency does not depend on the weights' values)."""
  signature = tf.saved_model.load(export_dir).signatures[serving.SERVING_DEFAULT]
  colorizer = network.build_colorizer()
  small = tf.constant([_jpeg(0, scaling.IMAGE_SIZE, scaling.IMAGE_SIZE)])
  large = tf.constant([_jpeg(1, *sizes.fullres_side)])
  embedder = embedding.build_embedder(weights)
  size, dim = scaling.IMAGE_SIZE, scaling.EMBEDDING_INPUT_SIZE

  @tf.function(input_signature=[tf.TensorSpec([1, size, size, 1], tf.float32),
                                tf.TensorSpec([1, dim, dim, 3], tf.float32)])
  def bare(l, embedding_input):
    return colorizer({network.L_INPUT: l, network.EMBEDDING_INPUT: embedder(embedding_input)})

  l = tf.random.uniform([1, size, size, 1], -1, 1)
  answer = tf.io.decode_image(signature(image_bytes=large)[serving.OUTPUT_KEY][0])
  embedding_input = tf.random.uniform([1, dim, dim, 3], -1, 1)
  serve_small, bare_forward, serve_large, codecs = interleaved(
      sizes.repeats,
      lambda: _latency(lambda: signature(image_bytes=small)[serving.OUTPUT_KEY].numpy(),
                       sizes.latency_calls)['median'],
      lambda: _latency(lambda: bare(l, embedding_input).numpy(),
                       sizes.latency_calls)['median'],
      lambda: _latency(lambda: signature(image_bytes=large)[serving.OUTPUT_KEY].numpy(),
                       sizes.fullres_calls)['median'],
      # What the contract alone costs at full resolution: decoding the JPEG and encoding
      # the JPEG answer (at the same quality), on the same photo and answer.
      lambda: _latency(lambda: (tf.io.decode_jpeg(large[0]).numpy(),
                                tf.io.encode_jpeg(answer, quality=decoding.JPEG_QUALITY).numpy()),
                       sizes.fullres_calls)['median'])
  # The same photo as PNG in, PNG out: reported only, measured once, after the others.
  large_png = tf.constant([tf.io.encode_png(tf.io.decode_jpeg(large[0]),
                                            compression=decoding.PNG_COMPRESSION).numpy()])
  serve_png = _latency(lambda: signature(image_bytes=large_png)[serving.OUTPUT_KEY].numpy(),
                       sizes.fullres_calls)
  return {'serve_overhead_ratio': serve_small['median'] / bare_forward['median'],
          'fullres_ratio': serve_large['median'] / serve_small['median'],
          'fullres_codecs_ratio': codecs['median'] / serve_small['median'],
          'serve_256_s': serve_small, 'bare_forward_s': bare_forward,
          'serve_fullres_s': serve_large, 'fullres_codecs_s': codecs,
          'fullres_png_s': serve_png,
          'fullres_megapixels': sizes.fullres_side[0] * sizes.fullres_side[1] / 1e6}


def _post_photo(session, url: str, photo: bytes) -> None:
  answer = session.post(url, json={'instances': [{'b64': base64.b64encode(photo).decode()}]},
                        timeout=600)
  answer.raise_for_status()
  base64.b64decode(answer.json()['predictions'][0]['b64'])


def _clients_rate(url: str, photos_of_clients: List[List[bytes]]) -> float:
  """Photos/s answered to clients that each post their photos in a row, all at once."""
  import requests  # pylint: disable=import-outside-toplevel

  def client(photos: List[bytes]) -> None:
    with requests.Session() as session:
      for photo in photos:
        _post_photo(session, url, photo)

  start = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(len(photos_of_clients)) as pool:
    list(pool.map(client, photos_of_clients))
  return sum(map(len, photos_of_clients)) / (time.perf_counter() - start)


def bench_serve_batch(workdir: str, export_dir: str, sizes: Sizes) -> Dict:
  """`colorizer serve`'s app under uvicorn, in a thread of this process: photos/s to
  `serve_clients` clients posting 256x256 JPEGs at once, against the same networks
  (`from_l`, embedding included) called on the same photos' L in batches of one photo
  per client, the batch that the server makes when every client's photo shares a call.
  Also a lone client's latency, each request posted after the last one's answer."""
  import requests  # pylint: disable=import-outside-toplevel
  import uvicorn  # pylint: disable=import-outside-toplevel
  from commands import serve  # pylint: disable=import-outside-toplevel
  clients = sizes.serve_clients
  paths = square_photos(os.path.join(workdir, 'serve-photos'),
                        clients * sizes.serve_photos_per_client)
  photos = [open(path, 'rb').read() for path in paths]
  folder = os.path.join(workdir, 'serve-model')
  os.makedirs(folder, exist_ok=True)
  os.symlink(os.path.abspath(export_dir), os.path.join(folder, '1'))
  versions = serve.ModelVersions(folder)
  versions.refresh()
  app = serve.create_app(versions)
  batcher = app.state.batcher
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  server = uvicorn.Server(uvicorn.Config(app, host='127.0.0.1', port=port, log_level='warning'))
  thread = threading.Thread(target=server.run, daemon=True)
  thread.start()
  while not server.started:
    assert thread.is_alive(), 'the server did not start'
    time.sleep(0.05)
  url = f'http://127.0.0.1:{port}/v1/models/colorizer:predict'
  photos_of_clients = [photos[c::clients] for c in range(clients)]
  batch = min(clients, batcher.max_batch)
  signature = versions.current.loaded.signatures[serving.FROM_L]
  l = np.stack([colorize.decode(colorize.Input(path, ''), decoding.DEFAULT_MAX_MEGAPIXELS).l
                for path in paths])

  def raw() -> float:
    start = time.perf_counter()
    for i in range(0, len(l), batch):
      signature(l=tf.constant(l[i:i + batch]))['ab'].numpy()
    return len(l) / (time.perf_counter() - start)

  try:
    _clients_rate(url, [p[:1] for p in photos_of_clients])  # warm-up: the batch's shapes
    signature(l=tf.constant(l[:batch]))
    batcher.batch_sizes.clear()
    served, forward = interleaved(sizes.repeats, lambda: _clients_rate(url, photos_of_clients),
                                  raw)
    sizes_seen = dict(batcher.batch_sizes)
    with requests.Session() as session:
      lone = _latency(lambda: _post_photo(session, url, photos[0]), sizes.latency_calls)
  finally:
    server.should_exit = True
    thread.join()
  return {'serve_batch_ratio': served['median'] / forward['median'],
          'serve_clients_images_per_s': served, 'raw_batched_forward_images_per_s': forward,
          'serve_clients': clients, 'serve_raw_batch': batch,
          'serve_batch_sizes': {str(size): calls for size, calls in sorted(sizes_seen.items())},
          'serve_mean_batch': sum(s * n for s, n in sizes_seen.items()) / sum(sizes_seen.values()),
          'serve_lone_client_s': lone}


def _peak_rss_mb(commands: Dict[int, List[str]], side_by_side: bool) -> Dict[int, float]:
  """The peak resident memory of each command: its VmHWM, read until it exits. (The
  rusage of a child counts the parent's memory at fork, so it cannot be used.) Side by
  side, the commands run at once: bench.TINY's way to save time. `make bench` runs them
  one after the other, since Beam's batch sizes follow its timing, and so can memory."""
  peaks = {}
  pending = list(commands.items())
  while pending:
    started = pending if side_by_side else pending[:1]
    pending = pending[len(started):]
    # From the clone's root: `-m benchmarks.bench` is not installed.
    running = {key: subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'), cwd=REPO)
               for key, argv in started}
    peaks.update(dict.fromkeys(running, 0.0))
    while any(process.poll() is None for process in running.values()):
      for key, process in running.items():
        try:
          with open(f'/proc/{process.pid}/status') as f:
            peaks[key] = max(peaks[key], float(f.read().split('VmHWM:')[1].split()[0]) / 1024)
        except (OSError, IndexError):
          pass
      time.sleep(0.05)
    for key, process in running.items():
      if process.returncode:
        raise RuntimeError(f'{" ".join(commands[key])} failed: '
                           f'{process.stderr.read().decode()[-2000:]}')
  return peaks


def bench_ingest_rss(workdir: str, sizes: Sizes) -> Dict:
  colorizer_command = os.path.join(os.path.dirname(sys.executable), 'colorizer')
  commands = {}
  for copies in (1, sizes.rss_copies):
    folder = os.path.join(workdir, f'rss-photos-{copies}')
    make_photos(folder, copies, sizes.photo_limit)
    commands[copies] = [
        colorizer_command, 'ingest', '--data', folder, '--out',
        os.path.join(workdir, f'rss-out-{copies}'), '--embedding-weights', 'none',
        *[f'--beam-arg={arg}' for arg in IN_MEMORY]]
  peaks = _peak_rss_mb(commands, sizes.rss_side_by_side)
  return {'ingest_rss_ratio': peaks[sizes.rss_copies] / peaks[1],
          'ingest_peak_rss_mb_1x': peaks[1], f'ingest_peak_rss_mb_{sizes.rss_copies}x':
              peaks[sizes.rss_copies], 'rss_photos_1x': len(os.listdir(
                  os.path.join(workdir, 'rss-photos-1')))}


def square_photos(folder: str, count: int) -> List[str]:
  """`count` JPEGs of the model's size: the bundled photos' centred squares, cycled."""
  os.makedirs(folder, exist_ok=True)
  sources = sorted(glob.glob(os.path.join(SAMPLES, '*.jpg')))
  side = scaling.IMAGE_SIZE
  paths = []
  for i in range(count):
    image = Image.open(sources[i % len(sources)]).convert('RGB')
    image = ImageOps.fit(image, (side, side))
    if (i // len(sources)) % 2:
      image = image.transpose(Image.FLIP_LEFT_RIGHT)
    paths.append(os.path.join(folder, f'{i:04d}.jpg'))
    image.save(paths[-1], 'JPEG', quality=92)
  return paths


def _timed_colorize(folder: str, export_dir: str, out: str, beam_args: Sequence[str],
                    line: bool = True) -> float:
  start = time.perf_counter()
  report = colorize.colorize([folder], export_dir, out, beam_args=beam_args, progress_line=line)
  assert report['written'] == report['total'], report['rejected']
  return time.perf_counter() - start


def bench_colorize(workdir: str, export_dir: str, sizes: Sizes,
                   without_line: bool = False) -> Dict:
  """The colorize job (its steady state: start-up cancels out of the long run minus the
  short one) against the batched forward pass it is built on, on the same photos. With
  `without_line`, also the job without its progress line, the three taking turns."""
  short, long = sizes.colorize_short_photos, sizes.colorize_photos
  folders = {n: os.path.join(workdir, f'colorize-{n}') for n in (short, long)}
  files = {n: square_photos(folder, n) for n, folder in folders.items()}
  runs = []

  def ours(count: int, line: bool = True) -> float:
    runs.append(count)
    return _timed_colorize(folders[count], export_dir,
                           os.path.join(workdir, f'colorized-{len(runs)}'), sizes.beam_args,
                           line)

  signature = tf.saved_model.load(export_dir).signatures[serving.FROM_L]
  l = np.stack([colorize.decode(colorize.Input(path, ''), decoding.DEFAULT_MAX_MEGAPIXELS).l
                for path in files[long]])
  batch = colorize.BATCH_SIZE

  def raw() -> float:
    signature(l=tf.constant(l[:batch]))  # warm-up
    start = time.perf_counter()
    for i in range(0, len(l), batch):
      signature(l=tf.constant(l[i:i + batch]))['ab'].numpy()
    return len(l) / (time.perf_counter() - start)

  without = ([lambda: steady_rate(lambda count: ours(count, line=False), short, long)]
             if without_line else [])
  job, forward, *bare = interleaved(sizes.repeats, lambda: steady_rate(ours, short, long), raw,
                                    *without)
  results = {'colorize_ratio': job['median'] / forward['median'],
             'colorize_images_per_s': job, 'raw_from_l_images_per_s': forward,
             'colorize_photos': long, 'colorize_batch_size': batch}
  for rate in bare:
    results.update(colorize_ratio_without_line=rate['median'] / forward['median'],
                   colorize_images_per_s_without_line=rate)
  return results


def bench_colorize_fullres(workdir: str, export_dir: str, sizes: Sizes) -> Dict:
  """Seconds per full-resolution photo inside the job: a run on colorize_fullres_photos
  minus a run on one, per extra photo (one photo alone: its whole run). In one process
  (the in-memory runner): with a worker per core, the longer run could load the model
  in a second worker, and the difference would count that."""
  folders = {}
  for count in sorted({1, sizes.colorize_fullres_photos}):
    folders[count] = os.path.join(workdir, f'fullres-{count}')
    os.makedirs(folders[count], exist_ok=True)
    for i in range(count):
      with open(os.path.join(folders[count], f'{i}.jpg'), 'wb') as f:
        f.write(_jpeg(i, *sizes.fullres_side))
  runs = []

  def seconds(count: int) -> float:
    runs.append(count)
    return _timed_colorize(folders[count], export_dir,
                           os.path.join(workdir, f'fullres-out-{len(runs)}'), IN_MEMORY)

  many = sizes.colorize_fullres_photos
  if many == 1:
    per_photo = lambda: seconds(1)  # noqa: E731
  else:
    per_photo = lambda: (seconds(many) - seconds(1)) / (many - 1)  # noqa: E731
  [result] = interleaved(sizes.repeats, per_photo)
  return {'colorize_fullres_s': result['median'], 'colorize_fullres_runs_s': result['runs'],
          'colorize_fullres_megapixels': sizes.fullres_side[0] * sizes.fullres_side[1] / 1e6}


def bench_colorize_rss(workdir: str, export_dir: str, sizes: Sizes) -> Dict:
  """Peak memory of `colorizer colorize` in one process (the in-memory DirectRunner, so
  that the one process measured holds the work) on the photos 1x and rss_copies x."""
  colorizer_command = os.path.join(os.path.dirname(sys.executable), 'colorizer')
  commands = {}
  for copies in (1, sizes.rss_copies):
    folder = os.path.join(workdir, f'colorize-rss-photos-{copies}')
    make_photos(folder, copies, sizes.photo_limit)
    commands[copies] = [
        colorizer_command, 'colorize', folder, '--model', export_dir, '--out',
        os.path.join(workdir, f'colorize-rss-out-{copies}'),
        *[f'--beam-arg={arg}' for arg in IN_MEMORY]]
  peaks = _peak_rss_mb(commands, sizes.rss_side_by_side)
  return {'colorize_rss_ratio': peaks[sizes.rss_copies] / peaks[1],
          'colorize_peak_rss_mb_1x': peaks[1],
          f'colorize_peak_rss_mb_{sizes.rss_copies}x': peaks[sizes.rss_copies]}


def _gcs_requests(folder: str) -> int:
  """HTTP requests sent to the emulator so far about the objects under `folder` (its
  log: a line each). TensorFlow's and Beam's clients name the object, or the prefix
  listed, in every request's URL; counting only these leaves out other clients of the
  same emulator, such as tests running beside the benchmark."""
  token = folder.split('/', 3)[3]  # gs://bucket/<token>: one path component, no '/'.
  with open(os.environ['GCS_EMULATOR_REQUEST_LOG']) as f:
    return sum(1 for line in f if token in line)


def bench_gcs_requests(workdir: str, export_dir: str, sizes: Sizes) -> Dict:
  """HTTP requests to Cloud Storage, as the emulator counts them: a colorize job from a
  bucket to a bucket per photo (a run on 2n photos minus one on n: the job's own
  requests, matching and the report, cancel out; the model is local), and a push of
  `export_dir` to a bucket, per version and per MB. {} outside the emulator."""
  if 'GCS_EMULATOR_REQUEST_LOG' not in os.environ:
    return {}
  bucket = f'gs://{os.environ["GCS_EMULATOR_BUCKETS"].split()[0]}/bench-{uuid.uuid4().hex[:8]}'
  counts = {}
  for count in (sizes.gcs_photos, 2 * sizes.gcs_photos):
    photos = f'{bucket}/photos-{count}'
    for path in square_photos(os.path.join(workdir, f'gcs-photos-{count}'), count):
      tf.io.gfile.copy(path, f'{photos}/{os.path.basename(path)}')
    before = _gcs_requests(bucket)
    report = colorize.colorize([photos], export_dir, f'{bucket}/colorized-{count}',
                               beam_args=IN_MEMORY)
    counts[count] = _gcs_requests(bucket) - before
    assert report['written'] == count, report['rejected']
  megabytes = sum(os.path.getsize(os.path.join(root, name))
                  for root, _, names in os.walk(export_dir) for name in names) / 1e6
  before = _gcs_requests(bucket)
  pusher.push_atomically(export_dir, f'{bucket}/serving_model', keep_versions=0)
  push = _gcs_requests(bucket) - before
  return {'colorize_gcs_requests_per_photo':
              (counts[2 * sizes.gcs_photos] - counts[sizes.gcs_photos]) / sizes.gcs_photos,
          'push_gcs_requests': push, 'push_megabytes': megabytes,
          'push_gcs_requests_per_mb': push / megabytes}


def write_eval_split(records_dir: str, folder: str, count: int,
                     shard_examples: Optional[int] = None) -> str:
  """`folder` laid out as an Examples artifact whose eval split holds `count` records: the
  ingested ones (both splits) in turn, each serialized anew with its own `source` (`#<n>`
  appended), so that no two are the same. In shards of `shard_examples`; else in as many
  shards as ingestion wrote `records_dir`'s eval split in (one a worker of its runner),
  which is what the Evaluator's workers share out: Beam cannot split a GZIP file, so
  one shard would leave all but one worker idle. Returns `folder`."""
  pattern = os.path.join(records.split_dir(records_dir, '*'), '*' + records.RECORD_SUFFIX)
  ingested = [r.numpy() for r in tf.data.TFRecordDataset(sorted(glob.glob(pattern)),
                                                         records.COMPRESSION)]
  split = records.split_dir(folder, 'eval')
  os.makedirs(split, exist_ok=True)
  options = tf.io.TFRecordOptions(compression_type=records.COMPRESSION)
  ingested_shards = len(glob.glob(os.path.join(records.split_dir(records_dir, 'eval'),
                                               '*' + records.RECORD_SUFFIX)))
  per_shard = shard_examples or -(-count // max(ingested_shards, 1))
  shards = -(-count // per_shard)
  for shard in range(shards):
    name = f'{records.RECORD_PREFIX}-{shard:05d}-of-{shards:05d}{records.RECORD_SUFFIX}'
    with tf.io.TFRecordWriter(os.path.join(split, name), options) as writer:
      for i in range(shard * per_shard, min(count, (shard + 1) * per_shard)):
        example = tf.train.Example.FromString(ingested[i % len(ingested)])
        source = example.features.feature['source'].bytes_list.value
        source[0] += f'#{i}'.encode()
        writer.write(example.SerializeToString())
  return folder


def _eval_split_records(folder: str) -> List[bytes]:
  files = glob.glob(os.path.join(records.split_dir(folder, 'eval'), '*'))
  return [r.numpy() for r in tf.data.TFRecordDataset(files, records.COMPRESSION)]


def run_evaluator(examples_dir: str, export_dir: str, out: str, beam_args: Sequence[str],
                  serving_dir: Optional[str] = None,
                  config: Optional[tfma.EvalConfig] = None) -> Dict[str, float]:
  """TFX's Evaluator as the pipeline runs it: our executor's `Do` on an Examples artifact
  over `examples_dir` (its eval split) and a Model artifact whose Format-Serving is
  `export_dir`, with the pipeline's eval_config (or `config`) and nothing served yet (or
  what `serving_dir` holds). Writes `out`/evaluation and `out`/blessing; returns the
  candidate's metrics."""
  examples = standard_artifacts.Examples()
  examples.uri = examples_dir
  examples.split_names = artifact_utils.encode_split_names(['eval'])
  model = standard_artifacts.Model()
  model.uri = os.path.join(out, 'model')
  os.makedirs(model.uri)
  os.symlink(os.path.abspath(export_dir), path_utils.serving_model_dir(model.uri))
  evaluation = standard_artifacts.ModelEvaluation()
  evaluation.uri = os.path.join(out, 'evaluation')
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = os.path.join(out, 'blessing')
  for artifact in (evaluation, blessing):
    os.makedirs(artifact.uri)
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=list(beam_args), tmp_dir=os.path.join(out, 'tmp'), unique_id='bench')
  served_model_evaluator.Executor(context).Do(
      {standard_component_specs.EXAMPLES_KEY: [examples],
       standard_component_specs.MODEL_KEY: [model]},
      {standard_component_specs.EVALUATION_KEY: [evaluation],
       standard_component_specs.BLESSING_KEY: [blessing]},
      {standard_component_specs.EVAL_CONFIG_KEY:
           proto_utils.proto_to_json(config or colorizer_pipeline.eval_config()),
       standard_component_specs.EXAMPLE_SPLITS_KEY: 'null',
       served_model_evaluator.SERVING_DIR_KEY: serving_dir or os.path.join(out, 'serving')})
  served = serving_dir and serving.served_model(serving_dir)
  return evaluation_metrics(evaluation.uri, tfma.CANDIDATE_KEY if served else None)


def evaluation_metrics(evaluation_uri: str, model_name: Optional[str] = None) -> Dict[str, float]:
  """The overall metrics of one model (`model_name` when there was a baseline) in a
  ModelEvaluation."""
  result = tfma.load_eval_result(evaluation_uri, model_name=model_name)
  (_, by_output), = result.slicing_metrics  # overall only
  return {name: float(value['doubleValue']) for name, value in by_output[''][''].items()}


def bench_evaluator(workdir: str, records_dir: str, export_dir: str, sizes: Sizes) -> Dict:
  """The Evaluator's steady state (a long run minus a short one, so that loading the
  model and starting Beam cancel out) against the batched signature calls and metric
  updates it is built on, in one process, on the long run's records."""
  short, long = sizes.eval_short_examples, sizes.eval_examples
  folders = {n: write_eval_split(records_dir, os.path.join(workdir, f'eval-{n}'), n)
             for n in (short, long)}
  evaluated = {}

  def ours(count: int) -> float:
    start = time.perf_counter()
    evaluated[count] = run_evaluator(
        folders[count], export_dir, tempfile.mkdtemp(prefix='evaluator-', dir=workdir),
        sizes.beam_args)
    return time.perf_counter() - start

  spec = colorizer_pipeline.eval_config().model_specs[0]
  signatures = tf.saved_model.load(export_dir).signatures
  predict, transform = signatures[spec.signature_name], signatures[
      spec.preprocessing_function_names[0]]
  serialized = _eval_split_records(folders[long])
  batch = sizes.eval_batch
  raw_metrics = {}

  def raw() -> float:
    computed = metrics.create_all()

    def update(chunk: List[bytes]) -> None:
      examples = tf.constant(chunk)
      labels = transform(examples=examples)[spec.label_key]
      predictions = predict(examples=examples)[spec.prediction_key]
      for metric in computed.values():
        metric.update_state(labels, predictions)

    update(serialized[:batch])  # warm-up
    for metric in computed.values():
      metric.reset_state()
    start = time.perf_counter()
    for i in range(0, len(serialized), batch):
      update(serialized[i:i + batch])
    elapsed = time.perf_counter() - start
    raw_metrics.update({name: float(metric.result()) for name, metric in computed.items()})
    return len(serialized) / elapsed

  job, direct = interleaved(sizes.eval_repeats, lambda: steady_rate(ours, short, long),
                            raw)
  return {'evaluator_ratio': job['median'] / direct['median'],
          'evaluator_examples_per_s': job, 'raw_eval_examples_per_s': direct,
          'evaluator_examples': long, 'eval_batch_size': batch,
          'evaluator_metrics': evaluated[long], 'raw_eval_metrics': raw_metrics}


def bench_evaluator_rss(workdir: str, records_dir: str, export_dir: str, sizes: Sizes) -> Dict:
  """Peak memory of the Evaluator in a process of its own (`python -m benchmarks.bench
  evaluator`; the in-memory DirectRunner, so that the one process measured holds the
  work) on eval_rss_examples, rss_copies and eval_rss_long_copies times as many, in
  shards of eval_rss_examples. Beam reads a GZIP shard 16 MiB at a time and holds what
  that decompresses to (apache_beam/io/filesystem.py, CompressedFile; about 40 MB here),
  which the 1x shard would fill only in part: in equal shards, the difference is what
  more examples cost (docs/performance.md, "The Evaluator at scale"). The growth per
  example is taken over the longest run, the only one long enough for the growth to
  stand out of how far a peak moves from run to run."""
  commands = {}
  for copies in sorted({1, sizes.rss_copies, sizes.eval_rss_long_copies}):
    folder = write_eval_split(records_dir, os.path.join(workdir, f'eval-rss-{copies}'),
                              copies * sizes.eval_rss_examples, sizes.eval_rss_examples)
    commands[copies] = [
        sys.executable, '-m', 'benchmarks.bench', 'evaluator', folder, export_dir,
        os.path.join(workdir, f'evaluator-rss-{copies}'), *IN_MEMORY]
  peaks = _peak_rss_mb(commands, sizes.rss_side_by_side)

  def kb_per_example(copies: int) -> float:
    return (peaks[copies] - peaks[1]) * 1024 / ((copies - 1) * sizes.eval_rss_examples)

  return {'evaluator_rss_ratio': peaks[sizes.rss_copies] / peaks[1],
          'evaluator_kb_per_example': kb_per_example(sizes.eval_rss_long_copies),
          f'evaluator_kb_per_example_{sizes.rss_copies}x': kb_per_example(sizes.rss_copies),
          **{f'evaluator_peak_rss_mb_{copies}x': peak for copies, peak in peaks.items()},
          'evaluator_rss_examples_1x': sizes.eval_rss_examples,
          'evaluator_rss_copies': sizes.rss_copies,
          'evaluator_rss_long_copies': sizes.eval_rss_long_copies}


def run(out: str, sizes: Sizes = FULL, workdir: Optional[str] = None,
        export_dir: Optional[str] = None, log: Callable[[str], None] = print) -> Dict:
  """Runs every benchmark and writes `out` (JSON); returns the results. Serving is
  measured on `export_dir`, or on a newly exported untrained model."""
  workdir = workdir or tempfile.mkdtemp(prefix='colorizer-bench-')
  weights = embedding.resolve_weights(embedding.RANDOM)
  results = {'machine': machine(), 'goals': {k: f'{c} {g}' for k, (c, g) in GOALS.items()}}
  started = time.time()

  log('ingestion without embeddings vs a plain loop ...')
  results.update(bench_ingest(workdir, sizes, sizes.beam_args, without_line=True))
  log('embedding stage vs raw batched Inception-ResNet-v2 ...')
  photos = decoded_photos(make_photos(os.path.join(workdir, 'embed-photos'), 1,
                                      sizes.photo_limit))
  results.update(bench_embed(photos, weights, sizes))
  log('training input: TFRecords vs in memory ...')
  results.update(bench_train_input(results['records_dir'], sizes))
  log('serving latency ...')
  if export_dir is None:
    export_dir = os.path.join(workdir, 'export')
    serving.export(network.build_colorizer(), weights, export_dir)
  results.update(bench_serve(export_dir, weights, sizes))
  log(f'serving {sizes.serve_clients} clients at once vs raw batched from_l ...')
  results.update(bench_serve_batch(workdir, export_dir, sizes))
  log('peak memory of ingestion, 1x and 10x the photos ...')
  results.update(bench_ingest_rss(workdir, sizes))
  log('colorize job vs raw batched from_l ...')
  results.update(bench_colorize(workdir, export_dir, sizes, without_line=True))
  log('colorize job at full resolution ...')
  results.update(bench_colorize_fullres(workdir, export_dir, sizes))
  log('peak memory of colorize, 1x and 10x the photos ...')
  results.update(bench_colorize_rss(workdir, export_dir, sizes))
  log('HTTP requests to Cloud Storage of colorize and the push ...')
  results.update(bench_gcs_requests(workdir, export_dir, sizes))
  log('Evaluator (TFMA) vs raw batched calls of its signatures and the same metrics ...')
  results.update(bench_evaluator(workdir, results['records_dir'], export_dir, sizes))
  log(f'peak memory of the Evaluator, 1x, {sizes.rss_copies}x and '
      f'{sizes.eval_rss_long_copies}x the eval examples ...')
  results.update(bench_evaluator_rss(workdir, results['records_dir'], export_dir, sizes))
  results['seconds'] = time.time() - started

  tf.io.gfile.makedirs(os.path.dirname(out) or '.')
  with tf.io.gfile.GFile(out, 'w') as f:
    json.dump(results, f, indent=1, sort_keys=True)
  return results


def table(results: Dict) -> str:
  rows = ['| key | ours / raw | goal | met |', '|---|---|---|---|']
  for key, (comparison, goal) in GOALS.items():
    value = results[key]
    met = value >= goal if comparison == '>=' else value <= goal
    shown = f'{value:.0f}' if value > 100 else f'{value:.3f}'
    rows.append(f'| `{key}` | {shown} | {comparison} {goal:g} | {"yes" if met else "no"} |')
  for job in ('ingest', 'colorize'):  # Issue 31: the progress line costs nothing measurable.
    with_line, without = results[f'{job}_ratio'], results[f'{job}_ratio_without_line']
    rows.append(f'| `{job}_ratio_without_line` (the job without its progress line; '
                f'`{job}_ratio` / it: {with_line / without:.3f}) | {without:.3f} | '
                f'within 2% of `{job}_ratio` | |')
  short, long = results['evaluator_rss_copies'], results['evaluator_rss_long_copies']
  rows.append(f'| `evaluator_kb_per_example_{short}x` (`evaluator_kb_per_example` between 1x '
              f'and {short}x, not {long}x: within how far a peak moves from run to run) | '
              f'{results[f"evaluator_kb_per_example_{short}x"]:.1f} | reported | |')
  rows.append(f'| `fullres_codecs_ratio` (JPEG decoding and JPEG encoding alone) | '
              f'{results["fullres_codecs_ratio"]:.3f} | the floor of `fullres_ratio` | |')
  rows.append(f'| `fullres_png_s` (seconds, the {results["fullres_megapixels"]:g} MP photo as '
              f'PNG in, PNG out) | {results["fullres_png_s"]["median"]:.2f} | reported | |')
  rows.append(f'| `serve_lone_client_s` (seconds per request of a lone client, '
              f'256x256 JPEG) | {results["serve_lone_client_s"]["median"]:.3f} | reported | |')
  rows.append(f'| `train_step_s` (seconds per training step of {results["train_batch_size"]}, '
              f'{results["train_precision"]}) | {results["train_step_s"]:.2f} | reported | |')
  rows.append(f'| `colorize_fullres_s` (seconds per {results["colorize_fullres_megapixels"]:g} '
              f'MP photo in the job) | {results["colorize_fullres_s"]:.2f} | reported | |')
  if 'push_gcs_requests' in results:
    rows.append(f'| `colorize_gcs_requests_per_photo` (HTTP requests, bucket to bucket) | '
                f'{results["colorize_gcs_requests_per_photo"]:.1f} | reported | |')
    rows.append(f'| `push_gcs_requests_per_mb` ({results["push_gcs_requests"]} HTTP requests '
                f'for {results["push_megabytes"]:.0f} MB) | '
                f'{results["push_gcs_requests_per_mb"]:.2f} | reported | |')
  else:
    rows.append('| `colorize_gcs_requests_per_photo`, `push_gcs_requests_per_mb` | not '
                'measured: run under scripts/with-gcs-emulator (make bench does) | | |')
  return '\n'.join(rows)


def main(argv: List[str]) -> None:
  """`python -m benchmarks.bench evaluator EXAMPLES_DIR MODEL_DIR OUT [BEAM_ARG...]`: one
  Evaluator run in a process of its own, for bench_evaluator_rss to read its peak."""
  if len(argv) < 4 or argv[0] != 'evaluator':
    raise SystemExit('usage: python -m benchmarks.bench evaluator EXAMPLES_DIR MODEL_DIR OUT '
                     '[BEAM_ARG...]')
  _, examples_dir, export_dir, out, *beam_args = argv
  run_evaluator(examples_dir, export_dir, out, beam_args)


if __name__ == '__main__':
  main(sys.argv[1:])
