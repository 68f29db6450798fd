# `make demo` and `make test` do all the set-up on a fresh machine: they create
# .venv if it is missing and install renyicert (editable, so that its entry
# points exist) before running anything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.renyicert-installed

.PHONY: demo compare test docs bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/renyicert demo

# TRADES, a 1-Lipschitz network and PGD-1000 with 20 restarts against the smoothed models (about 20 minutes on 2 cores).
compare: $(STAMP)
	$(BIN)/renyicert compare

test: $(STAMP)
	$(BIN)/ruff format --check --quiet .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
	# The math must render with no network: MathJax comes from _static, never from a CDN.
	! grep -rl --include='*.html' -e 'cdn.jsdelivr' -e 'cdnjs' -e 'unpkg.com' docs/_build/html

docs: $(STAMP)
	$(BIN)/python -m sphinx -W -b html docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python benchmarks/solver.py
	$(BIN)/python benchmarks/sampler.py
	$(BIN)/python benchmarks/certify.py
	$(BIN)/python benchmarks/scaling.py
	$(BIN)/python benchmarks/sequential.py
	$(BIN)/python benchmarks/lattice.py

clean:
	rm -rf $(VENV) docs/_build build src/*.egg-info .pytest_cache .hypothesis
