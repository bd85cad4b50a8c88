"""Compiles the pipeline for Kubeflow Pipelines (PipelineSpec .yaml) or Vertex AI (.json).

The same `create_pipeline(...)` as the local run, compiled by TFX's KubeflowV2DagRunner:
every step runs in the image built from kubeflow/Dockerfile, the Beam steps (ingestion,
Evaluator) get the Beam runner's arguments, and only the Trainer asks for a node with
GPUs. KFP 2.x takes the bare PipelineSpec (.yaml); Vertex AI takes a PipelineJob (.json)
and also accepts the .yaml.
"""
import json
import os
from typing import Dict, List, Optional, Sequence

import tensorflow as tf
import yaml
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx
from tfx import version as tfx_version

from pipeline import configs
from pipeline import pipeline

ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec

FORMATS = ('.yaml', '.yml', '.json')


def trainer_resources(gpu_type: Optional[str] = None,
                      gpu_count: int = configs.TRAINER_GPU_COUNT,
                      cpu_limit: float = configs.TRAINER_CPU_LIMIT,
                      memory_limit_gb: float = configs.TRAINER_MEMORY_LIMIT_GB) -> ResourceSpec:
  """The Trainer's node. `gpu_type` is Vertex AI's accelerator name (NVIDIA_TESLA_T4,
  NVIDIA_L4, ...) or, on open-source KFP, the Kubernetes resource (nvidia.com/gpu)."""
  resources = ResourceSpec(cpu_limit=cpu_limit, memory_limit=memory_limit_gb)
  if gpu_type:
    if gpu_count < 1:
      raise ValueError(f'--gpu-count must be at least 1 with --gpu-type, not {gpu_count}')
    resources.accelerator.type = gpu_type
    resources.accelerator.count = gpu_count
  return resources


def beam_args(runner: str = 'DirectRunner', project: Optional[str] = None,
              region: Optional[str] = None, temp_location: Optional[str] = None,
              image: str = configs.PIPELINE_IMAGE, extra: Sequence[str] = ()) -> List[str]:
  """Beam options for the ingestion and Evaluator steps. Dataflow needs a project, a
  region and a gs:// temp location; its workers run the pipeline's own image (Beam's
  boot entrypoint is kept in kubeflow/Dockerfile) on Runner v2, as TFX's own Kubeflow
  example does (tfx/examples/penguin/penguin_pipeline_kubeflow.py), so they hold the
  same pinned packages as the steps and install nothing at start-up."""
  if runner == 'DirectRunner':
    return list(configs.LOCAL_BEAM_ARGS) + list(extra)
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


def compile_pipeline(output: str, pipeline_root: str, data: str,
                     serving_dir: Optional[str] = None,
                     image: str = configs.PIPELINE_IMAGE,
                     resources: Optional[ResourceSpec] = None,
                     beam_pipeline_args: Sequence[str] = (),
                     **options) -> Dict:
  """Writes the pipeline to `output` (.yaml: KFP PipelineSpec; .json: Vertex AI
  PipelineJob; local or gs://) and returns the PipelineJob as a dict. `options` are
  create_pipeline's keyword arguments (weights, steps, hyperparameters, gates)."""
  if not output.endswith(FORMATS):
    raise ValueError(f'--output {output!r}: name a .yaml file (Kubeflow Pipelines) or a '
                     '.json file (Vertex AI)')
  serving_dir = serving_dir or os.path.join(pipeline_root, 'serving_model')
  # Pipeline spec 2.1: the executors read `parameterValues`, the only parameters that
  # KFP's driver fills (kubeflow/pipelines backend/src/v2/driver/driver.go); under 2.0
  # TFX's entrypoint reads the deprecated `parameters`, which stay empty on KFP.
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=image, use_pipeline_spec_2_1=True))
  job = runner.run(pipeline.create_pipeline(
      pipeline_name=configs.PIPELINE_NAME, pipeline_root=pipeline_root, data=data,
      serving_model_dir=serving_dir, beam_pipeline_args=list(beam_pipeline_args),
      trainer_resources=resources or trainer_resources(), **options), write_out=False)
  directory = os.path.dirname(output)
  if directory:
    tf.io.gfile.makedirs(directory)
  with tf.io.gfile.GFile(output, 'w') as f:
    if output.endswith('.json'):
      json.dump(job, f, indent=1, sort_keys=True)
    else:
      # KFP's own compiler records the root here; without it KFP would use its default.
      spec = dict(job['pipelineSpec'], defaultPipelineRoot=pipeline_root)
      f.write(f'# PIPELINE DEFINITION\n# Name: {configs.PIPELINE_NAME}\n'
              f'# Compiled by `colorizer compile` with tfx-{tfx_version.__version__}.\n')
      yaml.safe_dump(spec, f, sort_keys=True)
  return job

