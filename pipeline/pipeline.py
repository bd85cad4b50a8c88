"""The colorization pipeline: one definition for the local runner and Kubeflow.

  PhotoExampleGen -> Trainer -> Evaluator (ServedModelEvaluator) -> AtomicPusher

The Evaluator's baseline is the newest model in the serving directory, which its own
executor finds when it runs (components/evaluator.py): no Resolver, which open-source
Kubeflow Pipelines cannot run, so the local runner, KFP and Vertex AI gate alike.

StatisticsGen, SchemaGen and ExampleValidator are left out: the records are fixed-size
byte strings and an embedding whose shapes ingestion already guarantees, and every
file's fate is in ingestion's own report, so TFDV would check nothing new.
"""
import hashlib
import json
from typing import Dict, List, Optional

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.types import channel
from ml_metadata.proto import metadata_store_pb2

from components import evaluator as served_model_evaluator
from components import example_gen
from components import pusher
from components import trainer as trainer_component
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
  first run too), and at most (1 + max_regression) times the served model's (a change
  threshold relative to the baseline, which TFMA skips when there is none)."""
  def metric(class_name: str, name: str, gray: bool, threshold=None):
    config = f'{{"name": "{name}", "gray": {str(gray).lower()}}}'
    return tfma.MetricConfig(class_name=class_name, module=_METRICS_MODULE, config=config,
                             threshold=threshold)

  thresholds = {
      'ab_mse': tfma.MetricThreshold(change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.LOWER_IS_BETTER,
          relative={'value': max_regression})),
      'ab_mse_vs_gray': tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
          upper_bound={'value': 1.0 - min_improvement_over_gray})),
  }
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(**serving.evaluator_spec(serving.SIGNATURES))],
      slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          metric(metric_class.__name__, name, gray, thresholds.get(name))
          for name, metric_class, gray in metrics.EVALUATED])])


def training_fingerprint(custom_config: Dict, train_steps: int, eval_steps: int) -> str:
  """What shapes a training besides its records: hyperparameters, steps, base model."""
  return hashlib.sha256(json.dumps([custom_config, train_steps, eval_steps],
                                   sort_keys=True).encode()).hexdigest()[:16]


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
    window_spans: int = configs.WINDOW_SPANS,
    warm_start: bool = True,
    base_model: str = '',
    record_cache: Optional[str] = None,
    beam_pipeline_args: Optional[List[str]] = None,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
  """The pipeline over `data` (a folder or glob, local or gs://, may hold {SPAN}: the
  newest `window_spans` spans are ingested). The Trainer starts from the served model
  (`warm_start`), else from `base_model` (fine-tuning), else afresh. Ingestion's
  `record_cache` is `<pipeline_root>/record_cache` unless given ('' for none). What
  each step asks of a cluster is added where it is compiled (kubeflow_runner)."""
  input_base, pattern = example_gen.input_base_and_pattern(data)
  if record_cache is None:
    record_cache = f'{pipeline_root.rstrip("/")}/{configs.RECORD_CACHE_DIR}'
  custom_config = {**(hyperparameters or {}), hp.EMBEDDING_WEIGHTS: embedding_weights,
                   hp.BASE_MODEL: base_model}
  training = training_fingerprint(custom_config, train_steps, eval_steps)
  ingest = example_gen.PhotoExampleGen(
      input_base=input_base, pattern=pattern, eval_percent=eval_percent,
      embedding_weights=embedding_weights, max_megapixels=max_megapixels,
      crops_per_image=crops_per_image, window_spans=window_spans, record_cache=record_cache,
      serving_dir=serving_model_dir, training_fingerprint=training)

  # Placeholders without a preset key, so that the compiler names each channel by the
  # conditioned task's own input (`examples`, `model_blessing`); `.future()` would name
  # `_PhotoExampleGen.examples` or `_Evaluator.blessing`, inputs the tasks do not declare.
  # A run whose records and training are those the served model came from stops here.
  examples = channel.ChannelWrappedPlaceholder(ingest.outputs['examples'])
  with tfx.dsl.Cond(examples[0].custom_property(example_gen.RETRAIN_KEY) == 1):
    trainer = trainer_component.WarmStartTrainer(
        run_fn='model.trainer.run_fn',
        examples=ingest.outputs['examples'],
        train_args=tfx.proto.TrainArgs(num_steps=train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=eval_steps),
        custom_config={**custom_config, hp.TRAINING_FINGERPRINT: training,
                       hp.SERVING_DIR: serving_model_dir if warm_start else ''}
    ).with_id('Trainer')

    evaluator = served_model_evaluator.ServedModelEvaluator(
        examples=ingest.outputs['examples'],
        model=trainer.outputs['model'],
        eval_config=eval_config(min_improvement_over_gray, max_regression),
        serving_dir=serving_model_dir, base_model=base_model).with_id('Evaluator')

    # Inside both conditions: TFX's local runner fails a Pusher whose blessing was not
    # made in this run. (On KFP the Pusher then declares the Examples as an input, as
    # `_PhotoExampleGen.examples`.)
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
