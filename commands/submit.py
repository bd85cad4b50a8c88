"""Submits a compiled pipeline, once or on a schedule, to Kubeflow Pipelines or Vertex AI.

Kubeflow Pipelines through `kfp.Client` (the v2beta1 REST API); Vertex AI through
`google.cloud.aiplatform.PipelineJob` and `PipelineJobSchedule`. Schedules never catch
up on missed runs and start at most one run at a time: a retraining that overlaps the
next would only race it to the serving directory.
"""
import dataclasses
import os
import re
import tempfile
from typing import Optional

from pipeline import configs

_TZ = re.compile(r'^(TZ|CRON_TZ)=\S+\s+')


@dataclasses.dataclass(frozen=True)
class Submitted:
  """What the orchestrator created: its id and where to look at it."""
  id: str
  link: str


def kfp_cron(cron: str) -> str:
  """KFP's scheduler wants six fields, seconds first; a standard five-field cron
  expression gets second 0."""
  if _TZ.match(cron):
    raise ValueError(f'--cron {cron!r}: Kubeflow Pipelines schedules in the cluster\'s '
                     'time zone; drop the TZ= prefix')
  fields = cron.split()
  if len(fields) == 5:
    return ' '.join(['0'] + fields)
  if len(fields) == 6:
    return ' '.join(fields)
  raise ValueError(f'--cron {cron!r}: expected five fields (minute hour day month weekday)')


def vertex_cron(cron: str) -> str:
  """Vertex AI wants standard five-field cron, optionally prefixed with TZ=Area/City."""
  zone = _TZ.match(cron)
  prefix, rest = (zone.group(0), cron[zone.end():]) if zone else ('', cron)
  fields = rest.split()
  if len(fields) == 6 and fields[0] == '0':
    fields = fields[1:]
  if len(fields) != 5:
    raise ValueError(f'--cron {cron!r}: expected five fields (minute hour day month weekday)')
  return prefix + ' '.join(fields)


def _kfp_package(package: str) -> str:
  """The package as a local file (kfp.Client reads local files only)."""
  if not package.endswith(('.yaml', '.yml')):
    raise ValueError(f'--package {package!r}: Kubeflow Pipelines takes the PipelineSpec '
                     '.yaml that `colorizer compile --output pipeline.yaml` writes')
  if os.path.exists(package):
    return package
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  if not tf.io.gfile.exists(package):
    raise ValueError(f'--package {package!r}: no such file')
  local = os.path.join(tempfile.mkdtemp(prefix='colorizer-package-'), os.path.basename(package))
  tf.io.gfile.copy(package, local)
  return local


def _pipeline_root(package: str) -> str:
  """The root `colorizer compile` wrote into the package. KFP's backend ignores the
  spec's defaultPipelineRoot and falls back to its own default
  (minio://mlpipeline/v2/artifacts, backend/src/apiserver/config), which tf.io.gfile
  cannot write, so every run and schedule passes it explicitly."""
  import yaml  # pylint: disable=import-outside-toplevel
  with open(package) as f:  # The PipelineSpec, then the platform spec if any.
    root = (next(yaml.safe_load_all(f), None) or {}).get('defaultPipelineRoot')
  if not root:
    raise ValueError(f'--package {package!r} names no defaultPipelineRoot: compile it with '
                     '`colorizer compile --pipeline-root gs://...`')
  return root


def _kfp_client(host: str):
  import kfp  # pylint: disable=import-outside-toplevel
  return kfp.Client(host=host)


def _experiment_id(client, experiment: str) -> str:
  return client.create_experiment(name=experiment).experiment_id


def submit_kfp(host: str, package: str, experiment: str = configs.PIPELINE_NAME,
               run_name: Optional[str] = None) -> Submitted:
  """One run of `package` on the Kubeflow Pipelines at `host`, in `experiment`."""
  package = _kfp_package(package)
  result = _kfp_client(host).create_run_from_pipeline_package(
      package, run_name=run_name, experiment_name=experiment,
      pipeline_root=_pipeline_root(package))
  return Submitted(result.run_id, f'{host.rstrip("/")}/#/runs/details/{result.run_id}')


def schedule_kfp(host: str, package: str, cron: str, experiment: str = configs.PIPELINE_NAME,
                 name: str = f'{configs.PIPELINE_NAME} retraining') -> Submitted:
  """A recurring run of `package`: no catch-up, at most one run at a time."""
  package, cron = _kfp_package(package), kfp_cron(cron)
  client = _kfp_client(host)
  recurring = client.create_recurring_run(
      experiment_id=_experiment_id(client, experiment), job_name=name, cron_expression=cron,
      max_concurrency=1, no_catchup=True, pipeline_package_path=package, enabled=True,
      pipeline_root=_pipeline_root(package))
  return Submitted(recurring.recurring_run_id,
                   f'{host.rstrip("/")}/#/recurringrun/details/{recurring.recurring_run_id}')


def _vertex_job(package: str, project: str, region: str, display_name: str,
                api_endpoint: Optional[str], credentials):
  from google.cloud import aiplatform  # pylint: disable=import-outside-toplevel
  options = {'api_endpoint': api_endpoint, 'api_transport': 'rest'} if api_endpoint else {}
  aiplatform.init(project=project, location=region, credentials=credentials, **options)
  return aiplatform.PipelineJob(display_name=display_name, template_path=package,
                                project=project, location=region, credentials=credentials)


def submit_vertex(package: str, project: str, region: str,
                  run_name: str = configs.PIPELINE_NAME, service_account: Optional[str] = None,
                  api_endpoint: Optional[str] = None, credentials=None) -> Submitted:
  """One Vertex AI PipelineJob of `package` (.json or .yaml). `api_endpoint` (with REST)
  is for private endpoints; credentials default to the application default ones."""
  job = _vertex_job(package, project, region, run_name, api_endpoint, credentials)
  job.submit(service_account=service_account)
  return Submitted(job.resource_name, vertex_run_link(job.resource_name))


def vertex_run_link(resource_name: str) -> str:
  """The Cloud console's page of a PipelineJob, from its resource name
  (projects/P/locations/L/pipelineJobs/ID), as Vertex's own SDK prints it on submit."""
  fields = dict(zip(*[iter(resource_name.split('/'))] * 2))
  return (f'https://console.cloud.google.com/vertex-ai/locations/{fields["locations"]}/'
          f'pipelines/runs/{fields["pipelineJobs"]}?project={fields["projects"]}')


def schedule_vertex(package: str, project: str, region: str, cron: str,
                    name: str = f'{configs.PIPELINE_NAME} retraining',
                    service_account: Optional[str] = None, api_endpoint: Optional[str] = None,
                    credentials=None) -> Submitted:
  """A Vertex AI PipelineJobSchedule: at most one run at a time; Vertex schedules do not
  catch up on missed runs unless asked to."""
  job = _vertex_job(package, project, region, name, api_endpoint, credentials)
  schedule = job.create_schedule(display_name=name, cron=vertex_cron(cron),
                                 max_concurrent_run_count=1, service_account=service_account)
  return Submitted(schedule.resource_name,
                   f'https://console.cloud.google.com/vertex-ai/pipelines/schedules?'
                   f'project={project}')
