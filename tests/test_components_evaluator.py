"""components/evaluator.py: the served model as the Evaluator's baseline, and the
contract with the Pusher (a blessing records the served version it was gated against).

The Evaluator itself runs in test_pipeline (local runner) and test_kubeflow_runner
(both backends' rules); these tests pin the rules around it, and run it on its own
against a served model exported before the statistics signatures."""
import json
import os

import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.types import standard_artifacts

from components import evaluator
from components import pusher
from conftest import IN_MEMORY_BEAM
from model import metrics
from model import network
from model import records
from model import scaling
from model import serving
from benchmarks import bench
from pipeline import pipeline


def fake_saved_model(folder):
  """A folder laid out like a SavedModel: what the push copies, not what it loads."""
  os.makedirs(os.path.join(folder, 'variables'))
  with open(os.path.join(folder, 'variables', 'variables.index'), 'wb') as f:
    f.write(b'index')
  with open(os.path.join(folder, 'saved_model.pb'), 'wb') as f:
    f.write(b'graph')
  return folder


def test_the_served_model_is_the_newest_complete_version(tmp_path):
  folder = tmp_path / 'serving'
  assert serving.served_model(str(folder)) is None
  fake_saved_model(str(folder / '100'))
  (folder / '200' / 'variables').mkdir(parents=True)  # Still being copied: no graph yet.
  (folder / '.incoming-300').mkdir()
  assert serving.served_model(str(folder)) == str(folder / '100')
  fake_saved_model(str(folder / '150'))
  assert serving.served_model(str(folder)) == str(folder / '150')


def push_with(tmp_path, serving, gated_against):
  """Runs the AtomicPusher's executor on a blessed candidate that the Evaluator gated
  against `gated_against` (None: nothing was served); returns the PushedModel."""
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / 'candidate')
  if not os.path.exists(model.uri):
    fake_saved_model(os.path.join(model.uri, 'Format-Serving'))
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'blessing')
  blessing.set_int_custom_property('blessed', 1)
  if gated_against:
    blessing.set_string_custom_property(pusher.BASELINE_KEY, gated_against)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / 'pushed')
  destination = json.dumps({'filesystem': {'base_directory': str(serving)}})
  pusher.Executor().Do({'model': [model], 'model_blessing': [blessing]},
                       {'pushed_model': [pushed]},
                       {'push_destination': destination, 'custom_config': '{}'})
  return pushed


def test_the_pusher_refuses_a_blessing_made_against_another_served_model(tmp_path):
  served = tmp_path / 'serving'
  fake_saved_model(str(served / '100'))
  stale = push_with(tmp_path, served, gated_against=None)
  assert stale.get_int_custom_property('pushed') == 0
  assert serving.numbered_versions(str(served)) == [100]
  older = push_with(tmp_path, served, gated_against=str(served / '99'))
  assert older.get_int_custom_property('pushed') == 0
  current = push_with(tmp_path, served, gated_against=str(served / '100'))
  assert current.get_int_custom_property('pushed') == 1
  assert len(serving.numbered_versions(str(served))) == 2


def test_a_first_push_needs_no_baseline(tmp_path):
  served = tmp_path / 'serving'
  pushed = push_with(tmp_path, served, gated_against=None)
  assert pushed.get_int_custom_property('pushed') == 1
  (version,) = serving.numbered_versions(str(served))
  assert os.path.exists(os.path.join(served, str(version), 'saved_model.pb'))
  assert evaluator.SERVING_DIR_KEY in evaluator.ServedModelEvaluatorSpec.PARAMETERS


def test_a_fine_tuning_runs_first_candidate_is_gated_against_its_base_model(tmp_path):
  """Nothing served: the base model (a SavedModel, or a serving folder's newest complete
  version) is the baseline; once a model is served, the served model is."""
  serving_dir = str(tmp_path / 'serving')
  base = fake_saved_model(str(tmp_path / 'base'))
  assert evaluator.baseline_model(serving_dir, None) is None
  assert evaluator.baseline_model(serving_dir, base) == base
  elsewhere = tmp_path / 'elsewhere'
  fake_saved_model(str(elsewhere / '7'))
  os.makedirs(elsewhere / '9')  # A push that died before its saved_model.pb.
  assert evaluator.baseline_model(serving_dir, str(elsewhere)) == str(elsewhere / '7')
  fake_saved_model(os.path.join(serving_dir, '100'))
  assert evaluator.baseline_model(serving_dir, base) == os.path.join(serving_dir, '100')


def test_a_rejected_candidate_is_not_trained_again_against_the_same_served_model(tmp_path):
  serving_dir = str(tmp_path / 'serving')
  key = serving.trained_on_key('records-1', 'training-1')
  assert not serving.already_trained(serving_dir, key)
  serving.note_rejected(serving_dir, None, key)
  assert serving.already_trained(serving_dir, key)
  assert not serving.already_trained(serving_dir, serving.trained_on_key('records-2', 'training-1'))
  served = fake_saved_model(os.path.join(serving_dir, '100'))  # A new served model:
  assert not serving.already_trained(serving_dir, key)            # train again,
  os.makedirs(os.path.join(served, 'assets.extra'))               # unless it was trained
  with open(os.path.join(served, serving.TRAINED_ON_FILE), 'w') as f:  # on these records.
    f.write(key)
  assert serving.already_trained(serving_dir, key)
  assert serving.numbered_versions(serving_dir) == [100]  # TF Serving sees no other folder.
class ExportedBeforeTheStatistics(tf.Module):
  """The Evaluator's two signatures as model/serving.py exported them before the
  statistics signatures (commit a64ee49): `from_examples`, the predicted ab / 128, and
  `transform_features`, the records' L and ab as uint8."""

  def __init__(self, colorizer: tf.keras.Model):
    super().__init__()
    size = scaling.IMAGE_SIZE
    self._network_variables = list(colorizer.variables)
    self._colorizer = tf.function(
        lambda l, vectors: colorizer({network.L_INPUT: l, network.EMBEDDING_INPUT: vectors},
                                     training=False),
        input_signature=[tf.TensorSpec([None, size, size, 1], tf.float32),
                         tf.TensorSpec([None, scaling.EMBEDDING_DIM], tf.float32)])

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def from_examples(self, examples):
    features = records.parse(examples)
    return {'ab': self._colorizer(scaling.scale_l(features['l']), features['embedding'])}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def transform_features(self, examples):
    stored = {name: records.FEATURES[name] for name in ('l', 'ab')}
    return {'lab': records.quantized_lab(tf.io.parse_example(examples, stored))}


def test_a_model_served_before_the_statistics_signatures_is_still_the_baseline(trained, tmp_path):
  """The first run after an upgrade: the served model has no statistics signatures, and
  is scored from its maps. Here it has the candidate's own weights, so both score alike
  (the candidate through its statistics), and a regression gate that asks for 0.001
  under the served model's ab-MSE fails on the comparison alone."""
  colorizer = network.build_colorizer()
  exported = tf.saved_model.load(trained['serving_dir'])
  # The colorizer's variables come first (serving._Colorize).
  for variable, value in zip(colorizer.variables, exported._network_variables):  # pylint: disable=protected-access
    variable.assign(value)
  old = ExportedBeforeTheStatistics(colorizer)
  served = tmp_path / 'serving' / '1'
  tf.saved_model.save(old, str(served), signatures={
      name: getattr(old, name).get_concrete_function()
      for name in (serving.FROM_EXAMPLES, serving.TRANSFORM_FEATURES)})
  assert serving.EVALUATION_STATISTICS not in serving.signature_names(str(served))

  out = tmp_path / 'evaluator'
  candidate = bench.run_evaluator(
      trained['examples'].uri, trained['serving_dir'], str(out), IN_MEMORY_BEAM,
      serving_dir=str(tmp_path / 'serving'), config=pipeline.eval_config(max_regression=-0.001))
  baseline = bench.evaluation_metrics(str(out / 'evaluation'), tfma.BASELINE_KEY)
  assert set(candidate) >= {name for name, _, _ in metrics.EVALUATED}
  for name, _, _ in metrics.EVALUATED:
    # Float32 sums, taken in other orders on the two sides.
    assert candidate[name] == pytest.approx(baseline[name], rel=1e-3, abs=1e-6), name
  validation = tfma.load_validation_result(str(out / 'evaluation'))
  assert not validation.validation_ok
  assert {(failure.metric_key.name, failure.metric_key.is_diff)
          for per_slice in validation.metric_validations_per_slice
          for failure in per_slice.failures} == {('ab_mse', True)}
