"""`colorizer`: the command line of the colorization pipeline.

  colorizer ingest --data PHOTOS --out DIR            photos -> Lab TFRecords + report
  colorizer run --data PHOTOS --output-root DIR        ingest, train, evaluate, push
  colorizer colorize INPUT... --model DIR --out DIR    gray (or colour) photos -> colour

`colorizer COMMAND --help` lists a command's flags.
"""
import logging
import os
import sys
import time
from typing import Callable, Dict, List, Tuple

import model  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')  # TensorFlow's C++ INFO lines are noise here.

from pipeline import configs


def _ingest_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('data', None, 'Photos: a folder (all files below it), a glob, or '
                      'a gs:// folder or glob.', flag_values=fv, required=True)
  flags.DEFINE_string('out', None, 'Output folder (local or gs://); must be new or empty.',
                      flag_values=fv, required=True)
  flags.DEFINE_string('embedding-weights', configs.EMBEDDING_WEIGHTS,
                      'Inception-ResNet-v2 weights: imagenet (downloads once through Keras), '
                      'none (random; colour quality needs real weights), auto (imagenet when '
                      'available, else none), or the path or gs:// uri of an .h5 file.',
                      flag_values=fv)
  flags.DEFINE_integer('image-size', 256, 'Side of the stored L and ab images. The model '
                       'is built for 256 (model.preprocessing.IMAGE_SIZE).', flag_values=fv)
  flags.DEFINE_integer('eval-percent', configs.EVAL_PERCENT, 'Percent of photos (chosen by '
                       'content hash, so stable across runs) in Split-eval.', flag_values=fv)
  flags.DEFINE_float('max-megapixels', configs.MAX_MEGAPIXELS, 'Reject larger photos '
                     '(read from the header, before decoding).', flag_values=fv)
  flags.DEFINE_multi_string('beam-arg', [], 'A Beam pipeline option, e.g. '
                            '--beam-arg=--direct_num_workers=2; repeatable.', flag_values=fv)


def _run_ingest(fv: flags.FlagValues, args: List[str]) -> int:
  from components import ingest  # pylint: disable=import-outside-toplevel
  from model import preprocessing  # pylint: disable=import-outside-toplevel
  if args:
    raise flags.Error(f'unexpected arguments: {" ".join(args)}')
  if fv['image-size'].value != preprocessing.IMAGE_SIZE:
    raise flags.Error(f'--image-size: the model is built for {preprocessing.IMAGE_SIZE}; '
                      'change model.preprocessing.IMAGE_SIZE to use another size')
  start = time.time()
  report = ingest.ingest(
      fv.data, fv.out, embedding_weights=fv['embedding-weights'].value,
      eval_percent=fv['eval-percent'].value, max_megapixels=fv['max-megapixels'].value,
      beam_args=list(configs.LOCAL_BEAM_ARGS) + fv['beam-arg'].value)
  _print_ingest_summary(report, fv.out, time.time() - start)
  return 0


def _print_ingest_summary(report: dict, out: str, seconds: float) -> None:
  from components import ingest  # pylint: disable=import-outside-toplevel
  splits = ', '.join(f'{name} {count}' for name, count in report['splits'].items())
  rejected = sum(report['rejected'].values())
  reasons = ', '.join(f'{reason} {count}' for reason, count in report['rejected'].items())
  print(f'\nIngested {report["total"]} files in {seconds:.0f} s '
        f'({report["written"] / max(seconds, 1e-9):.1f} photos/s written)')
  print(f'  written   {report["written"]:5d}  ({splits})')
  print(f'  rejected  {rejected:5d}  ({reasons or "none"})')
  for entry in [f for f in report['files'] if f['status'] == 'rejected'][:20]:
    print(f'    {entry["source"]}: {entry["reason"]}: {entry.get("detail", "")}')
  if rejected > 20:
    print(f'    ... {rejected - 20} more in the report')
  print(f'  records   {os.path.join(out, "Split-*", ingest.RECORD_PREFIX)}-*.gz')
  print(f'  report    {os.path.join(out, ingest.REPORT_FILE)}')
  print(f'  embedding weights  {report["embedding_weights"]}')


def _run_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('data', None, 'Photos: a folder, a glob, local or gs://; may hold '
                      '{SPAN} (e.g. photos/span-{SPAN}) to take the newest span.',
                      flag_values=fv, required=True)
  flags.DEFINE_string('output-root', None, 'Folder for pipeline_root/, metadata.db, '
                      'serving_model/ and report.html.', flag_values=fv, required=True)
  flags.DEFINE_integer('train-steps', configs.TRAIN_STEPS, 'Training steps.', flag_values=fv)
  flags.DEFINE_integer('eval-steps', configs.EVAL_STEPS, 'Validation steps per epoch.',
                       flag_values=fv)
  flags.DEFINE_string('embedding-weights', configs.EMBEDDING_WEIGHTS,
                      'imagenet | none | auto | the path or gs:// uri of an .h5 file.',
                      flag_values=fv)
  flags.DEFINE_integer('batch-size', configs.BATCH_SIZE, 'Batch size per replica.',
                       flag_values=fv)
  flags.DEFINE_float('learning-rate', configs.LEARNING_RATE, 'Adam learning rate.',
                     flag_values=fv)
  flags.DEFINE_integer('epochs', configs.EPOCHS, 'Epochs (checkpoints) the steps are spread '
                       'over.', flag_values=fv)
  flags.DEFINE_integer('eval-percent', configs.EVAL_PERCENT, 'Percent of photos in '
                       'Split-eval.', flag_values=fv)
  flags.DEFINE_float('min-improvement-over-gray', configs.MIN_IMPROVEMENT_OVER_GRAY,
                     'Gate: ab-MSE must be at most (1 - this) x the gray baseline\'s.',
                     flag_values=fv)
  flags.DEFINE_float('max-regression', configs.MAX_REGRESSION, 'Gate: ab-MSE may exceed '
                     'the last blessed model\'s by at most this.', flag_values=fv)
  flags.DEFINE_integer('keep-versions', configs.KEEP_VERSIONS, 'Pushed versions to keep.',
                       flag_values=fv)
  flags.DEFINE_multi_string('beam-arg', [], 'A Beam pipeline option; repeatable.',
                            flag_values=fv)


def _run_run(fv: flags.FlagValues, args: List[str]) -> int:
  from pipeline import local_runner  # pylint: disable=import-outside-toplevel
  if args:
    raise flags.Error(f'unexpected arguments: {" ".join(args)}')
  start = time.time()
  try:
    local_runner.run(
        fv.data, fv['output-root'].value, beam_args=fv['beam-arg'].value,
        embedding_weights=fv['embedding-weights'].value, eval_percent=fv['eval-percent'].value,
        train_steps=fv['train-steps'].value, eval_steps=fv['eval-steps'].value,
        hyperparameters={'batch_size': fv['batch-size'].value,
                         'learning_rate': fv['learning-rate'].value,
                         'epochs': fv['epochs'].value},
        min_improvement_over_gray=fv['min-improvement-over-gray'].value,
        max_regression=fv['max-regression'].value, keep_versions=fv['keep-versions'].value)
  except local_runner.RunInProgress as e:
    print(f'colorizer run: {e}', file=sys.stderr)
    return 3
  where = local_runner.paths(fv['output-root'].value)
  print(f'\nPipeline finished in {time.time() - start:.0f} s')
  for name in ('report', 'serving_model', 'pipeline_root', 'metadata'):
    print(f'  {name:14s} {where[name]}')
  return 0


def _colorize_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('model', None, 'A SavedModel folder, or a serving folder of numbered '
                      'versions (the highest is used).', flag_values=fv, required=True)
  flags.DEFINE_string('out', None, 'Folder for the colourized images.', flag_values=fv,
                      required=True)
  flags.DEFINE_enum('format', 'png', ['png', 'jpg'], 'Output format.', flag_values=fv)
  flags.DEFINE_float('max-megapixels', configs.MAX_MEGAPIXELS, 'Refuse larger images.',
                     flag_values=fv)


def _run_colorize(fv: flags.FlagValues, args: List[str]) -> int:
  from pipeline import colorize  # pylint: disable=import-outside-toplevel
  if not args:
    raise flags.Error('give at least one INPUT: a file, a folder or a glob')
  failures = colorize.colorize_files(args, fv.model, fv.out, fv.format,
                                     fv['max-megapixels'].value)
  return 1 if failures else 0


COMMANDS: Dict[str, Tuple[Callable[[flags.FlagValues], None],
                          Callable[[flags.FlagValues, List[str]], int], str]] = {
    'ingest': (_ingest_flags, _run_ingest, 'photos -> Lab TFRecords with embeddings'),
    'run': (_run_flags, _run_run, 'the whole pipeline on this machine (LocalDagRunner)'),
    'colorize': (_colorize_flags, _run_colorize,
                 'INPUT... -> colour photos, with a trained model'),
}


def _usage() -> str:
  lines = ['usage: colorizer COMMAND [flags]   (colorizer COMMAND --help for its flags)', '']
  lines += [f'  {name:10s} {doc}' for name, (_, _, doc) in COMMANDS.items()]
  return '\n'.join(lines)


def main(argv: List[str] = None) -> int:
  argv = sys.argv if argv is None else argv
  if len(argv) < 2 or argv[1] in ('-h', '--help', 'help'):
    print(_usage())
    return 0 if len(argv) >= 2 else 2
  command = argv[1]
  if command not in COMMANDS:
    print(f'colorizer: unknown command {command!r}\n\n{_usage()}', file=sys.stderr)
    return 2
  define_flags, run, doc = COMMANDS[command]
  fv = flags.FlagValues()
  define_flags(fv)
  if any(arg in ('-h', '--help') for arg in argv[2:]):
    print(f'colorizer {command}: {doc}\n\n{fv.get_help()}')
    return 0
  logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')
  # Beam relays its workers' routine warnings (python-snappy, pickling); ours still show.
  logging.getLogger('apache_beam').setLevel(logging.ERROR)
  try:
    args = fv([f'colorizer {command}'] + argv[2:])[1:]
    return run(fv, args)
  except (flags.Error, ValueError) as e:
    print(f'colorizer {command}: error: {e}', file=sys.stderr)
    return 2


if __name__ == '__main__':
  sys.exit(main())
