# Fanout — `make run` sets up and serves the demo on embedded defaults; `make test` runs the suite.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: setup run test test-sqlite test-postgres demo bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)
	./scripts/system-deps.sh || echo "warning: CJK font missing: demo images will have no Chinese text" >&2
	$(VENV)/bin/fanout db upgrade

run: setup
	$(VENV)/bin/fanout up --demo

demo: setup
	$(VENV)/bin/fanout demo

test: $(STAMP)
	./scripts/system-deps.sh --test
	PY=$(PY) ./scripts/test.sh

test-sqlite: $(STAMP)
	FANOUT_TEST_DB=sqlite FANOUT_TEST_BROKER=filesystem $(PY) -m pytest -q

test-postgres: $(STAMP)
	FANOUT_TEST_DB=postgresql FANOUT_TEST_BROKER=redis $(PY) -m pytest -q

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf var .pytest_cache
