# The front doors: `make bench` (how fast?), `make test` (is the suite right?) and `make tune`
# (which settings for my dataset?).
# Each creates .venv when missing and installs the project into it first.
#
#   make bench TORCH='torch==2.14.1'     benchmark another torch (pip requirement spec)
#   make bench GRID=full                 the nightly grid
#   make bench ARGS='--lb-profiles=cpu,io --lb-workers=0,2,4'   narrow or widen any axis
#   make test  ARGS='-k properties'      pass anything to pytest
#   make test-fast                       the pure-logic tests only, in under a minute
#   make bench CONFIRM=0                 fail on a stored-numbers regression without rerunning it
#   make bench REMEASURE=0               judge by stored numbers only (no side-by-side step)
#   make ab B_ARGS='--lb-cost-scale=1.1' ARGS='--lb-profiles=cpu'   two sides, measured side by side
#   make remeasure ARGS='--lb-profiles=cpu'   the baseline's recipe rebuilt, side by side with this
#   make tune DATASET=mypkg.data:make_dataset ARGS='--step-ms 20'   settings for your own dataset
#   make floors                          make test and a narrowed bench at every declared floor
#   make gpu-check                       on a CUDA machine, offline, with its own python3 (docs/gpu.md)

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
GRID   ?= quick
ARGS   ?=
RESULTS ?= results/latest.json
RUNS   ?= 3
BASELINES ?= baselines
BUDGET ?= 35
BLOCKS ?= 8
MEASURES ?= throughput,epoch,startup
CONFIRM ?= 2
# Seconds for measuring side by side, against the baseline's recipe, the time rows that the stored
# numbers leave open or flag (paired/settle.py); 0: stored numbers only.
REMEASURE ?= 300
FORCE  ?=
EXTEND ?=
A_PYTHON ?=
B_PYTHON ?=
A_SPEC ?=
B_SPEC ?=
A_ARGS ?=
B_ARGS ?=
A_REF  ?=
B_REF  ?=
A_REPO ?=
B_REPO ?=
HYPOTHESIS_PROFILE ?= ci
DATASET ?=
FLOORS_VENV ?= .venv-floors
GPU_CHECK_OUT ?= results/gpu-check

PY    := $(VENV)/bin/python
VERDICT := $(dir $(RESULTS))verdict.md
STAMP := $(VENV)/.loaderbench-installed
FLOORS := .ci/floors.txt
FLOORS_PY := $(FLOORS_VENV)/bin/python

.PHONY: bench test test-fast lint docs venv clean report baseline ab remeasure tune floors gpu-check

# Reinstalls only when TORCH or pyproject.toml changed since the last install.
venv:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@want="$(TORCH) $$(cksum < pyproject.toml)"; \
	if [ "$$(cat $(STAMP) 2>/dev/null)" != "$$want" ]; then \
	  echo "loaderbench: installing $(TORCH) and the project into $(VENV)"; \
	  $(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH)" && \
	  $(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,stateful,lint,docs]' && \
	  echo "$$want" > $(STAMP); \
	fi

bench: venv
	@mkdir -p $(dir $(RESULTS))
	@# A random memory layout, like every run loaderbench starts (loaderbench/measuring/layout.py).
	LOADERBENCH_LAYOUT_PAD="$$($(PY) -m loaderbench.measuring.layout)" \
	  $(PY) -m pytest tests/benchmarks --benchmark-only --benchmark-quiet -q -p no:cacheprovider \
	  --lb-grid=$(GRID) --benchmark-json=$(RESULTS) $(ARGS)
	$(PY) -m loaderbench table $(RESULTS)
	@echo "What these columns mean, and the verdict and report that follow: docs/results.md"
	@rm -f $(VERDICT)
	@# Stored numbers first; what they leave open is measured side by side with the baseline's
	@# recipe within REMEASURE seconds. The report shows that verdict; make exits with its code.
	status=0; $(PY) -m loaderbench gate $(RESULTS) --baselines $(BASELINES) --confirm $(CONFIRM) \
	  --side-by-side $(REMEASURE) --out $(dir $(RESULTS))side-by-side --markdown $(VERDICT) \
	  || status=$$?; \
	$(PY) -m loaderbench report $(RESULTS) --verdict $(VERDICT) --out $(dir $(RESULTS)) && exit $$status

# Prints the ten slowest tests. test-fast: the pure-logic tests only (no worker or other process,
# no benchmark smoke run; tests/conftest.py), in under a minute.
test: venv
	HYPOTHESIS_PROFILE=$(HYPOTHESIS_PROFILE) $(PY) -m pytest --benchmark-disable -p no:cacheprovider --durations=10 $(ARGS)

test-fast: venv
	HYPOTHESIS_PROFILE=$(HYPOTHESIS_PROFILE) $(PY) -m pytest --benchmark-disable -p no:cacheprovider --fast $(ARGS)

# Lint, format and types of the package and the tests (what .ci/run checks).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The documentation site (docs/, mkdocs.yml) into site/; a broken link or a page left out of the
# nav fails the build.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# report.md and PNG plots of $(RESULTS), written beside it (and appended to the job summary in
# GitHub Actions); the verdict against this runner class's baseline comes first when one exists.
report: venv
	$(PY) -m loaderbench report $(RESULTS) --baseline --baselines $(BASELINES) --out $(dir $(RESULTS))

# The baseline of this runner class and machine kind (baselines/<class>/): the grid GRID with ARGS,
# RUNS times, each in a fresh pytest process; FORCE=1 replaces this kind's (other kinds' are kept),
# EXTEND=1 adds the runs to it (record in sittings hours apart). Record it on a quiet machine.
baseline: venv
	$(PY) -m loaderbench baseline --runs $(RUNS) --baselines $(BASELINES) --torch '$(TORCH)' \
	  $(if $(FORCE),--force) $(if $(EXTEND),--extend) -- --lb-grid=$(GRID) $(ARGS)

# Two environments measured side by side, round by round; B judged against A (exit 1: B regressed).
#   make ab B_SPEC='torch==2.12.0' ARGS='--lb-profiles=cpu'     another torch in its own venv
#   make ab B_PYTHON=../other/.venv/bin/python                    another interpreter
#   make ab A_REF=main                                            this checkout against main's code
#   make ab B_ARGS='--lb-cost-scale=1.25'                        one interpreter, two settings
# BUDGET: seconds per row on average; BLOCKS: at most this many starts of fresh side processes.
ab: venv
	$(PY) -m loaderbench ab --seconds-per-row $(BUDGET) --blocks $(BLOCKS) --measures $(MEASURES) \
	  $(if $(A_PYTHON),'--a-python=$(A_PYTHON)') $(if $(B_PYTHON),'--b-python=$(B_PYTHON)') \
	  $(if $(A_SPEC),'--a-spec=$(A_SPEC)') $(if $(B_SPEC),'--b-spec=$(B_SPEC)') \
	  $(if $(A_REF),'--a-ref=$(A_REF)') $(if $(B_REF),'--b-ref=$(B_REF)') \
	  $(if $(A_REPO),'--a-repo=$(A_REPO)') $(if $(B_REPO),'--b-repo=$(B_REPO)') \
	  $(if $(A_ARGS),'--a-args=$(A_ARGS)') $(if $(B_ARGS),'--b-args=$(B_ARGS)') \
	  -- --lb-grid=$(GRID) $(ARGS)

# The DataLoader settings for your own dataset (package.module:callable), with the evidence.
tune: venv
	@test -n "$(DATASET)" || { echo "make tune: name your dataset: make tune DATASET=package.module:callable (a factory returning it)" >&2; exit 2; }
	$(PY) -m loaderbench tune '$(DATASET)' $(ARGS)

# The baseline of this runner class and machine kind rebuilt from its recipe (a cached virtualenv
# under .venv-ab/) and measured side by side with this environment; ARGS narrows its grid.
remeasure: venv
	$(PY) -m loaderbench gate --remeasure --baselines $(BASELINES) --seconds-per-row $(BUDGET) \
	  --blocks $(BLOCKS) --measures $(MEASURES) -- $(ARGS)

# The lowest-versions environment: every direct dependency at the floor pyproject.toml declares
# (.ci/floors.txt, held equal to it by tests/harness/test_floors.py; the docs extra as pinned),
# in $(FLOORS_VENV); there the tests as `make test` runs them, then a narrowed benchmark run that
# must write its JSON. Reinstalls only when .ci/floors.txt or pyproject.toml changed.
floors:
	@test -x $(FLOORS_PY) || $(PYTHON) -m venv $(FLOORS_VENV)
	@want="$$(cksum < $(FLOORS)) $$(cksum < pyproject.toml)"; \
	if [ "$$(cat $(FLOORS_VENV)/.loaderbench-installed 2>/dev/null)" != "$$want" ]; then \
	  echo "loaderbench: installing the declared floors ($(FLOORS)) into $(FLOORS_VENV)"; \
	  $(FLOORS_PY) -m pip install --quiet --disable-pip-version-check -c $(FLOORS) -e '.[test,docs]' && \
	  echo "$$want" > $(FLOORS_VENV)/.loaderbench-installed; \
	fi
	HYPOTHESIS_PROFILE=$(HYPOTHESIS_PROFILE) $(FLOORS_PY) -m pytest --benchmark-disable -p no:cacheprovider --durations=10 $(ARGS)
	@mkdir -p results && rm -f results/floors.json
	LOADERBENCH_LAYOUT_PAD="$$($(FLOORS_PY) -m loaderbench.measuring.layout)" \
	  $(FLOORS_PY) -m pytest tests/benchmarks --benchmark-only --benchmark-quiet -q -p no:cacheprovider \
	  --lb-profiles=noop --lb-workers=0,2 --lb-start-methods=fork --benchmark-json=results/floors.json
	$(FLOORS_PY) -m loaderbench table results/floors.json

# On a CUDA machine without network whose python3 already holds torch and the test dependencies
# (no venv): the GPU tests, the quick grid as gpu.yml runs it, and the whole suite, each under its
# own time limit; logs and JSON in $(GPU_CHECK_OUT). DRY_RUN=1 prints the steps only.
gpu-check:
	GPU_CHECK_OUT=$(GPU_CHECK_OUT) .github/gpu-check $(if $(DRY_RUN),--dry-run)

clean:
	rm -rf $(VENV) $(FLOORS_VENV) .pytest_cache .hypothesis results/*.json
