"""report.html: the latest run's evaluation, and every run's, read back from MLMD.

The candidate's metrics against the gray baseline and the served model, the gate
decision, what is being served, a grid of eval photos (gray input, model output,
truth), and the history of the runs in this metadata: each candidate's, served model's
and gray baseline's ab-MSE on its eval split, which runs pushed, and the chain of warm
starts. The page is report.html, a template beside this module.
"""
import base64
import datetime
import html
import io
import os
import string
from typing import Dict, List, Optional, Tuple

import numpy as np
from google.protobuf import text_format
from PIL import Image
import tensorflow as tf
import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2
from tfx.components.evaluator import constants as evaluator_properties
from tfx.orchestration import metadata
from tfx import v1 as tfx

from components import trainer as trainer_component
from model import internals
from model import metrics
from model import records
from model import scaling
from model import serving
from pipeline import photo_grid

PAGE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'report.html')


def _newest(store, type_name: str):
  artifacts = store.get_artifacts_by_type(type_name)
  return max(artifacts, key=lambda a: a.id) if artifacts else None


def _metrics(evaluation_uri: str, model_name: Optional[str] = None) -> Dict[str, float]:
  result = tfma.load_eval_result(evaluation_uri, model_name=model_name)
  values = {}
  for _, by_output in result.slicing_metrics:
    for name, value in by_output[''][''].items():
      values[name] = float(value.get('doubleValue', next(iter(value.values()))))
  return values


def _png(rgb: np.ndarray) -> str:
  buffer = io.BytesIO()
  Image.fromarray(rgb).save(buffer, 'PNG')
  return 'data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode()


def _grid(examples_uri: str, model_uri: str) -> List[Dict[str, str]]:
  files = tf.io.gfile.glob(os.path.join(records.split_dir(examples_uri, 'eval'), '*'))
  centred = {'crop': records.FEATURES['crop']}  # One crop per photo: the centred square.
  serialized = [r.numpy() for r in tf.data.TFRecordDataset(files, records.COMPRESSION)
                .filter(lambda r: tf.io.parse_single_example(r, centred)['crop'] == 0)
                .take(photo_grid.PHOTOS)]
  if not serialized:
    return []
  features = records.parse(tf.constant(serialized))
  signatures = tf.saved_model.load(os.path.join(model_uri, 'Format-Serving')).signatures
  predicted = scaling.unscale_ab(
      signatures[serving.FROM_EXAMPLES](examples=tf.constant(serialized))['ab'])
  rows = photo_grid.rows(features['l'], predicted, features['ab'])
  return [{'source': source.decode(), **{key: _png(picture) for key, picture in row.items()}}
          for source, row in zip(features['source'].numpy(), rows)]


def _blessed(blessing) -> bool:
  key = evaluator_properties.ARTIFACT_PROPERTY_BLESSED_KEY
  return blessing.custom_properties[key].int_value == 1


def _has_baseline(blessing) -> bool:
  """Whether the Evaluator compared the candidate with a served (or base) model."""
  return evaluator_properties.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY in blessing.custom_properties


def _outputs(store, execution_id: int) -> Dict[str, object]:
  """{output key: artifact} of an execution (a cached one's are the earlier outputs)."""
  events = [e for e in store.get_events_by_execution_ids([execution_id])
            if e.type == metadata_store_pb2.Event.OUTPUT]
  artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
  return {e.path.steps[0].key: artifacts[e.artifact_id] for e in events}


def _runs(store) -> List[Tuple[object, Dict[str, object]]]:
  """[(pipeline run context, {node id: its execution in that run})], oldest first."""
  runs = []
  for run in sorted(store.get_contexts_by_type('pipeline_run'), key=lambda c: c.id):
    by_node = {}
    for execution in store.get_executions_by_context(run.id):
      for context in store.get_contexts_by_execution(execution.id):
        if context.type == 'node':
          by_node[context.name.split('.')[-1]] = execution
    runs.append((run, by_node))
  return runs


def _stopped_after_ingestion(store) -> bool:
  """Whether the newest run had nothing new to train on: its records and training are
  those the served model came from (the Examples' `retrain` is 0)."""
  runs = _runs(store)
  if not runs or 'Trainer' in runs[-1][1] or 'PhotoExampleGen' not in runs[-1][1]:
    return False
  examples = _outputs(store, runs[-1][1]['PhotoExampleGen'].id).get('examples')
  return (examples is not None and 'retrain' in examples.custom_properties
          and examples.custom_properties['retrain'].int_value == 0)


def history(store) -> List[Dict]:
  """One row per pipeline run that got as far as the Evaluator, oldest first: its
  spans, the candidate's, served model's and gray baseline's ab-MSE on its eval split,
  whether it was blessed and pushed, what its training started from."""
  done = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
  rows = []
  for run, by_node in _runs(store):
    evaluator = by_node.get('Evaluator')
    if evaluator is None or evaluator.last_known_state not in done:
      continue
    evaluated = _outputs(store, evaluator.id)
    blessing = evaluated['blessing']
    has_baseline = _has_baseline(blessing)
    candidate = _metrics(evaluated['evaluation'].uri, 'candidate' if has_baseline else None)
    served = (_metrics(evaluated['evaluation'].uri, 'baseline') if has_baseline else {})
    model = _outputs(store, by_node['Trainer'].id).get('model') if 'Trainer' in by_node else None
    examples = (_outputs(store, by_node['PhotoExampleGen'].id).get('examples')
                if 'PhotoExampleGen' in by_node else None)
    pushed = (_outputs(store, by_node['AtomicPusher'].id).get('pushed_model')
              if 'AtomicPusher' in by_node else None)
    rows.append({
        'started': datetime.datetime.fromtimestamp(run.create_time_since_epoch / 1000)
                   .isoformat(timespec='minutes'),
        'spans': (examples.custom_properties['spans'].string_value
                  if examples is not None and 'spans' in examples.custom_properties else ''),
        'candidate': candidate.get('ab_mse'), 'gray': candidate.get('gray_ab_mse'),
        'served': served.get('ab_mse'),
        'blessed': _blessed(blessing),
        'pushed': (pushed.custom_properties[internals.PUSHED_VERSION].string_value
                   if pushed is not None
                   and pushed.custom_properties[internals.PUSHED].int_value == 1 else None),
        'warm_started_from': (model.custom_properties[
            trainer_component.WARM_STARTED_FROM_KEY].string_value if model is not None and
            trainer_component.WARM_STARTED_FROM_KEY in model.custom_properties else ''),
        'cached': evaluator.last_known_state == metadata_store_pb2.Execution.CACHED,
    })
  return rows


def _chart(rows: List[Dict], width: int = 640, height: int = 220) -> str:
  """An SVG line chart of the candidate's, served model's and gray baseline's ab-MSE
  per run; a dot marks each run that pushed."""
  series = (('candidate', '#1f5fbf'), ('served', '#2a8a2a'), ('gray', '#888'))
  values = [row[key] for row in rows for key, _ in series if row[key] is not None]
  if len(rows) < 2 or not values:
    return ''
  top, pad = max(values) * 1.1, 30
  x = lambda i: pad + i * (width - 2 * pad) / (len(rows) - 1)
  y = lambda v: height - pad - v / top * (height - 2 * pad)
  parts = [f'<svg width="{width}" height="{height}" role="img" '
           'aria-label="ab-MSE per run">',
           f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
           'stroke="#ccc"/>',
           f'<text x="{pad}" y="{pad - 10}" font-size="11">ab-MSE (0 to {top:.4f})</text>']
  for key, colour in series:
    points = ' '.join(f'{x(i):.1f},{y(row[key]):.1f}' for i, row in enumerate(rows)
                      if row[key] is not None)
    parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                 f'points="{points}"><title>{key}</title></polyline>')
  for i, row in enumerate(rows):
    if row['pushed']:
      parts.append(f'<circle cx="{x(i):.1f}" cy="{y(row["candidate"]):.1f}" r="4" '
                   f'fill="#1f5fbf"><title>run {i + 1} pushed {row["pushed"]}</title></circle>')
    parts.append(f'<text x="{x(i) - 3:.1f}" y="{height - pad + 14}" font-size="11">{i + 1}</text>')
  parts.append('</svg>')
  return ''.join(parts)


def _history_rows(rows: List[Dict]) -> str:
  def cell(value):
    return '' if value is None else f'{value:.4f}'

  return ''.join(
      f'<tr><td>{i + 1}</td><td>{html.escape(row["started"])}</td>'
      f'<td>{html.escape(row["spans"])}</td><td>{cell(row["candidate"])}</td>'
      f'<td>{cell(row["served"])}</td><td>{cell(row["gray"])}</td>'
      f'<td>{"yes" if row["blessed"] else "no"}{" (cached)" if row["cached"] else ""}</td>'
      f'<td>{html.escape(row["pushed"] or "")}</td>'
      f'<td>{html.escape(os.path.basename(row["warm_started_from"]) or "initial weights")}</td>'
      '</tr>' for i, row in enumerate(rows))


def write_report(metadata_path: str, serving_dir: str, report_path: str) -> dict:
  """Writes report.html; returns the verdict for the terminal: blessed, the candidate's
  and the gray baseline's ab-MSE, the failed gates and the newest served version."""
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
  with metadata.Metadata(connection) as m:
    store = m.store
    evaluation = _newest(store, 'ModelEvaluation')
    blessing = _newest(store, 'ModelBlessing')
    examples = _newest(store, 'Examples')
    if evaluation is None or blessing is None:
      raise RuntimeError(f'{metadata_path} holds no evaluation: the pipeline did not get '
                         'that far')
    runs = history(store)
    stopped = _stopped_after_ingestion(store)

  blessed = _blessed(blessing)
  pushed = runs[-1]['pushed'] if runs else None
  candidate_uri = blessing.custom_properties[
      evaluator_properties.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY].string_value
  has_baseline = _has_baseline(blessing)
  candidate = _metrics(evaluation.uri, 'candidate' if has_baseline else None)
  baseline = _metrics(evaluation.uri, 'baseline') if has_baseline else {}
  validation = tfma.load_validation_result(evaluation.uri)
  failed = [f'{failure.metric_key.name} = {failure.metric_value.double_value.value:.4f} fails '
            f'{text_format.MessageToString(failure.metric_threshold, as_one_line=True)}'
            for per_slice in validation.metric_validations_per_slice
            for failure in per_slice.failures]
  failures = [html.escape(failure) for failure in failed]
  versions = serving.numbered_versions(serving_dir)

  def cell(value: Optional[float]) -> str:
    return 'none yet' if value is None else f'{value:.4f}'

  metric_rows = ''.join(
      f'<tr><td>{label}</td><td>{cell(candidate.get(key))}</td>'
      f'<td>{cell(candidate.get("gray_" + key))}</td><td>{cell(baseline.get(key))}</td></tr>'
      for key, label in metrics.REPORTED)
  grid_rows = ''.join(
      '<tr>' + ''.join(f'<td><img src="{photo[key]}"></td>' for key, _ in photo_grid.COLUMNS)
      + f'<td>{html.escape(photo["source"])}</td></tr>'
      for photo in _grid(examples.uri, candidate_uri))
  if blessed and pushed:
    decision = f'<b class="ok">BLESSED</b> and pushed as version {html.escape(pushed)}'
  elif blessed:  # The Pusher refuses a blessing that a newer push has made stale.
    decision = ('<b class="ok">BLESSED</b>, but not pushed: another model was served by '
                'then (see the log)')
  else:
    decision = '<b class="bad">NOT BLESSED</b>, not pushed'
  warm = runs[-1]['warm_started_from'] if runs else ''
  decision += (f'. Its training started from <code>{html.escape(warm)}</code>' if warm else
               '. Its training started from the initial weights')
  if stopped:
    decision = ('<b>The latest run trained nothing</b>: the served model was trained on '
                'the same records, by the same training. The last evaluation: ' + decision)
  with open(PAGE_FILE, encoding='utf-8') as f:
    page = string.Template(f.read()).substitute(
        side=photo_grid.SIDE, written=datetime.datetime.now().isoformat(timespec='seconds'),
        candidate=html.escape(candidate_uri), decision=decision,
        ratio=f'{candidate.get("ab_mse_vs_gray", float("nan")):.3f}',
        failed_gates=('<p>Failed gates:</p><ul>' + ''.join(f'<li>{f}</li>' for f in failures)
                      + '</ul>') if failures else '',
        serving_dir=html.escape(serving_dir), versions=versions or 'none',
        metric_rows=metric_rows,
        grid_titles=''.join(f'<th>{title}</th>' for _, title in photo_grid.COLUMNS),
        grid_rows=grid_rows, history_chart=_chart(runs), history_rows=_history_rows(runs))
  with tf.io.gfile.GFile(report_path, 'w') as f:
    f.write(page)
  return {'trained': not stopped, 'blessed': blessed, 'pushed': pushed,
          'warm_started_from': warm,
          'candidate': candidate_uri, 'failed': failed,
          'ab_mse': candidate.get('ab_mse'), 'gray_ab_mse': candidate.get('gray_ab_mse'),
          'served': os.path.join(serving_dir, str(versions[-1])) if versions else None}
