"""Runs the pipeline on this machine: LocalDagRunner, SQLite metadata, Beam's DirectRunner.

Layout under the output root: `pipeline_root/` (TFX artifacts), `metadata.db` (MLMD),
`serving_model/<version>/` (pushed models), `report.html` (the run's evaluation),
`logs/colorizer-run.log` (`colorizer run`'s libraries' output: pipeline/run_log.py).
"""
import contextlib
import fcntl
import os
from typing import Dict, Iterator, List, Optional

from tfx import v1 as tfx

from pipeline import configs
from pipeline import pipeline
from pipeline import report
from pipeline import run_log

LOCK_FILE = '.colorizer-run.lock'


def paths(output_root: str) -> Dict[str, str]:
  return {
      'pipeline_root': os.path.join(output_root, 'pipeline_root'),
      'metadata': os.path.join(output_root, 'metadata.db'),
      'serving_model': os.path.join(output_root, 'serving_model'),
      'report': os.path.join(output_root, 'report.html'),
      'log': run_log.path(output_root),
  }


class RunInProgress(RuntimeError):
  pass


@contextlib.contextmanager
def exclusive(output_root: str) -> Iterator[None]:
  """Holds a lock on the output root, so two runs never retrain into it at once."""
  os.makedirs(output_root, exist_ok=True)
  path = os.path.join(output_root, LOCK_FILE)
  with open(path, 'a+') as lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      lock.seek(0)
      raise RunInProgress(f'another colorizer run (pid {lock.read().strip() or "?"}) is using '
                          f'{output_root}; wait for it to finish, or use another '
                          '--output-root') from None
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    yield


def run(data: str, output_root: str, beam_args: Optional[List[str]] = None, **options) -> dict:
  """Runs the pipeline over `data` into `output_root`; returns the Evaluator's verdict
  (report.write_report's). `options` are create_pipeline's keyword arguments (steps,
  weights, gates, ...)."""
  run_log.check_local(output_root)
  where = paths(os.path.abspath(output_root))
  with exclusive(output_root):
    tfx.orchestration.LocalDagRunner().run(pipeline.create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=where['pipeline_root'],
        data=data,
        serving_model_dir=where['serving_model'],
        beam_pipeline_args=list(configs.LOCAL_BEAM_ARGS) + list(beam_args or []),
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            where['metadata']),
        **options))
    return report.write_report(where['metadata'], where['serving_model'], where['report'])
