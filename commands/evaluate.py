"""`colorizer evaluate`: a model's colorization metrics on any folder of colour photos.

Each photo is prepared as ingestion prepares it (`cropping.photo_crops`: decoded,
the centred square at 256x256 in Lab, quantized), coloured from its L alone by the
model's `from_l` signature, and scored with the Evaluator's own metrics
(`model.metrics`): ab-MSE, PSNR, AuC and colourfulness, for the model and for the gray
baseline (ab = 0) on the same photos. So the figures compare with the report's, on
photos of the user's choosing. A file that ingestion would reject is listed with its
reason and not scored.
"""
import hashlib
import json
import sys
from typing import Dict, Optional

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from components import input_files
from model import cropping
from model import decoding
from model import metrics
from model import scaling
from model import serving
from pipeline import photo_grid

BATCH_SIZE = 16


def _read(path: str) -> bytes:
  with tf.io.gfile.GFile(path, 'rb') as f:
    return f.read()


def _prepare(data: bytes, max_megapixels: float) -> Dict[str, np.ndarray]:
  _, crops = cropping.photo_crops(data, hashlib.sha256(data).hexdigest(), max_megapixels)
  return {'l': scaling.dequantize_l(crops[0]['l'])[..., None].numpy(),   # [256, 256, 1]
          'ab': scaling.dequantize_ab(crops[0]['ab']).numpy()}          # [256, 256, 2]


def evaluate(model_dir: str, data: str,
             max_megapixels: float = decoding.DEFAULT_MAX_MEGAPIXELS,
             grid: Optional[str] = None) -> dict:
  """Scores the model (a SavedModel or a serving folder: the newest version) on the
  photos in `data` (a folder, a glob or a file); returns the figures, the scored files
  and the skipped ones with their reasons."""
  files = input_files.expand_inputs([data])
  model_dir = serving.latest_version(model_dir)
  loaded = tf.saved_model.load(model_dir)
  if serving.FROM_L not in loaded.signatures:
    raise ValueError(f'{model_dir} has no {serving.FROM_L} signature: it was exported by an older '
                     'version of the colorizer; export it again (rerun the pipeline)')
  predict = loaded.signatures[serving.FROM_L]
  scores = metrics.create_all()
  skipped, scored, grid_rows = [], [], []
  for start in tqdm(range(0, len(files), BATCH_SIZE), desc='evaluate', unit='batch',
                    disable=len(files) <= BATCH_SIZE):
    photos = []
    for path in files[start:start + BATCH_SIZE]:
      try:
        photos.append(decoding.read_and_decode(
            lambda: _read(path),  # pylint: disable=cell-var-from-loop
            lambda data: _prepare(data, max_megapixels)))
        scored.append(path)
      except decoding.PhotoRejected as e:
        skipped.append({'source': path, 'reason': e.reason, 'detail': e.detail})
    if not photos:
      continue
    l = np.stack([photo['l'] for photo in photos])                  # [N, 256, 256, 1]
    ab = np.stack([photo['ab'] for photo in photos])                # [N, 256, 256, 2]
    predicted = predict(l=tf.constant(l))['ab']                     # [N, 256, 256, 2]
    label = tf.concat([scaling.scale_l(l), scaling.scale_ab(ab)], axis=-1)
    for metric in scores.values():
      metric.update_state(label, predicted)
    wanted = min(len(photos), photo_grid.PHOTOS - len(grid_rows)) if grid else 0
    if wanted:
      grid_rows += photo_grid.rows(l[:wanted], scaling.unscale_ab(predicted[:wanted]),
                                   ab[:wanted])
  if not scored:
    raise ValueError(f'none of the {len(files)} files in {data} could be scored: '
                     + '; '.join(f'{s["source"]}: {s["reason"]}' for s in skipped[:5]))
  if grid:
    photo_grid.write_image(grid, grid_rows)
  figures = {name: float(metric.result()) for name, metric in scores.items()}
  return {'model': model_dir, 'photos': len(scored), 'figures': figures,
          'scored': scored, 'skipped': skipped}


def table(result: dict) -> str:
  figures = result['figures']
  lines = [f'{"":28s} {"model":>10s} {"gray (ab = 0)":>14s}']
  lines += [f'{label:28s} {figures[name]:10.4f} {figures["gray_" + name]:14.4f}'
            for name, label in metrics.REPORTED]
  lines.append(f'{"ab-MSE / gray ab-MSE":28s} {figures["ab_mse_vs_gray"]:10.4f}')
  return '\n'.join(lines)


def run(model_dir: str, data: str, out: Optional[str], grid: Optional[str],
        max_megapixels: float) -> dict:
  result = evaluate(model_dir, data, max_megapixels, grid)
  for entry in result['skipped']:
    print(f'colorizer evaluate: skipped {entry["source"]}: {entry["reason"]}: '
          f'{entry["detail"]}', file=sys.stderr)
  print(f'Scored {result["photos"]} photos ({len(result["skipped"])} skipped) with '
        f'{result["model"]}, at {scaling.IMAGE_SIZE}x'
        f'{scaling.IMAGE_SIZE} (the centred square):\n\n{table(result)}')
  if out:
    with tf.io.gfile.GFile(out, 'w') as f:
      json.dump(result, f, indent=1)
    print(f'\n{out}')
  if grid:
    print(f'{grid} (gray input | model output | truth)')
  return result
