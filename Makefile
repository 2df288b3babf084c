# The two commands of the README: `make demo` (the main job) and `make test`.
# Both create .venv and install the pinned environment into it on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# nbgrader shells out to alembic: the venv's bin/ must be on PATH.
RUN := PATH="$(CURDIR)/$(BIN):$$PATH" OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2}

.PHONY: demo test lab grade lint format bench release authoring clean-venv

ASSIGNMENTS := $(notdir $(wildcard source/*))

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(RUN) python scripts/demo.py

# Two pytest workers on two cores: every process they start (notebook kernels, nbgrader, the
# grading children) gets one thread, or torch's spinning thread pools oversubscribe the cores.
test: $(STAMP)
	$(RUN) OMP_NUM_THREADS=1 GW_FAST=1 python -m pytest -n 2 --dist loadfile --durations=15 --nbval-lax tests source $(PYTEST_ARGS)

# JupyterLab on release/, with nbgrader's Validate button (and Formgrader for instructors).
lab: $(STAMP)
	$(RUN) python scripts/lab.py $(LAB_ARGS)

# Studying alone: your progress, with each started exercise graded by the hidden graders.
grade: $(STAMP)
	$(RUN) python -m coursekit.progress --grade

lint: $(STAMP)
	$(RUN) ruff check . && $(RUN) ruff format --check . && $(RUN) mypy

format: $(STAMP)
	$(RUN) ruff format . && $(RUN) ruff check --fix .

# Regenerate the committed student notebooks from source/ (tests/test_release.py checks it).
release: $(STAMP)
	@for a in $(ASSIGNMENTS); do \
		$(RUN) nbgrader generate_assignment $$a --force --no-db --log-level=WARN || exit 1; \
	done

authoring: $(STAMP)
	$(RUN) python -m autograder.authoring source --execute

# Every figure beside its peer (docs/performance.md): about 20 minutes on 2 cores.
bench: $(STAMP)
	$(RUN) python bench/bench_tokenizer.py
	$(RUN) python bench/bench_generation.py --medium
	$(RUN) python bench/bench_model.py
	$(RUN) python bench/bench_train.py
	$(RUN) python bench/bench_part3.py
	@if $(BIN)/python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
		$(RUN) python bench/bench_gpu.py; \
	else echo "bench_gpu.py: no CUDA GPU here (an H200's figures: docs/performance.md)"; fi

clean-venv:
	rm -rf $(VENV)
