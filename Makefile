# scimsync: `make test` passes every test, `make demo` runs the main job on the embedded lab
# through the notebooks and keeps them (and the HTML report) in ./scimsync-demo/.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo bench install system-deps lint format clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

system-deps:
	sh scripts/system-deps.sh

install: $(STAMP) system-deps

test: install
	$(PY) -m pytest

demo: install
	$(VENV)/bin/scimsync demo

bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check toolkit tests bench
	$(VENV)/bin/ruff format --check toolkit tests bench

format: install
	$(VENV)/bin/ruff check --fix toolkit tests bench
	$(VENV)/bin/ruff format toolkit tests bench

clean:
	rm -rf $(VENV) .pytest_cache scimsync-lab scimsync-demo scimsync-runs
