"""pipeline/kubeflow_entrypoint.py: the ExecutorInput of open-source Kubeflow Pipelines,
mended for TFX's entry point, against a published trace (tests/traces/) and in a step
of the compiled pipeline run as KFP's pod runs it."""
import copy
import json
import os

import pytest

import kfp_backend

TRACE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'traces',
                     'tfx_7768_kfp_2_5.json')


def trace():
  with open(TRACE) as f:
    return json.load(f)


def tfx_parse(executor_input, key='inputs'):
  """TFX's entry point's reading of the ExecutorInput's artifacts."""
  from google.protobuf import json_format  # pylint: disable=import-outside-toplevel
  from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=import-outside-toplevel
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils  # pylint: disable=import-outside-toplevel
  parsed = json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput(),
                                 ignore_unknown_fields=True)
  return kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(
      getattr(parsed, key).artifacts)


@pytest.mark.fast
def test_tfxs_own_entry_point_fails_on_kfps_executor_input():
  """The trace reproduces tensorflow/tfx#7768, and KFP's executor-logs output fails too."""
  executor_input = trace()['executorInput']
  with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'get'"):
    tfx_parse(executor_input)
  with pytest.raises(ImportError):
    tfx_parse(executor_input, 'outputs')


@pytest.mark.fast
def test_the_inputs_spec_types_kfps_inputs_and_kfps_own_outputs_are_left_out():
  from tfx.types import standard_artifacts  # pylint: disable=import-outside-toplevel
  from pipeline import kubeflow_entrypoint  # pylint: disable=import-outside-toplevel
  given = trace()
  mended = kubeflow_entrypoint.mend(copy.deepcopy(given['executorInput']),
                                    given['componentSpec']['inputDefinitions'])
  (examples,) = tfx_parse(mended)['examples']
  assert isinstance(examples, standard_artifacts.Examples)
  raw = given['executorInput']['inputs']['artifacts']['examples']['artifacts'][0]
  assert examples.uri == raw['uri']
  assert examples.split_names == '["train", "eval"]' and examples.span == 0
  assert examples.get_string_custom_property('tfx_version') == '1.16.0'
  assert set(tfx_parse(mended, 'outputs')) == {'statistics'}
  # Everything else is as KFP gave it.
  mended_input = mended['inputs']['artifacts']['examples']['artifacts'][0]
  assert {**mended_input, 'type': raw['type']} == raw
  assert mended['inputs']['parameterValues'] == given['executorInput']['inputs']['parameterValues']
  assert mended['outputs']['outputFile'] == given['executorInput']['outputs']['outputFile']


@pytest.mark.fast
def test_typed_inputs_are_left_as_they_are_and_an_undeclared_untyped_one_is_refused():
  from pipeline import kubeflow_entrypoint  # pylint: disable=import-outside-toplevel
  given = trace()
  typed = copy.deepcopy(given['executorInput'])
  typed['inputs']['artifacts']['examples']['artifacts'][0]['type'] = {
      'schemaTitle': 'tfx.Examples'}
  del typed['outputs']['artifacts']['executor-logs']
  assert kubeflow_entrypoint.mend(copy.deepcopy(typed), {}) == typed
  with pytest.raises(ValueError, match="'examples' arrived without a type"):
    kubeflow_entrypoint.mend(copy.deepcopy(given['executorInput']), {})


@pytest.mark.fast
def test_another_tfx_is_refused_loudly(monkeypatch):
  from tfx import version  # pylint: disable=import-outside-toplevel
  from pipeline import kubeflow_entrypoint  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(version, '__version__', '1.17.0')
  with pytest.raises(RuntimeError, match='written for TFX 1.16.0.*this image has TFX 1.17.0'):
    kubeflow_entrypoint.parse_flags(['entrypoint'])


def test_a_compiled_step_runs_on_the_executor_input_kfp_gives_it(compiled, image, tmp_path):
  """The Pusher of the compiled .yaml, given a not-blessed model as KFP's driver gives
  it (inputs untyped and named by their MLMD ids, executor-logs among the outputs), in a
  pod of the image: it runs, and reports the model not pushed."""
  spec = kfp_backend.load_spec(compiled['.yaml'])
  task = spec['root']['dag']['tasks']['AtomicPusher']
  container = spec['deploymentSpec']['executors']['AtomicPusher_executor']['container']
  model = tmp_path / 'model'
  (model / 'Format-Serving').mkdir(parents=True)
  untyped = {'instanceSchema': ''}
  executor_input = {
      'inputs': {
          'parameterValues': {key: value['runtimeValue']['constant']
                              for key, value in task['inputs']['parameters'].items()},
          'artifacts': {
              'model': {'artifacts': [{'name': '12', 'type': untyped, 'uri': str(model),
                                       'metadata': {'display_name': 'model'}}]},
              'model_blessing': {'artifacts': [{
                  'name': '14', 'type': untyped, 'uri': str(tmp_path / 'blessing'),
                  'metadata': {'blessed': 0.0, 'display_name': 'blessing'}}]}}},
      'outputs': {
          'artifacts': {
              'pushed_model': {'artifacts': [{
                  'type': spec['components']['AtomicPusher']['outputDefinitions']['artifacts'][
                      'pushed_model']['artifactType'],
                  'uri': str(tmp_path / 'pushed_model')}]},
              kfp_backend.EXECUTOR_LOGS: {'artifacts': [{
                  'type': {'schemaTitle': 'system.Artifact'},
                  'uri': str(tmp_path / 'logs')}]}},
          'outputFile': kfp_backend.KFP_OUTPUT_FILE}}
  written = tmp_path / 'output_metadata.json'
  image.run_in_pod(
      container['command'],
      [json.dumps(executor_input) if arg == '{{$}}' else arg for arg in container['args']],
      cwd=str(tmp_path), mounts=[os.path.dirname(kfp_backend.KFP_OUTPUT_FILE)],
      keep=(kfp_backend.KFP_OUTPUT_FILE, str(written)))
  output = json.loads(written.read_text())
  (pushed,) = output['artifacts']['pushed_model']['artifacts']
  assert pushed['metadata']['pushed'] == 0
  assert set(output['artifacts']) == {'pushed_model'}
