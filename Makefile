# The two commands a new user runs: `make demo` and `make test`.
# Both create .venv on first use (Python 3.10, pinned by constraints.txt) and reuse it afterwards.

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUTPUTS ?= outputs

.PHONY: demo test venv clean

venv: $(STAMP)

$(STAMP): setup.py constraints.txt
	@if [ ! -x $(PY) ]; then \
	  python=$$(scripts/find_python.sh) || exit 1; \
	  echo "Creating $(VENV) with $$python"; \
	  "$$python" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0"
	$(PY) -m pip install --quiet --constraint constraints.txt --editable ".[test]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/colorizer ingest --data data/samples --out $(OUTPUTS)/ingest --embedding-weights auto

test: $(STAMP)
	$(PY) -m pytest tests

clean:
	rm -rf $(OUTPUTS) .pytest_cache
