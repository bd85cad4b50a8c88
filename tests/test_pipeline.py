"""The end-to-end pipeline through LocalDagRunner: gating, pushing, caching, a bad
candidate, a killed run, and one run at a time per output root."""
import os
import shutil
import subprocess

import numpy as np
from PIL import Image
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.orchestration import metadata
from ml_metadata.proto import metadata_store_pb2

from components import pusher
from conftest import COLORIZER, IN_MEMORY_BEAM, RESUMED_EPOCHS, RUN_OPTIONS, newest
from model import serving
from pipeline import local_runner
from sample_images import encode, yellow_blue_image


def executions_of_last_run(connection):
  """{component id: execution state} of the newest pipeline run."""
  with metadata.Metadata(connection) as m:
    last = max(m.store.get_contexts_by_type('pipeline_run'), key=lambda c: c.id)
    states = {}
    for execution in m.store.get_executions_by_context(last.id):
      [node] = [c for c in m.store.get_contexts_by_execution(execution.id)
                if c.type == 'node']
      states[node.name.split('.')[-1]] = metadata_store_pb2.Execution.State.Name(
          execution.last_known_state)
    return states


def test_first_run_is_blessed_pushed_and_serves(trained, tmp_path):
  assert trained['blessing'].custom_properties['blessed'].int_value == 1
  versions = serving.numbered_versions(trained['serving_model'])
  assert len(versions) == 1
  assert not [name for name in os.listdir(trained['serving_model']) if name.startswith('.')]
  model_dir = serving.latest_version(trained['serving_model'])
  gray = np.asarray(Image.fromarray(yellow_blue_image(123, 100)).convert('L'))
  signature = tf.saved_model.load(model_dir).signatures[serving.SERVING_DEFAULT]
  output = signature(image_bytes=tf.constant([encode(gray, 'PNG')]))['colorized_bytes']
  assert np.asarray(Image.open(__import__('io').BytesIO(output.numpy()[0]))).shape == (100, 100, 3)
  page = open(trained['report']).read()
  assert '<b class="ok">BLESSED</b> and pushed' in page and 'NOT BLESSED' not in page
  assert 'gray baseline' in page and page.count('<img') >= 3 * 5


def test_rerun_with_unchanged_inputs_comes_from_the_cache(trained):
  """Every step of a re-run with unchanged inputs comes from TFX's cache, and the same
  model is not pushed twice."""
  local_runner.run(trained['data'], trained['root'], beam_args=IN_MEMORY_BEAM, **RUN_OPTIONS)
  states = executions_of_last_run(trained['connection'])
  assert set(states.values()) == {'CACHED'}, states
  assert len(serving.numbered_versions(trained['serving_model'])) == 1


def failed_gates(connection):
  """{metric name: is a change against the baseline} of the newest Evaluator's failed
  thresholds."""
  with metadata.Metadata(connection) as m:
    evaluation = newest(m.store, 'ModelEvaluation')
  validation = tfma.load_validation_result(evaluation.uri)
  return {failure.metric_key.name: failure.metric_key.is_diff
          for per_slice in validation.metric_validations_per_slice
          for failure in per_slice.failures}


def run_a_candidate_that_is_not_blessed(trained, **changes):
  before = serving.numbered_versions(trained['serving_model'])
  local_runner.run(trained['data'], trained['root'], beam_args=IN_MEMORY_BEAM,
                   **{**RUN_OPTIONS, **changes})
  with metadata.Metadata(trained['connection']) as m:
    blessing = newest(m.store, 'ModelBlessing')
  assert blessing.id != trained['blessing'].id
  assert blessing.custom_properties['blessed'].int_value == 0
  assert serving.numbered_versions(trained['serving_model']) == before
  states = executions_of_last_run(trained['connection'])
  assert 'AtomicPusher' not in states or states['AtomicPusher'] != 'COMPLETE'
  page = open(trained['report']).read()
  assert '<b class="bad">NOT BLESSED</b>, not pushed' in page and '"ok">BLESSED' not in page
  return failed_gates(trained['connection'])


def test_a_candidate_no_better_than_gray_is_neither_blessed_nor_pushed(trained):
  """An untrained candidate (from the initial weights, learning rate 0) fails the gray
  gate."""
  gates = run_a_candidate_that_is_not_blessed(
      trained, train_steps=3, warm_start=False,
      hyperparameters={**RUN_OPTIONS['hyperparameters'], 'learning_rate': 0.0})
  assert gates.get('ab_mse_vs_gray') is False


def test_a_candidate_failing_only_the_regression_gate_is_neither_blessed_nor_pushed(trained):
  """The served model itself, as a candidate (the Trainer's cached execution), against a
  regression gate that asks for an ab-MSE 0.1% under the served model's: it passes the
  gray gate and fails only the comparison with the served model."""
  gates = run_a_candidate_that_is_not_blessed(trained, max_regression=-0.001)
  assert gates == {'ab_mse': True}


def test_a_run_killed_during_training_resumes_and_completes(resumed_run):
  """`colorizer run` as users run it (conftest's resumed_run: the multi-processing
  DirectRunner, so ingestion runs in worker processes), killed during training."""
  killed = resumed_run['epochs_when_killed']
  assert 0 < len(killed) < RESUMED_EPOCHS, 'the kill came too late to test resuming'
  second = resumed_run['second']
  assert second.returncode == 0, second.stderr[-3000:]
  resumed = resumed_run['resumed_epochs']
  # It went on from its last epoch, to the end.
  assert resumed[0] > 0 and resumed[-1] == RESUMED_EPOCHS - 1
  assert 'Pipeline finished' in second.stdout


def test_a_second_run_on_the_same_output_root_exits_with_a_clear_message(tmp_path):
  with local_runner.exclusive(str(tmp_path)):
    result = subprocess.run(
        [COLORIZER, 'run', '--data', str(tmp_path), '--output-root', str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 3
  assert f'another colorizer run (pid {os.getpid()}) is using' in result.stderr


def test_push_is_atomic_and_keeps_the_newest_versions(trained, tmp_path):
  serving_dir = str(tmp_path / 'serving')
  models = []
  for i in range(3):
    models.append(str(tmp_path / f'model-{i}'))
    shutil.copytree(trained['serving_dir'], models[-1])
  pushed = [pusher.push_atomically(model, serving_dir, keep_versions=2) for model in models]
  assert pusher.push_atomically(models[-1], serving_dir, keep_versions=2) == pushed[-1]
  versions = serving.numbered_versions(serving_dir)
  assert len(versions) == 2 and versions == sorted(set(versions))
  assert [os.path.basename(p) for p in pushed[1:]] == [str(v) for v in versions]
  assert sorted(os.listdir(serving_dir)) == sorted(str(v) for v in versions)  # No leftovers.
  assert os.path.exists(os.path.join(pushed[-1], 'saved_model.pb'))
  assert os.path.exists(os.path.join(pushed[-1], 'variables'))
