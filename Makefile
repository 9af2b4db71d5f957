# make install | demo | test | bench | golden
# `install` creates .venv in the checkout (if missing) and installs the project with everything the
# tests need; constraints.txt pins torch to the CPU build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp

.PHONY: install demo test bench golden clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,train,data,replay,report,eval,process,server,distributed]"
	@touch $(STAMP)

demo: install
	$(PY) evaluate.py

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/bench_env.py

golden: install
	$(PY) -m tests.golden --write

clean:
	rm -rf $(VENV) .pytest_cache
