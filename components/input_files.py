"""Where a job's input files come from, the same way for every job: a folder (local or
gs://) is every file below it, a glob is its matches, a file is itself; the folder
objects that buckets hold are never files."""
import os
from typing import Iterable, List, Tuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.filesystems import FileSystems
import tensorflow as tf

from model import storage


def file_pattern(data: str) -> str:
  """A folder (local or gs://) means every file below it; anything else is a glob."""
  if tf.io.gfile.isdir(data):
    return data.rstrip('/') + '/**'
  return data


def is_folder_object(path: str) -> bool:
  """A zero-byte object named like `photos/` or `photos/sub/`: the Cloud console's
  "Create folder" and tf.io.gfile.makedirs leave them in a bucket, and Beam's match of
  `photos/**` returns them with the files. They are no files."""
  return path.endswith('/')


def matched_files(pattern: str) -> List[FileMetadata]:
  """The files matching `pattern` (local or gs://; `**` at any depth), as MatchPhotos
  finds them."""
  return [metadata for metadata in FileSystems.match([pattern])[0].metadata_list
          if not is_folder_object(metadata.path)]


class MatchPhotos(beam.PTransform):
  """PBegin -> str: the path of every file matching the pattern, or any of the
  patterns (local or gs://)."""

  def __init__(self, pattern):
    super().__init__()
    self._patterns = [pattern] if isinstance(pattern, str) else list(pattern)

  def expand(self, pbegin):
    if len(self._patterns) == 1:
      matched = pbegin | 'Match' >> fileio.MatchFiles(self._patterns[0])
    else:
      matched = (pbegin
                 | 'Patterns' >> beam.Create(self._patterns)
                 | 'Match' >> fileio.MatchAll())
    return matched | 'Path' >> beam.FlatMap(
        lambda metadata: [] if is_folder_object(metadata.path) else [metadata.path])


def input_roots(items: Iterable[str]) -> List[Tuple[str, str]]:
  """(file pattern, root) of each INPUT: a folder is its own root; a file's root is its
  folder; a glob's is its folder up to the first wildcard. Paths under a root are
  mirrored under --out."""
  roots = []
  for item in items:
    if not storage.is_object_store(item):
      item = os.path.abspath(item)
    if tf.io.gfile.isdir(item):
      roots.append((file_pattern(item), item.rstrip('/')))
    elif any(c in item for c in '*?['):
      fixed = item[:min(item.find(c) for c in '*?[' if c in item)]
      roots.append((item, fixed[:fixed.rfind('/')]))
    else:
      roots.append((item, item[:item.rfind('/')]))
  return roots


def expand_inputs(items: Iterable[str]) -> List[str]:
  """Files as given, folders as every file below them, globs as their matches."""
  files = []
  for item in items:
    if tf.io.gfile.isdir(item):
      files += sorted(metadata.path
                      for metadata in matched_files(file_pattern(item)))
    elif tf.io.gfile.exists(item):
      files.append(item)
    else:
      files += sorted(tf.io.gfile.glob(item)) or [item]  # A missing file fails below.
  return files
