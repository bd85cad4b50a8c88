"""PhotoExampleGen: the ingestion job as a TFX component.

A FileBasedExampleGen whose executor is the ingestion Beam job (`components.ingest`).
Being a FileBasedExampleGen it keeps TFX's own span handling (`span-{SPAN}` patterns,
RangeConfig, the input fingerprint for caching) and Kubeflow's example-gen driver step.
Its output is a standard `Examples` artifact (Split-train / Split-eval, GZIP TFRecords
of tf.Examples), so later components consume it unchanged, plus:
- `<examples uri>/ingest_report.json`, the fate of every input file;
- the custom property `embedding_weights`, the fingerprint of the Inception-ResNet-v2
  weights the embeddings were computed with (the Trainer checks it);
- the custom properties `written` and `rejected`, the counts of files, `reused`, the
  photos read back from the record cache, and `spans`, the spans ingested.

With `window_spans` N, the newest N spans (the newest being the one TFX's span logic
resolves, the others found by the same `{SPAN}` pattern) are ingested together, into
one Examples artifact of the newest span; with a `record_cache`, only photos no run has
ingested before with the same settings are decoded and embedded.
"""
import hashlib
import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from tfx import types
from tfx.components.example_gen import driver as example_gen_driver
from tfx.components.example_gen import input_processor
from tfx.components.example_gen import utils
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2
from tfx.types import artifact_utils
from tfx.types import component_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components import ingest
from components import input_files
from model import decoding
from model import embedding
from model import internals
from model import records
from model import serving

internals.leave_tfx_unpackaged_for_the_direct_runner()  # Before the executor starts.

EMBEDDING_WEIGHTS_KEY = 'embedding_weights'
MAX_MEGAPIXELS_KEY = 'max_megapixels'
CROPS_PER_IMAGE_KEY = 'crops_per_image'
WINDOW_SPANS_KEY = 'window_spans'
SPAN_PATTERN_KEY = 'span_pattern'  # the input pattern as given, {SPAN} unresolved
RECORD_CACHE_KEY = 'record_cache'
SERVING_DIR_KEY = 'serving_dir'
TRAINING_FINGERPRINT_KEY = 'training_fingerprint'
# Custom property: 1 unless training on these records would only repeat a training
# (serving.already_trained): then the pipeline skips the Trainer and what follows it.
RETRAIN_KEY = 'retrain'
_GLOB_CHARS = re.compile(r'[*?\[{]')


class PhotoExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
  PARAMETERS = {
      **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
      EMBEDDING_WEIGHTS_KEY: component_spec.ExecutionParameter(type=str),
      MAX_MEGAPIXELS_KEY: component_spec.ExecutionParameter(type=float),
      CROPS_PER_IMAGE_KEY: component_spec.ExecutionParameter(type=int, optional=True),
      WINDOW_SPANS_KEY: component_spec.ExecutionParameter(type=int, optional=True),
      SPAN_PATTERN_KEY: component_spec.ExecutionParameter(type=str, optional=True),
      RECORD_CACHE_KEY: component_spec.ExecutionParameter(type=str, optional=True),
      SERVING_DIR_KEY: component_spec.ExecutionParameter(type=str, optional=True),
      TRAINING_FINGERPRINT_KEY: component_spec.ExecutionParameter(type=str, optional=True),
  }


class Executor(base_beam_executor.BaseBeamExecutor):
  """Runs `ingest.IngestPhotos` into the Examples artifact's split folders."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    examples = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EXAMPLES_KEY])
    if utils.SPAN_PROPERTY_NAME not in exec_properties:
      exec_properties = resolve_span(exec_properties, examples)
    input_config = proto_utils.json_to_proto(
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input())
    output_config = proto_utils.json_to_proto(
        exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], example_gen_pb2.Output())
    if len(input_config.splits) != 1:
      raise ValueError('PhotoExampleGen reads one file pattern; the splits come from '
                       'output_config (by content hash)')
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    window = window_spans(
        input_base, exec_properties.get(SPAN_PATTERN_KEY) or input_config.splits[0].pattern,
        int(exec_properties.get(utils.SPAN_PROPERTY_NAME) or 0),
        int(exec_properties.get(WINDOW_SPANS_KEY) or 1))
    patterns = [os.path.join(input_base, input_config.splits[0].pattern)] + [
        os.path.join(input_base, pattern) for _, pattern in window[1:]]
    splits = [(split.name, split.hash_buckets) for split in output_config.split_config.splits]

    examples.split_names = artifact_utils.encode_split_names([name for name, _ in splits])
    split_dirs = {name: artifact_utils.get_split_uri([examples], name) for name, _ in splits}
    report_uri = os.path.join(examples.uri, records.REPORT_FILE)

    report, weights = ingest.run_job(
        self._make_beam_pipeline(), patterns, exec_properties[EMBEDDING_WEIGHTS_KEY],
        split_dirs, splits, report_uri, exec_properties[MAX_MEGAPIXELS_KEY],
        int(exec_properties.get(CROPS_PER_IMAGE_KEY) or 1),
        exec_properties.get(RECORD_CACHE_KEY) or None)
    examples.set_string_custom_property(EMBEDDING_WEIGHTS_KEY, weights.fingerprint)
    examples.set_int_custom_property('written', report['written'])
    examples.set_int_custom_property('rejected', report['total'] - report['written'])
    examples.set_int_custom_property('reused', report['reused'])
    examples.set_string_custom_property('spans', json.dumps(sorted(s for s, _ in window)))
    serving_dir = exec_properties.get(SERVING_DIR_KEY)
    examples.set_int_custom_property(RETRAIN_KEY, int(not (serving_dir and serving.already_trained(
        serving_dir, serving.trained_on_key(report['records_fingerprint'],
                                            exec_properties.get(TRAINING_FINGERPRINT_KEY) or '')))))
    reasons = ', '.join(f'{reason} {count}' for reason, count in report['rejected'].items())
    spans = f' of spans {", ".join(str(s) for s, _ in sorted(window))}' if len(window) > 1 else ''
    print(f'Ingested {report["written"]} of {report["total"]} photos{spans} '
          f'({", ".join(f"{name} {n}" for name, n in report["splits"].items())}; '
          f'{report["reused"]} from the record cache); rejected '
          f'{report["total"] - report["written"]} ({reasons or "none"}): see {report_uri}')
    examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(examples, 'tfrecords_gzip')


def input_fingerprint(split_name: str, pattern: str) -> str:
  """The fingerprint of the files ingestion would read (`input_files.matched_files`: every
  file below a folder, at any depth), for TFX's cache. TFX's own
  (tfx/utils/io_utils.py, generate_fingerprint) globs with tf.io.gfile, whose `**`
  reaches one level: a photo added further down, or on gs:// in any sub-prefix (which
  stats as 0 bytes at time 0), left it unchanged, and the cache reused the old Examples."""
  files = sorted(input_files.matched_files(pattern), key=lambda metadata: metadata.path)
  digest = hashlib.sha256()
  for metadata in files:
    digest.update(f'{metadata.path}\0{metadata.size_in_bytes}\0'
                  f'{metadata.last_updated_in_seconds}\n'.encode())
  return (f'split:{split_name},num_files:{len(files)},'
          f'total_bytes:{sum(m.size_in_bytes for m in files)},sha256:{digest.hexdigest()}')


class PhotoInputProcessor(input_processor.FileBasedInputProcessor):
  """TFX's span and version resolution, with `input_fingerprint` as the fingerprint."""

  def __init__(self, input_base_uri: str, splits, range_config=None):
    super().__init__(input_base_uri, splits, range_config)
    self.input_base, self.splits = input_base_uri, list(splits)

  def get_input_fingerprint(self, span: int, version: Optional[int]) -> str:
    return '\n'.join(
        input_fingerprint(split.name, os.path.join(
            self.input_base, self.get_pattern_for_span_version(split.pattern, span, version)))
        for split in self.splits)


class PhotoExampleGenDriver(example_gen_driver.FileBasedDriver):
  """The local runner's driver (TFX's), with PhotoInputProcessor."""

  def get_input_processor(self, splits, range_config=None, input_base_uri=None):
    return PhotoInputProcessor(input_base_uri, splits, range_config)


def resolve_span(exec_properties: Dict[str, Any],
                 examples: types.Artifact) -> Dict[str, Any]:
  """The span, version, input fingerprint and pattern that TFX's example-gen driver
  resolves before the executor, for where no driver runs: open-source Kubeflow
  Pipelines runs no container's `lifecycle.preCacheCheck`, where TFX puts that driver
  (kubeflow/pipelines backend/src reads no Lifecycle)."""
  return internals.resolve_span(exec_properties, examples, PhotoInputProcessor)


def window_spans(input_base: str, span_pattern: str, span: int,
                 count: int) -> List[Tuple[int, str]]:
  """[(span, pattern)] of the newest `count` spans up to `span`, newest first: the
  spans whose folders `span_pattern` (with {SPAN}, relative to `input_base`) finds.
  Without {SPAN}, or with a count of 1, just the one."""
  if count < 1:
    raise ValueError(f'--window-spans must be at least 1, got {count}')
  if count == 1 or not re.search(utils.SPAN_FULL_REGEX, span_pattern):
    return [(span, span_pattern)]
  if (re.search(utils.VERSION_FULL_REGEX, span_pattern)
      or any(spec in span_pattern for spec in utils.DATE_SPECS)):
    raise ValueError(f'{span_pattern!r}: a window of spans takes a plain {{SPAN}} pattern, '
                     'without {VERSION} or dates')
  parts = span_pattern.split('/')
  at = next(i for i, part in enumerate(parts) if re.search(utils.SPAN_FULL_REGEX, part))
  spec = re.search(utils.SPAN_FULL_REGEX, parts[at])
  before, after = parts[at][:spec.start()], parts[at][spec.end():]
  glob = os.path.join(input_base, *parts[:at], f'{before}*{after}')
  digits = r'(\d{%s})' % spec.group('width') if spec.group('width') else r'(\d+)'
  number = re.compile(re.escape(before) + digits + re.escape(after))
  found = set()
  for path in fileio.glob(glob):
    match = number.fullmatch(os.path.basename(path.rstrip('/')))
    if match:
      found.add(int(match.group(1)))
  chosen = sorted((s for s in found | {span} if s <= span), reverse=True)[:count]
  return [(s, utils.get_pattern_for_span_version(
      span_pattern, is_match_span=True, is_match_date=False, is_match_version=False,
      span=s, version=None)) for s in chosen]


class PhotoExampleGen(FileBasedExampleGen):
  """Colour photos under `input_base` -> Examples of Lab records with embeddings."""

  SPEC_CLASS = PhotoExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
  DRIVER_CLASS = PhotoExampleGenDriver

  def __init__(self, input_base: str, pattern: str = '**',
               eval_percent: int = 10, embedding_weights: str = embedding.IMAGENET,
               max_megapixels: float = decoding.DEFAULT_MAX_MEGAPIXELS,
               crops_per_image: int = 1,
               range_config: Optional[range_config_pb2.RangeConfig] = None,
               window_spans: int = 1, record_cache: str = '', serving_dir: str = '',
               training_fingerprint: str = ''):
    """`pattern` is relative to `input_base` and may hold {SPAN} (e.g. 'span-{SPAN}/**'),
    in which case the newest span is ingested, as with TFX's own ExampleGens, with the
    `window_spans` - 1 spans before it. `crops_per_image` examples are written per photo
    (see model.cropping.crop_boxes). `record_cache`: the folder of ingestion's record
    cache ('' for none). With `serving_dir` and `training_fingerprint`, the Examples'
    `retrain` is 0 when the served model was trained on these records by that training."""
    splits = ingest.splits_from_eval_percent(eval_percent, both=True)
    if crops_per_image < 1:
      raise ValueError(f'crops_per_image must be at least 1, got {crops_per_image}')
    split = example_gen_pb2.SplitConfig.Split
    spec = PhotoExampleGenSpec(
        input_base=input_base,
        input_config=example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name='photos', pattern=pattern)]),
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            split(name=name, hash_buckets=buckets) for name, buckets in splits])),
        custom_config=None,
        range_config=range_config,
        output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
        output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        embedding_weights=embedding_weights,
        max_megapixels=float(max_megapixels),
        crops_per_image=int(crops_per_image),
        window_spans=int(window_spans), span_pattern=pattern,
        record_cache=record_cache or None, serving_dir=serving_dir or None,
        training_fingerprint=training_fingerprint or None,
        examples=types.Channel(type=standard_artifacts.Examples))
    internals.init_with_spec(self, spec)


def input_base_and_pattern(data: str) -> Tuple[str, str]:
  """`--data` (a folder, a glob, either with {SPAN}) -> (input_base, pattern).

  'photos' -> ('photos', '**'); 'photos/span-{SPAN}' -> ('photos', 'span-{SPAN}/**');
  'photos/*.jpg' -> ('photos', '*.jpg').
  """
  parts = data.rstrip('/').split('/')
  first_glob = next((i for i, part in enumerate(parts) if _GLOB_CHARS.search(part)), None)
  if first_glob is None:
    return '/'.join(parts), '**'
  base, pattern = '/'.join(parts[:first_glob]), '/'.join(parts[first_glob:])
  if not _GLOB_CHARS.search(pattern.replace('{SPAN}', '').replace('{VERSION}', '')):
    pattern += '/**'
  return base, pattern
