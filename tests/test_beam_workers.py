"""TensorFlow's threads in the multi-processing DirectRunner's workers
(components/beam_workers.py): each worker's share of the cores, in the workers' own
environment."""
import multiprocessing
import os
import subprocess
import sys

import apache_beam as beam
import pytest

from components import beam_workers

CORES = multiprocessing.cpu_count()


@pytest.mark.fast
@pytest.mark.parametrize('args, threads', [
    (['--direct_running_mode=multi_processing', '--direct_num_workers=0'], 1),  # one a core
    (['--direct_running_mode=multi_processing', '--direct_num_workers=1'], CORES),
    (['--direct_running_mode=multi_processing', f'--direct_num_workers={4 * CORES}'], 1),
    (['--direct_running_mode=in_memory', '--direct_num_workers=1'], None),  # threads of ours
    ([], None),
    (['--runner=direct', '--direct_running_mode=multi_processing', '--direct_num_workers=1'],
     CORES),
    (['--runner=DataflowRunner', '--direct_running_mode=multi_processing'], None),
])
def test_each_worker_gets_its_share_of_the_cores_on_the_multi_processing_runner_only(
    args, threads):
  assert beam_workers.threads_per_worker(args) == threads


@pytest.mark.fast
def test_a_setting_of_the_users_is_kept_and_the_environment_restored(monkeypatch):
  intra, inter = beam_workers.THREADS
  args = ['--direct_running_mode=multi_processing', '--direct_num_workers=1']
  monkeypatch.delenv(intra, raising=False)
  monkeypatch.delenv(inter, raising=False)
  with beam_workers.tensorflow_threads(args):
    assert os.environ[intra] == os.environ[inter] == str(CORES)
  assert intra not in os.environ and inter not in os.environ
  monkeypatch.setenv(intra, '3')
  with beam_workers.tensorflow_threads(args):
    assert (os.environ[intra], os.environ[inter]) == ('3', str(CORES))
  assert os.environ[intra] == '3' and inter not in os.environ


def _seen_by_worker(_) -> str:
  return ' '.join([str(os.getpid()), *map(str, map(os.environ.get, beam_workers.THREADS))])


def test_the_runners_worker_processes_see_their_share(tmp_path, monkeypatch):
  for name in beam_workers.THREADS:
    monkeypatch.delenv(name, raising=False)
  # The workers unpickle _seen_by_worker by reference, from this module.
  monkeypatch.setenv('PYTHONPATH', os.pathsep.join(
      [os.path.dirname(__file__), *filter(None, [os.environ.get('PYTHONPATH')])]))
  args = ['--direct_running_mode=multi_processing', '--direct_num_workers=2']
  with beam_workers.tensorflow_threads(args):
    with beam.Pipeline(argv=args) as pipeline:
      _ = (pipeline | beam.Create(range(8)) | beam.Reshuffle() | beam.Map(_seen_by_worker)
           | beam.io.WriteToText(str(tmp_path / 'seen')))
  seen = [line.split() for path in tmp_path.glob('seen*') for line in open(path)]
  assert len(seen) == 8
  assert str(os.getpid()) not in {pid for pid, *_ in seen}
  share = str(max(1, CORES // 2))
  assert {tuple(threads) for _, *threads in seen} == {(share, share)}


# A process whose TensorFlow makes its pools inside the context (argv 'inside') or outside
# it: it reports its number of threads once its pools are made and used.
_POOLS = '''
import os, sys
from components import beam_workers
import tensorflow as tf

def use():
  x = tf.random.normal([256, 256])
  tf.function(lambda x: tf.matmul(x, x) + tf.matmul(x + 1, x))(x).numpy()

if sys.argv[1] == 'inside':
  with beam_workers.tensorflow_threads(
      ['--direct_running_mode=multi_processing', '--direct_num_workers=0']):
    use()
use()
print(len(os.listdir('/proc/self/task')))
'''


@pytest.mark.skipif(CORES < 2, reason="one core: a worker's share is every core anyway")
def test_this_process_keeps_its_own_pools_at_their_size():
  # Inside, a worker's share is 1 thread: this process's pools, made there, must not take it.
  env = {name: value for name, value in os.environ.items() if name not in beam_workers.THREADS}
  threads = {where: subprocess.run([sys.executable, '-c', _POOLS, where], env=env, check=True,
                                   capture_output=True, text=True).stdout.split()[-1]
             for where in ('inside', 'outside')}
  assert threads['inside'] == threads['outside']
