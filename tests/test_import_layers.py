"""The packages' layers point down: `model/` (the ground), then `components/`, then
`pipeline/` (the TFX pipeline), then `commands/` (what users run); no package imports
one above it; `benchmarks/`, outside the installed package, may import them all. Read
from the sources' imports with `ast`, including imports inside functions."""
import ast
import os

import pytest

pytestmark = pytest.mark.fast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ('model', 'components', 'pipeline', 'commands')  # each may import only those before it


def imported_packages(path: str) -> set:
  """The top-level packages that a module imports, anywhere in it."""
  with open(path, encoding='utf-8') as f:
    tree = ast.parse(f.read(), path)
  packages = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      packages.update(alias.name.split('.')[0] for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      packages.add(node.module.split('.')[0])
  return packages


def upward_imports(package: str) -> list:
  """'module.py imports higher' for each module of `package` that imports a layer above."""
  above = set(LAYERS[LAYERS.index(package) + 1:])
  found = []
  for name in sorted(os.listdir(os.path.join(ROOT, package))):
    if name.endswith('.py'):
      for higher in sorted(imported_packages(os.path.join(ROOT, package, name)) & above):
        found.append(f'{package}/{name} imports {higher}')
  return found


@pytest.mark.parametrize('package', LAYERS)
def test_no_package_imports_a_layer_above_it(package):
  assert upward_imports(package) == []


def test_the_check_sees_imports_inside_functions(tmp_path):
  module = tmp_path / 'module.py'
  module.write_text('def f():\n  from pipeline import configs\n  import components.ingest\n')
  assert imported_packages(str(module)) == {'pipeline', 'components'}
