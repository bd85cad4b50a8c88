"""Compiles the pipeline for Kubeflow Pipelines (PipelineSpec .yaml) or Vertex AI (.json).

The same `create_pipeline(...)` as the local run, compiled by TFX's KubeflowV2DagRunner:
every step runs in the image built from kubeflow/Dockerfile through our entry point
(pipeline/kubeflow_entrypoint.py), asks for the CPUs and memory it needs, the Beam steps
(ingestion, Evaluator) get the Beam runner's arguments, and only the Trainer asks for
GPUs. Open-source KFP 2.x takes the PipelineSpec (.yaml, with a Kubernetes platform
spec for the GPU's node selector); Vertex AI takes a PipelineJob (.json). The two differ
where the backends do: the GPU's name, and ingestion's cache.
"""
import copy
import dataclasses
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import tensorflow as tf
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx
from tfx import version as tfx_version
from tfx.dsl.components.base import base_beam_component

from pipeline import configs
from pipeline import pipeline

ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec

FORMATS = ('.yaml', '.yml', '.json')
# Every step's command (pipeline/kubeflow_entrypoint.py: TFX's entry point, once KFP's
# ExecutorInput is mended).
ENTRYPOINT = ['python', '-m', 'pipeline.kubeflow_entrypoint']
INGEST = 'PhotoExampleGen'


@dataclasses.dataclass(frozen=True)
class Gpu:
  """The Trainer's GPUs: Vertex AI's name for the model (NVIDIA_TESLA_T4, ...), how
  many, and (open-source KFP) the node labels that pick that model."""
  type: str
  count: int = configs.TRAINER_GPU_COUNT
  node_selector: Tuple[Tuple[str, str], ...] = ()


def gpu(gpu_type: Optional[str], count: int = configs.TRAINER_GPU_COUNT,
        node_selector: Optional[str] = None) -> Optional[Gpu]:
  """`--gpu-type`, `--gpu-count` and `--gpu-node-selector` (KEY=VALUE, or 'none'; by
  default GKE's accelerator label for the model), checked; None without a type."""
  if not gpu_type:
    return None
  if gpu_type not in configs.GPU_TYPES:
    hint = (' (the .yaml asks Kubernetes for that resource itself)'
            if '/' in gpu_type else '')
    raise ValueError(f'--gpu-type {gpu_type!r}: name the GPU model as Vertex AI does, one '
                     f'of {", ".join(configs.GPU_TYPES)}{hint}')
  if count < 1:
    raise ValueError(f'--gpu-count must be at least 1 with --gpu-type, not {count}')
  if node_selector is None:
    node_selector = f'{configs.GKE_ACCELERATOR_LABEL}={gpu_type.lower().replace("_", "-")}'
  labels = ()
  if node_selector != 'none':
    key, equals, value = node_selector.partition('=')
    if not (key and equals and value):
      raise ValueError(f'--gpu-node-selector {node_selector!r}: give KEY=VALUE, or none')
    labels = ((key, value),)
  return Gpu(gpu_type, count, labels)


def step_resources(beam_runner: str = 'DirectRunner',
                   **given: Optional[float]) -> Dict[str, Tuple[float, float]]:
  """{step: (vCPUs, memory GB)}: the defaults, with what is `given` (trainer_cpu=,
  ingest_memory_gb=, ...; None: the default). A Beam step that launches Dataflow
  needs little."""
  launcher = configs.DATAFLOW_LAUNCHER_RESOURCES if beam_runner == 'DataflowRunner' else None
  defaults = {INGEST: ('ingest', launcher or configs.INGEST_RESOURCES),
              'Trainer': ('trainer', (configs.TRAINER_CPU_LIMIT,
                                      configs.TRAINER_MEMORY_LIMIT_GB)),
              'Evaluator': ('evaluator', launcher or configs.EVALUATOR_RESOURCES),
              'AtomicPusher': ('pusher', configs.PUSHER_RESOURCES)}
  unknown = set(given) - {f'{name}_{unit}' for name, _ in defaults.values()
                          for unit in ('cpu', 'memory_gb')}
  if unknown:
    raise TypeError(f'step_resources() got {sorted(unknown)}')
  pick = lambda key, default: default if given.get(key) is None else given[key]
  return {step: (pick(f'{name}_cpu', cpu), pick(f'{name}_memory_gb', memory))
          for step, (name, (cpu, memory)) in defaults.items()}


def beam_args(runner: str = 'DirectRunner', project: Optional[str] = None,
              region: Optional[str] = None, temp_location: Optional[str] = None,
              image: str = configs.PIPELINE_IMAGE, extra: Sequence[str] = ()) -> List[str]:
  """Beam options for the ingestion and Evaluator steps. With the DirectRunner, Beam
  runs inside the step's own container, one worker process per vCPU the step asks for
  (compile_pipeline adds the count). Dataflow needs a project, a region and a gs://
  temp location; its workers run the pipeline's own image (Beam's boot entrypoint is
  kept in kubeflow/Dockerfile) on Runner v2, as TFX's own Kubeflow example does
  (tfx/examples/penguin/penguin_pipeline_kubeflow.py), so they hold the same pinned
  packages as the steps and install nothing at start-up."""
  if runner == 'DirectRunner':
    return ['--direct_running_mode=multi_processing'] + list(extra)
  args = [f'--runner={runner}']
  if runner == 'DataflowRunner':
    missing = [flag for flag, value in (('--project', project), ('--region', region),
                                        ('--temp-location', temp_location)) if not value]
    if missing:
      raise ValueError(f'--beam-runner DataflowRunner needs {", ".join(missing)}')
    if not temp_location.startswith('gs://'):
      raise ValueError(f'--temp-location must be a gs:// folder, not {temp_location!r}')
    args += [f'--project={project}', f'--region={region}',
             f'--temp_location={temp_location}', f'--sdk_container_image={image}',
             '--experiments=use_runner_v2']
  return args + list(extra)


def _size_steps(pipeline, resources: Dict[str, Tuple], gpu_spec: Optional[Gpu],
                kfp: bool, beam_pipeline_args: Sequence[str]) -> None:
  """Each step's CPU, memory and (Trainer) GPUs, and Beam's DirectRunner workers in a
  step as many as its vCPUs: by default it would start one per core of the node."""
  direct = not any(arg.startswith('--runner=') and arg != '--runner=DirectRunner'
                   for arg in beam_pipeline_args)
  workers_given = any(arg.startswith('--direct_num_workers') for arg in beam_pipeline_args)
  for component in pipeline.components:
    cpu, memory = resources[component.id]
    spec = ResourceSpec(cpu_limit=cpu, memory_limit=memory)
    if component.id == 'Trainer' and gpu_spec:
      spec.accelerator.type = configs.KUBERNETES_GPU_RESOURCE if kfp else gpu_spec.type
      spec.accelerator.count = gpu_spec.count
    component.with_platform_config(spec)
    if direct and not workers_given and isinstance(component, base_beam_component.BaseBeamComponent):
      component.with_beam_pipeline_args([f'--direct_num_workers={max(1, int(cpu))}'])


def _resources_everywhere(the_pipeline, spec: Dict) -> None:
  """TFX compiles ingestion (a FileBasedExampleGen) without its platform config
  (tfx/orchestration/kubeflow/v2/step_builder.py, `_build_file_based_example_gen_spec`):
  every step's container gets the resources asked for."""
  executors = spec['deploymentSpec']['executors']
  for component in the_pipeline.components:
    container = executors[f'{component.id}_executor']['container']
    if component.platform_config and 'resources' not in container:
      container['resources'] = json_format.MessageToDict(component.platform_config)


def _platform_spec(gpu_spec: Optional[Gpu]) -> Dict:
  """KFP's Kubernetes platform spec (the package's second document, as kfp-kubernetes
  writes it): the node selector that puts the Trainer on nodes with that GPU model
  (kubernetes_platform/proto/kubernetes_executor_config.proto, NodeSelector)."""
  if not (gpu_spec and gpu_spec.node_selector):
    return {}
  return {'platforms': {'kubernetes': {'deploymentSpec': {'executors': {
      'Trainer_executor': {'nodeSelector': {'labels': dict(gpu_spec.node_selector)}}}}}}}


def compile_pipeline(output: str, pipeline_root: str, data: str,
                     serving_dir: Optional[str] = None,
                     image: str = configs.PIPELINE_IMAGE,
                     resources: Optional[Dict[str, Tuple]] = None,
                     gpu_spec: Optional[Gpu] = None,
                     beam_pipeline_args: Sequence[str] = (),
                     **options) -> Dict:
  """Writes the pipeline to `output` (.yaml: KFP PipelineSpec; .json: Vertex AI
  PipelineJob; local or gs://) and returns the PipelineJob as a dict. `resources` are
  step_resources(); `options` are create_pipeline's keyword arguments (weights, steps,
  hyperparameters, gates)."""
  if not output.endswith(FORMATS):
    raise ValueError(f'--output {output!r}: name a .yaml file (Kubeflow Pipelines) or a '
                     '.json file (Vertex AI)')
  kfp = not output.endswith('.json')
  serving_dir = serving_dir or os.path.join(pipeline_root, 'serving_model')
  the_pipeline = pipeline.create_pipeline(
      pipeline_name=configs.PIPELINE_NAME, pipeline_root=pipeline_root, data=data,
      serving_model_dir=serving_dir, beam_pipeline_args=list(beam_pipeline_args), **options)
  _size_steps(the_pipeline, resources or step_resources(), gpu_spec, kfp, beam_pipeline_args)
  # Pipeline spec 2.1: the executors read `parameterValues`, the only parameters that
  # KFP's driver fills (kubeflow/pipelines backend/src/v2/driver/driver.go), and TFX's
  # entrypoint is given the inputs spec, which types what KFP leaves untyped.
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=image, default_commands=ENTRYPOINT, use_pipeline_spec_2_1=True))
  job = runner.run(the_pipeline, write_out=False)
  _resources_everywhere(the_pipeline, job['pipelineSpec'])
  directory = os.path.dirname(output)
  if directory:
    tf.io.gfile.makedirs(directory)
  with tf.io.gfile.GFile(output, 'w') as f:
    if not kfp:
      json.dump(job, f, indent=1, sort_keys=True)
    else:
      # KFP's own compiler records the root here; without it KFP would use its default.
      spec = dict(copy.deepcopy(job['pipelineSpec']), defaultPipelineRoot=pipeline_root)
      # KFP runs no preCacheCheck, so ingestion's parameters are the same every run
      # (`span-{SPAN}` unresolved) and its cache key never changes: a cached ingestion
      # would hand every later run the first span's Examples. Vertex AI resolves the
      # span before its cache check; the .json keeps the cache.
      spec['root']['dag']['tasks'][INGEST]['cachingOptions'] = {'enableCache': False}
      f.write(f'# PIPELINE DEFINITION\n# Name: {configs.PIPELINE_NAME}\n'
              f'# Compiled by `colorizer compile` with tfx-{tfx_version.__version__}.\n')
      yaml.safe_dump_all([spec] + [doc for doc in [_platform_spec(gpu_spec)] if doc], f,
                         sort_keys=True)
  return job
