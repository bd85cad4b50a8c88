"""Every reach into a library's internals, in one place, each checked against the
version it was written for: on another version it fails loudly here, instead of
quietly somewhere else. When a library is upgraded, read each reach below against the
new version, then update WRITTEN_FOR, constraints.txt and tests/test_internals.py.

It lives in `model/`, the lowest layer, so that every package may use it; each
library is imported only when one of its reaches is used.
"""
import importlib
import itertools
import sys
import threading
from typing import Any, Callable, Dict, List, Tuple

# Library: (module whose __version__ is read, the version written for). A version
# without a patch level ('12') takes every release of it ('12.3.0').
WRITTEN_FOR = {
    'TensorFlow': ('tensorflow', '2.16.2'),
    'Pillow': ('PIL', '12'),
    'TFX': ('tfx.version', '1.16.0'),
    'Beam': ('apache_beam.version', '2.59.0'),
}

# The custom properties TFX's Pusher writes on its PushedModel (its executor's private
# names; the report reads them from MLMD). test_internals compares them with TFX's.
PUSHED = 'pushed'
PUSHED_VERSION = 'pushed_version'


def written_for(library: str, version: str) -> bool:
  written = WRITTEN_FOR[library][1]
  return version == written or version.startswith(written + '.')


def check(library: str, version: str, reach: str, place: str = 'this environment') -> None:
  """Raises unless `version` of `library` is the one `reach` was written for."""
  if not written_for(library, version):
    raise RuntimeError(
        f'{reach} was written for {library} {WRITTEN_FOR[library][1]}, and {place} has '
        f'{library} {version}: read it again against that version (model/internals.py), '
        'then update it')


def require(library: str, reach: str, place: str = 'this environment') -> None:
  """`check` against the installed version of `library`."""
  check(library, importlib.import_module(WRITTEN_FOR[library][0]).__version__, reach, place)


def leave_tf_keras_alone() -> None:
  """Has AutoGraph leave Keras 2 (`tf_keras`) unconverted, as it leaves `keras`.

  TensorFlow 2.16's conversion rules skip `keras` but not `tf_keras`, so tracing a
  function that calls a Keras 2 model re-wrote tf_keras's own layer code; later
  TensorFlow adds the same rule. Subclassed layers are still converted (tf_keras
  converts their `call` itself). Adds the rule once."""
  require('TensorFlow', 'the tf_keras AutoGraph rule')
  from tensorflow.python.autograph.core import config  # pylint: disable=g-direct-tensorflow-import,import-outside-toplevel
  if not any(rule.matches('tf_keras.src') for rule in config.CONVERSION_RULES
             if isinstance(rule, config.DoNotConvert)):
    config.CONVERSION_RULES = (*config.CONVERSION_RULES, config.DoNotConvert('tf_keras'))


def decode_one_byte(image, high: bool, as_stored: bool = True) -> None:
  """Has Pillow decode the high or the low byte of each sample of a 16-bit RGB(A) TIFF
  `image` (not loaded yet): as stored, or with premultiplied alpha undone as Pillow does.

  Pillow's 16-bit unpackers keep one byte, the high one, or the low one when told the
  other byte order; so each tile's raw mode is rewritten. libtiff hands samples over in
  this machine's byte order, the raw decoder in the file's."""
  require('Pillow', "the rewrite of 16-bit TIFF tiles' raw modes")

  def rawmode(tile) -> str:
    if tile.codec_name == 'libtiff':
      little = sys.byteorder == 'little'
    else:
      little = image.tag_v2.prefix == b'II'
    channels = tile.args[0].split(';')[0]  # 'RGB', 'RGBX', 'RGBA', 'RGBa'; 'R', ... a plane
    if as_stored:
      channels = channels.replace('a', 'A')
    return channels + (';16L' if high == little else ';16B')
  image.tile = [tile._replace(args=(rawmode(tile),) + tuple(tile.args[1:]))
                for tile in image.tile]


def init_with_spec(component, spec) -> None:
  """Initializes a subclass of a TFX component with its own spec (more parameters than
  its parent's): the parent's `__init__` would build the parent's spec, so it is
  skipped for `BaseBeamComponent`'s."""
  require('TFX', f"{type(component).__name__}'s initialization")
  from tfx.dsl.components.base import base_beam_component  # pylint: disable=import-outside-toplevel
  base_beam_component.BaseBeamComponent.__init__(component, spec=spec)


def leave_tfx_unpackaged_for_the_direct_runner() -> None:
  """Has TFX's Beam executors leave TFX unpackaged for the DirectRunner.

  Given no dependency flag, each makes an sdist of the installed TFX for the workers
  (tfx/utils/dependency_utils.py `make_beam_dependency_flags`, from
  `BaseBeamExecutor.__init__`): a copy of its 48 MB in a new temporary folder, never
  deleted, and 1-2 s, on every run of a Beam component. The DirectRunner's workers are
  this machine's processes, in this environment, and install nothing; so for it the
  flags are left as they are. Other runners (Dataflow: the image's `sdk_container_image`
  already stops it) still get the package. Replaces the function once."""
  require('TFX', "the Beam executors' packaging of TFX")
  from tfx.utils import dependency_utils  # pylint: disable=import-outside-toplevel
  make_flags = dependency_utils.make_beam_dependency_flags
  if getattr(make_flags, 'leaves_the_direct_runner_alone', False):
    return

  def make_beam_dependency_flags(beam_pipeline_args: List[str]) -> List[str]:
    if is_direct_runner(beam_pipeline_args):
      return beam_pipeline_args
    return make_flags(beam_pipeline_args)

  make_beam_dependency_flags.leaves_the_direct_runner_alone = True
  dependency_utils.make_beam_dependency_flags = make_beam_dependency_flags


def is_direct_runner(beam_args: List[str]) -> bool:
  """Whether `beam_args` run Beam's DirectRunner: the default, or named `direct` or
  `DirectRunner` in any case (apache_beam/runners/runner.py `create_runner`)."""
  from apache_beam.options import pipeline_options  # pylint: disable=import-outside-toplevel
  runner = pipeline_options.PipelineOptions(list(beam_args)).view_as(
      pipeline_options.StandardOptions).runner
  return (runner or 'direct').lower() in ('direct', 'directrunner')


def unkeyed_future(channel):
  """`channel.future()` without its preset key, so that the compiler names the
  placeholder by the conditioned task's own input (`examples`), not by the producer's
  output (`_PhotoExampleGen.examples`), which the task does not declare."""
  require('TFX', 'the placeholder of a condition')
  from tfx.types import channel as tfx_channel  # pylint: disable=import-outside-toplevel
  return tfx_channel.ChannelWrappedPlaceholder(channel)


def drop_custom_property(artifact, key: str) -> None:
  """Removes a custom property from a TFX artifact, which has no public way to."""
  require('TFX', 'the removal of a custom property')
  properties = artifact.mlmd_artifact.custom_properties
  if key in properties:
    del properties[key]


def resolve_span(exec_properties: Dict[str, Any], examples,
                 processor: Callable[[str, List, Any], Any]) -> Dict[str, Any]:
  """What TFX's example-gen driver does before the executor, for where no driver runs:
  the span, version and input fingerprint (by `processor(input_base, splits,
  range_config)`, a FileBasedInputProcessor), and the pattern for that span. As
  tfx/orchestration/kubeflow/v2/file_based_example_gen/driver.py does it."""
  require('TFX', "the copy of TFX's example-gen driver")
  # pylint: disable=import-outside-toplevel
  from absl import logging
  from tfx.components.example_gen import driver
  from tfx.components.example_gen import utils
  from tfx.proto import example_gen_pb2
  from tfx.proto import range_config_pb2
  from tfx.types import standard_component_specs
  from tfx.utils import proto_utils
  # pylint: enable=import-outside-toplevel
  input_config = proto_utils.json_to_proto(
      exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input())
  range_json = exec_properties.get(standard_component_specs.RANGE_CONFIG_KEY)
  range_config = (proto_utils.json_to_proto(range_json, range_config_pb2.RangeConfig())
                  if range_json else None)
  resolver = processor(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                       input_config.splits, range_config)
  span, version = resolver.resolve_span_and_version()
  fingerprint = resolver.get_input_fingerprint(span, version)  # Of the patterns as given.
  for split in input_config.splits:
    split.pattern = resolver.get_pattern_for_span_version(split.pattern, span, version)
  resolved = {**exec_properties,
              utils.SPAN_PROPERTY_NAME: span, utils.VERSION_PROPERTY_NAME: version,
              utils.FINGERPRINT_PROPERTY_NAME: fingerprint,
              standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config)}
  driver.update_output_artifact(resolved, examples.mlmd_artifact)
  logging.info('Resolved span %s of %s', span, resolved[standard_component_specs.INPUT_BASE_KEY])
  return resolved


def _kubeflow_v2_run_executor():
  """TFX's Kubeflow V2 entry point module, whose flag parser the entry point reuses."""
  require('TFX', "pipeline/kubeflow_entrypoint.py (TFX's Kubeflow V2 entry point, and what it "
          "mends of KFP's ExecutorInput)",
          place='this image')
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor  # pylint: disable=import-outside-toplevel
  return kubeflow_v2_run_executor


def parse_kubeflow_v2_flags(argv: List[str]) -> Tuple[Any, List[str]]:
  """TFX's Kubeflow V2 entry point's flags, and the rest (Beam's)."""
  return _kubeflow_v2_run_executor()._parse_flags(argv)  # pylint: disable=protected-access


def run_kubeflow_v2_executor(args) -> None:
  """TFX's Kubeflow V2 entry point's `main`, on flags from `parse_kubeflow_v2_flags`."""
  _kubeflow_v2_run_executor().main(args)


# Beam: the bundles in flight of a batch job on the DirectRunner, asked for their counters.

class LiveCounters:
  """The user counters of a running job: those of its finished bundles, and the latest
  that each bundle in flight reported."""

  _ids = itertools.count()

  def __init__(self, timeout_s: float):
    self._timeout_s = timeout_s
    self._lock = threading.Lock()
    self._finished: List = []
    self._in_flight: Dict[str, Tuple[object, List]] = {}  # bundle -> (connection, infos)

  def started(self, bundle: str, connection) -> None:
    with self._lock:
      self._in_flight[bundle] = (connection, [])

  def finished(self, bundle: str, response) -> None:
    with self._lock:
      if self._in_flight.pop(bundle, None) is not None:
        self._finished = _user_counters(itertools.chain(
            self._finished, response.process_bundle.monitoring_infos))

  def ask(self) -> None:
    """Asks each bundle in flight for its counters so far (the Fn API's progress
    request, which its worker answers from another thread than the one at work)."""
    with self._lock:
      asked = [(bundle, connection) for bundle, (connection, _) in self._in_flight.items()]
    for bundle, connection in asked:
      try:
        from apache_beam.portability.api import beam_fn_api_pb2  # pylint: disable=import-outside-toplevel
        answer = connection.push(beam_fn_api_pb2.InstructionRequest(
            instruction_id=f'progress-{next(self._ids)}',
            process_bundle_progress=beam_fn_api_pb2.ProcessBundleProgressRequest(
                instruction_id=bundle))).get(timeout=self._timeout_s)
      except Exception:  # pylint: disable=broad-except
        continue  # A worker busy or gone: its numbers come with its bundle's end.
      if answer is None or answer.error:
        continue
      infos = _user_counters(answer.process_bundle_progress.monitoring_infos)
      with self._lock:
        if bundle in self._in_flight:  # Not ended meanwhile: its end counts instead.
          self._in_flight[bundle] = (connection, infos)

  def metrics(self):
    """The counters so far, as a Beam MetricResults."""
    with self._lock:
      infos = itertools.chain(self._finished,
                              *(infos for _, infos in self._in_flight.values()))
      from apache_beam.runners.portability.fn_api_runner import fn_runner  # pylint: disable=import-outside-toplevel
      return fn_runner.FnApiMetrics({'': _user_counters(infos)})


def _user_counters(infos) -> List:
  """The user counters among monitoring infos, one per step and name (summed)."""
  from apache_beam.metrics import monitoring_infos  # pylint: disable=import-outside-toplevel
  return list(monitoring_infos.consolidate(
      info for info in infos if info.urn == monitoring_infos.USER_COUNTER_URN))


class _Connection:
  """A worker's control connection that tells `live` which bundles are in flight, and
  their final counters."""

  def __init__(self, connection, live: LiveCounters):
    self._connection = connection
    self._live = live

  def push(self, request):
    if request.WhichOneof('request') != 'process_bundle':
      return self._connection.push(request)
    self._live.started(request.instruction_id, self._connection)
    return _Answer(self._connection.push(request), request.instruction_id, self._live)

  def __getattr__(self, name):
    return getattr(self._connection, name)


class _Answer:
  """A bundle's answer (ControlFuture), passing its final counters to `live`."""

  def __init__(self, future, bundle: str, live: LiveCounters):
    self._future, self._bundle, self._live = future, bundle, live

  def get(self, timeout=None):
    response = self._future.get(timeout)
    self._live.finished(self._bundle, response)
    return response

  def __getattr__(self, name):
    return getattr(self._future, name)


def fn_api_runner_with_live_counters(options, timeout_s: float):
  """(live counters, runner): the FnApiRunner that Beam's DirectRunner runs a batch job
  on, built as direct_runner.SwitchingDirectRunner builds it, whose workers' control
  connections tell the live counters which bundles are in flight, so that they can be
  asked for their counters while they run (components/progress.py)."""
  require('Beam', "the progress line's FnApiRunner (its bundles' control connections)")
  from apache_beam.portability.api import beam_provision_api_pb2  # pylint: disable=import-outside-toplevel
  from apache_beam.runners.portability import portable_runner  # pylint: disable=import-outside-toplevel
  from apache_beam.runners.portability.fn_api_runner import fn_runner  # pylint: disable=import-outside-toplevel

  class FnApiRunner(fn_runner.FnApiRunner):

    def _get_bundle_manager(self, bundle_context_manager):
      for handler in bundle_context_manager.worker_handlers:
        if not isinstance(handler.control_conn, _Connection):
          handler.control_conn = _Connection(handler.control_conn, live)
      return super()._get_bundle_manager(bundle_context_manager)

  live = LiveCounters(timeout_s)
  encoded = portable_runner.JobServiceHandle.encode_pipeline_options(options.get_all_options())
  return live, FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
      beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))
