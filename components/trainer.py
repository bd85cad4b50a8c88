"""WarmStartTrainer: TFX's Trainer, whose Model artifact records what it started from.

The training itself is `model.trainer.run_fn`: it starts from the served model (found
when it runs, as the Evaluator finds its baseline: no Resolver, which open-source
Kubeflow Pipelines cannot run), else from a base model given for fine-tuning, else
from the seeded initial weights, and notes the model it started from in the export.
This executor copies that note onto the Model artifact (`warm_started_from`, the
version's path), where the report and MLMD's lineage find it.
"""
from typing import Any, Dict, List

from tfx import types
from tfx.components.trainer import component as trainer_component
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import path_utils

from model import serving

WARM_STARTED_FROM_KEY = 'warm_started_from'


class Executor(trainer_executor.GenericExecutor):
  """TFX's GenericExecutor, then the `warm_started_from` custom property."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    super().Do(input_dict, output_dict, exec_properties)
    model = artifact_utils.get_single_instance(output_dict[standard_component_specs.MODEL_KEY])
    base = serving.warm_started_from(path_utils.serving_model_path(model.uri))
    if base:
      model.set_string_custom_property(WARM_STARTED_FROM_KEY, base)


class WarmStartTrainer(trainer_component.Trainer):
  """`tfx.components.Trainer` that records `warm_started_from` on its Model."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
