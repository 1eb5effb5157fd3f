# The two front doors: `make bench` (how fast?) and `make test` (is the suite right?).
# Each creates .venv when missing and installs the project into it first.
#
#   make bench TORCH='torch==2.14.1'     benchmark another torch (pip requirement spec)
#   make bench GRID=full                 the nightly grid
#   make bench ARGS='--lb-profiles=cpu,io --lb-workers=0,2,4'   narrow or widen any axis
#   make test  ARGS='-k properties'      pass anything to pytest
#   make bench CONFIRM=0                 fail on a regression without rerunning it first

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
GRID   ?= quick
ARGS   ?=
RESULTS ?= results/latest.json
RUNS   ?= 3
BASELINES ?= baselines
PAIRS  ?= 5
CONFIRM ?= 2
FORCE  ?=
EXTEND ?=
A_PYTHON ?=
B_PYTHON ?=
A_SPEC ?=
B_SPEC ?=
A_ARGS ?=
B_ARGS ?=
HYPOTHESIS_PROFILE ?= ci

PY    := $(VENV)/bin/python
VERDICT := $(dir $(RESULTS))verdict.md
STAMP := $(VENV)/.loaderbench-installed

.PHONY: bench test venv clean report baseline ab

# Reinstalls only when TORCH or pyproject.toml changed since the last install.
venv:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@want="$(TORCH) $$(cksum < pyproject.toml)"; \
	if [ "$$(cat $(STAMP) 2>/dev/null)" != "$$want" ]; then \
	  echo "loaderbench: installing $(TORCH) and the project into $(VENV)"; \
	  $(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH)" && \
	  $(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]' && \
	  echo "$$want" > $(STAMP); \
	fi

bench: venv
	@mkdir -p $(dir $(RESULTS))
	@# A random memory layout, like every run loaderbench starts (loaderbench/layout.py).
	LOADERBENCH_LAYOUT_PAD="$$($(PY) -m loaderbench.layout)" \
	  $(PY) -m pytest tests/benchmarks --benchmark-only --benchmark-quiet -q -p no:cacheprovider \
	  --lb-grid=$(GRID) --benchmark-json=$(RESULTS) $(ARGS)
	$(PY) -m loaderbench table $(RESULTS)
	@rm -f $(VERDICT)
	@# The report shows the gate's (confirmed) verdict; make exits with the gate's code.
	status=0; $(PY) -m loaderbench gate $(RESULTS) --baselines $(BASELINES) --confirm $(CONFIRM) \
	  --markdown $(VERDICT) || status=$$?; \
	$(PY) -m loaderbench report $(RESULTS) --verdict $(VERDICT) --out $(dir $(RESULTS)) && exit $$status

test: venv
	HYPOTHESIS_PROFILE=$(HYPOTHESIS_PROFILE) $(PY) -m pytest --benchmark-disable -p no:cacheprovider $(ARGS)

# report.md and PNG plots of $(RESULTS), written beside it (and appended to the job summary in
# GitHub Actions); the verdict against this runner class's baseline comes first when one exists.
report: venv
	$(PY) -m loaderbench report $(RESULTS) --baseline --baselines $(BASELINES) --out $(dir $(RESULTS))

# The baseline of this runner class and machine kind (baselines/<class>/): the grid GRID with ARGS,
# RUNS times, each in a fresh pytest process; FORCE=1 replaces this kind's (other kinds' are kept),
# EXTEND=1 adds the runs to it (record in sittings hours apart). Record it on a quiet machine.
baseline: venv
	$(PY) -m loaderbench baseline --runs $(RUNS) --baselines $(BASELINES) $(if $(FORCE),--force) $(if $(EXTEND),--extend) \
	  -- --lb-grid=$(GRID) $(ARGS)

# Two environments on this machine, interleaved A B A B for PAIRS pairs; B judged against A.
#   make ab B_SPEC='torch==2.12.0' ARGS='--lb-profiles=cpu'     another torch in its own venv
#   make ab B_PYTHON=../other/.venv/bin/python                    another interpreter
#   make ab B_ARGS='--lb-cost-scale=1.25'                        one interpreter, two settings
ab: venv
	$(PY) -m loaderbench ab --pairs $(PAIRS) \
	  $(if $(A_PYTHON),'--a-python=$(A_PYTHON)') $(if $(B_PYTHON),'--b-python=$(B_PYTHON)') \
	  $(if $(A_SPEC),'--a-spec=$(A_SPEC)') $(if $(B_SPEC),'--b-spec=$(B_SPEC)') \
	  $(if $(A_ARGS),'--a-args=$(A_ARGS)') $(if $(B_ARGS),'--b-args=$(B_ARGS)') \
	  -- --lb-grid=$(GRID) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis results/*.json
