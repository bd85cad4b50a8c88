"""The grid of photos that `colorizer evaluate --grid` writes and report.html shows: one
row per photo, gray input | model output | truth."""
import io
from typing import Dict, List

import numpy as np
from PIL import Image, ImageDraw
import tensorflow as tf

from model import colour_space

PHOTOS = 8  # rows
SIDE = 192  # pixels, each picture
COLUMNS = (('gray', 'gray input'), ('output', 'model output'), ('truth', 'truth'))


def rows(l, predicted_ab, truth_ab) -> List[Dict[str, np.ndarray]]:
  """L [N, 256, 256, 1] and the predicted and true ab [N, 256, 256, 2], in Lab units ->
  one row per photo: 8-bit sRGB pictures under COLUMNS' keys (gray: ab = 0)."""
  def rgb(ab):
    return colour_space.lab_to_rgb8_keeping_l(tf.concat([l, ab], axis=-1)).numpy()

  pictures = {'gray': rgb(tf.zeros_like(truth_ab)), 'output': rgb(predicted_ab),
              'truth': rgb(truth_ab)}
  return [{key: pictures[key][i] for key, _ in COLUMNS} for i in range(len(pictures['gray']))]


def write_image(path: str, grid_rows: List[Dict[str, np.ndarray]]) -> None:
  """The rows as one image, with the columns' titles, to `path` (.png or .jpg)."""
  header = 24
  image = Image.new('RGB', (len(COLUMNS) * SIDE, header + len(grid_rows) * SIDE), 'white')
  draw = ImageDraw.Draw(image)
  for column, (_, title) in enumerate(COLUMNS):
    draw.text((column * SIDE + 8, 6), title, fill='black')
  for row, pictures in enumerate(grid_rows):
    for column, (key, _) in enumerate(COLUMNS):
      tile = Image.fromarray(pictures[key]).resize((SIDE, SIDE), Image.LANCZOS)
      image.paste(tile, (column * SIDE, header + row * SIDE))
  buffer = io.BytesIO()
  image.save(buffer, 'JPEG' if path.lower().endswith(('.jpg', '.jpeg')) else 'PNG', quality=90)
  with tf.io.gfile.GFile(path, 'wb') as f:
    f.write(buffer.getvalue())
