"""`make bench` runs: every benchmark on a tiny input, checking the figures it writes
are there and sane. The figures themselves are measured by `make bench`, not here."""
import json
import os

import pytest

from benchmarks import bench


def test_every_benchmark_runs_and_writes_its_figures(trained, tmp_path):
  out = tmp_path / 'bench.json'
  results = bench.run(str(out), bench.TINY, workdir=str(tmp_path / 'work'),
                      export_dir=trained['serving_dir'], log=lambda _: None)
  assert json.load(open(out)) == json.loads(json.dumps(results))
  for key in set(bench.GOALS) - {'evaluator_kb_per_example'}:  # A growth: may be negative.
    assert results[key] > 0, key
  short, long = bench.TINY.rss_copies, bench.TINY.eval_rss_long_copies
  for copies, key in ((long, 'evaluator_kb_per_example'),
                      (short, f'evaluator_kb_per_example_{short}x')):
    extra = (copies - 1) * bench.TINY.eval_rss_examples
    grown = results[f'evaluator_peak_rss_mb_{copies}x'] - results['evaluator_peak_rss_mb_1x']
    assert results[key] == pytest.approx(grown * 1024 / extra), key
  assert results['machine']['cores'] >= 1 and results['machine']['tfx'] == '1.16.0'
  assert 10_000 < results['record_bytes_per_image'] < 200_000
  assert results['ingest_photos'] == 3
  for figure in ('embed_images_per_s', 'raw_predict_images_per_s', 'ingest_images_per_s',
                 'plain_loop_images_per_s', 'serve_256_s', 'bare_forward_s', 'serve_fullres_s',
                 'fullres_codecs_s', 'colorize_images_per_s', 'raw_from_l_images_per_s',
                 'evaluator_examples_per_s', 'raw_eval_examples_per_s',
                 'serve_clients_images_per_s', 'raw_batched_forward_images_per_s',
                 'ingest_images_per_s_without_line', 'colorize_images_per_s_without_line'):
    assert results[figure]['median'] > 0 and len(results[figure]['runs']) == 1, figure
  assert results['fullres_png_s']['median'] > 0 and len(results['fullres_png_s']['runs']) == 1
  assert '`fullres_png_s`' in bench.table(results)
  assert 0 < results['fullres_codecs_ratio'] < results['fullres_ratio']
  assert results['colorize_fullres_s'] > 0 and results['colorize_photos'] == 2
  assert results['train_step_s'] > 0
  # TFX's Evaluator and the raw side scored the same records alike.
  assert results['evaluator_examples'] == 2
  assert set(results['evaluator_metrics']) >= set(results['raw_eval_metrics'])
  for name, value in results['raw_eval_metrics'].items():
    # Float32 sums over other batch splits: about 3e-4 apart on 80 examples.
    assert results['evaluator_metrics'][name] == pytest.approx(value, rel=1e-3, abs=1e-6), name
  assert results['serve_clients'] == results['serve_raw_batch'] == 2
  assert results['serve_lone_client_s']['median'] > 0
  assert sum(int(size) * calls for size, calls in results['serve_batch_sizes'].items()) == 2
  assert results['train_precision'] in ('float32', 'mixed_bfloat16')  # The Trainer's, here.
  # Counted by the emulator that make test runs pytest in: a photo is read, checked for
  # its output and written; a push sends every file of the model.
  assert 2 <= results['colorize_gcs_requests_per_photo'] <= 10
  assert results['push_gcs_requests'] >= len(list(os.walk(trained['serving_dir'])))
  assert results['push_gcs_requests_per_mb'] == pytest.approx(
      results['push_gcs_requests'] / results['push_megabytes'])
  assert '`push_gcs_requests_per_mb`' in bench.table(results)
  assert '`train_step_s`' in bench.table(results)
  table = bench.table(results)
  assert all(f'`{key}`' in table for key in bench.GOALS)
  assert f'`evaluator_kb_per_example_{bench.TINY.rss_copies}x`' in table
  assert '`ingest_ratio_without_line`' in table and '`colorize_ratio_without_line`' in table


@pytest.mark.fast
def test_steady_rate_cancels_the_start_up_and_takes_one_run_when_short_is_long():
  """A job of 5 s start-up and 0.5 s an item: its steady rate is 2 items/s whatever the
  sizes; with short == long (bench.TINY) it is that one run's items/s."""
  runs = []

  def run(items):
    runs.append(items)
    return 5.0 + 0.5 * items

  assert bench.steady_rate(run, 16, 160) == pytest.approx(2.0) and sorted(runs) == [16, 160]
  runs.clear()
  assert bench.steady_rate(run, 2, 2) == pytest.approx(2 / 6.0) and runs == [2]
