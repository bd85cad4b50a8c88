"""The colorization pipeline: one definition for the local runner and Kubeflow.

  PhotoExampleGen -> Trainer -> Evaluator (ServedModelEvaluator) -> AtomicPusher

The Evaluator's baseline is the newest model in the serving directory, which its own
executor finds when it runs (components/evaluator.py): no Resolver, which open-source
Kubeflow Pipelines cannot run, so the local runner, KFP and Vertex AI gate alike.

StatisticsGen, SchemaGen and ExampleValidator are left out: the records are fixed-size
byte strings and an embedding whose shapes ingestion already guarantees, and every
file's fate is in ingestion's own report, so TFDV would check nothing new.
"""
from typing import Dict, List, Optional

from kfp.pipeline_spec import pipeline_spec_pb2
import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.types import channel
from ml_metadata.proto import metadata_store_pb2

from components import evaluator as served_model_evaluator
from components import example_gen
from components import pusher
from model import decoding
from model import hyperparameters as hp
from model import metrics
from model import serving
from pipeline import configs

_METRICS_MODULE = metrics.__name__


def eval_config(min_improvement_over_gray: float = configs.MIN_IMPROVEMENT_OVER_GRAY,
                max_regression: float = configs.MAX_REGRESSION) -> tfma.EvalConfig:
  """Colorization metrics for the candidate and the gray baseline, and the two gates:
  ab-MSE at most (1 - min_improvement_over_gray) times the gray baseline's (holds on a
  first run too), and at most `max_regression` worse than the served model's."""
  def metric(class_name: str, name: str, gray: bool, threshold=None):
    config = f'{{"name": "{name}", "gray": {str(gray).lower()}}}'
    return tfma.MetricConfig(class_name=class_name, module=_METRICS_MODULE, config=config,
                             threshold=threshold)

  thresholds = {
      'ab_mse': tfma.MetricThreshold(change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.LOWER_IS_BETTER,
          absolute={'value': max_regression})),
      'ab_mse_vs_gray': tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
          upper_bound={'value': 1.0 - min_improvement_over_gray})),
  }
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(**serving.evaluator_spec(serving.SIGNATURES))],
      slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          metric(metric_class.__name__, name, gray, thresholds.get(name))
          for name, metric_class, gray in metrics.EVALUATED])])


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data: str,
    serving_model_dir: str,
    embedding_weights: str = hp.DEFAULTS[hp.EMBEDDING_WEIGHTS],
    eval_percent: int = configs.EVAL_PERCENT,
    max_megapixels: float = decoding.DEFAULT_MAX_MEGAPIXELS,
    crops_per_image: int = configs.CROPS_PER_IMAGE,
    train_steps: int = configs.TRAIN_STEPS,
    eval_steps: int = configs.EVAL_STEPS,
    hyperparameters: Optional[Dict] = None,
    min_improvement_over_gray: float = configs.MIN_IMPROVEMENT_OVER_GRAY,
    max_regression: float = configs.MAX_REGRESSION,
    keep_versions: int = configs.KEEP_VERSIONS,
    beam_pipeline_args: Optional[List[str]] = None,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    enable_cache: bool = True,
    trainer_resources: Optional[
        pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec] = None,
) -> tfx.dsl.Pipeline:
  """The pipeline over `data` (a folder or glob, local or gs://, may hold {SPAN}).

  `trainer_resources` (Kubeflow / Vertex AI only) are the Trainer's CPU, memory and
  GPUs; the other steps ask for none.
  """
  input_base, pattern = example_gen.input_base_and_pattern(data)
  ingest = example_gen.PhotoExampleGen(
      input_base=input_base, pattern=pattern, eval_percent=eval_percent,
      embedding_weights=embedding_weights, max_megapixels=max_megapixels,
      crops_per_image=crops_per_image)

  trainer = tfx.components.Trainer(
      run_fn='model.trainer.run_fn',
      examples=ingest.outputs['examples'],
      train_args=tfx.proto.TrainArgs(num_steps=train_steps),
      eval_args=tfx.proto.EvalArgs(num_steps=eval_steps),
      custom_config={**(hyperparameters or {}), hp.EMBEDDING_WEIGHTS: embedding_weights})
  if trainer_resources is not None:
    trainer.with_platform_config(trainer_resources)

  evaluator = served_model_evaluator.ServedModelEvaluator(
      examples=ingest.outputs['examples'],
      model=trainer.outputs['model'],
      eval_config=eval_config(min_improvement_over_gray, max_regression),
      serving_dir=serving_model_dir).with_id('Evaluator')

  # A placeholder without a preset key, so that the compiler names the blessing by the
  # Pusher's own input (`model_blessing`); `.future()` would name `_Evaluator.blessing`,
  # an input the Pusher's task does not declare.
  blessing = channel.ChannelWrappedPlaceholder(evaluator.outputs['blessing'])
  with tfx.dsl.Cond(blessing[0].custom_property('blessed') == 1):
    push = pusher.AtomicPusher(
        model=trainer.outputs['model'], model_blessing=evaluator.outputs['blessing'],
        serving_dir=serving_model_dir, keep_versions=keep_versions)

  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=[ingest, trainer, evaluator, push],
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args or [])
