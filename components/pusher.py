"""AtomicPusher: TFX's Pusher, but a reader never sees a half-written model version.

TFX's own Pusher copies straight into `<serving dir>/<version>/` (tensorflow/tfx#4466:
TF Serving could load a version before its files were all there). This one writes the
model to `<serving dir>/.incoming-<version>/`, which TF Serving ignores (not a number),
then renames it into place; on object stores without rename (gs://) it copies the
variables first, then `saved_model.pb`, the file servers wait for, and last the
`assets.extra/pushed_from` marker naming its source. So a version with the marker is
complete, and one without `saved_model.pb` is a push that died halfway: no server has
loaded it, and the next push copies into it again. Afterwards it keeps the newest
`keep_versions` versions and deletes older ones, only once the new one is complete. A
model that is already the newest, complete version is not pushed again.
"""
import os
import time
from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.pusher import component as pusher_component
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import json_utils
from tfx.utils import proto_utils

from model import serving
from model import storage

KEEP_VERSIONS = 'keep_versions'
_INCOMING = '.incoming-'
PUSHED_FROM = os.path.join('assets.extra', 'pushed_from')  # Ignored by TF Serving.
# The blessing's record of the served version the Evaluator gated against (its path).
BASELINE_KEY = 'baseline_model'


def is_complete(version_dir: str) -> bool:
  """Whether every file of the version is there: the marker is written last."""
  return (fileio.exists(os.path.join(version_dir, 'saved_model.pb'))
          and fileio.exists(os.path.join(version_dir, PUSHED_FROM)))


def _pushed_from(version_dir: str) -> str:
  path = os.path.join(version_dir, PUSHED_FROM)
  return fileio.open(path).read().strip() if fileio.exists(path) else ''


def push_atomically(model_path: str, serving_dir: str, keep_versions: int) -> str:
  """Copies the SavedModel at `model_path` to a new numbered version; returns its path.
  A model that is already the newest complete version is not pushed again; a newest
  version without `saved_model.pb` on an object store (a push that died halfway) is
  copied into again."""
  existing = serving.numbered_versions(serving_dir)
  version = max([int(time.time())] + [v + 1 for v in existing])
  if existing:
    newest = os.path.join(serving_dir, str(existing[-1]))
    if is_complete(newest) and _pushed_from(newest) == model_path:
      logging.info('%s is already served as %s', model_path, newest)
      return newest
    if (storage.is_object_store(serving_dir)
        and not fileio.exists(os.path.join(newest, 'saved_model.pb'))):
      logging.warning('%s was left incomplete by an earlier push; pushing into it', newest)
      version = existing[-1]
  final = os.path.join(serving_dir, str(version))
  if storage.is_object_store(serving_dir):
    io_utils.copy_dir(model_path, final, deny_regex_patterns=[r'saved_model\.pb'])
    io_utils.copy_file(os.path.join(model_path, 'saved_model.pb'),
                       os.path.join(final, 'saved_model.pb'))
    _write_pushed_from(final, model_path)
  else:
    fileio.makedirs(serving_dir)
    staged = os.path.join(serving_dir, f'{_INCOMING}{version}')
    io_utils.copy_dir(model_path, staged)
    _write_pushed_from(staged, model_path)
    os.rename(staged, final)
  for old in serving.numbered_versions(serving_dir)[:-keep_versions] if keep_versions > 0 else []:
    fileio.rmtree(os.path.join(serving_dir, str(old)))
  logging.info('Pushed %s as %s', model_path, final)
  return final


def _write_pushed_from(version_dir: str, model_path: str) -> None:
  fileio.makedirs(os.path.dirname(os.path.join(version_dir, PUSHED_FROM)))
  io_utils.write_string_file(os.path.join(version_dir, PUSHED_FROM), model_path)


def _gated_against_another_model(input_dict: Dict[str, List[types.Artifact]],
                                 serving_dir: str, model_path: str) -> bool:
  """Whether the served model changed after the Evaluator gated the candidate against
  it (a cached blessing, or a push in between): pushing would skip the regression gate."""
  blessing = artifact_utils.get_single_instance(
      input_dict[standard_component_specs.MODEL_BLESSING_KEY])
  gated_against = blessing.get_string_custom_property(BASELINE_KEY) or None
  served = serving.served_model(serving_dir)
  if served in (gated_against, None) or _pushed_from(served) == model_path:
    return False
  logging.warning('Not pushing %s: it was gated against %s, but %s is served now; run the '
                  'pipeline again to evaluate it against that', model_path,
                  gated_against or 'no served model', served)
  return True


class Executor(pusher_executor.Executor):
  """Pushes a blessed model with `push_atomically`."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(model_push)
      return
    destination = proto_utils.json_to_proto(
        exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
        pusher_pb2.PushDestination())
    serving_dir = destination.filesystem.base_directory
    model_path = self.GetModelPath(input_dict)
    if _gated_against_another_model(input_dict, serving_dir, model_path):
      self._MarkNotPushed(model_push)
      return
    custom_config = json_utils.loads(
        exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or 'null') or {}
    keep = int(custom_config.get(KEEP_VERSIONS, 0))
    pushed = push_atomically(model_path, serving_dir, keep)
    io_utils.copy_dir(model_path, model_push.uri)
    self._MarkPushed(model_push, pushed_destination=pushed,
                     pushed_version=os.path.basename(pushed))


class AtomicPusher(pusher_component.Pusher):
  """`tfx.components.Pusher` with an atomic push and a retention of `keep_versions`."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel,
               serving_dir: str, keep_versions: int = 3):
    super().__init__(
        model=model, model_blessing=model_blessing,
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_dir)),
        custom_config={KEEP_VERSIONS: keep_versions})
