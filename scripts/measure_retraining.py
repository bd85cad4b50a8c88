"""Measures retraining over spans: the warm-start recipe, and the regression gate's noise.

  .venv/bin/python scripts/measure_retraining.py [--steps 60] [--out retraining.json]

The bundled photos (data/samples) are cut into three spans by content hash; each run
ingests the window of spans so far (with the record cache) and trains a candidate: the
first from the initial weights (the scratch recipe), later ones either again from the
initial weights (the control) or from the model served so far, with each warm recipe
of the grid. A candidate is served when its ab-MSE on the window's eval split is no
worse than the served model's. The figure that counts is the served model's ab-MSE on
the photos no run trains on (data/held_out), after each run. It also reports, for the
last pair of models, how much their ab-MSE difference varies between eval splits of the
window's size (a bootstrap over photos): the noise a relative regression gate must
allow for. Random embedding weights (offline), one seed: docs/training.md gives the
figures and the conditions.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import model  # noqa: F401,E402  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import apache_beam as beam  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tfx import v1 as tfx  # noqa: E402

from components import ingest  # noqa: E402
from model import embedding  # noqa: E402
from model import hyperparameters as hp  # noqa: E402
from model import network  # noqa: E402
from model import records  # noqa: E402
from model import trainer  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPLITS = [('train', 90), ('eval', 10)]


def spans_of(folder: str, count: int, work: str):
  """The photos of `folder` in `count` span folders, by content hash."""
  for name in sorted(os.listdir(folder)):
    path = os.path.join(folder, name)
    if not name.lower().endswith(('.jpg', '.jpeg', '.png')):
      continue
    digest = hashlib.sha256(open(path, 'rb').read()).hexdigest()
    span = int(digest[:8], 16) % count + 1
    os.makedirs(os.path.join(work, f'span-{span}'), exist_ok=True)
    shutil.copy(path, os.path.join(work, f'span-{span}', name))


def ingested(patterns, out, cache, crops, eval_percent=10):
  splits = SPLITS if eval_percent else [('train', 100)]
  split_dirs = {name: os.path.join(out, f'Split-{name}') for name, _ in splits}
  report, _ = ingest.run_job(beam.Pipeline(), patterns, embedding.RANDOM, split_dirs, splits,
                             os.path.join(out, records.REPORT_FILE), 50.0, crops, cache)
  return report


def batches(files):
  dataset = tf.data.TFRecordDataset(tf.io.gfile.glob(files), records.COMPRESSION)
  return [trainer._to_model_inputs(records.parse(batch))  # pylint: disable=protected-access
          for batch in dataset.batch(16)]


def per_photo_mse(colorizer, data):
  errors = []
  for inputs, ab in data:
    predicted = colorizer(inputs, training=False)
    errors.append(tf.reduce_mean(tf.square(tf.cast(predicted, tf.float32) - ab), [1, 2, 3]))
  return np.concatenate([e.numpy() for e in errors])


def train(out, config, steps, start):
  args = tfx.components.FnArgs(
      train_files=[os.path.join(out, 'Split-train', '*')],
      eval_files=[os.path.join(out, 'Split-eval', '*')], train_steps=steps, eval_steps=0,
      serving_model_dir=os.path.join(out, 'unused'),
      model_run_dir=os.path.join(out, 'Trainer', 'model_run', str(time.time_ns())),
      custom_config={})
  colorizer = trainer.train(args, config, 'served' if start else None, start)
  fresh = network.build_colorizer()
  fresh.set_weights(colorizer.get_weights())
  return fresh


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--steps', type=int, default=60)
  parser.add_argument('--spans', type=int, default=3)
  parser.add_argument('--crops', type=int, default=2)
  parser.add_argument('--out', default='retraining.json')
  flags = parser.parse_args()
  work = tempfile.mkdtemp(prefix='retraining-')
  spans_of(os.path.join(REPO, 'data', 'samples'), flags.spans, work)
  cache = os.path.join(work, 'cache')
  held_out = os.path.join(work, 'held_out')
  ingested([os.path.join(REPO, 'data', 'held_out', '*')], held_out, None, 1, eval_percent=0)
  held_out_data = batches(os.path.join(held_out, 'Split-train', '*'))
  scratch = hp.parse({hp.BATCH_SIZE: 8, hp.LEARNING_RATE: 1.25e-4, hp.LR_SCHEDULE: hp.COSINE,
                      hp.EPOCHS: 1, hp.SEED: 0})
  grid = {'scratch': None}
  for rate in (1.25e-4, 4e-5, 1.25e-5):
    for share in (0.1,):
      grid[f'warm rate {rate:g}'] = hp.parse({**scratch, hp.WARM_LEARNING_RATE: rate,
                                               hp.WARM_WARMUP: share})
  windows = []
  for span in range(1, flags.spans + 1):
    out = os.path.join(work, f'window-{span}')
    report = ingested([os.path.join(work, f'span-{s}', '*') for s in range(span, 0, -1)],
                      out, cache, flags.crops)
    windows.append((out, report))
    print(f'window {span}: {report["written"]} photos, {report["reused"]} from the cache',
          flush=True)

  results = {}
  first = train(windows[0][0], scratch, flags.steps, None)
  for name, config in grid.items():
    served, curve = first, []
    curve.append(float(np.mean(per_photo_mse(served, held_out_data))))
    for out, _ in windows[1:]:
      candidate = train(out, config or scratch, flags.steps,
                        [v.numpy() for v in served.variables] if config else None)
      eval_data = batches(os.path.join(out, 'Split-eval', '*'))
      new, old = per_photo_mse(candidate, eval_data), per_photo_mse(served, eval_data)
      if new.mean() <= old.mean():
        served = candidate
      curve.append(float(np.mean(per_photo_mse(served, held_out_data))))
    results[name] = {'held_out_ab_mse_after_each_run': curve}
    print(name, curve, flush=True)
    last = (new, old)
  new, old = last
  rng = np.random.default_rng(0)
  ratios = [float(new[i].mean() / old[i].mean() - 1)
            for i in (rng.integers(0, len(new), len(new)) for _ in range(2000))]
  results['gate_noise'] = {'eval_photos': int(len(new)), 'relative_difference': float(
      new.mean() / old.mean() - 1), 'bootstrap_std': float(np.std(ratios))}
  gray = float(np.mean([float(tf.reduce_mean(tf.square(ab))) for _, ab in held_out_data]))
  results['held_out_gray_ab_mse'] = gray
  results['conditions'] = {'steps': flags.steps, 'spans': flags.spans, 'crops': flags.crops,
                           'batch_size': 8, 'photos': [r['written'] for _, r in windows]}
  with open(flags.out, 'w') as f:
    json.dump(results, f, indent=1)
  print(json.dumps(results, indent=1))


if __name__ == '__main__':
  main()
