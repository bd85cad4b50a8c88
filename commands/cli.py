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
import contextlib
import logging
import os
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')  # TensorFlow's C++ INFO lines are noise here.

from model import decoding
from model import hyperparameters as hp
from pipeline import configs


def _max_megapixels_flag(fv: flags.FlagValues) -> None:
  flags.DEFINE_float('max-megapixels', decoding.DEFAULT_MAX_MEGAPIXELS, 'Larger photos are '
                     'refused, judged from their header before any pixel is decoded.',
                     flag_values=fv)


def _crops_flag(fv: flags.FlagValues) -> None:
  flags.DEFINE_integer('crops-per-image', configs.CROPS_PER_IMAGE, 'Examples written per '
                       'photo: the centred square, then squares of 1/2 to 1 times the short '
                       'side at random (but repeatable) positions. All crops of a photo go '
                       'to its split.', lower_bound=1, flag_values=fv)


def _embedding_weights_flag(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('embedding-weights', hp.DEFAULTS[hp.EMBEDDING_WEIGHTS],
                      'Inception-ResNet-v2 weights: imagenet (downloads once through Keras), '
                      'none (random; colour quality needs real weights), auto (imagenet when '
                      'available, else none), or the path or gs:// uri of an .h5 file.',
                      flag_values=fv)


def _eval_percent_flag(fv: flags.FlagValues) -> None:
  flags.DEFINE_integer('eval-percent', configs.EVAL_PERCENT, 'Percent of photos (chosen by '
                       'content hash, so stable across runs) in Split-eval.', flag_values=fv)


def _beam_arg_flag(fv: flags.FlagValues, note: str = '') -> None:
  flags.DEFINE_multi_string('beam-arg', [], 'A Beam pipeline option, e.g. '
                            f'--beam-arg=--direct_num_workers=2; repeatable.{note}',
                            flag_values=fv)


def _ingest_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('data', None, 'Photos: a folder (all files below it), a glob, or '
                      'a gs:// folder or glob.', flag_values=fv, required=True)
  flags.DEFINE_string('out', None, 'Output folder (local or gs://); must be new or empty.',
                      flag_values=fv, required=True)
  _embedding_weights_flag(fv)
  _eval_percent_flag(fv)
  _max_megapixels_flag(fv)
  _crops_flag(fv)
  _beam_arg_flag(fv)
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


def _training_flags(fv: flags.FlagValues) -> None:
  """The pipeline's knobs, shared by `run` (this machine) and `compile` (a cluster)."""
  flags.DEFINE_integer('train-steps', configs.TRAIN_STEPS, 'Training steps.', flag_values=fv)
  flags.DEFINE_integer('eval-steps', configs.EVAL_STEPS, 'Validation steps per epoch.',
                       flag_values=fv)
  _embedding_weights_flag(fv)
  flags.DEFINE_integer('batch-size', hp.DEFAULTS[hp.BATCH_SIZE], 'Batch size per replica.',
                       flag_values=fv)
  flags.DEFINE_float('learning-rate', hp.DEFAULTS[hp.LEARNING_RATE], 'Adam learning rate '
                     '(the peak, with --lr-schedule cosine).', flag_values=fv)
  flags.DEFINE_enum('lr-schedule', hp.DEFAULTS[hp.LR_SCHEDULE], hp.LR_SCHEDULES,
                    'constant, or cosine: a warm-up over the first 5% of the steps, then a '
                    'cosine decay to 0.', flag_values=fv)
  flags.DEFINE_enum('loss', hp.DEFAULTS[hp.LOSS], hp.LOSSES, 'mse (mean squared error), or rarity: '
                    'MSE weighted towards rarer, more saturated colours (Zhang et al. '
                    '2016), against the brown average of MSE colourizers.', flag_values=fv)
  flags.DEFINE_integer('epochs', hp.DEFAULTS[hp.EPOCHS], 'Epochs (checkpoints) the steps '
                       'are spread over.', flag_values=fv)
  flags.DEFINE_integer('seed', hp.DEFAULTS[hp.SEED], 'Seed of the initial weights, the '
                       'shuffling and the flips: the same photos and flags train the same '
                       'model.', flag_values=fv)
  flags.DEFINE_float('warm-learning-rate', hp.DEFAULTS[hp.WARM_LEARNING_RATE], 'A warm-started '
                     'run\'s peak learning rate.', flag_values=fv)
  flags.DEFINE_integer('warm-steps', hp.DEFAULTS[hp.WARM_STEPS], 'A warm-started run\'s '
                       'training steps (0: --train-steps).', lower_bound=0, flag_values=fv)
  flags.DEFINE_float('warm-warmup', hp.DEFAULTS[hp.WARM_WARMUP], 'A warm-started run\'s '
                     'share of its steps spent raising the rate from 0.', flag_values=fv)
  _eval_percent_flag(fv)
  _crops_flag(fv)
  flags.DEFINE_float('min-improvement-over-gray', configs.MIN_IMPROVEMENT_OVER_GRAY,
                     'Gate: ab-MSE must be at most (1 - this) x the gray baseline\'s.',
                     flag_values=fv)
  flags.DEFINE_float('max-regression', configs.MAX_REGRESSION, 'Gate: ab-MSE may exceed '
                     'the served model\'s by at most this share of it (0.01: 1%).',
                     flag_values=fv)
  flags.DEFINE_integer('keep-versions', configs.KEEP_VERSIONS, 'Pushed versions to keep.',
                       flag_values=fv)
  flags.DEFINE_integer('window-spans', configs.WINDOW_SPANS, 'With --data .../span-{SPAN}: '
                       'train on the newest this many spans (their eval splits are the '
                       'gate\'s).', lower_bound=1, flag_values=fv)
  flags.DEFINE_bool('warm-start', True, 'Start training from the served model (the newest '
                    'version in the serving directory); --nowarm-start: from the initial '
                    'weights.', flag_values=fv)
  flags.DEFINE_string('base-model', '', 'Fine-tune this model (a SavedModel exported by this '
                      'pipeline, or a serving folder) while nothing is served yet; the first '
                      'candidate must beat it on your eval photos.', flag_values=fv)
  flags.DEFINE_string('record-cache', None, 'Where ingestion keeps each photo\'s records, so '
                      'that no photo is decoded and embedded twice (default: '
                      f'<pipeline root>/{configs.RECORD_CACHE_DIR}; \'\' for none).',
                      flag_values=fv)
  _beam_arg_flag(fv)


def _pipeline_options(fv: flags.FlagValues) -> dict:
  """create_pipeline's keyword arguments from _training_flags."""
  return dict(
      embedding_weights=fv['embedding-weights'].value, eval_percent=fv['eval-percent'].value,
      crops_per_image=fv['crops-per-image'].value,
      train_steps=fv['train-steps'].value, eval_steps=fv['eval-steps'].value,
      hyperparameters={hp.BATCH_SIZE: fv['batch-size'].value,
                       hp.LEARNING_RATE: fv['learning-rate'].value,
                       hp.LR_SCHEDULE: fv['lr-schedule'].value, hp.LOSS: fv['loss'].value,
                       hp.EPOCHS: fv['epochs'].value, hp.SEED: fv['seed'].value,
                       hp.WARM_LEARNING_RATE: fv['warm-learning-rate'].value,
                       hp.WARM_STEPS: fv['warm-steps'].value,
                       hp.WARM_WARMUP: fv['warm-warmup'].value},
      min_improvement_over_gray=fv['min-improvement-over-gray'].value,
      max_regression=fv['max-regression'].value, keep_versions=fv['keep-versions'].value,
      window_spans=fv['window-spans'].value, warm_start=fv['warm-start'].value,
      base_model=fv['base-model'].value, record_cache=fv['record-cache'].value)


def _run_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('data', None, 'Photos: a folder, a glob, local or gs://; may hold '
                      '{SPAN} (e.g. photos/span-{SPAN}) to take the newest span.',
                      flag_values=fv, required=True)
  flags.DEFINE_string('output-root', None, 'Folder (on this machine: it holds the SQLite '
                      'metadata and a lock) for pipeline_root/, metadata.db, serving_model/ '
                      'and report.html.', flag_values=fv, required=True)
  flags.DEFINE_bool('next-steps', True, 'End with what to do next (`make demo` says it '
                    'after scoring the held-out photos: --nonext-steps).', flag_values=fv)
  _training_flags(fv)


def _run_run(fv: flags.FlagValues, args: List[str]) -> int:
  from pipeline import run_log  # pylint: disable=import-outside-toplevel
  output_root = fv['output-root'].value
  run_log.check_local(output_root)
  log = run_log.path(output_root)
  start = time.time()
  print(f'Running the pipeline; the libraries\' messages go to {log}')
  busy = None
  with _libraries_log(log):  # Before TensorFlow loads: its C++ runtime prints on import.
    from pipeline import local_runner  # pylint: disable=import-outside-toplevel
    try:
      verdict = local_runner.run(fv['data'].value, output_root, beam_args=fv['beam-arg'].value,
                                 **_pipeline_options(fv))
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


def _log_flag(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('log', None, 'Send the libraries\' messages (TensorFlow\'s C++ runtime, '
                      'Google\'s warnings) to this local file instead of the terminal; '
                      'errors still reach the terminal.', flag_values=fv)


def _libraries_log(path: Optional[str]):
  """run_log.to_file(path) if a path is given (enter it before TensorFlow loads)."""
  if not path:
    return contextlib.nullcontext()
  from pipeline import run_log  # pylint: disable=import-outside-toplevel
  return run_log.to_file(path)


def _model_flag(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('model', None, 'A SavedModel folder, or a serving folder of numbered '
                      'versions (the highest is used), local or gs://.', flag_values=fv,
                      required=True)


def _colorize_flags(fv: flags.FlagValues) -> None:
  _model_flag(fv)
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
  _max_megapixels_flag(fv)
  flags.DEFINE_integer('batch-size', 16, 'Photos of the model\'s size per model call; a '
                       'large photo is a batch of its own.', lower_bound=1, flag_values=fv)
  _beam_arg_flag(fv, ' With none, a single input file runs in this process (no worker '
                 'processes to start); Dataflow: docs/colorize.md.')
  _log_flag(fv)


def _run_colorize(fv: flags.FlagValues, args: List[str]) -> int:
  if not args:
    raise flags.Error('give at least one INPUT: a file, a folder or a glob')
  start = time.time()
  with _libraries_log(fv['log'].value):
    from commands import colorize  # pylint: disable=import-outside-toplevel
    report = colorize.colorize(
        args, fv['model'].value, fv['out'].value, fv['format'].value,
        jpeg_quality=fv['jpeg-quality'].value,
        overwrite=fv['overwrite'].value, max_megapixels=fv['max-megapixels'].value,
        beam_args=fv['beam-arg'].value, batch_size=fv['batch-size'].value)
  colorize.print_summary(report, fv['out'].value, time.time() - start)
  return 1 if report['rejected'] else 0


def _evaluate_flags(fv: flags.FlagValues) -> None:
  _model_flag(fv)
  flags.DEFINE_string('data', None, 'Colour photos to score on: a folder (all files below '
                      'it), a glob or a file, local or gs://. Use photos the model never '
                      'trained on.', flag_values=fv, required=True)
  flags.DEFINE_string('out', None, 'Also write the figures, and which files were scored or '
                      'skipped, to this JSON file.', flag_values=fv)
  flags.DEFINE_string('grid', None, 'Also write an image (.png or .jpg) of the first '
                      'photos: gray input | model output | truth.', flag_values=fv)
  _max_megapixels_flag(fv)
  _log_flag(fv)


def _run_evaluate(fv: flags.FlagValues, args: List[str]) -> int:
  with _libraries_log(fv['log'].value):
    from commands import evaluate  # pylint: disable=import-outside-toplevel
    evaluate.run(fv['model'].value, fv['data'].value, fv['out'].value, fv['grid'].value,
                 fv['max-megapixels'].value)
  return 0


def _compile_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('output', None, 'pipeline.yaml (the PipelineSpec Kubeflow Pipelines '
                      'takes) or pipeline.json (the PipelineJob Vertex AI takes).',
                      flag_values=fv, required=True)
  flags.DEFINE_string('pipeline-root', None, 'gs:// folder for the pipeline\'s artifacts.',
                      flag_values=fv, required=True)
  flags.DEFINE_string('data', None, 'gs:// folder or glob of photos; may hold {SPAN} '
                      '(gs://bucket/photos/span-{SPAN}) so each run takes the newest span.',
                      flag_values=fv, required=True)
  flags.DEFINE_string('serving-dir', None, 'Where blessed models are pushed (default: '
                      '<pipeline-root>/serving_model).', flag_values=fv)
  flags.DEFINE_string('image', configs.PIPELINE_IMAGE, 'The image built from '
                      'kubeflow/Dockerfile that every step runs in.', flag_values=fv)
  flags.DEFINE_string('gpu-type', None, 'The Trainer\'s GPU model, as Vertex AI names it: '
                      f'{", ".join(configs.GPU_TYPES)}. The .json asks Vertex AI for it; the '
                      f'.yaml asks Kubernetes for {configs.KUBERNETES_GPU_RESOURCE} on nodes '
                      'that --gpu-node-selector picks. None: train on CPU.', flag_values=fv)
  flags.DEFINE_integer('gpu-count', configs.TRAINER_GPU_COUNT, 'GPUs for the Trainer.',
                       flag_values=fv)
  flags.DEFINE_string('gpu-node-selector', None, 'Kubeflow Pipelines (.yaml): the node '
                      'label KEY=VALUE of nodes with that GPU (default: GKE\'s, '
                      f'{configs.GKE_ACCELERATOR_LABEL}=nvidia-tesla-t4 for NVIDIA_TESLA_T4), '
                      'or none.', flag_values=fv)
  flags.DEFINE_float('trainer-cpu', configs.TRAINER_CPU_LIMIT, 'vCPUs for the Trainer.',
                     flag_values=fv)
  flags.DEFINE_float('trainer-memory-gb', configs.TRAINER_MEMORY_LIMIT_GB, 'Memory (GB) '
                     'for the Trainer.', flag_values=fv)
  launcher = configs.DATAFLOW_LAUNCHER_RESOURCES
  for step, what, (cpu, memory) in (('ingest', 'ingestion', configs.INGEST_RESOURCES),
                                    ('evaluator', 'the Evaluator', configs.EVALUATOR_RESOURCES)):
    flags.DEFINE_float(f'{step}-cpu', None, f'vCPUs for {what}, and its Beam workers with '
                       f'the DirectRunner (default {cpu}; with Dataflow {launcher[0]}).',
                       flag_values=fv)
    flags.DEFINE_float(f'{step}-memory-gb', None, f'Memory (GB) for {what} (default '
                       f'{memory}; with Dataflow {launcher[1]}).', flag_values=fv)
  flags.DEFINE_string('beam-runner', 'DirectRunner', 'Beam runner of the ingestion and '
                      'Evaluator steps: DirectRunner (inside the step\'s container) or '
                      'DataflowRunner.', flag_values=fv)
  flags.DEFINE_string('project', None, 'Google Cloud project (Dataflow).', flag_values=fv)
  flags.DEFINE_string('region', None, 'Dataflow region, e.g. us-central1.', flag_values=fv)
  flags.DEFINE_string('temp-location', None, 'gs:// folder for Dataflow\'s temporary files.',
                      flag_values=fv)
  _training_flags(fv)


def _run_compile(fv: flags.FlagValues, args: List[str]) -> int:
  from pipeline import kubeflow_runner  # pylint: disable=import-outside-toplevel
  root = fv['pipeline-root'].value
  if '://' not in root:
    raise flags.Error(f'--pipeline-root {root!r}: every step runs on another machine; '
                      'give a gs:// folder')
  runner = fv['beam-runner'].value
  job = kubeflow_runner.compile_pipeline(
      fv['output'].value, root, fv['data'].value, serving_dir=fv['serving-dir'].value,
      image=fv['image'].value,
      resources=kubeflow_runner.step_resources(runner, **{
          f'{step}_{unit.replace("-", "_")}': fv[f'{step}-{unit}'].value
          for step in ('trainer', 'ingest', 'evaluator') for unit in ('cpu', 'memory-gb')}),
      gpu_spec=kubeflow_runner.gpu(fv['gpu-type'].value, fv['gpu-count'].value,
                                   fv['gpu-node-selector'].value),
      beam_pipeline_args=kubeflow_runner.beam_args(
          runner, fv['project'].value, fv['region'].value, fv['temp-location'].value,
          image=fv['image'].value, extra=fv['beam-arg'].value),
      **_pipeline_options(fv))
  steps = ', '.join(sorted(job['pipelineSpec']['root']['dag']['tasks']))
  print(f'Wrote {fv["output"].value} ({steps}), image {fv["image"].value}')
  return 0


def _orchestrator_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('package', None, 'The file `colorizer compile` wrote (.yaml for '
                      'Kubeflow Pipelines; .json or .yaml for Vertex AI).', flag_values=fv,
                      required=True)
  flags.DEFINE_string('host', None, 'Kubeflow Pipelines endpoint, e.g. '
                      'http://localhost:8080 after `kubectl port-forward`.', flag_values=fv)
  flags.DEFINE_string('experiment', configs.PIPELINE_NAME, 'KFP experiment.', flag_values=fv)
  flags.DEFINE_bool('vertex', False, 'Submit to Vertex AI Pipelines instead (with '
                    '--project and --region).', flag_values=fv)
  flags.DEFINE_string('project', None, 'Google Cloud project (Vertex AI).', flag_values=fv)
  flags.DEFINE_string('region', None, 'Vertex AI region, e.g. us-central1.', flag_values=fv)
  flags.DEFINE_string('service-account', None, 'Service account the Vertex AI run uses.',
                      flag_values=fv)
  flags.DEFINE_string('api-endpoint', None, 'Vertex AI API endpoint, for private '
                      'endpoints (default: the region\'s public one).', flag_values=fv)


def _check_orchestrator(fv: flags.FlagValues) -> None:
  if fv['vertex'].value and not (fv['project'].value and fv['region'].value):
    raise flags.Error('--vertex needs --project and --region')
  if not fv['vertex'].value and not fv['host'].value:
    raise flags.Error('give --host (Kubeflow Pipelines) or --vertex --project --region')


def _submit_flags(fv: flags.FlagValues) -> None:
  _orchestrator_flags(fv)
  flags.DEFINE_string('run-name', None, 'Name of the run (default: the package name and '
                      'the time).', flag_values=fv)


def _run_submit(fv: flags.FlagValues, args: List[str]) -> int:
  from commands import submit  # pylint: disable=import-outside-toplevel
  _check_orchestrator(fv)
  if fv['vertex'].value:
    done = submit.submit_vertex(fv['package'].value, fv['project'].value, fv['region'].value,
                                run_name=fv['run-name'].value or configs.PIPELINE_NAME,
                                service_account=fv['service-account'].value,
                                api_endpoint=fv['api-endpoint'].value)
  else:
    done = submit.submit_kfp(fv['host'].value, fv['package'].value, fv['experiment'].value,
                             fv['run-name'].value)
  print(f'Submitted run {done.id}\n  {done.link}')
  return 0


def _schedule_flags(fv: flags.FlagValues) -> None:
  _orchestrator_flags(fv)
  flags.DEFINE_string('cron', None, 'When to run, as cron "minute hour day month weekday" '
                      '(e.g. "0 3 * * 1": Mondays 03:00); Vertex AI also takes a '
                      '"TZ=Europe/Berlin " prefix.', flag_values=fv, required=True)
  flags.DEFINE_string('name', f'{configs.PIPELINE_NAME} retraining', 'Name of the schedule.',
                      flag_values=fv)


def _run_schedule(fv: flags.FlagValues, args: List[str]) -> int:
  from commands import submit  # pylint: disable=import-outside-toplevel
  _check_orchestrator(fv)
  if fv['vertex'].value:
    done = submit.schedule_vertex(fv['package'].value, fv['project'].value,
                                  fv['region'].value, fv['cron'].value, fv['name'].value,
                                  service_account=fv['service-account'].value,
                                  api_endpoint=fv['api-endpoint'].value)
  else:
    done = submit.schedule_kfp(fv['host'].value, fv['package'].value, fv['cron'].value,
                               fv['experiment'].value, fv['name'].value)
  print(f'Scheduled {done.id} ({fv["cron"].value}; at most one run at a time, no catch-up)\n'
        f'  {done.link}')
  return 0


def _stage_weights_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('to', None, 'Destination .h5 (gs://bucket/weights/'
                      'inception_resnet_v2.h5, or a path).', flag_values=fv, required=True)
  flags.DEFINE_string('from', None, 'Weights file to stage (default: the ImageNet weights '
                      'in the Keras cache, downloaded there first if missing).',
                      flag_values=fv)


def _run_stage_weights(fv: flags.FlagValues, args: List[str]) -> int:
  from model import embedding  # pylint: disable=import-outside-toplevel
  weights = embedding.stage_weights(fv['to'].value, fv['from'].value)
  print(f'Staged {weights.uri} (sha256 {weights.fingerprint})\n'
        f'  use it with --embedding-weights {weights.uri}')
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
  _max_megapixels_flag(fv)
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
    'compile': (_compile_flags, _run_compile,
                'the pipeline for Kubeflow Pipelines (.yaml) or Vertex AI (.json)'),
    'submit': (_submit_flags, _run_submit, 'run a compiled pipeline once (KFP or Vertex AI)'),
    'schedule': (_schedule_flags, _run_schedule, 'run a compiled pipeline on a cron schedule'),
    'stage-weights': (_stage_weights_flags, _run_stage_weights,
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
