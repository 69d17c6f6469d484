# The two set-up commands of the README: `make demo` and `make test`. Both build .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ticketfmt-installed

.PHONY: venv test demo bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch and torchvision come from this machine's local wheels (pinned to the pip cap).
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The import contracts are checked on the *installed* package (a non-editable install into build/, run from
# there), so the folders converters/ and cards/ are seen only as ticketfmt.converters and ticketfmt.cards.
lint: $(STAMP)
	rm -rf build/lint-site
	$(PY) -m pip install -q --no-deps --no-build-isolation --target build/lint-site .
	cd build/lint-site && PYTHONPATH=. ../../$(VENV)/bin/lint-imports ../../.importlinter

# python -P: the checkout is not on sys.path, so only the installed names (ticketfmt.*) import.
test: lint
	$(PY) -P -m pytest -q

demo: $(STAMP)
	bash examples/demo.sh

bench: $(STAMP)
	$(PY) bench/perf.py --quick
	$(PY) bench/bench_data.py --images 2000 --test-images 500

clean:
	rm -rf $(VENV) build *.egg-info
