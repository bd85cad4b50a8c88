"""ServedModelEvaluator: TFX's Evaluator, gating against the model users are served.

The baseline of the "no worse than before" gate is the newest complete version in the
serving directory, found by this executor when it runs, instead of by a Resolver over
MLMD: open-source Kubeflow Pipelines runs no resolver (kubeflow/pipelines
backend/src/v2/compiler/argocompiler/dag.go: "resolver executors not implemented"), and
the served model is what a candidate has to beat anyway. With nothing served yet, the
baseline is the model a fine-tuning run starts from (`base_model`), if any; else the
candidate is gated against the gray baseline only (TFMA ignores change thresholds
without a baseline).

The served model is evaluated through the signatures it has (`serving.evaluator_spec`):
one exported before the statistics signatures is scored from its maps, so that the
first run after an upgrade still gates.

The blessing records the served version it was gated against (`baseline_model`, its
path), so the Pusher can refuse a blessing that a newer push has made stale.
"""
import json
import os
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.evaluator import constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import component_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import path_utils
from tfx.utils import proto_utils

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants as tfma_constants

from components import beam_workers
from components import progress
from components import pusher
from model import internals
from model import records
from model import serving

internals.leave_tfx_unpackaged_for_the_direct_runner()  # Before the executor starts.

SERVING_DIR_KEY = 'serving_dir'
BASE_MODEL_KEY = 'base_model'
EVALUATED = 'evaluate_num_instances'  # TFMA's counter of the examples it has evaluated


class ServedModelEvaluatorSpec(standard_component_specs.EvaluatorSpec):
  PARAMETERS = {
      **standard_component_specs.EvaluatorSpec.PARAMETERS,
      SERVING_DIR_KEY: component_spec.ExecutionParameter(type=str),
      BASE_MODEL_KEY: component_spec.ExecutionParameter(type=str, optional=True),
  }


def staging_dir(evaluation: types.Artifact) -> str:
  """Where the served model is copied, laid out as a Model artifact: beside this
  evaluation's own output, so under the pipeline root, which Beam's workers can read on
  Dataflow too. The executor's tmp dir would not do: under TFX's Kubeflow entry point it
  is beside the output file, which is on the pod's own disk on KFP
  (/tmp/kfp_outputs, launcher_v2.go) and on the pod's Cloud Storage FUSE mount on
  Vertex AI; Dataflow's workers see neither."""
  return f'{evaluation.uri.rstrip("/")}-served-model'


def baseline_model(serving_dir: str, base_model: Optional[str]) -> Optional[str]:
  """What the candidate must not fall behind: the served model, else the base model of
  a fine-tuning run (a SavedModel, or a serving folder's newest version), else None."""
  served = serving.served_model(serving_dir)
  if served or not base_model:
    return served
  return serving.latest_version(base_model)
def with_baseline(eval_config_json: str, served: str) -> str:
  """The Evaluator's config (JSON) with a baseline ModelSpec for the SavedModel `served`,
  through the signatures it has, beside the candidate's."""
  config = proto_utils.json_to_proto(eval_config_json, tfma.EvalConfig())
  [candidate] = config.model_specs
  candidate.name = tfma.CANDIDATE_KEY
  config.model_specs.add(name=tfma.BASELINE_KEY, is_baseline=True,
                         **serving.evaluator_spec(serving.signature_names(served)))
  return proto_utils.proto_to_json(config)


class Executor(evaluator_executor.Executor):
  """Evaluates the candidate against the served model (a copy beside the evaluation,
  removed afterwards), then records which version that was."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    self._examples = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.EXAMPLES_KEY])
    served = baseline_model(exec_properties[SERVING_DIR_KEY],
                            exec_properties.get(BASE_MODEL_KEY))
    inputs = dict(input_dict)
    staged = None
    if served:
      staged = staging_dir(artifact_utils.get_single_instance(
          output_dict[standard_component_specs.EVALUATION_KEY]))
      io_utils.copy_dir(served, path_utils.serving_model_path(staged))
      config = standard_component_specs.EVAL_CONFIG_KEY
      exec_properties = {**exec_properties, config: with_baseline(
          exec_properties[config], path_utils.serving_model_path(staged))}
      baseline = standard_artifacts.Model()
      baseline.uri = staged
      inputs[standard_component_specs.BASELINE_MODEL_KEY] = [baseline]
    try:
      with beam_workers.tensorflow_threads(self._beam_pipeline_args):
        super().Do(inputs, output_dict, exec_properties)
    finally:
      if staged and fileio.exists(staged):
        fileio.rmtree(staged)
    blessing = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.BLESSING_KEY])
    # The staged copy has no MLMD id; Vertex's entrypoint would look a 0 up and fail
    # (kubeflow_v2_entrypoint_utils.refactor_model_blessing).
    internals.drop_custom_property(blessing, constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY)
    if served:
      blessing.set_string_custom_property(pusher.BASELINE_KEY, served)
    if not blessing.get_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY):
      candidate = path_utils.serving_model_path(artifact_utils.get_single_instance(
          input_dict[standard_component_specs.MODEL_KEY]).uri)
      if serving.trained_on(candidate):
        serving.note_rejected(exec_properties[SERVING_DIR_KEY],
                              serving.served_model(exec_properties[SERVING_DIR_KEY]),
                              serving.trained_on(candidate))


  def _make_beam_pipeline(self):
    # TFX's Evaluator runs TFMA's pipeline on the pipeline made here.
    return progress.show(super()._make_beam_pipeline(),
                         lambda: progress_job(eval_examples(self._examples.uri)))


def progress_job(total: Optional[int]) -> progress.Job:
  """The Evaluator's progress line: eval examples evaluated (by both models) of `total`,
  as TFMA counts them."""
  return progress.Job('Evaluating', tfma_constants.METRICS_NAMESPACE, total, 'example',
                      done=(EVALUATED,))


def eval_examples(examples_uri: str) -> Optional[int]:
  """How many examples the eval split holds, from ingestion's report (None without one)."""
  report = os.path.join(examples_uri, records.REPORT_FILE)
  if not fileio.exists(report):
    return None
  with fileio.open(report) as f:
    return json.load(f).get('examples', {}).get('eval')


class ServedModelEvaluator(base_beam_component.BaseBeamComponent):
  """`tfx.components.Evaluator`'s spec and executor, with the newest model in
  `serving_dir` as the baseline (else `base_model`, the model a fine-tuning run starts
  from)."""

  SPEC_CLASS = ServedModelEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

  def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
               eval_config: tfma.EvalConfig, serving_dir: str, base_model: str = ''):
    spec = ServedModelEvaluatorSpec(
        examples=examples, model=model, eval_config=eval_config, serving_dir=serving_dir,
        base_model=base_model or None,
        example_splits='null',
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing))
    super().__init__(spec=spec)
