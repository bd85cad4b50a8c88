"""`colorizer evaluate` on generated photos whose right answer is known.

The photos have one colour (a, b) at every pixel and varying lightness. A real
exported model of the fusion architecture (conftest's one_colour_model) answers with
exactly that colour, through its last layer's bias (every other weight is 0): a perfect
prediction. The gray baseline, scored next to it, is the gray prediction (ab = 0), 22
Lab units off at every pixel.
(That a model predicting ab = 0 scores what the baseline scores is test_metrics's.)
"""
import json
import os
import shutil

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from model import colour_space
from model import metrics
from model import records
from model import scaling
from model import serving
from commands import cli
from commands import evaluate
from conftest import ONE_COLOUR
from sample_images import encode

PHOTOS = 5


def one_colour_photo(seed: int, ab=ONE_COLOUR, width: int = 160, height: int = 120) -> np.ndarray:
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:height, 0:width] / max(width, height)
  l = 55 + 20 * np.sin(2 * np.pi * (rng.uniform(0.5, 2) * x + rng.uniform(0.5, 2) * y))
  lab = np.stack([l, np.full_like(l, ab[0]), np.full_like(l, ab[1])], -1).astype(np.float32)
  return (colour_space.lab_to_rgb(lab).numpy() * 255).round().astype(np.uint8)


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
  folder = tmp_path_factory.mktemp('held_out')
  for seed in range(PHOTOS):
    (folder / f'{seed}.png').write_bytes(encode(one_colour_photo(seed), 'PNG'))
  (folder / 'notes.txt').write_text('not a photo')
  return str(folder)


def test_a_perfect_and_the_gray_prediction_from_the_command_line(photos, one_colour_model,
                                                                 tmp_path, capsys):
  out, grid = tmp_path / 'metrics.json', tmp_path / 'grid.jpg'
  code = cli.main(['colorizer', 'evaluate', '--model', one_colour_model, '--data', photos,
                   '--out', str(out), '--grid', str(grid)])
  assert code == 0
  result = json.load(open(out))
  figures = result['figures']
  assert result['photos'] == PHOTOS
  assert result['skipped'] == [{'source': os.path.join(photos, 'notes.txt'),
                                'reason': 'not_an_image',
                                'detail': 'no image format recognised in the file'}]
  # Equal up to the 8-bit photos and the records' quantization (1 Lab unit).
  assert figures['ab_mse'] < 1e-4 and figures['ab_mse_vs_gray'] < 0.01
  assert figures['auc'] > 99.0
  assert figures['psnr'] > 40.0
  # The gray baseline: every pixel is |ONE_COLOUR| (22 Lab units) away.
  distance = float(np.hypot(*ONE_COLOUR))
  assert figures['gray_auc'] == pytest.approx(100 * (1 - distance / 150), abs=1.0)
  assert figures['gray_ab_mse'] == pytest.approx(distance ** 2 / 2 / 128 ** 2, rel=0.05)
  assert figures['gray_psnr'] < figures['psnr'] - 10
  assert figures['gray_colourfulness'] < 1.0 < figures['colourfulness']
  printed = capsys.readouterr()
  assert 'Scored 5 photos (1 skipped)' in printed.out
  assert 'notes.txt: not_an_image' in printed.err
  assert Image.open(grid).size == (3 * 192, 24 + PHOTOS * 192)


def test_scores_the_newest_version_and_refuses_a_folder_without_photos(one_colour_model,
                                                                      tmp_path):
  serving_dir = tmp_path / 'serving'
  (serving_dir / '1').mkdir(parents=True)  # Not a model: loading it would fail.
  os.symlink(one_colour_model, serving_dir / '2')
  (tmp_path / 'photo.png').write_bytes(encode(one_colour_photo(9), 'PNG'))
  result = evaluate.evaluate(str(serving_dir), str(tmp_path / 'photo.png'))
  assert result['figures']['auc'] > 99.0
  (tmp_path / 'nothing').mkdir()
  (tmp_path / 'nothing' / 'gray.png').write_bytes(
      encode(np.full((64, 64, 3), 128, np.uint8), 'PNG'))
  with pytest.raises(ValueError, match='none of the 1 files .*gray.png: no_colour'):
    evaluate.evaluate(one_colour_model, str(tmp_path / 'nothing'))


def test_from_l_and_from_examples_agree_on_the_ingested_records(trained, tmp_path):
  """The trained model on the pipeline's own eval records: `from_l` (what `colorizer
  evaluate` calls, the embedding computed inside) and `from_examples` (the Evaluator's,
  the stored embedding) agree, and `colorizer evaluate` on the records' photos scores
  exactly what the records score: each photo paired with its own truth."""
  files = tf.io.gfile.glob(os.path.join(trained['examples'].uri, 'Split-eval', '*'))
  serialized = [example.numpy() for example in tf.data.TFRecordDataset(files, records.COMPRESSION)]
  parsed = records.parse(tf.constant(serialized))
  loaded = tf.saved_model.load(trained['serving_dir'])
  from_examples = loaded.signatures[serving.FROM_EXAMPLES](examples=tf.constant(serialized))['ab']
  from_l = loaded.signatures[serving.FROM_L](l=parsed['l'])['ab'].numpy()
  assert len(serialized) >= 2
  assert np.abs(from_l - from_examples.numpy()).max() < 1e-3
  assert np.abs(from_l - from_l[::-1]).max() > 0.05  # The photos' answers differ.

  label = tf.concat([scaling.scale_l(parsed['l']), scaling.scale_ab(parsed['ab'])], axis=-1)
  expected = metrics.AbMSE()
  expected.update_state(label, from_l)
  gray = metrics.AbMSE(gray=True)
  gray.update_state(label, from_l)
  assert float(expected.result()) < 0.9 * float(gray.result())  # It learnt something.
  for path in {record.decode() for record in parsed['source'].numpy()}:
    shutil.copy(path, tmp_path / os.path.basename(path))
  result = evaluate.evaluate(trained['serving_dir'], str(tmp_path))
  assert result['photos'] == len(serialized)
  assert result['figures']['ab_mse'] == pytest.approx(float(expected.result()), rel=1e-4)


def test_a_model_and_photos_in_a_bucket(served_in_bucket, bucket):
  """The newest complete version of a serving folder in the bucket, on photos below
  folder objects there; a push in progress beside it is not taken."""
  photos = f'{bucket}/held_out'
  tf.io.gfile.makedirs(f'{photos}/sub')
  for seed, name in ((1, 'a.png'), (2, 'sub/b.png')):
    with tf.io.gfile.GFile(f'{photos}/{name}', 'wb') as f:
      f.write(encode(one_colour_photo(seed), 'PNG'))
  [version] = serving.numbered_versions(served_in_bucket)
  with tf.io.gfile.GFile(f'{served_in_bucket}/{version + 1}/variables/variables.index', 'wb') as f:
    f.write(b'a push still on its way')
  result = evaluate.evaluate(served_in_bucket, photos)
  assert result['model'] == f'{served_in_bucket}/{version}'
  assert result['scored'] == [f'{photos}/a.png', f'{photos}/sub/b.png']
  assert result['figures']['auc'] > 99.0
  tf.io.gfile.rmtree(f'{served_in_bucket}/{version + 1}')
