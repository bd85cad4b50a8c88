"""The documentation's relative links point at files and headings that exist.

Reads README.md, docs/*.md and kubeflow/README.md as text (no TensorFlow): every
`[text](target)` and `![alt](target)` outside code blocks whose target is not a URL must
name an existing file, relative to the page, and an `#anchor` must be one of the
target page's headings as GitHub slugs them.
"""
import glob
import os
import re

import pytest

pytestmark = pytest.mark.fast

ROOT = os.path.join(os.path.dirname(__file__), '..')
PAGES = sorted(['README.md', 'kubeflow/README.md'] + [
    os.path.relpath(path, ROOT) for path in glob.glob(os.path.join(ROOT, 'docs', '*.md'))])

_FENCE = re.compile(r'^\s*(```|~~~)')
_LINK = re.compile(r'!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
_HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')


def _prose_lines(path: str):
  """The lines of a markdown file outside fenced code blocks."""
  in_code = False
  with open(path, encoding='utf-8') as f:
    for line in f:
      if _FENCE.match(line):
        in_code = not in_code
      elif not in_code:
        yield line


def _without_inline_code(line: str) -> str:
  return re.sub(r'`[^`]*`', '', line)


def slug(heading: str) -> str:
  """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed,
  spaces to hyphens."""
  text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # links keep their text
  text = text.replace('`', '').replace('*', '').strip().lower()
  text = re.sub(r'[^\w\- ]', '', text)
  return text.replace(' ', '-')


def anchors(path: str) -> set:
  seen, result = {}, set()
  for line in _prose_lines(path):
    match = _HEADING.match(line)
    if not match:
      continue
    base = slug(match.group(2))
    count = seen.get(base, 0)
    seen[base] = count + 1
    result.add(base if count == 0 else f'{base}-{count}')
  return result


def links(path: str):
  for line in _prose_lines(path):
    for match in _LINK.finditer(_without_inline_code(line)):
      yield match.group(1)


def test_there_are_pages_to_check():
  assert 'README.md' in PAGES and len(PAGES) > 3


@pytest.mark.parametrize('page', PAGES)
def test_relative_links_resolve(page):
  page_path = os.path.join(ROOT, page)
  broken = []
  for target in links(page_path):
    if re.match(r'^[a-z][a-z0-9+.-]*:', target):  # http:, https:, mailto:, ...
      continue
    file_part, _, anchor = target.partition('#')
    linked = (os.path.normpath(os.path.join(os.path.dirname(page_path), file_part))
              if file_part else page_path)
    if not os.path.exists(linked):
      broken.append(f'{target}: no such file')
    elif anchor and linked.endswith('.md') and anchor not in anchors(linked):
      broken.append(f'{target}: no heading #{anchor} in {os.path.relpath(linked, ROOT)}')
  assert not broken, f'{page}: broken links:\n  ' + '\n  '.join(broken)


@pytest.mark.parametrize('heading, expected', [
    ('The demo model', 'the-demo-model'),
    ('`colorizer evaluate`: score a model on your own photos',
     'colorizer-evaluate-score-a-model-on-your-own-photos'),
    ('1. Build and push the image', '1-build-and-push-the-image'),
    ('Performance (`make bench`)', 'performance-make-bench'),
    ('What is tested, and what is not', 'what-is-tested-and-what-is-not'),
])
def test_slugs_follow_github(heading, expected):
  assert slug(heading) == expected
