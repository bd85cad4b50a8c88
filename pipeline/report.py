"""report.html: the latest run's evaluation, read back from the artifacts in MLMD.

The candidate's metrics against the gray baseline and the served model, the gate
decision, what is being served, and a grid of eval photos (gray input, model output,
truth). The page is report.html, a template beside this module.
"""
import base64
import datetime
import html
import io
import os
import string
from typing import Dict, List, Optional

import numpy as np
from google.protobuf import text_format
from PIL import Image
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.orchestration import metadata
from tfx import v1 as tfx

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
    raise RuntimeError(f'{metadata_path} holds no evaluation: the pipeline did not get that far')

  blessed = blessing.custom_properties['blessed'].int_value == 1
  candidate_uri = blessing.custom_properties['current_model'].string_value
  has_baseline = 'baseline_model' in blessing.custom_properties
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
  decision = ('<b class="ok">BLESSED</b> and pushed' if blessed else
              '<b class="bad">NOT BLESSED</b>, not pushed')
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
        grid_rows=grid_rows)
  with tf.io.gfile.GFile(report_path, 'w') as f:
    f.write(page)
  return {'blessed': blessed, 'candidate': candidate_uri, 'failed': failed,
          'ab_mse': candidate.get('ab_mse'), 'gray_ab_mse': candidate.get('gray_ab_mse'),
          'served': os.path.join(serving_dir, str(versions[-1])) if versions else None}
