"""The `colorizer` commands for a cluster: `compile` (the pipeline for Kubeflow Pipelines
or Vertex AI), `submit` and `schedule` (a compiled pipeline, once or on a cron schedule)
and `stage-weights` (ImageNet weights in a bucket, for clusters without internet)."""
from typing import List

from absl import flags

from commands import options
from pipeline import configs


def compile_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('output', None, 'pipeline.yaml (the PipelineSpec Kubeflow Pipelines '
                      'takes) or pipeline.json (the PipelineJob Vertex AI takes).',
                      flag_values=fv, required=True)
  flags.DEFINE_string('pipeline-root', None, 'gs:// folder for the pipeline\'s artifacts.',
                      flag_values=fv, required=True)
  flags.DEFINE_string('data', None, 'gs:// folder or glob of photos; may hold {SPAN} '
                      '(gs://bucket/photos/span-{SPAN}) so each run takes the newest span.',
                      flag_values=fv, required=True)
  flags.DEFINE_string('serving-dir', None, 'Where blessed models are pushed (default: '
                      '<pipeline-root>/serving_model).', flag_values=fv)
  flags.DEFINE_string('image', configs.PIPELINE_IMAGE, 'The image built from '
                      'kubeflow/Dockerfile that every step runs in.', flag_values=fv)
  flags.DEFINE_string('gpu-type', None, 'The Trainer\'s GPU model, as Vertex AI names it: '
                      f'{", ".join(configs.GPU_TYPES)}. The .json asks Vertex AI for it; the '
                      f'.yaml asks Kubernetes for {configs.KUBERNETES_GPU_RESOURCE} on nodes '
                      'that --gpu-node-selector picks. None: train on CPU.', flag_values=fv)
  flags.DEFINE_integer('gpu-count', configs.TRAINER_GPU_COUNT, 'GPUs for the Trainer.',
                       flag_values=fv)
  flags.DEFINE_string('gpu-node-selector', None, 'Kubeflow Pipelines (.yaml): the node '
                      'label KEY=VALUE of nodes with that GPU (default: GKE\'s, '
                      f'{configs.GKE_ACCELERATOR_LABEL}=nvidia-tesla-t4 for NVIDIA_TESLA_T4), '
                      'or none.', flag_values=fv)
  flags.DEFINE_float('trainer-cpu', configs.TRAINER_CPU_LIMIT, 'vCPUs for the Trainer.',
                     flag_values=fv)
  flags.DEFINE_float('trainer-memory-gb', configs.TRAINER_MEMORY_LIMIT_GB, 'Memory (GB) '
                     'for the Trainer.', flag_values=fv)
  launcher = configs.DATAFLOW_LAUNCHER_RESOURCES
  for step, what, (cpu, memory) in (('ingest', 'ingestion', configs.INGEST_RESOURCES),
                                    ('evaluator', 'the Evaluator', configs.EVALUATOR_RESOURCES)):
    flags.DEFINE_float(f'{step}-cpu', None, f'vCPUs for {what}, and its Beam workers with '
                       f'the DirectRunner (default {cpu}; with Dataflow {launcher[0]}).',
                       flag_values=fv)
    flags.DEFINE_float(f'{step}-memory-gb', None, f'Memory (GB) for {what} (default '
                       f'{memory}; with Dataflow {launcher[1]}).', flag_values=fv)
  flags.DEFINE_string('beam-runner', 'DirectRunner', 'Beam runner of the ingestion and '
                      'Evaluator steps: DirectRunner (inside the step\'s container) or '
                      'DataflowRunner.', flag_values=fv)
  flags.DEFINE_string('project', None, 'Google Cloud project (Dataflow).', flag_values=fv)
  flags.DEFINE_string('region', None, 'Dataflow region, e.g. us-central1.', flag_values=fv)
  flags.DEFINE_string('temp-location', None, 'gs:// folder for Dataflow\'s temporary files.',
                      flag_values=fv)
  options.training_flags(fv)


def run_compile(fv: flags.FlagValues, args: List[str]) -> int:
  from pipeline import kubeflow_runner  # pylint: disable=import-outside-toplevel
  root = fv['pipeline-root'].value
  if '://' not in root:
    raise flags.Error(f'--pipeline-root {root!r}: every step runs on another machine; '
                      'give a gs:// folder')
  runner = fv['beam-runner'].value
  job = kubeflow_runner.compile_pipeline(
      fv['output'].value, root, fv['data'].value, serving_dir=fv['serving-dir'].value,
      image=fv['image'].value,
      resources=kubeflow_runner.step_resources(runner, **{
          f'{step}_{unit.replace("-", "_")}': fv[f'{step}-{unit}'].value
          for step in ('trainer', 'ingest', 'evaluator') for unit in ('cpu', 'memory-gb')}),
      gpu_spec=kubeflow_runner.gpu(fv['gpu-type'].value, fv['gpu-count'].value,
                                   fv['gpu-node-selector'].value),
      beam_pipeline_args=kubeflow_runner.beam_args(
          runner, fv['project'].value, fv['region'].value, fv['temp-location'].value,
          image=fv['image'].value, extra=fv['beam-arg'].value),
      **options.pipeline_options(fv))
  steps = ', '.join(sorted(job['pipelineSpec']['root']['dag']['tasks']))
  print(f'Wrote {fv["output"].value} ({steps}), image {fv["image"].value}')
  return 0


def orchestrator_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('package', None, 'The file `colorizer compile` wrote (.yaml for '
                      'Kubeflow Pipelines; .json or .yaml for Vertex AI).', flag_values=fv,
                      required=True)
  flags.DEFINE_string('host', None, 'Kubeflow Pipelines endpoint, e.g. '
                      'http://localhost:8080 after `kubectl port-forward`.', flag_values=fv)
  flags.DEFINE_string('experiment', configs.PIPELINE_NAME, 'KFP experiment.', flag_values=fv)
  flags.DEFINE_bool('vertex', False, 'Submit to Vertex AI Pipelines instead (with '
                    '--project and --region).', flag_values=fv)
  flags.DEFINE_string('project', None, 'Google Cloud project (Vertex AI).', flag_values=fv)
  flags.DEFINE_string('region', None, 'Vertex AI region, e.g. us-central1.', flag_values=fv)
  flags.DEFINE_string('service-account', None, 'Service account the Vertex AI run uses.',
                      flag_values=fv)
  flags.DEFINE_string('api-endpoint', None, 'Vertex AI API endpoint, for private '
                      'endpoints (default: the region\'s public one).', flag_values=fv)


def check_orchestrator(fv: flags.FlagValues) -> None:
  if fv['vertex'].value and not (fv['project'].value and fv['region'].value):
    raise flags.Error('--vertex needs --project and --region')
  if not fv['vertex'].value and not fv['host'].value:
    raise flags.Error('give --host (Kubeflow Pipelines) or --vertex --project --region')


def submit_flags(fv: flags.FlagValues) -> None:
  orchestrator_flags(fv)
  flags.DEFINE_string('run-name', None, 'Name of the run (default: the package name and '
                      'the time).', flag_values=fv)


def run_submit(fv: flags.FlagValues, args: List[str]) -> int:
  from commands import submit  # pylint: disable=import-outside-toplevel
  check_orchestrator(fv)
  if fv['vertex'].value:
    done = submit.submit_vertex(fv['package'].value, fv['project'].value, fv['region'].value,
                                run_name=fv['run-name'].value or configs.PIPELINE_NAME,
                                service_account=fv['service-account'].value,
                                api_endpoint=fv['api-endpoint'].value)
  else:
    done = submit.submit_kfp(fv['host'].value, fv['package'].value, fv['experiment'].value,
                             fv['run-name'].value)
  print(f'Submitted run {done.id}\n  {done.link}')
  return 0


def schedule_flags(fv: flags.FlagValues) -> None:
  orchestrator_flags(fv)
  flags.DEFINE_string('cron', None, 'When to run, as cron "minute hour day month weekday" '
                      '(e.g. "0 3 * * 1": Mondays 03:00); Vertex AI also takes a '
                      '"TZ=Europe/Berlin " prefix.', flag_values=fv, required=True)
  flags.DEFINE_string('name', f'{configs.PIPELINE_NAME} retraining', 'Name of the schedule.',
                      flag_values=fv)


def run_schedule(fv: flags.FlagValues, args: List[str]) -> int:
  from commands import submit  # pylint: disable=import-outside-toplevel
  check_orchestrator(fv)
  if fv['vertex'].value:
    done = submit.schedule_vertex(fv['package'].value, fv['project'].value,
                                  fv['region'].value, fv['cron'].value, fv['name'].value,
                                  service_account=fv['service-account'].value,
                                  api_endpoint=fv['api-endpoint'].value)
  else:
    done = submit.schedule_kfp(fv['host'].value, fv['package'].value, fv['cron'].value,
                               fv['experiment'].value, fv['name'].value)
  print(f'Scheduled {done.id} ({fv["cron"].value}; at most one run at a time, no catch-up)\n'
        f'  {done.link}')
  return 0


def stage_weights_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('to', None, 'Destination .h5 (gs://bucket/weights/'
                      'inception_resnet_v2.h5, or a path).', flag_values=fv, required=True)
  flags.DEFINE_string('from', None, 'Weights file to stage (default: the ImageNet weights '
                      'in the Keras cache, downloaded there first if missing).',
                      flag_values=fv)


def run_stage_weights(fv: flags.FlagValues, args: List[str]) -> int:
  from model import embedding  # pylint: disable=import-outside-toplevel
  weights = embedding.stage_weights(fv['to'].value, fv['from'].value)
  print(f'Staged {weights.uri} (sha256 {weights.fingerprint})\n'
        f'  use it with --embedding-weights {weights.uri}')
  return 0
