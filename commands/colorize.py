"""`colorizer colorize`: files, folders or globs -> colourized photos, as a resumable Beam job.

The job, step by step (each a PTransform; rejects and skips leave through side outputs):

  MatchInputs     INPUT roots          -> Input (source, output path)
  ClaimOutputs    Input                -> Input, one per output path   rejects: same_output
  SkipDone        Input                -> Input                        skipped: output exists
  DecodeInputs    Input                -> Photo (pixels, L at 256x256) rejects: ingestion's
  ColorizeBatches Photo                -> Photo with ab, RunInference of `from_l` in batches
  Recombine       Photo                -> Photo with its colour pixels at full resolution
  EncodePhotos    Photo                -> (Photo, bytes)               rejects: unwritable
  WriteOutputs    (Photo, bytes)       -> FileStatus 'written'         rejects: unwritable
  WriteReport     FileStatus           -> <out>/colorize_report.json

Every matched file ends as one FileStatus: written, skipped (its output exists: an
earlier run did it) or rejected with a reason. An output that exists is complete, so a
killed run loses only the photos in flight and the next run skips what is done: on disk
outputs are written under a temporary name in `<out>/.colorize-tmp/` and renamed into
place (the next run removes the leftovers); in a bucket each is written straight to its
name, since an object appears only once its upload is complete (model.storage). The
model is the version that was newest when the job started, in every worker.
"""
import dataclasses
import functools
import io
import json
import os
import uuid
from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.ml.inference import base as inference
from apache_beam.options.pipeline_options import PipelineOptions
import numpy as np
from PIL import Image, ImageCms
import tensorflow as tf

from components import file_report
from components import ingest
from components import input_files
from components import progress
from model import decoding
from model import full_resolution
from model import serving
from model import storage
from pipeline import configs

REPORT_FILE = 'colorize_report.json'
TMP_DIR = '.colorize-tmp'
FORMATS = ('auto', 'jpg', 'png')
JPEG_EXTENSIONS = ('.jpg', '.jpeg', '.jpe', '.jfif')
BATCH_SIZE = 16  # photos of the model's size per `from_l` call
_REJECTED, _SKIPPED = file_report.REJECTED, file_report.SKIPPED  # side outputs
METRICS_NAMESPACE = 'colorize'  # the job's Beam counters (progress.count_file)
_SRGB_PROFILE = ImageCms.createProfile('sRGB')
# One file: the job in this process, since worker processes would each start TensorFlow
# and load the model for it (docs/performance.md, "Two choices").
ONE_FILE_BEAM_ARGS = ('--direct_running_mode=in_memory', '--direct_num_workers=1')


FileStatus = file_report.FileStatus


class Input(NamedTuple):
  source: str
  output: str


@dataclasses.dataclass
class Photo:
  """One photo in flight: its pixels (uint8, or uint16 from a 16-bit file), what the
  model sees of it, and what the output keeps of the file."""
  source: str
  output: str
  pixels: Optional[np.ndarray]        # [H, W, 1 or 3], after EXIF orientation
  l: np.ndarray                       # float32 [256, 256, 1], L in [0, 100]
  exif: bytes = b''
  icc_profile: bytes = b''
  read_at_8_bits: str = ''            # decoding.DecodedPhoto's: why not at 16 bits
  ab: Optional[np.ndarray] = None     # float32 [256, 256, 2], the model's ab / 128
  colour: Optional[np.ndarray] = None  # [H, W, 3], of the pixels' dtype


def _count(status: FileStatus) -> FileStatus:
  return file_report.counted(METRICS_NAMESPACE, status)


def _rejected(source: str, reason: str, detail: str) -> FileStatus:
  return file_report.rejected(METRICS_NAMESPACE, source, reason, detail)


def _tagged(result):
  """A step's result for Beam: a FileStatus (rejected or skipped) leaves by the side
  output of its status; anything else goes on."""
  if isinstance(result, FileStatus):
    return beam.pvalue.TaggedOutput(result.status, result)
  return result


# ---- Where outputs go ----

def output_path(source: str, root: str, out: str, fmt: str) -> str:
  """<out>/<source's path under root>, its extension the output's: auto follows the
  input's extension (JPEG in, JPEG out; anything else, PNG)."""
  relative = source[len(root):].lstrip('/')
  stem, extension = os.path.splitext(relative)
  if fmt == 'auto':
    fmt = 'jpg' if extension.lower() in JPEG_EXTENSIONS else 'png'
  return os.path.join(out, f'{stem}.{fmt}')


def _is_jpeg(path: str) -> bool:
  return path.endswith('.jpg')


class MatchInputs(beam.PTransform):
  """PBegin -> Input of every file matching the INPUTs (ingestion's matcher)."""

  def __init__(self, roots: Sequence[Tuple[str, str]], out: str, fmt: str):
    super().__init__()
    self._roots = list(roots)
    self._out = out
    self._fmt = fmt

  def expand(self, pbegin):
    matched = [pbegin
               | f'Match[{i}]' >> input_files.MatchPhotos(pattern)
               | f'Plan[{i}]' >> beam.Map(_planned, root, self._out, self._fmt)
               for i, (pattern, root) in enumerate(self._roots)]
    return matched | 'AllInputs' >> beam.Flatten()


def _planned(source: str, root: str, out: str, fmt: str) -> Input:
  return Input(source, output_path(source, root, out, fmt))


def claim(output: str, sources: Iterable[str]) -> List:
  """The first source in sort order gets the output path; the others are rejected."""
  kept, *others = sorted(set(sources))
  return [Input(kept, output)] + [_rejected(source, 'same_output',
                                            f'{kept} is colourized to {output}')
                                  for source in others]


class ClaimOutputs(beam.PTransform):
  """Input -> Input, one per output path (one photo never overwrites another's output,
  e.g. photo.jpg and photo.png with --format png); side output 'rejected'."""

  def expand(self, inputs):
    return (inputs
            | 'ByOutput' >> beam.Map(lambda i: (i.output, i.source))
            | 'Group' >> beam.GroupByKey()
            | 'FirstSource' >> beam.FlatMapTuple(lambda output, sources: map(
                _tagged, claim(output, sources))).with_outputs(_REJECTED, main='claimed'))


def skip_done(item: Input, overwrite: bool, out: str):
  """The Input, or its 'skipped' FileStatus when its output exists or it is one of
  --out's files (an input folder that holds --out)."""
  if item.source.startswith(out.rstrip('/') + '/'):
    return _count(FileStatus(item.source, 'skipped', detail='it is inside --out'))
  if not overwrite and tf.io.gfile.exists(item.output):
    return _count(FileStatus(item.source, 'skipped', detail='its output exists',
                             output=item.output))
  return item


class SkipDone(beam.PTransform):
  """Input -> Input whose output is not there yet (all of them with `overwrite`); side
  output 'skipped'. An output that exists is complete: it was renamed into place."""

  def __init__(self, overwrite: bool, out: str):
    super().__init__()
    self._overwrite = overwrite
    self._out = out

  def expand(self, inputs):
    overwrite, out = self._overwrite, self._out
    return inputs | beam.Map(lambda item: _tagged(skip_done(item, overwrite, out))).with_outputs(
        _SKIPPED, main='todo')


# ---- Decoding, the model and the recombination ----

_SIGNATURES = {dtype: [tf.TensorSpec([None, None, None], dtype)] for dtype in (tf.uint8, tf.uint16)}
_l_at_model_size = {dtype: tf.function(full_resolution.l_at_model_size, input_signature=spec)
                    for dtype, spec in _SIGNATURES.items()}
_colourized = {dtype: tf.function(full_resolution.colourized, input_signature=spec + [
    tf.TensorSpec([None, None, 1], tf.float32), tf.TensorSpec([None, None, 2], tf.float32)])
               for dtype, spec in _SIGNATURES.items()}


def decode(item: Input, max_megapixels: float):
  """Input -> Photo, or the FileStatus of its rejection (ingestion's reasons)."""
  try:
    photo = decoding.read_and_decode(
        lambda: storage.read(item.source),
        lambda data: decoding.decode_photo(data, max_megapixels, keep_gray=True,
                                           keep_16bit=True))
  except decoding.PhotoRejected as e:
    return _rejected(item.source, e.reason, e.detail)
  pixels = photo.rgb
  l = _l_at_model_size[tf.as_dtype(pixels.dtype)](pixels).numpy()
  return Photo(item.source, item.output, pixels, l, photo.exif, photo.icc_profile,
               photo.read_at_8_bits)


class DecodeInputs(beam.PTransform):
  """Input -> Photo, decoded by ingestion's decoder (EXIF orientation applied; 16-bit
  gray, 16-bit colour PNGs and most 16-bit colour TIFFs kept at 16 bits, the others
  noted); side output 'rejected' with ingestion's reasons."""

  def __init__(self, max_megapixels: float):
    super().__init__()
    self._max_megapixels = max_megapixels

  def expand(self, inputs):
    max_megapixels = self._max_megapixels
    return inputs | beam.Map(lambda item: _tagged(decode(item, max_megapixels))).with_outputs(
        _REJECTED, main='photos')


class ColorizerModelHandler(inference.ModelHandler[Photo, inference.PredictionResult, object]):
  """RunInference handler: batches of Photos -> the model's ab, through the SavedModel's
  batched `from_l` signature at the model's size (embedding inside). The SavedModel (a
  folder of one, not a serving folder) is loaded once per worker process."""

  def __init__(self, model_dir: str, batch_size: int = BATCH_SIZE):
    super().__init__()
    self._model_dir = model_dir
    self._batch_size = batch_size

  def load_model(self):
    # The loaded object, not its signature: the signature alone does not keep the
    # variables alive.
    return tf.saved_model.load(self._model_dir)

  def run_inference(self, batch: Sequence[Photo], model, inference_args=None
                    ) -> Iterable[inference.PredictionResult]:
    l = tf.constant(np.stack([photo.l for photo in batch]))         # [N, 256, 256, 1]
    ab = model.signatures[serving.FROM_L](l=l)['ab'].numpy()         # [N, 256, 256, 2]
    return [inference.PredictionResult(photo, photo_ab) for photo, photo_ab in zip(batch, ab)]

  def batch_elements_kwargs(self):
    # Batches weighed in model-size squares: full batches of small photos from the
    # start, and a large photo in a batch of its own, which keeps memory flat.
    batch_size = self._batch_size
    return {'min_batch_size': batch_size, 'max_batch_size': batch_size,
            'element_size_fn': lambda photo: full_resolution.model_size_units(
                photo.pixels.shape[0] * photo.pixels.shape[1], batch_size)}

  def get_num_bytes(self, batch: Sequence[Photo]) -> int:
    return sum(photo.pixels.nbytes for photo in batch)


class ColorizeBatches(beam.PTransform):
  """Photo -> Photo with `ab`, through Beam's RunInference in batches."""

  def __init__(self, model_dir: str, batch_size: int = BATCH_SIZE):
    super().__init__()
    self._handler = ColorizerModelHandler(model_dir, batch_size)

  def expand(self, photos):
    return (photos
            | 'RunInference' >> inference.RunInference(self._handler)
            | 'Attach' >> beam.Map(lambda r: dataclasses.replace(r.example, ab=r.inference)))


def recombine(photo: Photo) -> Photo:
  """The model's ab at 256x256 and the photo's own L at full size -> its colour pixels
  (full_resolution.colourized, as the server does)."""
  colour = _colourized[tf.as_dtype(photo.pixels.dtype)](photo.pixels, photo.l, photo.ab)
  return dataclasses.replace(photo, pixels=None, colour=colour.numpy())


class Recombine(beam.PTransform):
  """Photo with `ab` -> Photo with `colour` at full resolution (its pixels dropped)."""

  def expand(self, photos):
    return photos | beam.Map(recombine)


def _jpeg_colour_space(colour: np.ndarray, icc_profile: bytes) -> Tuple[Image.Image, bytes]:
  """The sRGB result in the input's colour space when its ICC profile is an RGB or CMYK
  one (converted through it, the profile kept); otherwise sRGB without a profile."""
  image = Image.fromarray(colour)
  if not icc_profile:
    return image, b''
  try:
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
    mode = {'RGB': 'RGB', 'CMYK': 'CMYK'}.get(profile.profile.xcolor_space.strip())
    if mode is None:  # A gray profile cannot describe a colour photo.
      return image, b''
    return ImageCms.profileToProfile(image, _SRGB_PROFILE, profile,
                                     outputMode=mode), icc_profile
  except (ImageCms.PyCMSError, OSError):
    return image, b''


def _encoded(photo: Photo, jpeg_quality: int) -> bytes:
  if _is_jpeg(photo.output):
    colour = photo.colour
    if colour.dtype == np.uint16:  # A 16-bit input with --format jpg.
      colour = np.round(colour / 257.0)
    image, icc = _jpeg_colour_space(np.asarray(colour, np.uint8), photo.icc_profile)
    buffer = io.BytesIO()
    image.save(buffer, 'JPEG', quality=jpeg_quality, exif=photo.exif, icc_profile=icc or None)
    return buffer.getvalue()
  return tf.io.encode_png(photo.colour, compression=decoding.PNG_COMPRESSION).numpy()


def encode(photo: Photo, jpeg_quality: int):
  """Photo -> (Photo without its pixels, the output file's bytes): JPEG at
  `jpeg_quality`, keeping the input's EXIF (orientation reset: the pixels are upright)
  and ICC profile; or PNG, 16-bit for a 16-bit input. Or the 'unwritable' FileStatus."""
  try:
    return dataclasses.replace(photo, colour=None), _encoded(photo, jpeg_quality)
  except (OSError, ValueError, tf.errors.OpError) as e:
    return _rejected(photo.source, 'unwritable', f'encoding: {type(e).__name__}: {e}')


class EncodePhotos(beam.PTransform):
  """Photo -> (Photo, encoded bytes); side output 'rejected'."""

  def __init__(self, jpeg_quality: int):
    super().__init__()
    self._quality = jpeg_quality

  def expand(self, photos):
    quality = self._quality
    return photos | beam.Map(lambda photo: _tagged(encode(photo, quality))).with_outputs(
        _REJECTED, main='encoded')


def write(photo: Photo, data: bytes, tmp_dir: str) -> FileStatus:
  """Writes the output so that one that exists is complete: in a bucket straight to its
  name, on disk under a temporary name in `tmp_dir`, then renamed into place."""
  source, output = photo.source, photo.output
  try:
    if storage.is_object_store(output):
      with tf.io.gfile.GFile(output, 'wb') as f:
        f.write(data)
    else:
      partial = os.path.join(tmp_dir, f'{uuid.uuid4().hex}{os.path.splitext(output)[1]}')
      tf.io.gfile.makedirs(tmp_dir)
      with tf.io.gfile.GFile(partial, 'wb') as f:
        f.write(data)
      tf.io.gfile.makedirs(os.path.dirname(output))
      tf.io.gfile.rename(partial, output, overwrite=True)
  except (OSError, tf.errors.OpError) as e:
    return _rejected(source, 'unwritable', getattr(e, 'message', None) or str(e))
  return _count(FileStatus(source, 'written', output=output,
                           read_at_8_bits=photo.read_at_8_bits or None))


class WriteOutputs(beam.PTransform):
  """(Photo, bytes) -> FileStatus, 'written' or rejected as 'unwritable'."""

  def __init__(self, tmp_dir: str):
    super().__init__()
    self._tmp_dir = tmp_dir

  def expand(self, encoded):
    return encoded | beam.Map(lambda pair, tmp_dir: write(*pair, tmp_dir), self._tmp_dir)


class ColorizePhotos(beam.PTransform):
  """PBegin -> FileStatus of every file the INPUT roots match, writing the outputs.
  `model_dir` is resolved here, once (`serving.latest_version`): every worker loads that
  version, whatever is pushed while the job runs."""

  def __init__(self, roots: Sequence[Tuple[str, str]], model_dir: str, out: str,
               fmt: str = 'auto', jpeg_quality: int = decoding.JPEG_QUALITY,
               overwrite: bool = False,
               max_megapixels: float = decoding.DEFAULT_MAX_MEGAPIXELS,
               batch_size: int = BATCH_SIZE):
    super().__init__()
    self.model = serving.latest_version(model_dir)
    self._roots, self._out, self._fmt = roots, out, fmt
    self._quality, self._overwrite = jpeg_quality, overwrite
    self._max_megapixels, self._batch_size = max_megapixels, batch_size

  def expand(self, pbegin):
    inputs = pbegin | 'MatchInputs' >> MatchInputs(self._roots, self._out, self._fmt)
    claimed = inputs | 'ClaimOutputs' >> ClaimOutputs()
    todo = claimed.claimed | 'SkipDone' >> SkipDone(self._overwrite, self._out)
    decoded = todo.todo | 'DecodeInputs' >> DecodeInputs(self._max_megapixels)
    encoded = (decoded.photos
               | 'ColorizeBatches' >> ColorizeBatches(self.model, self._batch_size)
               | 'Recombine' >> Recombine()
               | 'EncodePhotos' >> EncodePhotos(self._quality))
    written = encoded.encoded | 'WriteOutputs' >> WriteOutputs(os.path.join(self._out, TMP_DIR))
    return ([claimed[_REJECTED], todo[_SKIPPED], decoded[_REJECTED], encoded[_REJECTED], written]
            | 'AllFiles' >> beam.Flatten())


# ---- The report ----

def report_figures(statuses: List[FileStatus], model: str) -> dict:
  """colorize's figures in its report (file_report.report), in the shape of
  ingestion's, naming the model version that colourized the photos."""
  return {
      'model': model,
      'written': sum(status.status == file_report.WRITTEN for status in statuses),
      'skipped': sum(status.status == _SKIPPED for status in statuses),
      'read_at_8_bits': sum(status.read_at_8_bits is not None for status in statuses),
  }


class WriteReport(file_report.WriteReport):
  """FileStatus -> <out>/colorize_report.json at `uri`."""

  def __init__(self, uri: str, model: str):
    super().__init__(uri, functools.partial(report_figures, model=model))


# ---- Running it ----

def pipeline_options(beam_args: Sequence[str] = ()) -> PipelineOptions:
  """The job's Beam options: the DirectRunner with one worker process per core, then
  whatever --beam-arg gives (which wins: e.g. the Dataflow flags in docs/colorize.md)."""
  return PipelineOptions(list(configs.LOCAL_BEAM_ARGS) + list(beam_args))


def _remove_partials(out: str) -> None:
  """A killed run's half-written files on disk: never outputs, since only complete ones
  are renamed into place. (A bucket has none: outputs go straight to their names.)"""
  if storage.is_object_store(out):
    return
  tmp_dir = os.path.join(out, TMP_DIR)
  if tf.io.gfile.exists(tmp_dir):
    tf.io.gfile.rmtree(tmp_dir)


def progress_job(total: int) -> progress.Job:
  """The job's progress line: files done of `total`, written, skipped (done by an
  earlier run) and rejected."""
  return progress.Job('Colourizing', METRICS_NAMESPACE, total, 'file',
                      done=(progress.WRITTEN, progress.SKIPPED, progress.REJECTED),
                      shown=(('written', progress.WRITTEN), ('skipped', progress.SKIPPED),
                             ('rejected', progress.REJECTED)))


def colorize(inputs: Sequence[str], model_dir: str, out: str, fmt: str = 'auto',
             jpeg_quality: int = decoding.JPEG_QUALITY, overwrite: bool = False,
             max_megapixels: float = decoding.DEFAULT_MAX_MEGAPIXELS,
             beam_args: Sequence[str] = (), batch_size: int = BATCH_SIZE,
             progress_line: bool = True) -> dict:
  """Colourizes every input into `out` with the Beam job; returns the report it wrote
  there. One file without --beam-arg runs in this process (ONE_FILE_BEAM_ARGS). Without
  `progress_line`, the job runs as it did before it had one (the benchmark's baseline)."""
  if fmt not in FORMATS:
    raise ValueError(f'--format must be one of {", ".join(FORMATS)}, got {fmt!r}')
  roots = input_files.input_roots(inputs)
  count = sum(ingest.check_matches(pattern) for pattern, _ in roots)
  if not storage.is_object_store(out):  # A bucket needs no folders, nor folder objects.
    out = os.path.abspath(out)
    tf.io.gfile.makedirs(out)
  _remove_partials(out)
  report_uri = os.path.join(out, REPORT_FILE)
  if count == 1 and not beam_args:
    beam_args = ONE_FILE_BEAM_ARGS
  job = ColorizePhotos(roots, model_dir, out, fmt, jpeg_quality, overwrite, max_megapixels,
                       batch_size)
  pipeline = beam.Pipeline(options=pipeline_options(beam_args))
  with progress.show(pipeline, lambda: progress_job(count)) if progress_line else pipeline:
    _ = (pipeline
         | 'ColorizePhotos' >> job
         | 'WriteReport' >> WriteReport(report_uri, job.model))
  _remove_partials(out)
  with tf.io.gfile.GFile(report_uri) as f:
    return json.load(f)


# ---- One photo for `colorizer serve`; the files of `colorizer evaluate` ----
