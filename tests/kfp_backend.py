"""Runs a compiled PipelineSpec the way the Kubeflow Pipelines v2 backend, or Vertex AI
Pipelines, would: a stand-in for a cluster, which no machine here has.

Each rule follows the backend's source (kubeflow/pipelines at master, KFP 2.x):
- Tasks run in DAG order (`dependentTasks` and the producers of their input artifacts),
  as the Argo workflow that backend/src/v2/compiler/argocompiler/dag.go builds.
- Open-source KFP refuses resolver executors: dag.go returns "resolver executors not
  implemented" for `PipelineDeploymentConfig_ExecutorSpec_Resolver`.
- The ExecutorInput is what the driver builds (backend/src/v2/driver/driver.go,
  `resolveInputs` and `provisionOutputs`): input parameters from `runtimeValue.constant`
  go to `parameterValues` only (any other runtime value fails: "param runtime value
  spec of type %T not implemented"); input artifacts are the producers' output
  artifacts, with the metadata their executors wrote (the launcher records it,
  backend/src/v2/component/launcher_v2.go); output artifact URIs are
  `<pipeline root>/<task>/<output>` (`generateOutputURI`); the executor's output file
  is a local path in its container (/tmp/kfp_outputs/output_metadata.json).
- The trigger condition is evaluated against that ExecutorInput
  (`expr.Condition(executorInput, condition)` in driver.go): a condition that names an
  input the task does not declare fails the run; a false one skips the task.
- KFP never runs `lifecycle.preCacheCheck`: nothing in backend/src reads the
  container's Lifecycle. Vertex AI runs it first with the same ExecutorInput and output
  file, and updates the task's parameters and output artifacts from that file before
  the executor starts (tfx/orchestration/kubeflow/v2/file_based_example_gen/driver.py;
  TFX's entrypoint then also reads the file, kubeflow_v2_run_executor.py).
- Each container's command and args run in a subprocess whose environment is only
  what kubeflow/Dockerfile sets (its ENV lines) plus PATH and HOME, with `python` the
  image's interpreter, which imports this project from an installed copy (as the
  Dockerfile's `pip install .` does), never from the source tree.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import uuid
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(REPO, 'kubeflow', 'Dockerfile')
KFP, VERTEX = 'kfp', 'vertex'


class BackendError(RuntimeError):
  """What the backend would report as a failed run."""


def dockerfile_env(path: str = DOCKERFILE) -> Dict[str, str]:
  """The variables the Dockerfile's ENV lines set (`ENV K=V ...` or `ENV K V`)."""
  env = {}
  for line in re.findall(r'^ENV\s+(.+)$', open(path).read(), re.M):
    if '=' in line.split()[0]:
      env.update(pair.split('=', 1) for pair in line.split())
    else:
      key, value = line.split(None, 1)
      env[key] = value.strip()
  return env


def dockerfile_copies(path: str = DOCKERFILE) -> List[str]:
  """The repository paths the Dockerfile COPYs into the image."""
  return [source for line in re.findall(r'^COPY\s+(.+)\s+\S+$', open(path).read(), re.M)
          for source in line.split()]


class Image:
  """The pipeline's image, as far as this machine can build it: a virtual environment
  with this project installed from the files the Dockerfile copies (not editable),
  and the pinned third-party packages of the test environment beneath it."""

  def __init__(self, folder: str):
    self.folder = folder
    self.home = os.path.join(folder, 'home')
    os.makedirs(self.home, exist_ok=True)
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', os.path.join(folder, 'venv')],
                   check=True)
    self.python = os.path.join(folder, 'venv', 'bin', 'python')
    site_packages = subprocess.run(
        [self.python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
        capture_output=True, text=True, check=True).stdout.strip()
    # The pinned packages (TensorFlow, TFX, ...) come from the test environment, after
    # this environment's own site-packages, where the project is installed.
    with open(os.path.join(site_packages, 'pinned_packages.pth'), 'w') as f:
      f.write(f'import site; site.addsitedir({sysconfig.get_paths()["purelib"]!r})\n')
    context = os.path.join(folder, 'context')
    for source in dockerfile_copies():
      target = os.path.join(context, source)
      if os.path.isdir(os.path.join(REPO, source)):
        shutil.copytree(os.path.join(REPO, source), target,
                        ignore=shutil.ignore_patterns('__pycache__'))
      else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(os.path.join(REPO, source), target)
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
                    '--no-build-isolation', '--target', site_packages, context],
                   check=True, capture_output=True)
    self.site_packages = site_packages

  def environment(self) -> Dict[str, str]:
    return {**dockerfile_env(), 'HOME': self.home,
            'PATH': f'{os.path.dirname(self.python)}:/usr/local/bin:/usr/bin:/bin'}

  def run(self, command: List[str], args: List[str], cwd: str, timeout: int = 900):
    argv = [self.python if part == 'python' else part for part in command] + args
    result = subprocess.run(argv, cwd=cwd, env=self.environment(), capture_output=True,
                            text=True, timeout=timeout, check=False)
    if result.returncode != 0:
      raise BackendError(f'{" ".join(command)} failed ({result.returncode}):\n'
                         f'{result.stderr[-4000:]}')
    return result


def _task_order(tasks: Dict) -> List[str]:
  """Tasks after everything they depend on."""
  def upstream(task):
    producers = {spec['taskOutputArtifact']['producerTask']
                 for spec in task.get('inputs', {}).get('artifacts', {}).values()
                 if 'taskOutputArtifact' in spec}
    return set(task.get('dependentTasks', [])) | producers

  order, done = [], set()
  while len(order) < len(tasks):
    ready = sorted(name for name, task in tasks.items()
                   if name not in done and upstream(task) <= done)
    if not ready:
      raise BackendError(f'the DAG has a cycle among {sorted(set(tasks) - done)}')
    order += ready
    done |= set(ready)
  return order


def _condition_holds(condition: str, executor_input: Dict) -> bool:
  """Evaluates the CEL subset TFX compiles conditions to, over the task's own inputs."""
  artifacts = executor_input['inputs'].get('artifacts', {})
  for key in re.findall(r"inputs\.artifacts\['([^']+)'\]", condition):
    if key not in artifacts:
      raise BackendError(f'condition {condition!r} names input artifact {key!r}, which the '
                         f'task does not declare (it has {sorted(artifacts)})')

  # Field access (`.artifacts`, `.metadata`) as subscripts, over the JSON ExecutorInput.
  python = re.sub(r'(?<=[\w\]\)])\.([A-Za-z_]\w*)', r"['\1']", condition)
  python = python.replace('&&', ' and ').replace('||', ' or ')
  return bool(eval(python, {'__builtins__': {}},  # pylint: disable=eval-used
                   {'inputs': executor_input['inputs']}))


class Run:
  """One run of a compiled pipeline: `Run(spec, root, image, backend).execute()`."""

  def __init__(self, spec: Dict, pipeline_root: str, image: Image, backend: str,
               workdir: str):
    self.spec, self.image, self.backend, self.workdir = spec, image, backend, workdir
    self.run_id = uuid.uuid4().hex[:12]
    self.root = f'{pipeline_root.rstrip("/")}/{self.run_id}'
    self.outputs: Dict[str, Dict] = {}
    self.states: Dict[str, str] = {}
    self.seconds: Dict[str, float] = {}

  def execute(self) -> Dict[str, str]:
    executors = self.spec['deploymentSpec']['executors']
    if self.backend == KFP:
      for label, executor in executors.items():
        if 'resolver' in executor:
          raise BackendError(f'{label}: resolver executors not implemented')
    tasks = self.spec['root']['dag']['tasks']
    for name in _task_order(tasks):
      start = time.monotonic()
      self.states[name] = self._run_task(name, tasks[name])
      self.seconds[name] = round(time.monotonic() - start, 1)
    return self.states

  def _parameters(self, name: str, task: Dict):
    """(parameterValues, parameters). Schema 2.0's typed `constantValue` is refused
    under KFP's rules and passed as the deprecated `parameters` under Vertex AI's, as
    KFP's driver did before it dropped them (the ValueOrRuntimeParameter_ConstantValue
    case of earlier driver.go versions)."""
    values, deprecated = {}, {}
    for key, spec in task.get('inputs', {}).get('parameters', {}).items():
      runtime = spec.get('runtimeValue', {})
      if 'constant' in runtime:
        values[key] = runtime['constant']
      elif 'constantValue' in runtime and self.backend == VERTEX:
        deprecated[key] = runtime['constantValue']
      else:
        raise BackendError(f'{name}.{key}: param runtime value spec of type '
                           f'{sorted(runtime) or sorted(spec)} not implemented')
    return values, deprecated

  def _input_artifacts(self, name: str, task: Dict) -> Dict:
    artifacts = {}
    for key, spec in task.get('inputs', {}).get('artifacts', {}).items():
      producer = spec['taskOutputArtifact']['producerTask']
      if self.states.get(producer) != 'SUCCEEDED':
        raise BackendError(f'{name}: input {key} comes from {producer}, which did not run')
      artifacts[key] = self.outputs[producer][spec['taskOutputArtifact']['outputArtifactKey']]
    return artifacts

  def _run_task(self, name: str, task: Dict) -> str:
    component = self.spec['components'][task['componentRef']['name']]
    container = self.spec['deploymentSpec']['executors'][component['executorLabel']]['container']
    upstream_states = {self.states.get(t) for t in task.get('dependentTasks', [])}
    if upstream_states - {'SUCCEEDED'}:
      return 'SKIPPED'
    task_dir = os.path.join(self.workdir, f'{name}-{self.run_id}')
    os.makedirs(task_dir)
    if self.backend == KFP:
      output_file = os.path.join(task_dir, 'tmp', 'kfp_outputs', 'output_metadata.json')
      task_root = f'{self.root}/{name}'
    else:
      task_root = f'{self.root}/{name}_{uuid.uuid4().hex[:8]}'
      output_file = f'{task_root}/executor_output.json'
    outputs = {
        key: {'artifacts': [{'name': f'{self.run_id}/{name}/{key}', 'type': spec['artifactType'],
                             'uri': f'{task_root}/{key}', 'metadata': {}}]}
        for key, spec in component.get('outputDefinitions', {}).get('artifacts', {}).items()}
    parameter_values, parameters = self._parameters(name, task)
    executor_input = {
        'inputs': {'parameterValues': parameter_values, 'parameters': parameters,
                   'artifacts': self._input_artifacts(name, task)},
        'outputs': {'artifacts': outputs, 'outputFile': output_file}}
    condition = task.get('triggerPolicy', {}).get('condition')
    if condition and not _condition_holds(condition, executor_input):
      return 'SKIPPED'

    def invoke(command, args):
      invocation = json.dumps(executor_input)
      self.image.run(command, [invocation if arg == '{{$}}' else arg for arg in args],
                     cwd=task_dir)

    hook = container.get('lifecycle', {}).get('preCacheCheck')
    if hook and self.backend == VERTEX:
      invoke(hook['command'], hook['args'])
      driven = json.load(open(output_file))
      executor_input['inputs']['parameterValues'].update(driven.get('parameterValues', {}))
      _record(outputs, driven)
    invoke(container['command'], container['args'])
    _record(outputs, json.load(open(output_file)))
    self.outputs[name] = outputs
    return 'SUCCEEDED'


def _record(outputs: Dict, executor_output: Dict) -> None:
  """The provisioned output artifacts (name, type) take the uri and metadata that the
  output file gives, as the launcher records them (launcher_v2.go)."""
  for key, produced in executor_output.get('artifacts', {}).items():
    for artifact, written in zip(outputs[key]['artifacts'], produced['artifacts']):
      artifact['uri'] = written.get('uri', artifact['uri'])
      artifact['metadata'] = written.get('metadata', {})


def load_spec(path: str) -> Dict:
  """The PipelineSpec of a compiled package: the .yaml itself, or the .json's."""
  if path.endswith('.json'):
    return json.load(open(path))['pipelineSpec']
  import yaml  # pylint: disable=import-outside-toplevel
  return yaml.safe_load(open(path))


def run_pipeline(package: str, pipeline_root: str, image: Image, backend: str,
                 workdir: str) -> Run:
  """Runs the package once; the Run holds each task's state and output artifacts."""
  run = Run(load_spec(package), pipeline_root, image, backend, workdir)
  run.execute()
  return run
