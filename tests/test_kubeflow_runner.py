"""The pipeline compiled for Kubeflow Pipelines (.yaml) and Vertex AI (.json).

No cluster runs here. The first tests read the compiled specs, which are exactly what
a cluster would be given; the last ones run them, task by task in the image's
environment, under the rules of each backend (tests/kfp_backend.py)."""
import concurrent.futures
import json
import os
import re

import pytest
import tensorflow as tf

import kfp_backend
from conftest import CLUSTER
from model import serving

EXPECTED_TASKS = {'PhotoExampleGen', 'Trainer', 'Evaluator', 'AtomicPusher'}


load = kfp_backend.load_spec


def containers(spec):
  """{task name: container spec} for the tasks that run in a container."""
  executors = spec['deploymentSpec']['executors']
  return {task: executors[f'{task}_executor']['container'] for task in EXPECTED_TASKS
          if 'container' in executors[f'{task}_executor']}


def parameter(spec, task, name):
  """A task's constant input parameter (KFP's driver reads `runtimeValue.constant` only)."""
  return spec['root']['dag']['tasks'][task]['inputs']['parameters'][name]['runtimeValue'][
      'constant']


@pytest.fixture(params=['.yaml', '.json'])
def spec(request, compiled):
  return load(compiled[request.param])


def test_every_component_is_present_and_no_resolver(spec):
  assert set(spec['root']['dag']['tasks']) == EXPECTED_TASKS
  assert spec['pipelineInfo']['name'] == 'colorizer'
  assert spec['schemaVersion'] == '2.1.0'
  for label, executor in spec['deploymentSpec']['executors'].items():
    assert set(executor) == {'container'}, label  # No resolver, importer or custom job.


def test_every_step_runs_our_entry_point_in_the_given_image(spec):
  from pipeline import kubeflow_runner  # pylint: disable=import-outside-toplevel
  for name, container in containers(spec).items():
    assert container['image'] == CLUSTER['image'], name
    assert container['command'] == kubeflow_runner.ENTRYPOINT, name
  # The ingestion's span-resolving driver (TFX's FileBasedExampleGen driver) too.
  ingestion = containers(spec)['PhotoExampleGen']
  assert ingestion['lifecycle']['preCacheCheck']['command'][-1].endswith('driver')


def test_each_backend_is_asked_for_the_gpu_in_its_own_words(compiled):
  """Vertex AI takes its accelerator name. KFP makes the accelerator type a Kubernetes
  resource name (driver.go initPodSpecPatch), so the .yaml asks for the device
  plugin's nvidia.com/gpu, on nodes with that model; and only the Trainer does."""
  from google.cloud.aiplatform_v1.types import accelerator_type  # pylint: disable=import-outside-toplevel
  vertex = containers(load(compiled['.json']))
  assert vertex['Trainer']['resources']['accelerator'] == {
      'type': CLUSTER['gpu_type'], 'count': str(CLUSTER['gpu_count'])}
  assert CLUSTER['gpu_type'] in accelerator_type.AcceleratorType.__members__
  kfp = containers(load(compiled['.yaml']))
  assert kfp['Trainer']['resources']['accelerator'] == {
      'type': 'nvidia.com/gpu', 'count': str(CLUSTER['gpu_count'])}
  selector = kfp_backend.node_selector(kfp_backend.load_platform_spec(compiled['.yaml']),
                                       'Trainer_executor')
  assert selector == {'cloud.google.com/gke-accelerator': 'nvidia-tesla-t4'}
  trainer = kfp_backend.pod_resources(kfp['Trainer'])
  assert kfp_backend.unschedulable(trainer, selector) is None
  cpu_nodes_only = kfp_backend.NODE_POOLS[:1]
  assert 'Insufficient nvidia.com/gpu' in kfp_backend.unschedulable(
      trainer, {}, cpu_nodes_only)
  for steps in (vertex, kfp):
    for name, container in steps.items():
      if name != 'Trainer':
        assert 'accelerator' not in container['resources'], name


def test_every_step_asks_for_cpu_and_memory_and_beam_runs_that_many_workers(spec, tmp_path):
  """With Dataflow (the `compiled` fixture) the Beam steps only launch the job; with
  the DirectRunner, Beam runs in the step's pod, one worker per vCPU it asked for."""
  from pipeline import configs  # pylint: disable=import-outside-toplevel
  steps = containers(spec)
  assert steps['Trainer']['resources']['cpuLimit'] == 8
  assert steps['Trainer']['resources']['memoryLimit'] == 30
  for name in ('PhotoExampleGen', 'Evaluator'):
    resources = steps[name]['resources']
    assert ((resources['cpuLimit'], resources['memoryLimit'])
            == configs.DATAFLOW_LAUNCHER_RESOURCES), name

  local = containers(load(compile_for_test(tmp_path / 'direct.yaml', 'gs://b/root',
                                           tmp_path / 'photos', beam_extra=())))
  for name, container in local.items():
    resources = container['resources']
    assert resources['cpuLimit'] > 0 and resources['memoryLimit'] > 0, name
    assert kfp_backend.unschedulable(kfp_backend.pod_resources(container), {}) is None, name
  for name in ('PhotoExampleGen', 'Evaluator'):
    args = local[name]['args']
    workers = [arg for arg in args if arg.startswith('--direct_num_workers=')]
    assert workers[-1] == f'--direct_num_workers={int(local[name]["resources"]["cpuLimit"])}'
    assert not kfp_backend._beam_sized_by_the_node(args)  # pylint: disable=protected-access


def test_kfp_never_serves_ingestion_from_its_cache(compiled):
  """KFP runs no driver before its cache check, so ingestion's cache key is the same
  every run: the .yaml turns its cache off. Vertex AI resolves the span first."""
  kfp = load(compiled['.yaml'])['root']['dag']['tasks']
  assert not kfp['PhotoExampleGen'].get('cachingOptions', {}).get('enableCache')
  for name in EXPECTED_TASKS - {'PhotoExampleGen'}:
    assert kfp[name]['cachingOptions'] == {'enableCache': True}, name
  vertex = load(compiled['.json'])['root']['dag']['tasks']
  for name in EXPECTED_TASKS:
    assert vertex[name]['cachingOptions'] == {'enableCache': True}, name


def test_beam_steps_run_on_dataflow_in_the_pipelines_image(spec):
  """Dataflow's workers run the same image as the steps (Runner v2), and install nothing."""
  expected = ['--runner=DataflowRunner', f'--project={CLUSTER["project"]}',
              f'--region={CLUSTER["region"]}', f'--temp_location={CLUSTER["temp_location"]}',
              f'--sdk_container_image={CLUSTER["image"]}', '--experiments=use_runner_v2']
  steps = containers(spec)
  for args in (steps['PhotoExampleGen']['args'],
               steps['PhotoExampleGen']['lifecycle']['preCacheCheck']['args'],
               steps['Evaluator']['args']):
    assert args[-len(expected):] == expected
    assert not [arg for arg in args if arg.startswith(('--setup_file', '--requirements_file',
                                                       '--extra_package'))]


RETRAIN = (r"\(inputs\.artifacts\['([^']+)'\]\.artifacts\[0\]"
           r"\.metadata\['retrain'\] == 1\.0\)")


def test_training_runs_only_when_ingestion_found_something_new(spec):
  tasks = spec['root']['dag']['tasks']
  for name in ('Trainer', 'Evaluator', 'AtomicPusher'):
    condition = tasks[name]['triggerPolicy']['condition']
    examples = re.match(RETRAIN, condition)
    assert examples, (name, condition)
    source = tasks[name]['inputs']['artifacts'][examples.group(1)]['taskOutputArtifact']
    assert source == {'producerTask': 'PhotoExampleGen', 'outputArtifactKey': 'examples'}
  assert 'triggerPolicy' not in tasks['PhotoExampleGen']


def test_the_pusher_runs_only_when_the_evaluator_blesses(spec):
  task = spec['root']['dag']['tasks']['AtomicPusher']
  condition = task['triggerPolicy']['condition']
  assert re.fullmatch(RETRAIN + r" && \(inputs\.artifacts\['model_blessing'\]\.artifacts\[0\]"
                      r"\.metadata\['blessed'\] == 1\.0\)", condition), condition
  declared = spec['components']['AtomicPusher']['inputDefinitions']['artifacts']
  assert set(re.findall(r"inputs\.artifacts\['([^']+)'\]", condition)) <= set(declared)
  assert 'Evaluator' in task['dependentTasks']
  pushed = task['inputs']['artifacts']
  assert pushed['model_blessing']['taskOutputArtifact']['producerTask'] == 'Evaluator'
  assert pushed['model']['taskOutputArtifact']['producerTask'] == 'Trainer'
  push_to = json.loads(parameter(spec, 'AtomicPusher', 'push_destination'))
  assert push_to['filesystem']['base_directory'] == CLUSTER['pipeline_root'] + '/serving_model'


def test_the_evaluator_compares_with_the_served_model(spec):
  evaluator = spec['root']['dag']['tasks']['Evaluator']
  assert set(evaluator['inputs']['artifacts']) == {'examples', 'model'}
  assert parameter(spec, 'Evaluator', 'serving_dir') == CLUSTER['pipeline_root'] + '/serving_model'


def test_ingestion_takes_the_newest_span_and_the_staged_weights(spec):
  value = lambda name: parameter(spec, 'PhotoExampleGen', name)
  assert value('input_base') == 'gs://colorizer-test/photos'
  assert json.loads(value('input_config'))['splits'][0]['pattern'] == 'span-{SPAN}/**'
  assert value('embedding_weights') == CLUSTER['embedding_weights']
  custom_config = json.loads(parameter(spec, 'Trainer', 'custom_config'))
  assert custom_config['embedding_weights'] == CLUSTER['embedding_weights']


def test_both_formats_carry_the_pipeline_root(compiled):
  assert load(compiled['.yaml'])['defaultPipelineRoot'] == CLUSTER['pipeline_root']
  job = json.load(open(compiled['.json']))
  assert job['runtimeConfig']['gcsOutputDirectory'] == CLUSTER['pipeline_root']
  kfp_root, vertex_root = load(compiled['.yaml'])['root'], job['pipelineSpec']['root']
  for root in (kfp_root, vertex_root):  # The one difference: test_kfp_never_serves_...
    del root['dag']['tasks']['PhotoExampleGen']['cachingOptions']
  assert kfp_root == vertex_root


@pytest.mark.parametrize('args, message', [
    (['--output', 'p.txt'], 'name a .yaml file'),
    (['--output', 'p.yaml', '--pipeline-root', '/tmp/root'], 'give a gs:// folder'),
    (['--output', 'p.yaml', '--beam-runner', 'DataflowRunner', '--project', 'p'],
     'DataflowRunner needs --region, --temp-location'),
    (['--output', 'p.yaml', '--gpu-type', 'NVIDIA_L4', '--gpu-count', '0'],
     '--gpu-count must be at least 1'),
    (['--output', 'p.yaml', '--gpu-type', 'nvidia.com/gpu'],
     'name the GPU model as Vertex AI does'),
    (['--output', 'p.json', '--gpu-type', 'NVIDIA_TESLA_T5'], 'NVIDIA_TESLA_T4, NVIDIA_L4'),
    (['--output', 'p.yaml', '--gpu-type', 'NVIDIA_L4', '--gpu-node-selector', 'pool'],
     'give KEY=VALUE, or none'),
])
def test_compile_usage_errors(args, message, tmp_path, capsys, monkeypatch):
  from commands import cli  # pylint: disable=import-outside-toplevel
  defaults = {'--pipeline-root': 'gs://b/root', '--data': 'gs://b/photos'}
  for flag, value in defaults.items():
    if flag not in args:
      args = args + [flag, value]
  monkeypatch.chdir(tmp_path)
  assert cli.main(['colorizer', 'compile', *args]) == 2
  assert message in capsys.readouterr().err
  assert not os.listdir(tmp_path)




# The compiled pipeline run end to end under each backend's rules, twice: a first run
# with nothing served (gated against gray only), then a run on a newer span, warm-started
# from the served model over a window of both spans, whose candidate must beat the
# served model by more than it can (an ab-MSE under 0: max_regression -1), so only the
# "no worse than the served model" gate can reject it. The gray gate is opened wide
# (these runs train two steps): what is tested here is that each backend runs the spec,
# resolves the span and gates against the served model; the gates' arithmetic is
# test_pipeline's.
BACKEND_RUN = dict(embedding_weights='none', eval_percent=50, train_steps=2, eval_steps=1,
                   hyperparameters={'batch_size': 2, 'epochs': 1, 'learning_rate': 1e-3},
                   min_improvement_over_gray=-1000.0)


def write_span(photos: str, span: int, count: int) -> str:
  """`count` photos in <photos>/span-<span>/ (local or gs://)."""
  from sample_images import colourful_image, encode  # pylint: disable=import-outside-toplevel
  folder = f'{photos}/span-{span}'
  for i in range(count):
    write(f'{folder}/{i}.png', encode(colourful_image(10 * span + i, 64, 48), 'PNG'))
  return folder


def write(uri: str, data: bytes) -> None:
  with tf.io.gfile.GFile(uri, 'wb') as f:
    f.write(data)


def read_json(uri: str):
  with tf.io.gfile.GFile(uri) as f:
    return json.load(f)


def compile_for_test(path, root, photos, beam_extra=None, **gates):
  """The pipeline compiled with the DirectRunner (by default in memory, one worker, as
  the tests run Beam) and the stand-in backends' gates."""
  from conftest import IN_MEMORY_BEAM  # pylint: disable=import-outside-toplevel
  from pipeline import kubeflow_runner  # pylint: disable=import-outside-toplevel
  kubeflow_runner.compile_pipeline(
      str(path), str(root), f'{photos}/span-{{SPAN}}', image=CLUSTER['image'],
      beam_pipeline_args=kubeflow_runner.beam_args(
          extra=IN_MEMORY_BEAM if beam_extra is None else beam_extra),
      **BACKEND_RUN, **gates)
  return str(path)


def validation_failures(evaluation_uri):
  import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel
  result = tfma.load_validation_result(evaluation_uri)
  return {(failure.metric_key.name, failure.metric_key.is_diff)
          for per_slice in result.metric_validations_per_slice for failure in per_slice.failures}


def run_weeks(backend, suffix, image, folder):
  """The first run on span 1, then a run on span 2 with the strict regression gate,
  then that package again with no new span, on one cluster (its MLMD and its cache
  carry over, as between a schedule's runs), with the photos, the pipeline root and the
  serving directory in the emulated bucket."""
  from conftest import bucket_folder  # pylint: disable=import-outside-toplevel
  bucket = bucket_folder(f'kubeflow-{backend}')
  photos, root = f'{bucket}/photos', f'{bucket}/root'
  cluster = kfp_backend.Cluster(str(folder / 'cluster'), image, backend)
  write_span(photos, 1, 6)
  first = cluster.run(compile_for_test(folder / f'first{suffix}', root, photos), root)
  served = serving.served_model(f'{root}/serving_model')
  write_span(photos, 2, 4)
  write(f'{photos}/span-2/broken.jpg', b'\xff\xd8 not a photo')
  package = compile_for_test(folder / f'second{suffix}', root, photos, max_regression=-1.0)
  second = cluster.run(package, root)
  third = cluster.run(package, root)
  return {'first': first, 'served_after_first': served, 'second': second, 'third': third,
          'serving_dir': f'{root}/serving_model'}


@pytest.fixture(scope='module')
def backend_runs(image, tmp_path_factory):
  """Both backends' three runs, side by side (each task is a subprocess; two at a time
  keep this machine's two cores busy). {backend: result or the exception it raised}."""
  folder = tmp_path_factory.mktemp('backends')

  def attempt(backend, suffix):
    try:
      return run_weeks(backend, suffix, image, folder / backend)
    except Exception as e:  # pylint: disable=broad-except
      return e

  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    futures = {backend: pool.submit(attempt, backend, suffix)
               for backend, suffix in ((kfp_backend.KFP, '.yaml'),
                                       (kfp_backend.VERTEX, '.json'))}
  return {backend: future.result() for backend, future in futures.items()}


def model_locations(run):
  """Where the Evaluator's TFMA loaded each model from (its eval_config.json)."""
  evaluation = run.outputs['Evaluator']['evaluation']['artifacts'][0]['uri']
  return read_json(f'{evaluation}/eval_config.json')['modelLocations']


@pytest.mark.parametrize('backend', [kfp_backend.KFP, kfp_backend.VERTEX])
def test_the_compiled_pipeline_runs_and_gates_against_the_served_model(backend, backend_runs):
  result = backend_runs[backend]
  if isinstance(result, Exception):
    raise result
  first, second = result['first'], result['second']
  print(f'{backend}: seconds per task', first.seconds, second.seconds)
  assert first.states == dict.fromkeys(EXPECTED_TASKS, 'SUCCEEDED')
  examples = first.outputs['PhotoExampleGen']['examples']['artifacts'][0]
  report = read_json(f"{examples['uri']}/ingest_report.json")
  assert report['total'] == report['written'] == 6
  blessing = first.outputs['Evaluator']['blessing']['artifacts'][0]['metadata']
  assert blessing['blessed'] == 1 and 'baseline_model' not in blessing
  served = result['served_after_first']
  assert serving.numbered_versions(result['serving_dir']) == [int(os.path.basename(served))]

  # The newer span is ingested, not served from the cache, and everything after it runs:
  # the window holds both spans, span 1's photos read back from the record cache, and
  # the Trainer starts from the version the first run pushed.
  assert second.states == {**dict.fromkeys(EXPECTED_TASKS, 'SUCCEEDED'),
                           'AtomicPusher': 'SKIPPED'}
  examples = second.outputs['PhotoExampleGen']['examples']['artifacts'][0]
  assert examples['metadata']['custom:span'] == 2 and examples['metadata']['spans'] == '[1, 2]'
  report = read_json(f"{examples['uri']}/ingest_report.json")
  assert report['total'] == 11 and report['written'] == 10 and report['reused'] == 6
  assert report['rejected'] == {'not_an_image': 1}
  assert {f['source'].split('/')[-2] for f in report['files'] if f.get('reused')} == {'span-1'}
  assert {f['source'].split('/')[-2] for f in report['files'] if not f.get('reused')} == {
      'span-2'}
  model = second.outputs['Trainer']['model']['artifacts'][0]['metadata']
  assert model['warm_started_from'] == served
  assert 'warm_started_from' not in first.outputs['Trainer']['model']['artifacts'][0]['metadata']
  blessing = second.outputs['Evaluator']['blessing']['artifacts'][0]['metadata']
  assert blessing['blessed'] == 0 and blessing['baseline_model'] == served
  evaluation = second.outputs['Evaluator']['evaluation']['artifacts'][0]['uri']
  assert validation_failures(evaluation) == {('ab_mse', True)}
  assert serving.served_model(result['serving_dir']) == served

  # A week with no new span trains nothing: on Vertex AI every step is served from the
  # cache; on KFP ingestion runs (from the record cache) and finds that the candidate
  # it would train was rejected against this served model already.
  third = result['third']
  if backend == kfp_backend.KFP:
    assert third.states == {'PhotoExampleGen': 'SUCCEEDED', 'Trainer': 'SKIPPED',
                            'Evaluator': 'SKIPPED', 'AtomicPusher': 'SKIPPED'}
    examples = third.outputs['PhotoExampleGen']['examples']['artifacts'][0]
    assert examples['metadata']['retrain'] == 0 and examples['metadata']['reused'] == 10
  else:
    assert third.states == {**dict.fromkeys(EXPECTED_TASKS, 'CACHED'),
                            'AtomicPusher': 'SKIPPED'}
  print(f'{backend}: seconds per task, the week with no new span', third.seconds)

  # TFMA loaded the served model from under the pipeline root, where Dataflow's workers
  # can read it (not the pod's disk, nor its FUSE mount), and the copy is gone.
  locations = model_locations(second)
  assert set(locations) == {'candidate', 'baseline'}
  for location in locations.values():
    assert location.startswith(second.pipeline_root + '/'), location
  assert not tf.io.gfile.exists(locations['baseline'])


def test_kfp_hands_tfx_untyped_inputs_that_the_entry_point_types(backend_runs):
  """What KFP's driver gave the Trainer: its input as read back from MLMD."""
  result = backend_runs[kfp_backend.KFP]
  if isinstance(result, Exception):
    raise result
  given = result['second'].executor_inputs['Trainer']
  (examples,) = given['inputs']['artifacts']['examples']['artifacts']
  assert examples['type'] == {'instanceSchema': ''} and examples['name'].isdigit()
  assert set(given['outputs']['artifacts']) == {'model', 'model_run', kfp_backend.EXECUTOR_LOGS}
  assert given['outputs']['outputFile'] == kfp_backend.KFP_OUTPUT_FILE


def test_kfp_refuses_what_its_backend_does_not_run(image, tmp_path):
  """The stand-in's KFP rules, each against a spec that breaks one of them."""
  spec = load(compile_for_test(tmp_path / 'p.yaml', tmp_path / 'root', tmp_path / 'photos'))

  cluster = kfp_backend.Cluster(str(tmp_path / 'cluster'), image, kfp_backend.KFP)

  def fails(changed, message):
    with pytest.raises(kfp_backend.BackendError, match=message):
      kfp_backend.Run(cluster, changed, {}, str(tmp_path / 'root')).execute()

  with_resolver = json.loads(json.dumps(spec))
  with_resolver['deploymentSpec']['executors']['r_executor'] = {'resolver': {}}
  fails(with_resolver, 'resolver executors not implemented')
  old_parameters = json.loads(json.dumps(spec))
  old_parameters['root']['dag']['tasks']['PhotoExampleGen']['inputs']['parameters'][
      'input_base']['runtimeValue'] = {'constantValue': {'stringValue': 'photos'}}
  fails(old_parameters, 'not implemented')
  executor_input = {'inputs': {'artifacts': {'model_blessing': {'artifacts': [
      {'metadata': {'blessed': 1}}]}}}}
  with pytest.raises(kfp_backend.BackendError, match='does not declare'):
    kfp_backend._condition_holds(  # pylint: disable=protected-access
        "(inputs.artifacts['_Evaluator.blessing'].artifacts[0].metadata['blessed'] == 1.0)",
        executor_input)
  assert kfp_backend._condition_holds(  # pylint: disable=protected-access
      "(inputs.artifacts['model_blessing'].artifacts[0].metadata['blessed'] == 1.0)",
      executor_input)


@pytest.mark.fast
def test_the_stand_in_converts_metadata_as_kfps_launcher_and_driver_do(tmp_path):
  """converter.go: a string stays, numbers and bools come back as numbers, lists and
  structs come back wrapped; the launcher adds display_name and store_session_info;
  the driver hands the artifact on untyped, named by its MLMD id."""
  store = kfp_backend.Metadata(str(tmp_path / 'mlmd.sqlite'))
  written = {'uri': 'gs://b/x', 'metadata': {
      'text': 'a', 'count': 3, 'ratio': 0.5, 'flag': True, 'names': ['x'], 'nested': {'k': 1}}}
  artifact_id = store.record_artifact('blessing', 'title: tfx.ModelBlessing\ntype: object\n',
                                      written, '{"Provider":"gs"}')
  (artifact,) = store.store.get_artifacts_by_id([artifact_id])
  assert store.store.get_artifact_types_by_id([artifact.type_id])[0].name == 'tfx.ModelBlessing'
  read = kfp_backend.to_runtime_artifact(artifact, {'instanceSchema': ''}, str(artifact.id))
  assert read == {'name': str(artifact_id), 'type': {'instanceSchema': ''}, 'uri': 'gs://b/x',
                  'metadata': {'text': 'a', 'count': 3.0, 'ratio': 0.5, 'flag': 1.0,
                               'names': {'list': ['x']}, 'nested': {'struct': {'k': 1.0}},
                               'display_name': 'blessing',
                               'store_session_info': '{"Provider":"gs"}'}}
  with pytest.raises(kfp_backend.BackendError, match='No title specified'):
    store.record_artifact('x', '', written, None)


@pytest.mark.fast
def test_the_stand_ins_cache_key_holds_what_kfps_does():
  """cache.go GenerateCacheKey: parameters, input artifact names, output specs without
  their URIs, the command and args as compiled, the image."""
  base = {'inputs': {'parameterValues': {'input_base': 'gs://b/photos'},
                     'artifacts': {'examples': {'artifacts': [{'name': '7', 'uri': 'gs://a'}]}}},
          'outputs': {'artifacts': {'model': {'artifacts': [
              {'type': {'instanceSchema': 'title: tfx.Model'}, 'uri': 'gs://r/1/model'}]}}}}

  def key(executor_input, args=('--x', '{{$}}'), image='i:1'):
    return kfp_backend.fingerprint(kfp_backend.cache_key(executor_input, {}, list(args), image))

  def changed(path, value):
    copy = json.loads(json.dumps(base))
    target = copy
    for part in path[:-1]:
      target = target[part]
    target[path[-1]] = value
    return copy

  same = key(base)
  assert key(changed(('outputs', 'artifacts', 'model', 'artifacts'),
                     [{'type': {'instanceSchema': 'title: tfx.Model'},
                       'uri': 'gs://r/2/model'}])) == same
  assert key(changed(('inputs', 'artifacts', 'examples', 'artifacts'),
                     [{'name': '7', 'uri': 'gs://elsewhere'}])) == same
  for different in (
      key(changed(('inputs', 'parameterValues', 'input_base'), 'gs://b/other')),
      key(changed(('inputs', 'artifacts', 'examples', 'artifacts'), [{'name': '8'}])),
      key(base, args=('--y', '{{$}}')), key(base, image='i:2')):
    assert different != same


@pytest.mark.fast
def test_every_gpu_name_is_vertex_ais_and_the_scheduler_refuses_it_as_a_resource():
  from google.cloud.aiplatform_v1.types import accelerator_type  # pylint: disable=import-outside-toplevel
  from pipeline import configs  # pylint: disable=import-outside-toplevel
  assert set(configs.GPU_TYPES) <= set(accelerator_type.AcceleratorType.__members__)
  assert 'Insufficient NVIDIA_TESLA_T4' in kfp_backend.unschedulable(
      {'cpu': 8, 'memory': 30, 'NVIDIA_TESLA_T4': 1}, {})
