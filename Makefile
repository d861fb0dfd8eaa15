# One entry point. `make book` and `make test` set up everything they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ready
BUILD  := _build/html

.PHONY: help setup book notebooks test test-fast lab release autograde bench clean freeze publish

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

# The virtual environment is rebuilt when any file that defines it changes.
$(READY): requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

setup: $(READY)  ## create or refresh the virtual environment

book: $(READY)  ## execute every chapter (in parallel) and build the HTML book (warnings are errors)
	$(BIN)/python -m tools.book
	@echo "Open $(CURDIR)/$(BUILD)/index.html"

notebooks: book  ## plain-Markdown copies of every page and exercise in colab/ (for Colab's launch buttons)
	$(BIN)/python -m tools.notebooks

test: export OPENBLAS_NUM_THREADS = 1
test: $(READY)  ## the whole test suite (builds the book on the way)
	$(BIN)/python -m pytest -n 2 --dist loadfile  # a file's tests share one worker (and its fixtures)

test-fast: $(READY)  ## the tests that do not build the book or grade many notebooks
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow"

# The exchange that nbgrader_config.py names (.nbgrader-exchange/) must exist for the Assignments tab;
# Jupyter refuses to run as root (a container) without --allow-root.
lab: $(READY)  ## JupyterLab with nbgrader's assignment list, validate button and formgrader
	@mkdir -p "$${NBGRADER_EXCHANGE:-.nbgrader-exchange}"
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root)

# The learner-facing course, without solutions/ or hidden tests: see tools/publish.py.
publish: $(READY)  ## write the public course (no solutions, no hidden tests) to DEST=<folder>
	@test -n "$(DEST)" || { echo "usage: make publish DEST=<folder, e.g. a clone of the public repository>"; exit 2; }
	$(BIN)/python -m tools.publish "$(DEST)"

release: $(READY)  ## regenerate exercises/ (student versions) from solutions/
	$(BIN)/python -m tools.course release

bench: $(READY)  ## run every benchmark (prints medians and ratios)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

freeze: $(READY)  ## re-pin every transitive dependency into constraints.txt
	@{ sed -n '1,2p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//'; } > constraints.new
	@mv constraints.new constraints.txt

clean:  ## remove the built book and caches (keeps the virtual environment)
	rm -rf _build .pytest_cache .hypothesis
