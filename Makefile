# The two commands of the README work on a fresh clone with nothing installed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/augrobust demo --out demo.png

test: $(STAMP)
	$(PY) -m pytest -n 2 --doctest-modules augrobust tests

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow" tests

bench: $(STAMP)
	$(VENV)/bin/augrobust bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache demo.png
