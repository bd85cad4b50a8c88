"""`colorizer run`'s log file: the libraries' routine noise goes there, not the terminal.

TensorFlow's C++ runtime writes to file descriptor 2 as it loads ("Unable to register
cuDNN factory", "Could not find TensorRT", oneDNN notes), before any Python logging is
set up, and Beam's worker processes inherit that descriptor. TF_CPP_MIN_LOG_LEVEL cannot
tell those lines from real errors: the factory lines are themselves at ERROR level. So
for the run, descriptor 2 is a pipe that copies everything into the log and passes on to
the terminal only C++ ERROR and FATAL lines that are not that known noise. Python's side
goes through logging: the log gets INFO and above, and so Google's FutureWarnings (via
`logging.captureWarnings`); the terminal gets errors, and warnings of this project's own.
What Python code writes to `sys.stderr` itself (a skipped file, a progress bar) still
reaches the terminal.
"""
import contextlib
import logging
import os
import re
import sys
import threading
from typing import Iterator, TextIO

# A C++ log line, as TensorFlow (`2026-01-01 12:00:00.000: E file.cc:1] ...`) or Abseil
# (`E0101 12:00:00.000 123 file.cc:1] ...`) print it, and its severity.
_CPP_LINE = re.compile(r'^(?:\d{4}-\d\d-\d\d [\d:.]+: ([IWEF]) |([IWEF])\d{4} [\d:.]+ )')
# ERROR lines that every TensorFlow import prints on a machine without GPUs.
_CPP_NOISE = re.compile(r'Unable to register cu(DNN|FFT|BLAS) factory')
_OWN_LOGGERS = ('root', 'components', 'model', 'pipeline')
LOG_FORMAT = '%(asctime)s %(levelname)s %(name)s: %(message)s'


def path(output_root: str) -> str:
  return os.path.join(output_root, 'logs', 'colorizer-run.log')


def check_local(output_root: str) -> None:
  """`colorizer run`'s output root holds this log, the SQLite metadata and a lock, so it
  is a folder on this machine; a gs:// one would be taken for a folder named `gs:`."""
  if '://' in output_root:
    raise ValueError(
        f'--output-root {output_root}: colorizer run keeps its SQLite metadata, lock and log '
        'there, so it must be a folder on this machine. To keep the artifacts and the '
        'served models in a bucket, run the pipeline on Kubeflow Pipelines or Vertex AI: '
        'colorizer compile --pipeline-root gs://... --serving-dir gs://...')


def shows_on_terminal(line: str) -> bool:
  """Whether a line written to descriptor 2 is a C++ error worth the user's eyes."""
  match = _CPP_LINE.match(line)
  return bool(match) and (match.group(1) or match.group(2)) in 'EF' and not _CPP_NOISE.search(line)


class _TerminalFilter(logging.Filter):
  """Errors from any library; warnings only from this project's own code."""

  def filter(self, record: logging.LogRecord) -> bool:
    own = record.name.split('.')[0] in _OWN_LOGGERS
    return record.levelno >= logging.ERROR or (own and record.levelno >= logging.WARNING)


def _copy_lines(pipe: TextIO, log: TextIO, terminal: TextIO) -> None:
  for line in pipe:
    log.write(line)
    if shows_on_terminal(line):
      terminal.write(line)
      terminal.flush()


@contextlib.contextmanager
def to_file(path: str) -> Iterator[None]:
  """Sends descriptor 2 and Python logging to `path` (appending) while the block runs,
  with errors still on the terminal. Enter it before TensorFlow is imported."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  sys.stderr.flush()
  saved_fd = os.dup(2)
  terminal = os.fdopen(os.dup(2), 'w', buffering=1)
  log = open(path, 'a', buffering=1)
  read_end, write_end = os.pipe()
  os.dup2(write_end, 2)
  os.close(write_end)
  copier = threading.Thread(target=_copy_lines, daemon=True,
                            args=(os.fdopen(read_end, errors='replace'), log, terminal))
  copier.start()

  root = logging.getLogger()
  saved_handlers, saved_level = root.handlers[:], root.level
  to_log = logging.StreamHandler(log)
  to_log.setFormatter(logging.Formatter(LOG_FORMAT))
  to_terminal = logging.StreamHandler(terminal)
  to_terminal.setFormatter(logging.Formatter('%(levelname)s %(message)s'))
  to_terminal.addFilter(_TerminalFilter())
  root.handlers = [to_log, to_terminal]
  root.setLevel(logging.INFO)
  logging.captureWarnings(True)
  saved_stderr, sys.stderr = sys.stderr, terminal  # This process's own messages and bars.
  try:
    yield
  finally:
    sys.stderr = saved_stderr
    logging.captureWarnings(False)
    root.handlers, root.level = saved_handlers, saved_level
    sys.stderr.flush()
    os.dup2(saved_fd, 2)  # Closes the pipe's last writer in this process: the copier ends.
    os.close(saved_fd)
    copier.join(timeout=10)  # Unless a lingering worker process still holds the pipe.
    if not copier.is_alive():
      log.close()
    terminal.close()
