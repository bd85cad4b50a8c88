"""Shared fixtures: photos and broken files generated on the fly (nothing downloaded)."""
import model  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import pytest

from sample_images import mixed_folder_files


@pytest.fixture(scope='session')
def mixed_folder(tmp_path_factory):
  """A folder of good photos in every format, with broken and odd files among them.
  Returns (folder, {relative path: expected status or reason})."""
  folder = tmp_path_factory.mktemp('photos')
  expected = {}
  for name, (data, outcome) in mixed_folder_files().items():
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    expected[name] = outcome
  return str(folder), expected
