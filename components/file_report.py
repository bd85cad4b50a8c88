"""What became of each input file, for the jobs over files (ingestion and `colorizer
colorize`): its status record, the job's counters, the JSON report and the listing of
the first rejects. Each job adds its own figures to the report (`WriteReport`'s
`summary`)."""
import json
from typing import Callable, Dict, List, NamedTuple, Optional

import apache_beam as beam
import tensorflow as tf

from components import progress

WRITTEN, SKIPPED, REJECTED = 'written', 'skipped', 'rejected'
LISTED = 20  # rejects listed on the terminal; the report holds them all


class FileStatus(NamedTuple):
  """What became of one input file: a row of the report (its fields that are set)."""
  source: str
  status: str                     # WRITTEN, SKIPPED (colorize: already done) or REJECTED
  reason: Optional[str] = None    # decoding.REJECT_REASONS, or the job's own ('same_output')
  detail: Optional[str] = None
  split: Optional[str] = None     # ingestion: the split it was written to,
  examples: Optional[int] = None  # how many examples (crops) were written for it,
  reused: Optional[bool] = None   # whether its records came from the record cache,
  sha256: Optional[str] = None    # its content hash
  output: Optional[str] = None    # colorize: the file written,
  read_at_8_bits: Optional[str] = None  # why a file of 16-bit colour was read at 8 bits


def counted(namespace: str, status: FileStatus) -> FileStatus:
  """`status`, counted in the job's counters of `namespace` (progress.count_file)."""
  progress.count_file(namespace, status.status, status.reason)
  return status


def rejected(namespace: str, source: str, reason: str, detail: str) -> FileStatus:
  return counted(namespace, FileStatus(source, REJECTED, reason, detail))


def report(statuses: List[FileStatus], **figures) -> dict:
  """The report: the total, the rejects by reason, the job's `figures`, then every
  file's row, by source."""
  by_reason: Dict[str, int] = {}
  for status in statuses:
    if status.status == REJECTED:
      by_reason[status.reason] = by_reason.get(status.reason, 0) + 1
  files = [{key: value for key, value in status._asdict().items() if value is not None}
           for status in sorted(statuses, key=lambda s: s.source)]
  return {'total': len(statuses), 'rejected': dict(sorted(by_reason.items())), **figures,
          'files': files}


def write_report(statuses: List[FileStatus], uri: str,
                 summary: Callable[[List[FileStatus]], dict]) -> dict:
  written = report(statuses, **summary(statuses))
  with tf.io.gfile.GFile(uri, 'w') as f:
    json.dump(written, f, indent=1)
  return written


class WriteReport(beam.PTransform):
  """FileStatus -> the JSON report at `uri`, with the job's figures `summary(statuses)`
  (docs/ingestion.md, "Nothing is skipped silently")."""

  def __init__(self, uri: str, summary: Callable[[List[FileStatus]], dict]):
    super().__init__()
    self._uri = uri
    self._summary = summary

  def expand(self, statuses):
    return (statuses
            | 'Collect' >> beam.combiners.ToList()
            | 'Write' >> beam.Map(write_report, self._uri, self._summary))


def first_lines(lines: List[str], more: str) -> List[str]:
  """The first LISTED of `lines`, then '... N more <more>' if there are more."""
  shown = list(lines[:LISTED])
  if len(lines) > LISTED:
    shown.append(f'... {len(lines) - LISTED} more {more}')
  return shown
