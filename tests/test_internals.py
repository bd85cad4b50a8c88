"""model/internals.py: the library versions its reaches were written for are the ones
installed, pinned by setup.py and constraints.txt; another version is refused loudly."""
import os
import re

import pytest

from model import internals

pytestmark = pytest.mark.fast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# How setup.py and constraints.txt name each library.
DISTRIBUTION = {'TensorFlow': 'tensorflow', 'Pillow': 'pillow', 'TFX': 'tfx', 'Beam': 'apache-beam'}


def constraint(distribution: str) -> str:
  with open(os.path.join(ROOT, 'constraints.txt'), encoding='utf-8') as f:
    [version] = re.findall(rf'^{distribution}==(\S+)$', f.read(), re.MULTILINE)
  return version


def test_the_installed_libraries_are_those_written_for():
  for library in internals.WRITTEN_FOR:
    internals.require(library, 'this test')


@pytest.mark.parametrize('library', sorted(internals.WRITTEN_FOR))
def test_constraints_pin_the_versions_written_for(library):
  assert internals.written_for(library, constraint(DISTRIBUTION[library]))


def test_setup_allows_only_the_versions_written_for():
  with open(os.path.join(ROOT, 'setup.py'), encoding='utf-8') as f:
    setup = f.read()
  assert "'tensorflow==2.16.2'" in setup and internals.WRITTEN_FOR['TensorFlow'][1] == '2.16.2'
  assert "'tfx[kfp]==1.16.0'" in setup and internals.WRITTEN_FOR['TFX'][1] == '1.16.0'
  assert "'pillow>=12,<13'" in setup and internals.WRITTEN_FOR['Pillow'][1] == '12'
  assert "'apache-beam[gcp]==2.59.0'" in setup and internals.WRITTEN_FOR['Beam'][1] == '2.59.0'


def test_another_version_is_refused_loudly():
  with pytest.raises(RuntimeError, match='the reach was written for TFX 1.16.0, and this '
                                         'environment has TFX 1.17.0'):
    internals.check('TFX', '1.17.0', 'the reach')
  assert internals.written_for('Pillow', '12.3.0')
  for version in ('13.0.0', '11.3.0', '120.0'):
    assert not internals.written_for('Pillow', version), version
  assert not internals.written_for('TensorFlow', '2.16.20')


def test_the_pushers_property_names_are_tfxs():
  from tfx.components.pusher import executor  # pylint: disable=import-outside-toplevel
  assert internals.PUSHED == executor._PUSHED_KEY  # pylint: disable=protected-access
  assert internals.PUSHED_VERSION == executor._PUSHED_VERSION_KEY  # pylint: disable=protected-access


def test_autograph_leaves_tf_keras_alone_once_the_networks_are_imported():
  from model import network  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  from tensorflow.python.autograph.core import config  # pylint: disable=g-direct-tensorflow-import,import-outside-toplevel

  def tf_keras_rules() -> int:
    return sum(isinstance(rule, config.DoNotConvert)
               and rule.matches('tf_keras.src.engine.base_layer')
               for rule in config.CONVERSION_RULES)

  assert tf_keras_rules() == 1
  internals.leave_tf_keras_alone()
  assert tf_keras_rules() == 1


def test_tfx_is_packaged_for_a_runner_elsewhere_but_not_for_the_direct_runner(
    tmp_path, monkeypatch):
  """TFX's Beam executors package TFX (48 MB copied into a temporary folder, and left
  there) for the workers, except for the DirectRunner, whose workers are this machine's:
  importing our Beam executors' modules sets that rule (once)."""
  import tempfile  # pylint: disable=import-outside-toplevel
  from tfx.dsl.components.base import base_beam_executor  # pylint: disable=import-outside-toplevel
  from tfx.utils import dependency_utils  # pylint: disable=import-outside-toplevel
  from components import evaluator, example_gen  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
  rule = dependency_utils.make_beam_dependency_flags
  internals.leave_tfx_unpackaged_for_the_direct_runner()
  assert dependency_utils.make_beam_dependency_flags is rule
  for args in ([], ['--direct_running_mode=multi_processing'], ['--runner=DirectRunner'],
               ['--runner=direct']):
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=args)
    for executor in (example_gen.Executor(context), evaluator.Executor(context)):
      assert not any('extra_package' in arg for arg in executor._beam_pipeline_args), args  # pylint: disable=protected-access
  assert not os.listdir(tmp_path)
  dataflow = ['--runner=DataflowRunner', '--project=p']
  [package] = [arg.split('=', 1)[1] for arg in dependency_utils.make_beam_dependency_flags(
      dataflow) if arg.startswith('--extra_package=')]
  assert package.startswith(str(tmp_path)) and os.path.isfile(package)
  assert dependency_utils.make_beam_dependency_flags(
      [*dataflow, '--sdk_container_image=image']) == [*dataflow, '--sdk_container_image=image']
