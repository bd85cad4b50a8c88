"""components/input_files.py: where a job's input files come from. Folder objects in a bucket
are covered by test_ingest and test_colorize, which match through it."""
import os

from components import input_files


def test_file_pattern():
  assert input_files.file_pattern(os.path.dirname(__file__)) == os.path.dirname(__file__) + '/**'
  assert input_files.file_pattern('photos/*.jpg') == 'photos/*.jpg'
