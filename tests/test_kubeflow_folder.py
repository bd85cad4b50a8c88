"""kubeflow/: the image's Dockerfile and the TF Serving manifests.

Neither can be built or applied here (no Docker engine, no cluster): the Dockerfile is
checked against the pins and the compiled pipeline, and the manifests are parsed into
the `kubernetes` client's own models, which is what kubectl would validate first."""
import json
import os
import re
import types

import pytest
import yaml
from kubernetes import client

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.fast
def test_the_dockerfile_builds_on_the_pinned_tfx_and_holds_the_setup_file():
  dockerfile = open(os.path.join(REPO, 'kubeflow', 'Dockerfile')).read()
  pinned = re.search(r'^tfx==(\S+)$', open(os.path.join(REPO, 'constraints.txt')).read(),
                     re.M).group(1)
  assert re.findall(r'^FROM (\S+)$', dockerfile, re.M) == [f'tensorflow/tfx:{pinned}']
  workdir = re.search(r'^WORKDIR (\S+)$', dockerfile, re.M).group(1)
  from pipeline import configs  # pylint: disable=import-outside-toplevel
  assert workdir == configs.IMAGE_PROJECT_DIR
  copied = [source for line in re.findall(r'^COPY (.+) \S+$', dockerfile, re.M)
            for source in line.split()]
  assert 'setup.py' in copied and 'constraints.txt' in copied
  for source in copied:
    assert os.path.exists(os.path.join(REPO, source)), source
  for package in ('components', 'model', 'pipeline'):
    assert f'{package}/' in copied


@pytest.mark.fast
def test_the_dockerfile_keeps_beams_worker_boot_and_sets_the_steps_environment():
  """Dataflow starts its workers through the base image's ENTRYPOINT (Beam's boot,
  tensorflow/tfx tfx/tools/docker/Dockerfile); an ENTRYPOINT or CMD here would replace
  it. Kubeflow gives each step its own command, so neither is needed."""
  dockerfile = open(os.path.join(REPO, 'kubeflow', 'Dockerfile')).read()
  assert not re.findall(r'^\s*(ENTRYPOINT|CMD)\b', dockerfile, re.M | re.I)
  import kfp_backend  # pylint: disable=import-outside-toplevel
  assert kfp_backend.dockerfile_env()['TF_USE_LEGACY_KERAS'] == '1'


def test_a_step_imports_the_project_in_the_images_environment(image, tmp_path):
  """TFX's entrypoint imports TensorFlow before our executors; in the environment the
  Dockerfile sets (and nothing from this test process), that must work."""
  result = image.run(['python', '-c'], [
      'import tensorflow, components.pusher, components.evaluator, model.trainer; '
      'print(components.pusher.__file__)'], cwd=str(tmp_path))
  assert result.stdout.strip().startswith(image.site_packages)


def manifests():
  with open(os.path.join(REPO, 'kubeflow', 'serving.yaml')) as f:
    return [doc for doc in yaml.safe_load_all(f) if doc]


def as_model(doc):
  """The document as the kubernetes client's typed object, and back: a misspelt or
  misplaced field is dropped on the way, so the round trip must give the document."""
  api = client.ApiClient()
  kind = f'{doc["apiVersion"].split("/")[-1].capitalize()}{doc["kind"]}'
  obj = api.deserialize(types.SimpleNamespace(data=json.dumps(doc)), kind)
  assert api.sanitize_for_serialization(obj) == doc
  return obj


@pytest.mark.fast
def test_serving_manifests_are_valid_kubernetes_objects():
  deployment, service = (as_model(doc) for doc in manifests())
  assert isinstance(deployment, client.V1Deployment) and isinstance(service, client.V1Service)

  pod = deployment.spec.template
  assert deployment.spec.selector.match_labels == pod.metadata.labels
  assert service.spec.selector == pod.metadata.labels
  (container,) = pod.spec.containers
  assert container.image.startswith('tensorflow/serving:')
  assert '--model_name=colorizer' in container.args
  (base_path,) = [a for a in container.args if a.startswith('--model_base_path=gs://')]
  ports = {port.name: port.container_port for port in container.ports}
  assert f'--rest_api_port={ports["http"]}' in container.args
  for probe in (container.readiness_probe, container.liveness_probe):
    assert probe.http_get.path == '/v1/models/colorizer' and probe.http_get.port == 'http'
  assert container.resources.requests['cpu'] and container.resources.requests['memory']
  targets = {port.target_port for port in service.spec.ports}
  assert targets == set(ports)
  assert base_path.endswith('/serving_model')
