# The two commands a new user runs: `make demo` and `make test`.
# Both create .venv on first use (Python 3.10, pinned by constraints.txt) and reuse it afterwards.

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUTPUTS ?= outputs

.PHONY: demo test test-fast bench venv browser clean

venv: $(STAMP)

$(STAMP): setup.py constraints.txt
	@if [ ! -x $(PY) ]; then \
	  python=$$(scripts/find_python.sh) || exit 1; \
	  echo "Creating $(VENV) with $$python"; \
	  "$$python" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0"
	$(PY) -m pip install --quiet --constraint constraints.txt --editable ".[serve,test]"
	@touch $(STAMP)

# The demo's recipe (README, "The demo model"): 8 crops of each photo, batches of 16, a
# cosine schedule; then it colourizes and scores the photos it never trained on.
DEMO_TRAINING := --crops-per-image 8 --train-steps 300 --batch-size 16 --learning-rate 5e-4 \
                 --lr-schedule cosine --loss mse --epochs 10 --eval-steps 10

demo: $(STAMP)
	$(VENV)/bin/colorizer run --data data/samples --output-root $(OUTPUTS) \
	    --embedding-weights auto $(DEMO_TRAINING)
	@if [ -n "$$(ls $(OUTPUTS)/serving_model 2>/dev/null)" ]; then \
	  model=$(OUTPUTS)/serving_model; \
	 else \
	  model=$$(ls -d $(OUTPUTS)/pipeline_root/Trainer/model/*/Format-Serving | sort -t/ -k5 -n | tail -1); \
	  echo "The demo model was not blessed (see $(OUTPUTS)/report.html), so nothing was pushed;"; \
	  echo "using the unblessed candidate $$model instead."; \
	 fi; \
	 $(VENV)/bin/colorizer colorize data/held_out --model $$model --out $(OUTPUTS)/colorized && \
	 echo "Colourized the held-out photos (from their luminance alone) into $(OUTPUTS)/colorized/" && \
	 $(VENV)/bin/colorizer evaluate --model $$model --data data/held_out \
	     --out $(OUTPUTS)/held_out.json --grid $(OUTPUTS)/held_out.jpg
	@echo "Report: $(OUTPUTS)/report.html   Served model: $(OUTPUTS)/serving_model/"

# Debian's chromium, for the web page's browser test (installed once, with apt).
browser:
	@scripts/install_chromium.sh

test: $(STAMP) browser
	$(PY) -m pytest tests

# The unit tests (pytest -m fast): no pipeline, no browser; about a minute on 2 cores.
test-fast: $(STAMP)
	$(PY) -m pytest -m fast tests

# Each stage against the raw operation under it; writes $(OUTPUTS)/bench.json.
bench: $(STAMP)
	$(VENV)/bin/colorizer bench --out $(OUTPUTS)/bench.json

clean:
	rm -rf $(OUTPUTS) .pytest_cache
