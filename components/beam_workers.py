"""TensorFlow's threads in the worker processes of Beam's multi-processing DirectRunner.

Each process's TensorFlow sizes its two thread pools (intra-op: the threads one op is
split over; inter-op: ops run side by side) to every core of the machine, so the
runner's one worker a core (`--direct_num_workers=0`) ran cores × cores threads of each
that took turns on the cores. Given its share of the cores, each worker's TensorFlow
runs without waiting on the others': the Evaluator's examples/s rose by 4 to 8% here
(docs/performance.md, "TensorFlow's threads in the Evaluator's workers").

The workers are processes that the runner starts with this process's environment
(apache_beam/runners/portability/local_job_service.py, SubprocessSdkWorker.run), and
TensorFlow reads `TF_NUM_INTRAOP_THREADS` and `TF_NUM_INTEROP_THREADS` once, when a
process makes its CPU device and its first session
(tensorflow/core/common_runtime/local_device.cc, process_util.cc). Other runners are
left as they are: their workers are other machines' processes or this one's threads.
"""
import contextlib
import multiprocessing
import os
from typing import Iterator, Optional, Sequence

from apache_beam.options import pipeline_options

from model import internals

THREADS = ('TF_NUM_INTRAOP_THREADS', 'TF_NUM_INTEROP_THREADS')


def share(processes: int) -> int:
  """Each of `processes` TensorFlow processes' share of this machine's cores (at least 1).
  This module loads no TensorFlow, so that a process may set its own share first
  (tests/conftest.py)."""
  return max(1, multiprocessing.cpu_count() // processes)


def threads_per_worker(beam_args: Sequence[str]) -> Optional[int]:
  """Each worker's share of the cores when `beam_args` run the multi-processing
  DirectRunner (its number of workers as fn_runner.py counts it: 0 is one a core);
  else None."""
  direct = pipeline_options.PipelineOptions(list(beam_args)).view_as(
      pipeline_options.DirectOptions)
  if (not internals.is_direct_runner(beam_args)
      or direct.direct_running_mode != 'multi_processing'):
    return None
  return share(direct.direct_num_workers or multiprocessing.cpu_count())


@contextlib.contextmanager
def tensorflow_threads(beam_args: Sequence[str]) -> Iterator[None]:
  """Inside, the workers that the multi-processing DirectRunner starts for `beam_args`
  run TensorFlow's pools on their share of the cores. A pool's size already set (the
  user's) is kept."""
  threads = threads_per_worker(beam_args)
  unset = [name for name in THREADS if name not in os.environ] if threads else []
  if unset:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    # This process's own pools first, at their size: made after the variables were set,
    # they would take the workers' share for as long as the process lives.
    tf.config.list_logical_devices('CPU')
  os.environ.update(dict.fromkeys(unset, str(threads)))
  try:
    yield
  finally:
    for name in unset:
      del os.environ[name]
