"""The gray input | model output | truth grid of `colorizer evaluate` and the report."""
import numpy as np
from PIL import Image
import pytest

from pipeline import photo_grid

pytestmark = pytest.mark.fast


def test_rows_show_the_gray_input_the_output_and_the_truth(tmp_path):
  l = np.full([2, 256, 256, 1], 60.0, np.float32)
  truth = np.zeros([2, 256, 256, 2], np.float32)
  truth[..., 0] = 40.0                                      # Reddish.
  predicted = -truth                                        # Greenish.
  rows = photo_grid.rows(l, predicted, truth)
  assert len(rows) == 2 and list(rows[0]) == [key for key, _ in photo_grid.COLUMNS]
  gray, output, red = (rows[0][key].astype(int) for key in ('gray', 'output', 'truth'))
  assert gray.shape == (256, 256, 3) and np.ptp(gray[0, 0]) == 0
  assert red[0, 0, 0] > red[0, 0, 1] and output[0, 0, 1] > output[0, 0, 0]
  path = str(tmp_path / 'grid.png')
  photo_grid.write_image(path, rows)
  assert Image.open(path).size == (3 * photo_grid.SIDE, 24 + 2 * photo_grid.SIDE)
