# The two commands of the README work on a fresh clone with nothing installed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# kornia 0.8.x beside the pinned 0.9 (shadowing it through PYTHONPATH): the adapter is tested on both minors.
KORNIA08 := $(VENV)/kornia08

.PHONY: install demo test test-fast test-kornia08 bench docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps --target $(KORNIA08) "kornia==0.8.3"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/augrobust demo --out demo.png

# Everything, slow tests included (CI runs this): doctests, contract, properties, fidelity, trainer.
test: $(STAMP)
	$(PY) -m pytest -n 2 --doctest-modules augrobust tests
	$(MAKE) test-kornia08

# kornia 0.8.3 decorates functions with @torch.jit.script at import (kornia/geometry/epipolar), which torch
# 2.14 marks deprecated with a FutureWarning: third-party code calling third-party code, ignored in this run only.
test-kornia08: $(STAMP)
	PYTHONPATH=$(KORNIA08) $(PY) -m pytest -n 2 -q tests/test_contract.py -m "not slow" -p no:cacheprovider \
		-W 'ignore:`torch.jit.script` is deprecated:FutureWarning'

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow" tests

bench: $(STAMP)
	$(VENV)/bin/augrobust bench --markdown benchmarks/results/latest.md

# The docs site, strict (a warning fails), offline, into site/; the gallery is drawn into build/docs-gallery.
# NO_MKDOCS_2_WARNING: the Material theme prints a banner about MkDocs 2 on every build otherwise.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache demo.png site
