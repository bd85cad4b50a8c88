"""The progress line (components/progress.py) of a job in this process, the in-memory
runner: on a pseudo-terminal, and in a file. Worker processes: test_colorize's archive
runs under a pseudo-terminal too."""
import fcntl
import os
import pty
import re
import struct
import termios
import threading
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
import pytest

from components import progress

PHOTOS = 40
IN_MEMORY = PipelineOptions(['--direct_running_mode=in_memory', '--direct_num_workers=1'])
JOB = progress.Job('Testing', 'test', PHOTOS, 'file', done=(progress.WRITTEN, progress.REJECTED),
                   shown=(('written', progress.WRITTEN), ('rejected', progress.REJECTED)))
# A state of the line: "Testing:  42%|...| 17/40 [00:01<00:03, 9.9file/s, written 13, rejected 4]"
STATE = re.compile(r'Testing: +\d+%.*? (\d+)/40 \[[^\]]*?(?:written (\d+), rejected (\d+))?\]')


def _photo(i: int) -> int:
  """A tenth of a second of work per photo; every fourth is rejected."""
  time.sleep(0.1)
  progress.count_file('test', *(('rejected', 'too_small') if i % 4 == 0 else ('written',)))
  return i


def _run(stream) -> None:
  with progress.show(beam.Pipeline(options=IN_MEMORY), lambda: JOB, stream) as pipeline:
    _ = pipeline | beam.Create(range(PHOTOS)) | beam.Reshuffle() | beam.Map(_photo)


def states(text: str):
  """(done, written, rejected) of each state of the line, in order."""
  return [(int(done), int(written or 0), int(rejected or 0))
          for done, written, rejected in STATE.findall(text)]


def test_on_a_terminal_the_line_advances_as_the_job_runs():
  """The counters of the bundle at work, read while it runs, redrawn in place."""
  master, terminal = pty.openpty()
  fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack('HHHH', 30, 120, 0, 0))
  shown = []

  def read():
    while True:
      try:
        data = os.read(master, 65536)
      except OSError:  # The terminal's other end was closed.
        return
      shown.append(data)

  reader = threading.Thread(target=read)
  reader.start()
  with os.fdopen(terminal, 'w') as stream:
    _run(stream)
  reader.join()
  os.close(master)
  text = b''.join(shown).decode()
  redrawn = states(text.split('\n')[0])  # One line, redrawn with carriage returns.
  assert len(redrawn) > 3 and '\r' in text, text
  assert [done for done, _, _ in redrawn] == sorted(done for done, _, _ in redrawn)
  assert any(0 < done < PHOTOS and written and rejected for done, written, rejected in redrawn)
  assert redrawn[-1] == (PHOTOS, 30, 10)


def test_off_a_terminal_plain_lines_come_every_period(tmp_path, monkeypatch):
  """Asked ten times a period, the counters make one plain line a period (30 s for
  people, 1 s here), besides the first and the last."""
  monkeypatch.setattr(progress, 'PERIOD_S', 0.1)
  monkeypatch.setattr(progress, 'PLAIN_PERIOD_S', 1.0)
  log = tmp_path / 'stderr.log'
  started = time.monotonic()
  with open(log, 'w') as stream:
    _run(stream)
  periods = (time.monotonic() - started) / progress.PLAIN_PERIOD_S
  text = log.read_text()
  assert '\r' not in text
  lines = text.splitlines()
  assert [states(line) for line in lines] == [[state] for state in states(text)], text
  done = [done for done, _, _ in states(text)]
  assert done[0] == 0 and any(0 < n < PHOTOS for n in done) and done == sorted(done), text
  assert states(text)[-1] == (PHOTOS, 30, 10)
  assert 3 <= len(lines) <= periods + 2, (periods, text)  # 4 s of work at least.


@pytest.mark.fast
def test_other_runners_print_nothing_here(bucket):
  """On Dataflow the job page shows the counters: the pipeline is left as it is, and
  nothing is counted for a line. (Beam checks the temp location's bucket as the
  pipeline is made: the emulated one.)"""
  pipeline = beam.Pipeline(options=PipelineOptions([
      '--runner=DataflowRunner', '--project=colorizer-test', '--region=europe-west4',
      f'--temp_location={bucket}/tmp']))
  runner = pipeline.runner
  assert progress.show(pipeline, lambda: pytest.fail('counted for nothing')) is pipeline
  assert pipeline.runner is runner
