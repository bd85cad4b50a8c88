"""`colorizer`: the command line of the colorization pipeline.

  colorizer ingest --data PHOTOS --out DIR            photos -> Lab TFRecords + report
  colorizer run --data PHOTOS --output-root DIR        ingest, train, evaluate, push
  colorizer colorize INPUT... --model DIR --out DIR    photos -> colour photos (a Beam job)
  colorizer evaluate --model DIR --data PHOTOS         metrics against the gray baseline
  colorizer serve --model outputs/serving_model        REST API + web page on :8501
  colorizer compile --output pipeline.yaml ...         for Kubeflow Pipelines / Vertex AI
  colorizer submit | schedule --package pipeline.yaml  run it once / on a cron schedule
  colorizer stage-weights --to gs://.../irv2.h5        ImageNet weights for offline clusters

`colorizer COMMAND --help` lists a command's flags.
"""
import logging
import os
import sys
import time
from typing import Callable, Dict, List, Tuple

from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')  # TensorFlow's C++ INFO lines are noise here.

from commands import cluster
from commands import options
from model import decoding
from pipeline import configs


def _ingest_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('data', None, 'Photos: a folder (all files below it), a glob, or '
                      'a gs:// folder or glob.', flag_values=fv, required=True)
  flags.DEFINE_string('out', None, 'Output folder (local or gs://); must be new or empty.',
                      flag_values=fv, required=True)
  options.embedding_weights_flag(fv)
  options.eval_percent_flag(fv)
  options.max_megapixels_flag(fv)
  options.crops_flag(fv)
  options.beam_arg_flag(fv)
  flags.DEFINE_string('record-cache', None, 'A folder (local or gs://) where each photo\'s '
                      'records are kept by content: a photo found there is read back, not '
                      'decoded and embedded again.', flag_values=fv)


def _run_ingest(fv: flags.FlagValues, args: List[str]) -> int:
  from components import ingest  # pylint: disable=import-outside-toplevel
  start = time.time()
  report = ingest.ingest(
      fv['data'].value, fv['out'].value, embedding_weights=fv['embedding-weights'].value,
      eval_percent=fv['eval-percent'].value, max_megapixels=fv['max-megapixels'].value,
      crops_per_image=fv['crops-per-image'].value,
      beam_args=list(configs.LOCAL_BEAM_ARGS) + fv['beam-arg'].value,
      record_cache=fv['record-cache'].value)
  _print_ingest_summary(report, fv['out'].value, time.time() - start)
  return 0


def _print_ingest_summary(report: dict, out: str, seconds: float) -> None:
  from model import records  # pylint: disable=import-outside-toplevel
  splits = ', '.join(f'{name} {count}' for name, count in report['splits'].items())
  rejected = sum(report['rejected'].values())
  reasons = ', '.join(f'{reason} {count}' for reason, count in report['rejected'].items())
  print(f'\nIngested {report["total"]} files in {seconds:.0f} s '
        f'({report["written"] / max(seconds, 1e-9):.1f} photos/s written)')
  examples = ', '.join(f'{name} {count}' for name, count in report['examples'].items())
  print(f'  written   {report["written"]:5d}  ({splits}; examples: {examples or "none"}'
        f'{"; " + str(report["reused"]) + " from the record cache" if report["reused"] else ""})')
  print(f'  rejected  {rejected:5d}  ({reasons or "none"})')
  from components import file_report  # pylint: disable=import-outside-toplevel
  for line in file_report.first_lines(
      [f'{entry["source"]}: {entry["reason"]}: {entry.get("detail", "")}'
       for entry in report['files'] if entry['status'] == 'rejected'], 'in the report'):
    print(f'    {line}')
  print(f'  records   {records.split_dir(out, "*")}/{records.RECORD_PREFIX}-*{records.RECORD_SUFFIX}')
  print(f'  report    {os.path.join(out, records.REPORT_FILE)}')
  print(f'  embedding weights  {report["embedding_weights"]}')


def _run_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('data', None, 'Photos: a folder, a glob, local or gs://; may hold '
                      '{SPAN} (e.g. photos/span-{SPAN}) to take the newest span.',
                      flag_values=fv, required=True)
  flags.DEFINE_string('output-root', None, 'Folder (on this machine: it holds the SQLite '
                      'metadata and a lock) for pipeline_root/, metadata.db, serving_model/ '
                      'and report.html.', flag_values=fv, required=True)
  flags.DEFINE_bool('next-steps', True, 'End with what to do next (`make demo` says it '
                    'after scoring the held-out photos: --nonext-steps).', flag_values=fv)
  options.training_flags(fv)


def _run_run(fv: flags.FlagValues, args: List[str]) -> int:
  from pipeline import run_log  # pylint: disable=import-outside-toplevel
  output_root = fv['output-root'].value
  run_log.check_local(output_root)
  log = run_log.path(output_root)
  start = time.time()
  print(f'Running the pipeline; the libraries\' messages go to {log}')
  busy = None
  with options.libraries_log(log):  # Before TensorFlow loads: its C++ runtime prints on import.
    from pipeline import local_runner  # pylint: disable=import-outside-toplevel
    try:
      verdict = local_runner.run(fv['data'].value, output_root, beam_args=fv['beam-arg'].value,
                                 **options.pipeline_options(fv))
    except local_runner.RunInProgress as e:
      busy = e  # Said once the terminal has its stderr back.
  if busy:
    print(f'colorizer run: {busy}', file=sys.stderr)
    return 3
  _print_verdict(verdict, local_runner.paths(output_root), time.time() - start,
                 fv['next-steps'].value)
  return 0


def _print_verdict(verdict: dict, where: Dict[str, str], seconds: float,
                   next_steps: bool = True) -> None:
  """The Evaluator's verdict, what was pushed, and what to do next."""
  ratio = verdict['ab_mse'] / verdict['gray_ab_mse'] if verdict['gray_ab_mse'] else float('nan')
  print(f'\nPipeline finished in {seconds:.0f} s')
  if not verdict['trained']:
    print(f'  Nothing new to train on: the served model ({verdict["served"]}) was trained on '
          'these records, by this training.')
    print(f'  log            {where["log"]}')
    return
  print(f'  Evaluator: {"BLESSED" if verdict["blessed"] else "NOT BLESSED"}: ab-MSE '
        f'{verdict["ab_mse"]:.4f} against gray\'s {verdict["gray_ab_mse"]:.4f} ({ratio:.2f}x)')
  for failure in verdict['failed']:
    print(f'    failed gate: {failure}')
  print(f'  Trained from {verdict["warm_started_from"] or "the initial weights"}')
  if verdict['pushed']:
    print(f'  Pushed {verdict["candidate"]}\n    as {verdict["served"]}')
  else:
    print(f'  Nothing pushed; serving {verdict["served"] or "no model yet"}')
  print(f'  log            {where["log"]}')
  if next_steps:
    print_next_steps(where['report'], where['serving_model'], bool(verdict['served']))


def print_next_steps(report: str, serving_model: str, served: bool,
                     colorizer: str = 'colorizer', held_out_grid: str = '') -> None:
  """What to do after a run: `colorizer run`'s last lines, and `make demo`'s."""
  print(f'\nNext:\n  open the report      {report}')
  if held_out_grid:
    print(f'  look at held-out     {held_out_grid} (gray input | model output | truth)')
  if served:
    print(f'  serve the model      {colorizer} serve --model {serving_model}\n'
          f'                       then open http://{configs.SERVE_HOST}:{configs.SERVE_PORT}/')
    colorized = os.path.join(os.path.dirname(report), 'colorized')
    print(f'  colourize photos     {colorizer} colorize PHOTOS... --model {serving_model} '
          f'--out {colorized}')
  else:
    print('  (nothing to serve yet: no model has passed the gates)')


def _colorize_flags(fv: flags.FlagValues) -> None:
  options.model_flag(fv)
  flags.DEFINE_string('out', None, 'Folder for the colourized photos (local or gs://): the '
                      'folders under each INPUT are mirrored here, with '
                      'colorize_report.json.', flag_values=fv, required=True)
  flags.DEFINE_enum('format', 'auto', ['auto', 'jpg', 'png'], 'Output format; auto: JPEG '
                    'for JPEG input (keeping its EXIF and ICC profile), else PNG (16-bit '
                    'for 16-bit input).', flag_values=fv)
  flags.DEFINE_integer('jpeg-quality', decoding.JPEG_QUALITY, 'Quality of JPEG output.',
                       lower_bound=1, upper_bound=100, flag_values=fv)
  flags.DEFINE_bool('overwrite', False, 'Colourize again inputs whose output exists '
                    '(by default they are skipped: a re-run resumes).', flag_values=fv)
  options.max_megapixels_flag(fv)
  flags.DEFINE_integer('batch-size', 16, 'Photos of the model\'s size per model call; a '
                       'large photo is a batch of its own.', lower_bound=1, flag_values=fv)
  options.beam_arg_flag(fv, ' With none, a single input file runs in this process (no worker '
                 'processes to start); Dataflow: docs/colorize.md.')
  options.log_flag(fv)


def _run_colorize(fv: flags.FlagValues, args: List[str]) -> int:
  if not args:
    raise flags.Error('give at least one INPUT: a file, a folder or a glob')
  start = time.time()
  with options.libraries_log(fv['log'].value):
    from commands import colorize  # pylint: disable=import-outside-toplevel
    report = colorize.colorize(
        args, fv['model'].value, fv['out'].value, fv['format'].value,
        jpeg_quality=fv['jpeg-quality'].value,
        overwrite=fv['overwrite'].value, max_megapixels=fv['max-megapixels'].value,
        beam_args=fv['beam-arg'].value, batch_size=fv['batch-size'].value)
  _print_colorize_summary(report, fv['out'].value, time.time() - start, colorize.REPORT_FILE)
  return 1 if report['rejected'] else 0


def _to_stderr(lines: List[str], more: str) -> None:
  """The first of `lines` on stderr, then how many more the report holds."""
  from components import file_report  # pylint: disable=import-outside-toplevel
  for line in file_report.first_lines(lines, more):
    print(f'colorizer colorize: {line}', file=sys.stderr)


def _print_colorize_summary(report: dict, out: str, seconds: float, report_file: str) -> None:
  """The first rejects and 16-bit files read at 8 bits on stderr, then the summary line
  that ends the run."""
  rejected = sum(report['rejected'].values())
  reasons = ', '.join(f'{reason} {count}' for reason, count in report['rejected'].items())
  eight_bits = report['read_at_8_bits']
  _to_stderr([f'{f["source"]}: {f["reason"]}: {f.get("detail", "")}'
              for f in report['files'] if f['status'] == 'rejected'], 'in the report')
  _to_stderr([f'{f["source"]}: read at 8 bits: {f["read_at_8_bits"]}'
              for f in report['files'] if 'read_at_8_bits' in f],
             'read at 8 bits in the report')
  print(f'Colourized {report["written"]} of {report["total"]} files into {out} in '
        f'{seconds:.0f} s with {report["model"]}: {report["skipped"]} skipped (already '
        f'done), {rejected} rejected'
        f'{f" ({reasons})" if reasons else ""}'
        f'{f"; 16-bit colour read at 8 bits: {eight_bits}" if eight_bits else ""}; '
        f'report {os.path.join(out, report_file)}')


def _evaluate_flags(fv: flags.FlagValues) -> None:
  options.model_flag(fv)
  flags.DEFINE_string('data', None, 'Colour photos to score on: a folder (all files below '
                      'it), a glob or a file, local or gs://. Use photos the model never '
                      'trained on.', flag_values=fv, required=True)
  flags.DEFINE_string('out', None, 'Also write the figures, and which files were scored or '
                      'skipped, to this JSON file.', flag_values=fv)
  flags.DEFINE_string('grid', None, 'Also write an image (.png or .jpg) of the first '
                      'photos: gray input | model output | truth.', flag_values=fv)
  options.max_megapixels_flag(fv)
  options.log_flag(fv)


def _run_evaluate(fv: flags.FlagValues, args: List[str]) -> int:
  with options.libraries_log(fv['log'].value):
    from commands import evaluate  # pylint: disable=import-outside-toplevel
    evaluate.run(fv['model'].value, fv['data'].value, fv['out'].value, fv['grid'].value,
                 fv['max-megapixels'].value)
  return 0


def _serve_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('model', None, 'Serving folder of numbered versions (what the '
                      'pipeline pushes to, e.g. outputs/serving_model), local or gs://.',
                      flag_values=fv, required=True)
  flags.DEFINE_string('host', configs.SERVE_HOST, 'Address to listen on (0.0.0.0: every '
                      'interface; think before exposing it).', flag_values=fv)
  flags.DEFINE_integer('port', configs.SERVE_PORT, 'Port (TF Serving\'s REST port by default).',
                       flag_values=fv)
  flags.DEFINE_string('model-name', configs.PIPELINE_NAME, 'The model name in the URLs.',
                      flag_values=fv)
  flags.DEFINE_float('max-upload-mb', configs.SERVE_MAX_UPLOAD_MB, 'Largest request body '
                     '(413 above it).', flag_values=fv)
  options.max_megapixels_flag(fv)
  flags.DEFINE_integer('max-batch', configs.SERVE_MAX_BATCH, 'Photos of concurrent requests '
                       'colourized together in one model call; twice as many requests are '
                       'read at once, the others wait their turn (bounds memory).',
                       lower_bound=1, flag_values=fv)
  flags.DEFINE_float('batch-timeout-ms', configs.SERVE_BATCH_TIMEOUT_MS, 'After a batch of '
                     'several photos, how long the next one waits for as many (TF Serving\'s '
                     'batch_timeout_micros); a lone client never waits. 0: batches take what '
                     'is queued.', lower_bound=0, flag_values=fv)
  flags.DEFINE_float('poll-seconds', configs.SERVE_POLL_SECONDS, 'How often to look for a '
                     'newly pushed version.', flag_values=fv)


def _run_serve(fv: flags.FlagValues, args: List[str]) -> int:
  try:
    from commands import serve  # pylint: disable=import-outside-toplevel
  except ModuleNotFoundError as e:
    raise flags.Error(f'colorizer serve needs the "serve" extra ({e.name} is missing): '
                      'pip install -c constraints.txt ".[serve]"') from None
  serve.serve(fv['model'].value, host=fv['host'].value, port=fv['port'].value,
              model_name=fv['model-name'].value,
              max_upload_mb=fv['max-upload-mb'].value,
              max_megapixels=fv['max-megapixels'].value,
              max_batch=fv['max-batch'].value, batch_timeout_ms=fv['batch-timeout-ms'].value,
              poll_seconds=fv['poll-seconds'].value)
  return 0


COMMANDS: Dict[str, Tuple[Callable[[flags.FlagValues], None],
                          Callable[[flags.FlagValues, List[str]], int], str]] = {
    'ingest': (_ingest_flags, _run_ingest, 'photos -> Lab TFRecords with embeddings'),
    'run': (_run_flags, _run_run, 'the whole pipeline on this machine (LocalDagRunner)'),
    'colorize': (_colorize_flags, _run_colorize,
                 'INPUT... -> colour photos, with a trained model'),
    'evaluate': (_evaluate_flags, _run_evaluate,
                 'a model\'s metrics and the gray baseline\'s on a folder of photos'),
    'serve': (_serve_flags, _run_serve,
              'TF Serving\'s REST API and a web page over the pushed models'),
    'compile': (cluster.compile_flags, cluster.run_compile,
                'the pipeline for Kubeflow Pipelines (.yaml) or Vertex AI (.json)'),
    'submit': (cluster.submit_flags, cluster.run_submit,
               'run a compiled pipeline once (KFP or Vertex AI)'),
    'schedule': (cluster.schedule_flags, cluster.run_schedule,
                 'run a compiled pipeline on a cron schedule'),
    'stage-weights': (cluster.stage_weights_flags, cluster.run_stage_weights,
                      'copy Inception-ResNet-v2 weights to a bucket, for offline clusters'),
}

TAKES_ARGUMENTS = ('colorize',)  # INPUT...; every other command takes flags only


def _usage() -> str:
  lines = ['usage: colorizer COMMAND [flags]   (colorizer COMMAND --help for its flags)', '']
  lines += [f'  {name:14s} {doc}' for name, (_, _, doc) in COMMANDS.items()]
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
    if args and command not in TAKES_ARGUMENTS:
      raise flags.Error(f'unexpected arguments: {" ".join(args)}')
    return run(fv, args)
  except (flags.Error, ValueError) as e:
    print(f'colorizer {command}: error: {e}', file=sys.stderr)
    return 2


if __name__ == '__main__':
  sys.exit(main())
