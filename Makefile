# The two commands a new user runs: `make demo` and `make test`.
# Both create .venv on first use (Python 3.10, pinned by constraints.txt) and reuse it afterwards.

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUTPUTS ?= outputs

.PHONY: demo test test-fast bench venv browser clean

venv: $(STAMP)

# --no-compile, then compileall on every core: pip compiles one file at a time (about 50 of
# its 95 s on 2 cores), compileall -j 0 in 35 s. Compiled they must be: where
# PYTHONDONTWRITEBYTECODE is set (as here), Python never writes what it compiles, and every
# process importing TensorFlow, TFX and Beam would compile them anew (15.6 s, against 6.2).
$(STAMP): setup.py constraints.txt
	@if [ ! -x $(PY) ]; then \
	  python=$$(scripts/find_python.sh) || exit 1; \
	  echo "Creating $(VENV) with $$python"; \
	  "$$python" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0"
	$(PY) -m pip install --quiet --no-compile --constraint constraints.txt --editable ".[serve,test]"
	$(PY) -m compileall -q -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
	@touch $(STAMP)

# The demo's recipe (docs/demo.md, "The recipe"): 8 crops of each photo, 105 steps of 16 in
# mixed bfloat16, a cosine schedule, seeded; the gate asks for ab-MSE 1% under gray's.
DEMO_TRAINING := --crops-per-image 8 --train-steps 105 --batch-size 16 --learning-rate 1.25e-4 \
                 --lr-schedule cosine --loss mse --epochs 3 --eval-steps 4 \
                 --min-improvement-over-gray 0.01

# Ingestion in one in-memory worker writes the records in the same order on every run, so
# that the seeded training sees the same batches (docs/demo.md, "Reproducible").
DEMO_BEAM := --beam-arg=--direct_running_mode=in_memory --beam-arg=--direct_num_workers=1

demo: $(STAMP)
	$(VENV)/bin/colorizer run --data data/samples --output-root $(OUTPUTS) \
	    --embedding-weights auto $(DEMO_TRAINING) $(DEMO_BEAM) --nonext-steps
	@if [ -n "$$(ls $(OUTPUTS)/serving_model 2>/dev/null)" ]; then \
	  model=$(OUTPUTS)/serving_model; \
	 else \
	  trained=$(OUTPUTS)/pipeline_root/Trainer/model; \
	  model=$$trained/$$(ls $$trained | sort -n | tail -1)/Format-Serving; \
	  echo "The demo model was not blessed (see $(OUTPUTS)/report.html), so nothing was pushed;"; \
	  echo "using the unblessed candidate $$model instead."; \
	 fi; \
	 printf "\nColourizing and scoring data/held_out/, photos the model never trained on:\n"; \
	 $(VENV)/bin/colorizer colorize data/held_out --model $$model --out $(OUTPUTS)/colorized \
	     --log $(OUTPUTS)/logs/colorizer-colorize.log && \
	 $(VENV)/bin/colorizer evaluate --model $$model --data data/held_out \
	     --out $(OUTPUTS)/held_out.json --grid $(OUTPUTS)/held_out.jpg \
	     --log $(OUTPUTS)/logs/colorizer-evaluate.log
	@$(PY) -c 'import sys; from commands import cli; cli.print_next_steps(sys.argv[1], sys.argv[2], sys.argv[3] != "", sys.argv[4], sys.argv[5])' \
	    $(OUTPUTS)/report.html $(OUTPUTS)/serving_model "$$(ls $(OUTPUTS)/serving_model 2>/dev/null)" \
	    $(VENV)/bin/colorizer $(OUTPUTS)/held_out.jpg

# Debian's chromium, for the web page's browser test (installed once, with apt).
browser:
	@scripts/install_chromium.sh

# The tests run inside scripts/with-gcs-emulator, so that every gs:// path meets a storage
# service (an emulated bucket, gs://colorizer-test); it needs root, as apt does above. Two
# pytest-xdist workers: much of a test's time is a process starting, a model loading or a
# Beam job's bookkeeping, on one core; tests/conftest.py keeps the tests that share a
# pipeline run in one worker.
TEST_WORKERS ?= 2
test: $(STAMP) browser
	scripts/with-gcs-emulator $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15 tests

# The unit tests (pytest -m fast): no pipeline, no browser; about a minute on 2 cores.
test-fast: $(STAMP)
	scripts/with-gcs-emulator $(PY) -m pytest -m fast tests

# Each stage against the raw operation under it; writes $(OUTPUTS)/bench.json. Under the
# emulator, which counts the requests that colorize and the push send to Cloud Storage.
bench: $(STAMP)
	scripts/with-gcs-emulator $(PY) -m benchmarks --out $(OUTPUTS)/bench.json \
	    --log $(OUTPUTS)/logs/bench.log

clean:
	rm -rf $(OUTPUTS) .pytest_cache
