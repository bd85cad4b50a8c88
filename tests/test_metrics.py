"""The colorization metrics on inputs with known answers."""
import numpy as np
import pytest
import tensorflow as tf

from model import colour_space
from model import metrics
from model import scaling
from reference import reference_rgb8

pytestmark = pytest.mark.fast


def labels(l, a, b, shape=(2, 8, 8)):
  """Scaled `lab` labels with constant L, a, b."""
  lab = np.stack([np.full(shape, l), np.full(shape, a), np.full(shape, b)], -1)
  return tf.constant(np.concatenate([scaling.scale_l(lab[..., :1]),
                                     scaling.scale_ab(lab[..., 1:])], -1),
                     tf.float32)


def score(metric, y_true, y_pred):
  metric.update_state(y_true, y_pred)
  return float(metric.result())


def test_a_perfect_prediction():
  y_true = labels(60, 30, -40)
  y_pred = y_true[..., 1:]
  assert score(metrics.AbMSE(), y_true, y_pred) == pytest.approx(0.0)
  assert score(metrics.AuC(), y_true, y_pred) == pytest.approx(100.0)
  assert score(metrics.PSNR(), y_true, y_pred) > 60
  assert score(metrics.AbMSEVsGray(), y_true, y_pred) == pytest.approx(0.0)
  rgb = colour_space.lab_to_rgb(tf.constant([[[60.0, 30.0, -40.0]]])) * 255
  assert score(metrics.Colourfulness(), y_true, y_pred) == pytest.approx(
      0.3 * float(tf.norm([rgb[0, 0, 0] - rgb[0, 0, 1],
                           0.5 * (rgb[0, 0, 0] + rgb[0, 0, 1]) - rgb[0, 0, 2]])), rel=0.02)


def test_the_gray_prediction():
  """Truth ab = (30, -40), 50 Lab units from gray: within t only for t >= 50."""
  y_true = labels(60, 30, -40)
  zeros = tf.zeros_like(y_true[..., 1:])
  assert score(metrics.AbMSE(gray=True), y_true, y_true[..., 1:]) == pytest.approx(
      (30 ** 2 + 40 ** 2) / 2 / 128 ** 2, rel=1e-5)
  assert score(metrics.AbMSE(), y_true, zeros) == pytest.approx((30 ** 2 + 40 ** 2) / 2 / 128 ** 2,
                                                                 rel=1e-5)
  assert score(metrics.AuC(gray=True), y_true, y_true[..., 1:]) == pytest.approx(
      100 * (150 - 50 + 1) / 151, rel=1e-5)
  assert score(metrics.Colourfulness(gray=True), y_true, y_true[..., 1:]) == pytest.approx(0, abs=0.5)
  assert score(metrics.AbMSEVsGray(), y_true, zeros) == pytest.approx(1.0)
  gray_psnr = score(metrics.PSNR(gray=True), y_true, y_true[..., 1:])
  assert 5 < gray_psnr < score(metrics.PSNR(), y_true, y_true[..., 1:] * 0.5)


def test_metrics_accumulate_over_batches_and_reset():
  metric = metrics.AuC()
  y_true = labels(50, 10, 0)
  metric.update_state(y_true, tf.zeros_like(y_true[..., 1:]))  # 10 units off: 140 of 151.
  metric.update_state(y_true, y_true[..., 1:])                  # exact: 151 of 151.
  assert float(metric.result()) == pytest.approx(100 * (141 + 151) / 2 / 151, rel=1e-5)
  metric.reset_state()
  assert float(metric.result()) == 0.0


def test_labels_as_the_records_store_them_score_as_the_scaled_floats():
  """The Evaluator's labels are the records' uint8 L and ab; the Trainer's are floats on
  the model's scale. Every metric gives the same on both."""
  rng = np.random.default_rng(0)
  stored = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
  scaled = tf.concat([scaling.scale_l(scaling.dequantize_l(stored[..., :1])),
                      scaling.scale_ab(scaling.dequantize_ab(stored[..., 1:]))], -1)
  y_pred = tf.constant(rng.uniform(-0.6, 0.6, (2, 8, 8, 2)), tf.float32)
  for name, metric, gray in metrics.EVALUATED:
    assert score(metric(gray=gray), stored, y_pred) == pytest.approx(
        score(metric(gray=gray), scaled, y_pred), rel=1e-5, abs=1e-6), name


def test_labels_of_another_type_are_refused():
  with pytest.raises(TypeError, match='uint8'):
    metrics.AbMSE().update_state(np.zeros((1, 8, 8, 3), np.int32), tf.zeros((1, 8, 8, 2)))


def test_a_batch_larger_than_a_slice_scores_as_in_one_call():
  """TFMA hands update_state every example it has collected; eagerly the metrics take
  them SLICE_EXAMPLES at a time, which must add up to one call on the whole batch (in a
  graph, as Keras's fit calls them)."""
  rng = np.random.default_rng(1)
  count = 2 * metrics.SLICE_EXAMPLES + 3
  stored = rng.integers(0, 256, (count, 8, 8, 3), dtype=np.uint8)
  y_pred = rng.uniform(-0.6, 0.6, (count, 8, 8, 2)).astype(np.float32)
  for name, metric, gray in metrics.EVALUATED:
    sliced, whole = metric(gray=gray), metric(gray=gray)
    sliced.update_state(stored, y_pred)

    @tf.function
    def in_one_call(y_true, y_pred, metric=whole):
      metric.update_state(y_true, y_pred)

    in_one_call(tf.constant(stored), tf.constant(y_pred))
    assert float(sliced.result()) == pytest.approx(float(whole.result()), rel=1e-5,
                                                   abs=1e-6), name


def test_statistics_add_up_to_what_the_maps_score():
  """The Evaluator gives the metrics each example's statistics (the label gray's, the
  prediction the model's) instead of the maps they come from: every metric scores both
  alike."""
  rng = np.random.default_rng(2)
  stored = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
  y_pred = rng.uniform(-0.6, 0.6, (3, 8, 8, 2)).astype(np.float32)
  model_statistics = metrics.statistics(stored, y_pred, False)
  gray_statistics = metrics.statistics(stored, None, True)
  assert model_statistics.shape == gray_statistics.shape == (3, metrics.STATISTICS)
  for name, metric, gray in metrics.EVALUATED:
    assert score(metric(gray=gray), gray_statistics, model_statistics) == pytest.approx(
        score(metric(gray=gray), stored, y_pred), rel=1e-5, abs=1e-6), name


def test_an_examples_statistics_on_a_known_answer():
  """One photo of 8x8 pixels at L 60, ab (30, -40), coloured (12, 18): 60.7 Lab units
  off, and gray 50 off."""
  y_true = labels(60, 30, -40, shape=(1, 8, 8))
  y_pred = tf.constant(np.full((1, 8, 8, 2), [12 / 128, 18 / 128]), tf.float32)
  model, gray = (metrics.statistics(y_true, y_pred, False)[0].numpy(),
                 metrics.statistics(y_true, None, True)[0].numpy())
  pixels = 64
  within = slice(metrics.WITHIN, metrics.WITHIN + metrics.AUC_MAX_DISTANCE + 1)
  for statistics, ab, off in ((model, (12, 18), 61), (gray, (0, 0), 50)):
    assert statistics[metrics.SQUARED_AB_ERROR] == pytest.approx(
        pixels * ((ab[0] - 30) ** 2 + (ab[1] + 40) ** 2) / 128 ** 2, rel=1e-5)
    expected_within = np.where(np.arange(metrics.AUC_MAX_DISTANCE + 1) >= off, pixels, 0)
    np.testing.assert_array_equal(statistics[within], expected_within)
    assert statistics[-1] == pixels
    colour, truth = reference_rgb8(np.array([60, *ab])), reference_rgb8(np.array([60, 30, -40]))
    rmse = np.sqrt(np.mean((colour - truth) ** 2))
    assert statistics[metrics.PSNR_DB] == pytest.approx(20 * np.log10(255 / rmse), abs=0.2)
    rg, yb = colour[0] - colour[1], (colour[0] + colour[1]) / 2 - colour[2]
    assert statistics[metrics.COLOURFULNESS] == pytest.approx(0.3 * np.hypot(rg, yb), abs=0.5)
