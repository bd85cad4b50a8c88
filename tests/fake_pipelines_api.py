"""A stand-in for the few REST endpoints of Kubeflow Pipelines (v2beta1), Vertex AI (v1)
and Cloud Storage (the bucket check, via STORAGE_EMULATOR_HOST) that `colorizer submit` and `colorizer schedule` call, on 127.0.0.1.

It records every request and answers like the real services do for these calls, so the
tests run the real clients (kfp.Client, aiplatform) and assert on what they sent.
Anything it does not know gets a 404, which makes the client under test fail loudly.
"""
import http.server
import json
import re
import threading
import urllib.parse
from typing import Dict, List


class FakePipelinesApi:
  """`with FakePipelinesApi() as api:` serves on api.url and records api.requests."""

  def __init__(self):
    self.requests: List[Dict] = []
    self.experiments: List[Dict] = []
    self.buckets: List[str] = []
    self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), self._handler())
    self.url = f'http://127.0.0.1:{self._server.server_address[1]}'

  def __enter__(self):
    threading.Thread(target=self._server.serve_forever, daemon=True).start()
    return self

  def __exit__(self, *exc):
    self._server.shutdown()
    self._server.server_close()

  def sent(self, method: str, path: str) -> List[Dict]:
    """The recorded requests to `path` (a regular expression) with `method`."""
    return [r for r in self.requests if r['method'] == method and re.fullmatch(path, r['path'])]

  def answer(self, method: str, path: str, query: Dict, body):
    """(status, json) for one request."""
    if path == '/apis/v2beta1/healthz' and method == 'GET':
      return 200, {'multi_user': False}
    if path == '/apis/v2beta1/experiments' and method == 'GET':
      wanted = json.loads(query.get('filter', ['{}'])[0]).get('predicates', [])
      names = {p['stringValue'] for p in wanted if p.get('key') == 'display_name'}
      found = [e for e in self.experiments if not names or e['display_name'] in names]
      return 200, {'experiments': found, 'total_size': len(found)} if found else {}
    if path == '/apis/v2beta1/experiments' and method == 'POST':
      experiment = dict(body, experiment_id=f'experiment-{len(self.experiments) + 1}')
      self.experiments.append(experiment)
      return 200, experiment
    if path == '/apis/v2beta1/runs' and method == 'POST':
      return 200, dict(body, run_id='run-1', state='PENDING')
    if path == '/apis/v2beta1/recurringruns' and method == 'POST':
      return 200, dict(body, recurring_run_id='recurring-1', status='ENABLED')
    # aiplatform creates the pipeline root's bucket if it is missing (it is, here) and
    # lets the run's service account write to it.
    if path == '/storage/v1/b' and method == 'POST':
      self.buckets.append(body['name'])
      return 200, dict(body, projectNumber='1')
    bucket = re.fullmatch(r'/storage/v1/b/([^/]+)(/iam)?', path)
    if bucket and bucket.group(2) and method in ('GET', 'PUT'):
      return 200, body or {'bindings': [], 'etag': 'CAE='}
    if bucket and method == 'GET' and bucket.group(1) in self.buckets:
      return 200, {'name': bucket.group(1), 'projectNumber': '1'}
    vertex = re.fullmatch(r'/v1/(projects/[^/]+/locations/[^/]+)/(pipelineJobs|schedules)',
                          path)
    if vertex and method == 'POST':
      name = f'{vertex.group(1)}/{vertex.group(2)}/{query.get("pipelineJobId", ["1"])[0]}'
      return 200, dict(body, name=name, state='PIPELINE_STATE_PENDING'
                       if vertex.group(2) == 'pipelineJobs' else 'ACTIVE')
    return 404, {'error': {'code': 404, 'message': f'{method} {path} is not faked'}}

  def _handler(self):
    api = self

    class Handler(http.server.BaseHTTPRequestHandler):

      def _respond(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length) if length else b''
        body = json.loads(raw) if raw else None
        api.requests.append({'method': method, 'path': url.path, 'query': query,
                             'body': body})
        status, answer = api.answer(method, url.path, query, body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

      def do_GET(self):  # pylint: disable=invalid-name
        self._respond('GET')

      def do_POST(self):  # pylint: disable=invalid-name
        self._respond('POST')

      def do_PUT(self):  # pylint: disable=invalid-name
        self._respond('PUT')

      def log_message(self, *args):
        pass

    return Handler
