"""`colorizer submit` and `colorizer schedule` against a stand-in for the Kubeflow Pipelines
and Vertex AI REST APIs on 127.0.0.1 (tests/fake_pipelines_api.py): the real clients
(kfp.Client, google.cloud.aiplatform) run, and the tests assert what they sent."""
import json

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from google.auth import credentials as auth_credentials

from conftest import CLUSTER
from fake_pipelines_api import FakePipelinesApi
from commands import cli
from commands import submit


@pytest.fixture
def api(monkeypatch, tmp_path):
  monkeypatch.setenv('HOME', str(tmp_path))  # No kfp context file from the user's home.
  with FakePipelinesApi() as fake:
    monkeypatch.setenv('STORAGE_EMULATOR_HOST', fake.url)
    yield fake


def spec_of(package):
  """What kfp.Client sends of a package: the PipelineSpec, or, with a platform spec (the
  GPU's node selector), both, each through its proto (kfp/client/client.py
  `_safe_load_yaml`, `_PipelineDoc.to_dict`)."""
  pipeline_spec, *platform = yaml.safe_load_all(open(package))
  pipeline_spec = json_format.MessageToDict(
      json_format.ParseDict(pipeline_spec, pipeline_spec_pb2.PipelineSpec()))
  if not platform:
    return pipeline_spec
  return {'pipeline_spec': pipeline_spec, 'platform_spec': json_format.MessageToDict(
      json_format.ParseDict(platform[0], pipeline_spec_pb2.PlatformSpec()))}


def test_submit_a_run_to_kubeflow_pipelines(api, compiled, capsys):
  assert cli.main(['colorizer', 'submit', '--host', api.url, '--package', compiled['.yaml'],
                   '--experiment', 'photos', '--run-name', 'first run']) == 0
  (experiment,) = api.sent('POST', '/apis/v2beta1/experiments')
  assert experiment['body']['display_name'] == 'photos'
  (run,) = api.sent('POST', '/apis/v2beta1/runs')
  assert run['body']['display_name'] == 'first run'
  assert run['body']['experiment_id'] == 'experiment-1'
  assert run['body']['pipeline_spec'] == spec_of(compiled['.yaml'])
  executors = run['body']['pipeline_spec']['platform_spec']['platforms']['kubernetes'][
      'deploymentSpec']['executors']
  assert executors['Trainer_executor']['nodeSelector']['labels'] == {
      'cloud.google.com/gke-accelerator': 'nvidia-tesla-t4'}
  # KFP's backend ignores the spec's defaultPipelineRoot; only the run's own root counts.
  assert run['body']['runtime_config']['pipeline_root'] == CLUSTER['pipeline_root']
  assert 'Submitted run run-1' in capsys.readouterr().out


def test_submit_reuses_an_existing_experiment(api, compiled):
  for name in ('one', 'two'):
    assert cli.main(['colorizer', 'submit', '--host', api.url, '--package', compiled['.yaml'],
                     '--run-name', name]) == 0
  assert len(api.sent('POST', '/apis/v2beta1/experiments')) == 1
  assert [r['body']['display_name'] for r in api.sent('POST', '/apis/v2beta1/runs')] == [
      'one', 'two']
  assert api.experiments[0]['display_name'] == 'colorizer'


def test_schedule_a_weekly_retraining_on_kubeflow_pipelines(api, compiled, capsys):
  assert cli.main(['colorizer', 'schedule', '--host', api.url, '--package', compiled['.yaml'],
                   '--cron', '0 3 * * 1', '--experiment', 'retraining']) == 0
  (recurring,) = api.sent('POST', '/apis/v2beta1/recurringruns')
  body = recurring['body']
  assert body['trigger'] == {'cron_schedule': {'cron': '0 0 3 * * 1'}}
  assert int(body['max_concurrency']) == 1 and body['no_catchup'] is True
  assert body['mode'] == 'ENABLE' and body['display_name'] == 'colorizer retraining'
  assert body['experiment_id'] == api.experiments[0]['experiment_id']
  assert api.experiments[0]['display_name'] == 'retraining'
  assert body['pipeline_spec'] == spec_of(compiled['.yaml'])
  assert body['runtime_config']['pipeline_root'] == CLUSTER['pipeline_root']
  assert 'Scheduled recurring-1' in capsys.readouterr().out


def test_submit_and_schedule_on_vertex_ai(api, compiled):
  """Through the same functions `--vertex` calls; the credentials are anonymous because no
  Google account exists here, and the endpoint is the stand-in's."""
  job = json.load(open(compiled['.json']))
  anonymous = auth_credentials.AnonymousCredentials()
  run = submit.submit_vertex(compiled['.json'], 'colorizer-test', 'europe-west4',
                             service_account='trainer@colorizer-test.iam.gserviceaccount.com',
                             api_endpoint=api.url, credentials=anonymous)
  (sent,) = api.sent('POST', '/v1/projects/colorizer-test/locations/europe-west4/pipelineJobs')
  assert run.id.startswith('projects/colorizer-test/locations/europe-west4/pipelineJobs/colorizer-')
  assert run.link == ('https://console.cloud.google.com/vertex-ai/locations/europe-west4/'
                      f'pipelines/runs/{run.id.split("/")[-1]}?project=colorizer-test')
  assert sent['body']['pipelineSpec'] == job['pipelineSpec']
  assert sent['body']['runtimeConfig']['gcsOutputDirectory'] == CLUSTER['pipeline_root']
  assert sent['body']['serviceAccount'] == 'trainer@colorizer-test.iam.gserviceaccount.com'

  schedule = submit.schedule_vertex(compiled['.json'], 'colorizer-test', 'europe-west4',
                                    'TZ=Europe/Amsterdam 0 3 * * 1', api_endpoint=api.url,
                                    credentials=anonymous)
  (sent,) = api.sent('POST', '/v1/projects/colorizer-test/locations/europe-west4/schedules')
  body = sent['body']
  assert body['cron'] == 'TZ=Europe/Amsterdam 0 3 * * 1'
  assert body['maxConcurrentRunCount'] == '1' and not body.get('catchUp', False)
  assert body['createPipelineJobRequest']['pipelineJob']['pipelineSpec'] == job['pipelineSpec']
  assert schedule.id == 'projects/colorizer-test/locations/europe-west4/schedules/1'


@pytest.mark.parametrize('cron, kfp, vertex', [
    ('0 3 * * 1', '0 0 3 * * 1', '0 3 * * 1'),
    ('0 0 3 * * 1', '0 0 3 * * 1', '0 3 * * 1'),
    ('TZ=Europe/Amsterdam 0 3 * * 1', None, 'TZ=Europe/Amsterdam 0 3 * * 1'),
    ('@weekly', None, None),
])
@pytest.mark.fast
def test_cron_expressions_for_each_scheduler(cron, kfp, vertex):
  for convert, expected in ((submit.kfp_cron, kfp), (submit.vertex_cron, vertex)):
    if expected is None:
      with pytest.raises(ValueError, match='--cron'):
        convert(cron)
    else:
      assert convert(cron) == expected


@pytest.mark.parametrize('args, message', [
    (['submit', '--package', 'p.yaml'], 'give --host'),
    (['submit', '--package', 'p.yaml', '--vertex', '--project', 'p'], 'needs --project and --region'),
    (['schedule', '--package', 'p.yaml', '--host', 'http://127.0.0.1:9'], '--cron'),
    (['submit', '--package', 'pipeline.json', '--host', 'http://127.0.0.1:9'],
     'Kubeflow Pipelines takes the PipelineSpec .yaml'),
])
@pytest.mark.fast
def test_usage_errors(args, message, capsys, monkeypatch, tmp_path):
  monkeypatch.setenv('HOME', str(tmp_path))
  assert cli.main(['colorizer', *args]) == 2
  assert message in capsys.readouterr().err


def test_a_package_in_a_bucket(api, compiled, bucket):
  """A package in the emulated bucket, read through TensorFlow's gs:// client."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  remote = f'{bucket}/packages/pipeline.yaml'
  tf.io.gfile.copy(compiled['.yaml'], remote)
  assert cli.main(['colorizer', 'submit', '--host', api.url, '--package', remote]) == 0
  (run,) = api.sent('POST', '/apis/v2beta1/runs')
  assert run['body']['pipeline_spec'] == spec_of(compiled['.yaml'])
