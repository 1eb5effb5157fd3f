# The two front doors: `make bench` (how fast?) and `make test` (is the suite right?).
# Each creates .venv when missing and installs the project into it first.
#
#   make bench TORCH='torch==2.14.1'     benchmark another torch (pip requirement spec)
#   make bench GRID=full                 the nightly grid
#   make bench ARGS='--lb-profiles=cpu,io --lb-workers=0,2,4'   narrow or widen any axis
#   make test  ARGS='-k properties'      pass anything to pytest

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
GRID   ?= quick
ARGS   ?=
RESULTS ?= results/latest.json
HYPOTHESIS_PROFILE ?= ci

PY    := $(VENV)/bin/python
STAMP := $(VENV)/.loaderbench-installed

.PHONY: bench test venv clean

# Reinstalls only when TORCH or pyproject.toml changed since the last install.
venv:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@want="$(TORCH) $$(cksum < pyproject.toml)"; \
	if [ "$$(cat $(STAMP) 2>/dev/null)" != "$$want" ]; then \
	  echo "loaderbench: installing $(TORCH) and the project into $(VENV)"; \
	  $(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH)" && \
	  $(PY) -m pip install --quiet --disable-pip-version-check -e . && \
	  echo "$$want" > $(STAMP); \
	fi

bench: venv
	@mkdir -p $(dir $(RESULTS))
	$(PY) -m pytest tests/benchmarks --benchmark-only --benchmark-quiet -q -p no:cacheprovider \
	  --lb-grid=$(GRID) --benchmark-json=$(RESULTS) $(ARGS)
	$(PY) -m loaderbench table $(RESULTS)

test: venv
	HYPOTHESIS_PROFILE=$(HYPOTHESIS_PROFILE) $(PY) -m pytest --benchmark-disable -p no:cacheprovider $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis results/*.json
