"""The pipeline compiled for Kubeflow Pipelines (.yaml) and Vertex AI (.json).

No cluster runs here: these tests read the compiled specs, which are exactly what a
cluster would be given."""
import json
import os
import re

import pytest
import yaml

from conftest import CLUSTER

EXPECTED_TASKS = {'PhotoExampleGen', 'Trainer', 'latest_blessed_model_resolver-model-resolver',
                  'latest_blessed_model_resolver-model-blessing-resolver', 'Evaluator',
                  'AtomicPusher'}


def load(path):
  """The PipelineSpec, from either format."""
  if path.endswith('.json'):
    return json.load(open(path))['pipelineSpec']
  return yaml.safe_load(open(path))


def containers(spec):
  """{task name: container spec} for the tasks that run in a container."""
  executors = spec['deploymentSpec']['executors']
  return {task: executors[f'{task}_executor']['container'] for task in EXPECTED_TASKS
          if 'container' in executors[f'{task}_executor']}


def parameter(spec, task, name):
  """A task's constant input parameter (schema 2.0 writes it as a typed constantValue)."""
  value = spec['root']['dag']['tasks'][task]['inputs']['parameters'][name]['runtimeValue']
  if 'constant' in value:
    return value['constant']
  (constant,) = value['constantValue'].values()
  return constant


@pytest.fixture(params=['.yaml', '.json'])
def spec(request, compiled):
  return load(compiled[request.param])


def test_every_component_is_present(spec):
  assert set(spec['root']['dag']['tasks']) == EXPECTED_TASKS
  assert spec['pipelineInfo']['name'] == 'colorizer'


def test_the_trainer_and_only_the_trainer_asks_for_gpus(spec):
  steps = containers(spec)
  assert set(steps) == {'PhotoExampleGen', 'Trainer', 'Evaluator', 'AtomicPusher'}
  trainer = steps.pop('Trainer')['resources']
  assert trainer['accelerator'] == {'type': CLUSTER['gpu_type'],
                                    'count': str(CLUSTER['gpu_count'])}
  assert trainer['cpuLimit'] == 8 and trainer['memoryLimit'] == 30
  for name, container in steps.items():
    assert 'resources' not in container, name


def test_every_step_runs_in_the_given_image(spec):
  for name, container in containers(spec).items():
    assert container['image'] == CLUSTER['image'], name
  # The ingestion's span-resolving driver (TFX's FileBasedExampleGen driver) too.
  ingestion = containers(spec)['PhotoExampleGen']
  assert ingestion['lifecycle']['preCacheCheck']['command'][-1].endswith('driver')


def test_beam_steps_run_on_dataflow_and_install_this_project(spec):
  expected = ['--runner=DataflowRunner', f'--project={CLUSTER["project"]}',
              f'--region={CLUSTER["region"]}', f'--temp_location={CLUSTER["temp_location"]}',
              '--setup_file=/colorizer/setup.py']
  steps = containers(spec)
  for args in (steps['PhotoExampleGen']['args'],
               steps['PhotoExampleGen']['lifecycle']['preCacheCheck']['args'],
               steps['Evaluator']['args']):
    assert args[-len(expected):] == expected


def test_the_pusher_runs_only_when_the_evaluator_blesses(spec):
  pusher = spec['root']['dag']['tasks']['AtomicPusher']
  condition = pusher['triggerPolicy']['condition']
  assert re.fullmatch(r"\(inputs\.artifacts\['_Evaluator\.blessing'\]\.artifacts\[0\]"
                      r"\.metadata\['blessed'\] == 1\.0\)", condition), condition
  assert 'Evaluator' in pusher['dependentTasks']
  pushed = pusher['inputs']['artifacts']
  assert pushed['model_blessing']['taskOutputArtifact']['producerTask'] == 'Evaluator'
  assert pushed['model']['taskOutputArtifact']['producerTask'] == 'Trainer'
  push_to = json.loads(parameter(spec, 'AtomicPusher', 'push_destination'))
  assert push_to['filesystem']['base_directory'] == CLUSTER['pipeline_root'] + '/serving_model'


def test_the_evaluator_compares_with_the_last_blessed_model(spec):
  baseline = spec['root']['dag']['tasks']['Evaluator']['inputs']['artifacts']['baseline_model']
  assert (baseline['taskOutputArtifact']['producerTask']
          == 'latest_blessed_model_resolver-model-resolver')


def test_ingestion_takes_the_newest_span_and_the_staged_weights(spec):
  value = lambda name: parameter(spec, 'PhotoExampleGen', name)
  assert value('input_base') == 'gs://colorizer-test/photos'
  assert json.loads(value('input_config'))['splits'][0]['pattern'] == 'span-{SPAN}/**'
  assert value('embedding_weights') == CLUSTER['embedding_weights']
  custom_config = json.loads(parameter(spec, 'Trainer', 'custom_config'))
  assert custom_config['embedding_weights'] == CLUSTER['embedding_weights']


def test_both_formats_carry_the_pipeline_root(compiled):
  assert yaml.safe_load(open(compiled['.yaml']))['defaultPipelineRoot'] == CLUSTER['pipeline_root']
  job = json.load(open(compiled['.json']))
  assert job['runtimeConfig']['gcsOutputDirectory'] == CLUSTER['pipeline_root']
  assert load(compiled['.yaml'])['root'] == job['pipelineSpec']['root']


@pytest.mark.parametrize('args, message', [
    (['--output', 'p.txt'], 'name a .yaml file'),
    (['--output', 'p.yaml', '--pipeline-root', '/tmp/root'], 'give a gs:// folder'),
    (['--output', 'p.yaml', '--beam-runner', 'DataflowRunner', '--project', 'p'],
     'DataflowRunner needs --region, --temp-location'),
    (['--output', 'p.yaml', '--gpu-type', 'NVIDIA_L4', '--gpu-count', '0'],
     '--gpu-count must be at least 1'),
])
def test_compile_usage_errors(args, message, tmp_path, capsys, monkeypatch):
  from pipeline import cli  # pylint: disable=import-outside-toplevel
  defaults = {'--pipeline-root': 'gs://b/root', '--data': 'gs://b/photos'}
  for flag, value in defaults.items():
    if flag not in args:
      args = args + [flag, value]
  monkeypatch.chdir(tmp_path)
  assert cli.main(['colorizer', 'compile', *args]) == 2
  assert message in capsys.readouterr().err
  assert not os.listdir(tmp_path)


def test_the_compiled_ingestion_step_runs_as_its_container_would(tmp_path):
  """Runs the compiled PhotoExampleGen's two commands (TFX's span-resolving driver, then
  the executor) as the cluster's launcher would: the same argument lists, an
  ExecutorInput built from the compiled parameters, and the driver's resolved span
  handed to the executor. Local folders stand in for the bucket; Beam runs in-process."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from conftest import IN_MEMORY_BEAM  # pylint: disable=import-outside-toplevel
  from pipeline import kubeflow_runner  # pylint: disable=import-outside-toplevel
  from sample_images import colourful_image, encode  # pylint: disable=import-outside-toplevel

  photos = tmp_path / 'photos'
  for span, count in ((1, 2), (2, 4)):
    (photos / f'span-{span}').mkdir(parents=True)
    for i in range(count):
      (photos / f'span-{span}' / f'{i}.png').write_bytes(
          encode(colourful_image(10 * span + i, 48, 64), 'PNG'))
  (photos / 'span-2' / 'broken.jpg').write_bytes(b'\xff\xd8 not a photo')
  package = str(tmp_path / 'pipeline.yaml')
  kubeflow_runner.compile_pipeline(
      package, str(tmp_path / 'root'), str(photos / 'span-{SPAN}'), image=CLUSTER['image'],
      beam_pipeline_args=kubeflow_runner.beam_args(extra=IN_MEMORY_BEAM),
      embedding_weights='none')
  spec = load(package)
  step = containers(spec)['PhotoExampleGen']
  task = spec['root']['dag']['tasks']['PhotoExampleGen']
  parameters = {name: value['runtimeValue']['constantValue']
                for name, value in task['inputs']['parameters'].items()}
  examples = tmp_path / 'root' / 'PhotoExampleGen' / 'examples'
  output_file = tmp_path / 'root' / 'PhotoExampleGen' / 'executor_output.json'

  def run(command, args):
    invocation = json.dumps({
        'inputs': {'parameters': parameters},
        'outputs': {'artifacts': {'examples': {'artifacts': [{
            'name': 'examples', 'type': {'schemaTitle': 'tfx.Examples'},
            'uri': str(examples)}]}},
                    'outputFile': str(output_file)}})
    argv = [sys.executable if part == 'python' else part for part in command]
    argv += [invocation if part == '{{$}}' else part for part in args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
    assert result.returncode == 0, result.stderr[-3000:]

  driver = step['lifecycle']['preCacheCheck']
  run(driver['command'], driver['args'])
  resolved = json.load(open(output_file))['parameterValues']
  assert resolved['span'] == 2
  assert json.loads(resolved['input_config'])['splits'][0]['pattern'] == 'span-2/**'
  # What the launcher does with the driver's answer before starting the executor.
  parameters.update(span={'intValue': '2'},
                    input_config={'stringValue': resolved['input_config']},
                    input_fingerprint={'stringValue': resolved['input_fingerprint']})

  run(step['command'], step['args'])
  report = json.load(open(examples / 'ingest_report.json'))
  assert report['total'] == 5 and report['written'] == 4
  assert report['rejected'] == {'not_an_image': 1}
  assert {e['source'].split('/')[-2] for e in report['files']} == {'span-2'}
  records = [os.path.join(d, f) for d, _, files in os.walk(examples) for f in files
             if f.startswith('data_tfrecord')]
  assert {os.path.basename(os.path.dirname(r)) for r in records} <= {'Split-train',
                                                                       'Split-eval'}
