"""The command every step of the compiled pipeline runs: TFX's Kubeflow V2 entry point,
once the ExecutorInput that open-source Kubeflow Pipelines hands it is mended.

  python -m pipeline.kubeflow_entrypoint --executor_class_path ... \
      --json_serialized_invocation_args '{{$}}' --json_serialized_inputs_spec_args ...

Two things in KFP 2.x's ExecutorInput break TFX 1.16's entry point
(tfx/orchestration/kubeflow/v2/container/kubeflow_v2_run_executor.py):
- Input artifacts arrive untyped. KFP's driver reads them back from MLMD without their
  schema (kubeflow/pipelines backend/src/v2/metadata/client.go,
  `GetOutputArtifactsByExecutionId`: `Schema: ""`), so each has
  `"type": {"instanceSchema": ""}`, and TFX's `_retrieve_class_path` fails on it
  (`yaml.safe_load('')` is None; tensorflow/tfx#7768). Each is given the type that the
  step's inputs spec declares: the compiled args carry that spec
  (`--json_serialized_inputs_spec_args`, pipeline spec 2.1).
- With its logs published (the default), KFP's driver adds an output `executor-logs` of
  its own type, `system.Artifact` (backend/src/v2/driver/driver.go `provisionOutputs`),
  which TFX cannot import. KFP's launcher writes and records that log itself, so TFX is
  not shown it.
On Vertex AI inputs arrive typed and no such output is added: nothing changes there.
"""
import json
import sys
from typing import Dict, List, Tuple

import model  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from absl import app

from model import internals


def _untyped(artifact: Dict) -> bool:
  return not any((artifact.get('type') or {}).values())


def _kfp_own_type(artifact: Dict) -> bool:
  return (artifact.get('type') or {}).get('schemaTitle', '').startswith('system.')


def mend(executor_input: Dict, inputs_spec: Dict) -> Dict:
  """The ExecutorInput with each untyped input artifact typed as `inputs_spec` (a
  ComponentInputsSpec, as JSON) declares it, and KFP's own outputs left out."""
  declared = inputs_spec.get('artifacts', {})
  for key, listed in executor_input.get('inputs', {}).get('artifacts', {}).items():
    for artifact in listed.get('artifacts', []):
      if _untyped(artifact):
        if key not in declared:
          raise ValueError(f'input artifact {key!r} arrived without a type, and the inputs '
                           'spec does not declare it')
        artifact['type'] = declared[key]['artifactType']
  outputs = executor_input.get('outputs', {}).get('artifacts', {})
  for key in [key for key, listed in outputs.items()
              if listed.get('artifacts') and all(map(_kfp_own_type, listed['artifacts']))]:
    del outputs[key]
  return executor_input


def parse_flags(argv: List[str]) -> Tuple[object, List[str]]:
  """TFX's own flags (the rest are Beam's), with the invocation mended."""
  args, beam_args = internals.parse_kubeflow_v2_flags(argv)
  inputs_spec = json.loads(getattr(args, 'json_serialized_inputs_spec_args', None) or '{}')
  args.json_serialized_invocation_args = json.dumps(
      mend(json.loads(args.json_serialized_invocation_args), inputs_spec))
  return args, beam_args


def main(argv: List[str] = None) -> None:
  app.run(internals.run_kubeflow_v2_executor, argv=argv or sys.argv, flags_parser=parse_flags)


if __name__ == '__main__':
  main()
