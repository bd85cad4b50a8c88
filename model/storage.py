"""Where a path lives: on this machine's disk, or in an object store (gs://).

An object store has no rename: a rename is a copy and a delete, request by request
(about 25 HTTP requests for one small file on Cloud Storage). But an object appears only
once its upload is complete, so that a file written straight to its name is never seen
half-written. On disk a file is written under another name and renamed into place.
"""


def is_object_store(path: str) -> bool:
  """Whether `path` is in an object store (gs://, s3://, ...): anything with a scheme
  but file://."""
  return '://' in path and not path.startswith('file://')


def read(path: str) -> bytes:
  """A file's bytes, local or gs:// (Beam's file systems, which the jobs match files
  with; never decompressed, whatever the name)."""
  from apache_beam.io.filesystem import CompressionTypes  # pylint: disable=import-outside-toplevel
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=import-outside-toplevel
  with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
    return f.read()
