# LoRA in practice: every command a learner, an instructor or CI needs.
# `make` alone prints this help. The venv is created on first use; no activated shell is needed.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
NB     ?=
SUBMISSIONS ?= submissions

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-10s %s\n", $$1, $$2}'

# The venv: rebuilt when the pins or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create the virtual environment (.venv) from requirements.txt

.PHONY: run
run: $(STAMP) ## Execute every lesson headless (papermill), autograde it (nbgrader), print the table
	$(PY) -m grader.run

.PHONY: test
test: $(STAMP) ## Run every test: helper package, notebooks, grading end to end (what CI runs)
	$(PY) -m pytest -q

.PHONY: lab
lab: $(STAMP) ## Open the student notebooks in JupyterLab
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks

.PHONY: release
release: $(STAMP) ## Regenerate notebooks/ (student copies) from solutions/ with nbgrader
	$(PY) -m grader.release

.PHONY: grade
grade: $(STAMP) ## Autograde SUBMISSIONS=<dir> (<student>/<lesson>/<notebook>.ipynb); export grades CSV and feedback
	$(PY) -m grader.grade $(SUBMISSIONS)

.PHONY: check
check: $(STAMP) ## Grade one notebook, no database: make check NB=notebooks/01-lora-theory/01-lora-theory.ipynb
	@$(PY) -m grader.check "$(NB)"

.PHONY: tiny
tiny: $(STAMP) ## Rebuild the offline tiny model from the course corpus (about a minute on 2 cores)
	$(PY) -m loracourse.build_tiny

.PHONY: clean
clean: ## Remove build outputs (executed notebooks, gradebook, feedback); keeps the venv
	rm -rf build
