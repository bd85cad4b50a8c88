"""The progress line of the Beam jobs that run on this machine: ingestion (`colorizer
ingest`, and PhotoExampleGen in `colorizer run`), `colorizer colorize` and the Evaluator.

    Colourizing:  42%|████▏     | 168/400 [00:51<01:10,  3.29file/s, written 150, skipped 12, rejected 6]

Its figures are the jobs' own Beam counters, read while the job runs. Beam's
DirectRunner (its FnApiRunner, for batch jobs) hands a job's metrics back only when the
job has ended, so `show` runs the same runner and, every PERIOD_S, asks each bundle in
flight for its counters so far: the Fn API's progress request, which a worker answers
from a thread of its own, in worker processes and in this process alike. A bundle's
final counters replace its last answer when it ends. The workers do nothing more.

On a terminal the line is a tqdm bar, redrawn in place. Anywhere else (a file, a pipe)
it is the same line without its bar, printed at the start, every PLAIN_PERIOD_S and at
the end: never a carriage return. Other runners (Dataflow) print nothing here; their
own job page shows the same counters by name (docs/ingestion.md, docs/colorize.md).
"""
import dataclasses
import os
import sys
import threading
import time
from typing import Callable, Dict, Optional, Sequence, TextIO, Tuple

import apache_beam as beam
from apache_beam.metrics.metric import MetricResults, MetricsFilter
from apache_beam.runners.direct import direct_runner
import tqdm

from model import internals

PERIOD_S = 1.0         # how often the bundles in flight are asked for their counters
PLAIN_PERIOD_S = 30.0  # how often a plain line is printed when stderr is no terminal


# The counters of the jobs over files (ingestion, `colorizer colorize`), named for the
# person who reads them on Dataflow's job page: each file counts once, as written,
# skipped or rejected; a rejected one also by its reason (`rejected_truncated`, ...);
# `photos_reused`: of the written, those whose records came from the record cache.
WRITTEN, SKIPPED, REJECTED = 'photos_written', 'photos_skipped', 'photos_rejected'
REUSED = 'photos_reused'


def count_file(namespace: str, status: str, reason: Optional[str] = None) -> None:
  """Counts a file's fate (`status`: written, skipped or rejected, for `reason`) in
  the job's counters of `namespace`."""
  beam.metrics.Metrics.counter(namespace, f'photos_{status}').inc()
  if reason:
    beam.metrics.Metrics.counter(namespace, f'rejected_{reason}').inc()


@dataclasses.dataclass(frozen=True)
class Job:
  """What a job's line shows: how many of `total` (None: unknown) things of `unit` are
  done, the sum of the counters `done`, and the counters `shown` (label, name) beside
  it; the counters are those of `namespace`."""
  name: str
  namespace: str
  total: Optional[int]
  unit: str = 'file'
  done: Sequence[str] = ()
  shown: Sequence[Tuple[str, str]] = ()


def counts(metrics: MetricResults, namespace: str) -> Dict[str, int]:
  """The counters of `namespace`, summed over the steps, by name."""
  summed: Dict[str, int] = {}
  for counter in metrics.query(MetricsFilter().with_namespace(namespace))['counters']:
    name = counter.key.metric.name
    summed[name] = summed.get(name, 0) + (counter.committed or 0)
  return summed


class ProgressLine:
  """One job's line on `stream`: a tqdm bar on a terminal; elsewhere the same line
  without its bar, printed at the start, every PLAIN_PERIOD_S and at the end."""

  def __init__(self, job: Job, stream: TextIO):
    self._job = job
    self._stream = stream
    self._terminal = _is_terminal(stream)
    # tqdm keeps the rate and the time left. Off a terminal it draws into nothing, and
    # its state is printed as plain lines instead.
    self._sink = None if self._terminal else open(os.devnull, 'w')
    # The terminal's width, as it changes; a terminal that tells no size (a new
    # pseudo-terminal's is 0 x 0, which tqdm takes for no room at all) gets 80 x 24.
    sized = self._terminal and _columns(stream) > 0
    self._bar = tqdm.tqdm(total=job.total, desc=job.name, unit=job.unit,
                          postfix=self._shown({}), file=stream if self._terminal else self._sink,
                          dynamic_ncols=sized, ncols=None if sized else 80,
                          nrows=None if sized else 24,
                          mininterval=0, miniters=1)
    self._lock = threading.Lock()
    self._closed = False
    self._printed_at = time.monotonic()
    self._print()

  def update(self, counters: Dict[str, int]) -> None:
    with self._lock:
      if self._closed:
        return
      self._set(counters)
      if time.monotonic() - self._printed_at >= PLAIN_PERIOD_S:
        self._print()

  def close(self, counters: Optional[Dict[str, int]] = None) -> None:
    """Ends the line with the job's final `counters` (None when it failed)."""
    with self._lock:
      self._closed = True
      if counters is not None:
        self._set(counters)
        self._print()
      self._bar.close()
      if self._sink:
        self._sink.close()

  def _set(self, counters: Dict[str, int]) -> None:
    done = sum(counters.get(name, 0) for name in self._job.done)
    if self._bar.total is not None and done > self._bar.total:
      self._bar.total = done  # Files that appeared after they were counted.
    self._bar.set_postfix_str(self._shown(counters), refresh=False)
    if done > self._bar.n:
      self._bar.update(done - self._bar.n)
    else:
      self._bar.refresh()  # The time goes on.

  def _shown(self, counters: Dict[str, int]) -> str:
    return ', '.join(f'{label} {counters.get(name, 0)}' for label, name in self._job.shown)

  def _print(self) -> None:
    self._printed_at = time.monotonic()
    if not self._terminal:
      print(tqdm.tqdm.format_meter(**dict(self._bar.format_dict, ncols=0)),
            file=self._stream, flush=True)


def _columns(stream: TextIO) -> int:
  try:
    return os.get_terminal_size(stream.fileno()).columns
  except (AttributeError, ValueError, OSError):
    return 0


def _is_terminal(stream: TextIO) -> bool:
  try:
    return stream.isatty()
  except (AttributeError, ValueError):
    return False


class _DirectRunner(direct_runner.SwitchingDirectRunner):
  """The DirectRunner of a batch job, showing `job`'s line on `stream` while it runs."""

  def __init__(self, job: Job, stream: Optional[TextIO] = None):
    super().__init__()
    self._job = job
    self._stream = stream

  def is_fnapi_compatible(self):
    return True  # Runs on the FnApiRunner, as the DirectRunner runs batch jobs.

  def run_pipeline(self, pipeline, options):
    live, runner = internals.fn_api_runner_with_live_counters(options, 5 * PERIOD_S)
    line = ProgressLine(self._job, self._stream or sys.stderr)
    stop = threading.Event()

    def poll():
      while not stop.wait(PERIOD_S):
        live.ask()
        line.update(counts(live.metrics(), self._job.namespace))

    poller = threading.Thread(target=poll, daemon=True, name='progress')
    poller.start()
    result = None
    try:
      result = runner.run_pipeline(pipeline, options)
    finally:
      stop.set()
      poller.join(timeout=PERIOD_S)  # Not for a worker that ended without answering.
      line.close(counts(result.metrics(), self._job.namespace) if result else None)
    return result


def show(pipeline: beam.Pipeline, job: Callable[[], Job],
         stream: Optional[TextIO] = None) -> beam.Pipeline:
  """`pipeline`, showing the progress line of `job()` on `stream` (sys.stderr as it is
  when the job runs) while it runs, if it runs here: a batch job on Beam's
  DirectRunner. `job` is called only then, so that what it counts costs nothing on
  other runners, whose pipelines are left as they are."""
  options = pipeline.options.view_as(beam.options.pipeline_options.StandardOptions)
  if type(pipeline.runner) is direct_runner.SwitchingDirectRunner and not options.streaming:  # pylint: disable=unidiomatic-typecheck
    pipeline.runner = _DirectRunner(job(), stream)
  return pipeline
