"""Runs a compiled PipelineSpec the way open-source Kubeflow Pipelines' v2 backend, or
Vertex AI Pipelines, would: a stand-in for a cluster, which no machine here has.

KFP's rules follow kubeflow/pipelines at tag 2.5.0 (backend/src/v2), file by file:
- Tasks run in DAG order (`dependentTasks` and the producers of their input artifacts),
  as the Argo workflow that compiler/argocompiler/dag.go builds; dag.go refuses
  resolver executors ("resolver executors not implemented").
- The driver (driver/driver.go `Container`) builds each ExecutorInput:
  - input parameters from `runtimeValue.constant` go to `parameterValues` only
    (`resolveInputParameter`: any other runtime value fails, "param runtime value spec
    of type %T not implemented");
  - input artifacts are read back from MLMD (`resolveUpstreamArtifacts`:
    metadata/client.go `GetOutputArtifactsByExecutionId`, whose `Schema: ""` leaves the
    type empty, then `ToRuntimeArtifact`): `{"instanceSchema": ""}` as the type, the
    MLMD id as the name, the metadata through converter.go's conversions (below);
  - the trigger condition is evaluated against those inputs (`expr.Condition`): a
    condition that names an input the task does not declare fails the run, a false one
    leaves the task not triggered;
  - outputs are provisioned (`provisionOutputs`): URIs
    `<root>/<pipeline name>/<run id>/<task>/<uuid>/<output>` (client.go `GetPipeline`
    and `GenerateOutputURI`), the output definitions' types and metadata, the output
    file `/tmp/kfp_outputs/output_metadata.json` (component/launcher_v2.go
    `OutputMetadataFilepath`), and with `--publish_logs` on (its default, and the
    PUBLISH_LOGS the 2.5.0 manifests set) one more output, `executor-logs`, of KFP's
    own type `system.Artifact`;
  - the cache (`getFingerPrintsAndID`, cacheutils/cache.go `GenerateCacheKey` and
    `GenerateFingerPrint`): with `cachingOptions.enableCache`, a key over the input
    artifacts' names, the input parameter values, the output artifacts' name, type and
    metadata (URIs wiped), the output parameters' types, the container's command and
    args as compiled (placeholders unresolved) and its image; a key that a completed
    execution recorded is a hit, whose outputs are published as this task's
    (`reuseCachedOutputs`) without running the container. KFP runs no
    `lifecycle.preCacheCheck` (nothing in backend/src reads the container's Lifecycle).
  - the pod (`initPodSpecPatch`, `extendPodSpecPatch`): limits of `<memoryLimit>G`,
    `<cpuLimit>` and `{<accelerator type>: <count>}` (the accelerator type is used as
    a Kubernetes resource name), and the node selector of the platform spec's
    Kubernetes executor config (the package's second YAML document).
- The launcher (component/launcher_v2.go `Execute`) runs the command in the pod, reads
  the output file, merges each output's uri and metadata into the provisioned one
  (`mergeRuntimeArtifacts`), records it in MLMD (metadata/client.go `RecordArtifact`:
  the type from the schema's title; every metadata field a custom property through
  converter.go `StructValueToMLMDValue`, plus `display_name` and
  `store_session_info`), publishes the execution, and creates the cache entry.

Vertex AI's rules (its backend is not public): typed input artifacts named by their
resource name, parameters also as the deprecated `parameters`, TFX's ingestion driver
(the container's `lifecycle.preCacheCheck`) first, whose output file updates the
task's parameters and output artifacts before the cache check and the executor
(tfx/orchestration/kubeflow/v2/file_based_example_gen/driver.py, `_run_driver`), the
cache over the updated parameters, and an output file under the task's root on the
pod's Cloud Storage FUSE mount of the bucket (as google-cloud-pipeline-components'
executor tests show), which no Beam worker on Dataflow mounts.

Each container runs as a pod: a process in a mount namespace of its own (`unshare`,
as root) whose private mounts nothing outside sees (KFP: a fresh /tmp/kfp_outputs; Vertex
AI: the folder standing for its FUSE mount, where the output file lives), with only the
environment kubeflow/Dockerfile sets (its ENV lines) plus PATH, HOME and the pod's
credentials and CAs for gs:// (POD_CREDENTIALS), and `python` the image's interpreter,
which imports this project from an installed copy (as the Dockerfile's `pip install .`
does), never from the source tree.

Where this stand-in departs from the backends: the pipeline root may also be a local
folder (KFP takes only object stores; the end-to-end test uses the emulated bucket of
scripts/with-gcs-emulator); KFP's object-store uploads and downloads of artifacts are
not made (TFX's executors read and write their artifacts' URIs themselves); and on
Vertex AI only the output file passes through the FUSE stand-in.
"""
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
import uuid
from typing import Dict, List, Optional, Sequence, Tuple

import yaml
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(REPO, 'kubeflow', 'Dockerfile')
KFP, VERTEX = 'kfp', 'vertex'
KFP_OUTPUT_FILE = '/tmp/kfp_outputs/output_metadata.json'  # launcher_v2.go
EXECUTOR_LOGS = 'executor-logs'                             # driver.go provisionOutputs
VERTEX_PROJECT_NUMBER = '123456789'
# What a pod's environment holds besides the image's for gs:// (scripts/with-gcs-emulator).
POD_CREDENTIALS = ('GOOGLE_AUTH_TOKEN_FOR_TESTING', 'GOOGLE_APPLICATION_CREDENTIALS',
                   'GOOGLE_CLOUD_PROJECT', 'CURL_CA_BUNDLE', 'REQUESTS_CA_BUNDLE',
                   'SSL_CERT_FILE')


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
    """The Dockerfile's ENV, PATH and HOME; and the credentials and CAs a pod gets from
    its cluster (Workload Identity, the nodes' CAs), here those of
    scripts/with-gcs-emulator when the tests run in it."""
    granted = {name: os.environ[name] for name in POD_CREDENTIALS if name in os.environ}
    return {**dockerfile_env(), **granted, 'HOME': self.home,
            'PATH': f'{os.path.dirname(self.python)}:/usr/local/bin:/usr/bin:/bin'}

  def run(self, command: List[str], args: List[str], cwd: str, timeout: int = 900):
    """The command in this environment, in the calling process's mounts."""
    return self._run([self.python if part == 'python' else part for part in command] + args,
                     cwd, timeout, command)

  def run_in_pod(self, command: List[str], args: List[str], cwd: str,
                 mounts: Sequence[str] = (), keep: Optional[Tuple[str, str]] = None,
                 seed: Optional[Tuple[str, str]] = None, timeout: int = 900):
    """The command as a pod runs it: in a mount namespace of its own, with an empty file
    system of the pod's own at each of `mounts`, which nothing outside the pod sees.
    `seed` (host path, pod path) is copied in first; `keep` (pod path, host path) is
    copied out after the command, as the launcher, in the pod, reads the output file."""
    argv = [self.python if part == 'python' else part for part in command] + args
    script = []
    for target in mounts:
      script.append(f'mkdir -p {shlex.quote(target)} || exit 125')
      script.append(f'mount -t tmpfs pod {shlex.quote(target)} || exit 125')
    if seed and os.path.exists(seed[0]):
      script.append(f'mkdir -p {shlex.quote(os.path.dirname(seed[1]))} && '
                    f'cp {shlex.quote(seed[0])} {shlex.quote(seed[1])} || exit 125')
    script.append('"$@"; status=$?')
    if keep:
      script.append(f'if [ -e {shlex.quote(keep[0])} ]; then '
                    f'cp {shlex.quote(keep[0])} {shlex.quote(keep[1])}; fi')
    script.append('exit $status')
    return self._run(['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
                      '\n'.join(script), 'pod'] + argv, cwd, timeout, command)

  def _run(self, argv: List[str], cwd: str, timeout: int, command: List[str]):
    result = subprocess.run(argv, cwd=cwd, env=self.environment(), capture_output=True,
                            text=True, timeout=timeout, check=False)
    if result.returncode == 125:
      raise RuntimeError(f'could not set up the pod\'s mounts (unshare and mount need '
                         f'root):\n{result.stderr[-2000:]}')
    if result.returncode != 0:
      raise BackendError(f'{" ".join(command)} failed ({result.returncode}):\n'
                         f'{result.stderr[-4000:]}')
    return result


def load_spec(path: str) -> Dict:
  """The PipelineSpec of a compiled package: the .yaml's first document, or the .json's."""
  if path.endswith('.json'):
    return json.load(open(path))['pipelineSpec']
  return next(yaml.safe_load_all(open(path)))


def load_platform_spec(path: str) -> Dict:
  """The PlatformSpec of a .yaml package: its later documents, merged, as kfp.Client
  reads them (kfp/client/client.py `_safe_load_yaml`); {} if there are none."""
  if path.endswith('.json'):
    return {}
  platform = {}
  for document in list(yaml.safe_load_all(open(path)))[1:]:
    platform.update(document or {})
  return platform


# MLMD, with the conversions of backend/src/v2/metadata/converter.go.

def _metadata_value(value) -> mlmd.Value:
  """`StructValueToMLMDValue`: string, number -> double, bool -> int, and lists and
  structs wrapped as {"list": ...} / {"struct": ...} in a struct value."""
  if isinstance(value, str):
    return mlmd.Value(string_value=value)
  if isinstance(value, bool):
    return mlmd.Value(int_value=int(value))
  if isinstance(value, (int, float)):
    return mlmd.Value(double_value=float(value))
  if isinstance(value, (list, dict)):
    result = mlmd.Value()
    result.struct_value.update({'list' if isinstance(value, list) else 'struct': value})
    return result
  raise BackendError(f'unknown/unsupported value type {type(value).__name__}')


def _json_value(value: mlmd.Value):
  """`toRuntimeArtifact`'s properties: string, double and int (as numbers), struct."""
  kind = value.WhichOneof('value')
  if kind == 'string_value':
    return value.string_value
  if kind in ('double_value', 'int_value'):
    return float(getattr(value, kind))
  if kind == 'struct_value':
    from google.protobuf import json_format  # pylint: disable=import-outside-toplevel
    return json_format.MessageToDict(value.struct_value)
  raise BackendError(f'unknown property type in MLMD artifact: {kind}')


def _schema_title(schema: str) -> str:
  """client.go `SchemaToArtifactType`: the schema's YAML title."""
  title = (yaml.safe_load(schema) or {}).get('title', '') if schema else ''
  if not title:
    raise BackendError('No title specified')  # glog.Fatal in the launcher
  return title


def _schema(artifact_type: Dict) -> str:
  """launcher_v2.go `getArtifactSchema`."""
  if 'instanceSchema' in artifact_type:
    return artifact_type['instanceSchema']
  if 'schemaTitle' in artifact_type:
    return 'title: ' + artifact_type['schemaTitle']
  raise BackendError(f'unknown type in ArtifactTypeSchema {artifact_type}')


class Metadata:
  """The cluster's MLMD: the same ml-metadata store, on SQLite, that KFP runs."""

  def __init__(self, path: str):
    config = mlmd.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    self.store = metadata_store.MetadataStore(config)
    self._execution_type = self.store.put_execution_type(
        mlmd.ExecutionType(name='system.ContainerExecution'))

  def context(self, type_name: str, name: str) -> int:
    type_id = self.store.put_context_type(mlmd.ContextType(name=type_name))
    found = self.store.get_context_by_type_and_name(type_name, name)
    if found:
      return found.id
    return self.store.put_contexts([mlmd.Context(type_id=type_id, name=name)])[0]

  def record_artifact(self, output_name: str, schema: str, runtime_artifact: Dict,
                      session_info: Optional[str]) -> int:
    """client.go `RecordArtifact` (KFP's launcher adds display_name and
    store_session_info; Vertex AI's, with no session info, adds nothing)."""
    type_id = self.store.put_artifact_type(mlmd.ArtifactType(name=_schema_title(schema)))
    artifact = mlmd.Artifact(type_id=type_id, uri=runtime_artifact.get('uri', ''),
                             state=mlmd.Artifact.LIVE)
    for key, value in (runtime_artifact.get('metadata') or {}).items():
      artifact.custom_properties[key].CopyFrom(_metadata_value(value))
    if session_info is not None:
      if 'display_name' not in artifact.custom_properties:
        artifact.custom_properties['display_name'].string_value = output_name
      if 'store_session_info' not in artifact.custom_properties:
        artifact.custom_properties['store_session_info'].string_value = session_info
    return self.store.put_artifacts([artifact])[0]

  def create_execution(self, task_name: str, contexts: Sequence[int],
                       input_artifacts: Dict[str, List[int]], fingerprint: str = '',
                       cached_execution_id: str = '', triggered: bool = True) -> int:
    """client.go `CreateExecution`: RUNNING (CANCELED when not triggered), with the
    inputs as INPUT events."""
    execution = mlmd.Execution(
        type_id=self._execution_type,
        last_known_state=mlmd.Execution.RUNNING if triggered else mlmd.Execution.CANCELED)
    execution.custom_properties['task_name'].string_value = task_name
    if fingerprint:
      execution.custom_properties['cache_fingerprint'].string_value = fingerprint
    if cached_execution_id:
      execution.custom_properties['cached_execution_id'].string_value = cached_execution_id
    events = [(None, _event(mlmd.Event.INPUT, name, artifact_id))
              for name, ids in input_artifacts.items() for artifact_id in ids]
    return self.store.put_execution(execution, events, self._contexts(contexts))[0]

  def publish_execution(self, execution_id: int, outputs: Dict[str, int], state) -> None:
    """client.go `PublishExecution`: the state, and the outputs as OUTPUT events."""
    (execution,) = self.store.get_executions_by_id([execution_id])
    execution.last_known_state = state
    events = [(None, _event(mlmd.Event.OUTPUT, name, artifact_id))
              for name, artifact_id in outputs.items()]
    self.store.put_execution(execution, events, [])

  def output_artifacts(self, execution_id: int) -> Dict[str, mlmd.Artifact]:
    """client.go `GetOutputArtifactsByExecutionId`: {output name: artifact}."""
    names = {event.artifact_id: event.path.steps[0].key
             for event in self.store.get_events_by_execution_ids([execution_id])
             if event.type == mlmd.Event.OUTPUT}
    return {names[artifact.id]: artifact
            for artifact in self.store.get_artifacts_by_id(list(names))}

  def _contexts(self, ids: Sequence[int]) -> List[mlmd.Context]:
    return list(self.store.get_contexts_by_id(list(ids))) if ids else []


def _event(kind, name: str, artifact_id: int) -> mlmd.Event:
  event = mlmd.Event(type=kind, artifact_id=artifact_id)
  event.path.steps.add().key = name
  return event


def to_runtime_artifact(artifact: mlmd.Artifact, artifact_type: Dict, name: str) -> Dict:
  """converter.go `toRuntimeArtifact`, as JSON: properties and custom properties as
  metadata (ints become numbers, structs stay wrapped)."""
  metadata = {key: _json_value(value) for key, value in artifact.properties.items()}
  metadata.update({key: _json_value(value)
                   for key, value in artifact.custom_properties.items()})
  return {'name': name, 'type': artifact_type, 'uri': artifact.uri, 'metadata': metadata}


# KFP's cache (backend/src/v2/cacheutils/cache.go).

def cache_key(executor_input: Dict, output_parameter_types: Dict[str, str],
              cmd_args: List[str], image: str) -> Dict:
  """`GenerateCacheKey`, as protojson would write the CacheKey (empty fields left out)."""
  inputs, outputs = executor_input['inputs'], executor_input['outputs']
  key = {
      'inputArtifactNames': {
          name: {'artifactNames': [a.get('name', '') for a in listed['artifacts']]}
          for name, listed in inputs.get('artifacts', {}).items()},
      'inputParameterValues': dict(inputs.get('parameterValues', {})),
      'outputArtifactsSpec': {
          name: {k: v for k, v in (('name', listed['artifacts'][0].get('name')),
                                   ('type', listed['artifacts'][0].get('type')),
                                   ('metadata', listed['artifacts'][0].get('metadata'))) if v}
          for name, listed in outputs.get('artifacts', {}).items() if listed['artifacts']},
      'outputParametersSpec': {name: output_parameter_types[name]
                               for name in outputs.get('parameters', {})},
      'containerSpec': {'image': image, 'cmdArgs': list(cmd_args)},
  }
  return {k: v for k, v in key.items() if v}


def fingerprint(key: Dict) -> str:
  """`GenerateFingerPrint`: sha256 of the key's JSON, formatted by encoding/json
  (sorted keys, no spaces)."""
  return hashlib.sha256(json.dumps(key, sort_keys=True, separators=(',', ':'))
                        .encode()).hexdigest()


class Cache:
  """The cache entries KFP's API server keeps in its own database (not in MLMD):
  fingerprint -> the MLMD id of the execution that completed with it, per pipeline
  (driver.go `createCache`, `GetExecutionCache`); the newest entry wins."""

  def __init__(self, path: str):
    self.path = path

  def _entries(self) -> Dict:
    return json.load(open(self.path)) if os.path.exists(self.path) else {}

  def get(self, pipeline: str, key: str) -> str:
    return self._entries().get(pipeline, {}).get(key, '')

  def put(self, pipeline: str, key: str, execution_id: int) -> None:
    entries = self._entries()
    entries.setdefault(pipeline, {})[key] = str(execution_id)
    with open(self.path, 'w') as f:
      json.dump(entries, f)


# The pod: what it asks the scheduler for, and where it may run.

def pod_resources(container: Dict) -> Dict[str, float]:
  """driver.go `initPodSpecPatch`: the container's limits (memory in G, CPUs, and the
  accelerator count under the accelerator type, which Kubernetes takes as a resource
  name)."""
  resources, limits = container.get('resources', {}), {}
  if resources.get('memoryLimit'):
    limits['memory'] = float(resources['memoryLimit'])
  if resources.get('cpuLimit'):
    limits['cpu'] = float(resources['cpuLimit'])
  accelerator = resources.get('accelerator', {})
  if accelerator.get('type') and int(accelerator.get('count', 0)) > 0:
    limits[accelerator['type']] = float(accelerator['count'])
  return limits


def node_selector(platform_spec: Dict, executor_label: str) -> Dict[str, str]:
  """driver.go `extendPodSpecPatch`: the Kubernetes executor config's node selector."""
  config = (platform_spec.get('platforms', {}).get('kubernetes', {})
            .get('deploymentSpec', {}).get('executors', {}).get(executor_label, {}))
  return dict(config.get('nodeSelector', {}).get('labels', {}))


# The node pools of a GKE cluster for this pipeline: what each node can give (memory in
# G) and its labels. GKE labels a GPU node with its accelerator
# (cloud.google.com/gke-accelerator) and NVIDIA's device plugin advertises its GPUs as
# the extended resource nvidia.com/gpu; a pod whose limits name a resource no node
# advertises, or whose node selector no node's labels match, stays Pending.
NODE_POOLS = (
    {'labels': {}, 'allocatable': {'cpu': 15.8, 'memory': 57.0}},
    {'labels': {'cloud.google.com/gke-accelerator': 'nvidia-tesla-t4'},
     'allocatable': {'cpu': 31.8, 'memory': 115.0, 'nvidia.com/gpu': 4}},
)


def unschedulable(limits: Dict[str, float], selector: Dict[str, str],
                  pools=NODE_POOLS) -> Optional[str]:
  """Why no node of `pools` can take the pod, or None."""
  reasons = []
  for pool in pools:
    mismatched = {k: v for k, v in selector.items() if pool['labels'].get(k) != v}
    short = {name: amount for name, amount in limits.items()
             if pool['allocatable'].get(name, 0) < amount}
    if not mismatched and not short:
      return None
    reasons.append(f'node(s) {pool["labels"] or "without labels"}: '
                   + ('didn\'t match Pod\'s node affinity/selector' if mismatched
                      else f'Insufficient {", ".join(sorted(short))}'))
  return '0/{} nodes are available: {}'.format(len(pools), '; '.join(reasons))


def _beam_sized_by_the_node(args: List[str]) -> bool:
  """Beam's multi-processing DirectRunner with --direct_num_workers=0 (or unset)
  starts one worker per core it sees, which in a pod is the node's."""
  options = dict(arg.split('=', 1) for arg in args if arg.startswith('--direct'))
  return (options.get('--direct_running_mode') == 'multi_processing'
          and int(options.get('--direct_num_workers', '1')) == 0)


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

  # Field access (`.artifacts`, `.metadata`) as subscripts, over the JSON ExecutorInput;
  # quoted keys (`'_PhotoExampleGen.examples'`) stay as they are.
  python = ''.join(
      part if part.startswith("'") else
      re.sub(r'(?<=[\w\]\)])\.([A-Za-z_]\w*)', r"['\1']", part)
      .replace('&&', ' and ').replace('||', ' or ')
      for part in re.split(r"('[^']*')", condition))
  return bool(eval(python, {'__builtins__': {}},  # pylint: disable=eval-used
                   {'inputs': executor_input['inputs']}))


class Cluster:
  """One backend's cluster: its MLMD, its cache and the image its pods run. Runs of a
  compiled package share them, as the runs of a schedule do."""

  def __init__(self, folder: str, image: Image, backend: str, publish_logs: bool = True,
               pools=NODE_POOLS):
    os.makedirs(folder, exist_ok=True)
    self.folder, self.image, self.backend = folder, image, backend
    self.publish_logs = publish_logs and backend == KFP
    self.pools = pools
    self.metadata = Metadata(os.path.join(folder, 'mlmd.sqlite'))
    self.cache = Cache(os.path.join(folder, 'cache.json'))

  def run(self, package: str, pipeline_root: str) -> 'Run':
    """Runs the package once; the Run holds each task's state and output artifacts."""
    run = Run(self, load_spec(package), load_platform_spec(package), pipeline_root)
    run.execute()
    return run


class Run:
  """One run of a compiled pipeline on a Cluster."""

  def __init__(self, cluster: Cluster, spec: Dict, platform_spec: Dict, pipeline_root: str):
    self.cluster, self.spec, self.platform_spec = cluster, spec, platform_spec
    self.backend, self.image, self.metadata = cluster.backend, cluster.image, cluster.metadata
    self.run_id = str(uuid.uuid4())
    self.name = spec['pipelineInfo']['name']
    if self.backend == KFP:
      self.root = f'{pipeline_root.rstrip("/")}/{self.name}/{self.run_id}'
    else:
      self.root = f'{pipeline_root.rstrip("/")}/{VERTEX_PROJECT_NUMBER}/{self.name}-{self.run_id[:8]}'
    self.pipeline_root = pipeline_root.rstrip('/')
    self.contexts = [self.metadata.context('system.Pipeline', self.name),
                     self.metadata.context('system.PipelineRun', self.run_id)]
    self.executions: Dict[str, int] = {}
    self.outputs: Dict[str, Dict] = {}
    self.states: Dict[str, str] = {}
    self.seconds: Dict[str, float] = {}
    self.executor_inputs: Dict[str, Dict] = {}

  def execute(self) -> Dict[str, str]:
    executors = self.spec['deploymentSpec']['executors']
    if self.backend == KFP:
      for label, executor in executors.items():
        if 'resolver' in executor:
          raise BackendError(f'{label}: resolver executors not implemented')
    tasks = self.spec['root']['dag']['tasks']
    for name in _task_order(tasks):
      start = time.monotonic()
      try:
        self.states[name] = self._run_task(name, tasks[name])
      except BackendError as e:
        raise BackendError(f'task {name}: {e}') from None
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

  def _input_artifacts(self, name: str, task: Dict, component: Dict) -> Dict:
    """As the producer's outputs are read back from MLMD: on KFP untyped and named by
    their MLMD id; on Vertex AI typed and named by their resource name."""
    declared = component.get('inputDefinitions', {}).get('artifacts', {})
    artifacts = {}
    for key, spec in task.get('inputs', {}).get('artifacts', {}).items():
      producer = spec['taskOutputArtifact']['producerTask']
      if self.states.get(producer) not in ('SUCCEEDED', 'CACHED'):
        raise BackendError(f'{name}: input {key} comes from {producer}, which did not run')
      output_key = spec['taskOutputArtifact']['outputArtifactKey']
      produced = self.metadata.output_artifacts(self.executions[producer])
      if output_key not in produced:
        raise BackendError(f'cannot find output artifact key {output_key!r} in producer '
                           f'task {producer!r}')
      artifact = produced[output_key]
      if self.backend == KFP:
        runtime = to_runtime_artifact(artifact, {'instanceSchema': ''}, str(artifact.id))
      else:
        runtime = to_runtime_artifact(
            artifact, declared[key]['artifactType'],
            f'projects/{VERTEX_PROJECT_NUMBER}/locations/europe-west4/metadataStores/'
            f'default/artifacts/{artifact.id}')
      artifacts[key] = {'artifacts': [runtime]}
    return artifacts

  def _provision(self, name: str, component: Dict, output_file: str, task_root: str) -> Dict:
    """driver.go `provisionOutputs` (Vertex AI: under the task's own root)."""
    definitions = dict(component.get('outputDefinitions', {}).get('artifacts', {}))
    if self.cluster.publish_logs:
      definitions[EXECUTOR_LOGS] = {'artifactType': {'schemaTitle': 'system.Artifact'}}
    artifacts = {}
    for key, definition in definitions.items():
      artifact = {'type': definition['artifactType'], 'uri': f'{task_root}/{key}'}
      if definition.get('metadata'):
        artifact['metadata'] = definition['metadata']
      artifacts[key] = {'artifacts': [artifact]}
    return {'artifacts': artifacts, 'outputFile': output_file}

  def _run_task(self, name: str, task: Dict) -> str:
    component = self.spec['components'][task['componentRef']['name']]
    label = component['executorLabel']
    container = self.spec['deploymentSpec']['executors'][label]['container']
    upstream_states = {self.states.get(t) for t in task.get('dependentTasks', [])}
    if upstream_states - {'SUCCEEDED', 'CACHED'}:
      return 'SKIPPED'
    parameter_values, parameters = self._parameters(name, task)
    inputs = {'parameterValues': parameter_values,
              'artifacts': self._input_artifacts(name, task, component)}
    if self.backend == VERTEX:
      inputs['parameters'] = parameters
    input_ids = {key: [int(a['name'].rsplit('/', 1)[-1]) for a in listed['artifacts']]
                 for key, listed in inputs['artifacts'].items()}
    condition = task.get('triggerPolicy', {}).get('condition')
    if condition and not _condition_holds(condition, {'inputs': inputs}):
      self.metadata.create_execution(name, self.contexts, input_ids, triggered=False)
      return 'SKIPPED'

    task_dir = os.path.join(self.cluster.folder, 'pods', f'{name}-{self.run_id[:8]}')
    os.makedirs(task_dir)
    if self.backend == KFP:
      task_root = f'{self.root}/{name}/{uuid.uuid4()}'
      output_file, mounts = KFP_OUTPUT_FILE, [os.path.dirname(KFP_OUTPUT_FILE)]
    else:
      # The pod sees the bucket through its Cloud Storage FUSE mount. Here that mount is
      # a folder of the pod's own, and the output file is carried between it and the
      # bucket around each container (what FUSE does as files are written and read).
      task_root = f'{self.root}/{name}_{uuid.uuid4().hex[:8]}'
      fuse = os.path.join(task_dir, 'gcs')
      output_file = f'{fuse}/{task_root.split("://", 1)[-1].lstrip("/")}/executor_output.json'
      mounts = [fuse]
    outputs = self._provision(name, component, output_file, task_root)
    executor_input = {'inputs': inputs, 'outputs': outputs}
    self.executor_inputs[name] = executor_input
    host_copy = os.path.join(task_dir, 'output_metadata.json')

    def invoke(command, args):
      """Runs a container; returns the output file it left, if any (Vertex AI: the one
      an earlier container of the task left is there for it too)."""
      seed = (host_copy, output_file) if self.backend == VERTEX else None
      self.image.run_in_pod(command, [json.dumps(executor_input) if arg == '{{$}}' else arg
                                      for arg in args],
                            cwd=task_dir, mounts=mounts, keep=(output_file, host_copy),
                            seed=seed)
      return json.load(open(host_copy)) if os.path.exists(host_copy) else {}

    hook = container.get('lifecycle', {}).get('preCacheCheck')
    if hook and self.backend == VERTEX:
      driven = invoke(hook['command'], hook['args'])
      inputs['parameterValues'].update(driven.get('parameterValues', {}))
      _merge(outputs, driven)

    key = ''
    if task.get('cachingOptions', {}).get('enableCache'):
      key = fingerprint(cache_key(executor_input, {}, container.get('command', []) +
                                  container.get('args', []), container['image']))
    cached = self.cluster.cache.get(self.name, key) if key else ''
    execution = self.metadata.create_execution(name, self.contexts, input_ids, key, cached)
    self.executions[name] = execution
    if cached:  # driver.go `collectOutputArtifactMetadataFromCache`
      reused = self.metadata.output_artifacts(int(cached))
      missing = sorted(set(outputs['artifacts']) - set(reused))
      if missing:
        raise BackendError(f'unable to find artifact with name {missing[0]} in mlmd output '
                           'artifacts')
      self.metadata.publish_execution(
          execution, {k: reused[k].id for k in outputs['artifacts']}, mlmd.Execution.CACHED)
      self._keep_outputs(name, component)
      return 'CACHED'

    self._schedule(name, label, container)
    _merge(outputs, invoke(container['command'], container['args']))
    recorded = {
        key_: self.metadata.record_artifact(key_, _schema(listed['artifacts'][0]['type']),
                                            listed['artifacts'][0], self._session_info())
        for key_, listed in outputs['artifacts'].items()}
    self.metadata.publish_execution(execution, recorded, mlmd.Execution.COMPLETE)
    if key:
      self.cluster.cache.put(self.name, key, execution)
    self._keep_outputs(name, component)
    return 'SUCCEEDED'

  def _schedule(self, name: str, label: str, container: Dict) -> None:
    if self.backend != KFP:
      return
    why = unschedulable(pod_resources(container), node_selector(self.platform_spec, label),
                        self.cluster.pools)
    if why:
      raise BackendError(f'{name}: the pod stays Pending: {why}')
    if _beam_sized_by_the_node(container.get('args', [])):
      raise BackendError(f'{name}: Beam\'s DirectRunner would start one worker per core '
                         'of the node, not of the pod')

  def _session_info(self) -> Optional[str]:
    """What KFP's `RecordArtifact` stores as store_session_info: the bucket's provider
    and credentials (objectstore/config.go `SessionInfo`; fromEnv: the pod's own)."""
    if self.backend != KFP:
      return None
    return json.dumps({'Provider': 'gs', 'Params': {'fromEnv': 'true'}})

  def _keep_outputs(self, name: str, component: Dict) -> None:
    """The task's outputs as a downstream task would receive them."""
    produced = self.metadata.output_artifacts(self.executions[name])
    declared = component.get('outputDefinitions', {}).get('artifacts', {})
    self.outputs[name] = {
        key: {'artifacts': [to_runtime_artifact(
            produced[key], {'instanceSchema': ''} if self.backend == KFP
            else declared[key]['artifactType'], str(produced[key].id))]}
        for key in declared}


def _merge(outputs: Dict, executor_output: Dict) -> None:
  """launcher_v2.go `mergeRuntimeArtifacts`: the output file's uri, if any, replaces
  the provisioned one; its metadata fields are merged in."""
  for key, produced in executor_output.get('artifacts', {}).items():
    if key not in outputs['artifacts'] or not produced.get('artifacts'):
      continue
    artifact, written = outputs['artifacts'][key]['artifacts'][0], produced['artifacts'][0]
    if written.get('uri'):
      artifact['uri'] = written['uri']
    if written.get('metadata'):
      artifact['metadata'] = {**artifact.get('metadata', {}), **written['metadata']}
