# Every target bootstraps what it needs: uv (through pip when missing), the
# virtualenv and the pinned dependencies from requirements/*.txt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
STAMP  := $(VENV)/.installed

.PHONY: run test lint fmt bench reliability soak screens requirements clean

$(STAMP): requirements/dev.txt pyproject.toml
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 \
		|| $(PYTHON) -m pip install --quiet uv
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python --require-hashes -r requirements/dev.txt
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

run: $(STAMP)
	$(BIN)/tenantry up

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench

# The reliability suite at its larger scale (fuzzing, state machines, outages, crashes);
# writes docs/reliability.md. TENANTRY_FUZZ_EXAMPLES, TENANTRY_STATEFUL_RUNS and
# TENANTRY_SOAK_SECONDS scale it.
reliability: $(STAMP)
	$(BIN)/python -m tests.reliability.report

# Thirty minutes of mixed traffic on one `tenantry up` (TENANTRY_SOAK_SECONDS to change it);
# writes docs/soak.md.
soak: $(STAMP)
	$(BIN)/python -m tests.reliability.report soak

# A screenshot of every hosted page into docs/screens/ (Debian's Chromium).
screens: $(STAMP)
	$(BIN)/python -m tests.screens

# Re-pin after editing pyproject.toml: versions and hashes, no download addresses.
requirements:
	$(UV) pip compile pyproject.toml --generate-hashes --no-emit-index-url --python-version 3.11 -o requirements/main.txt
	$(UV) pip compile pyproject.toml --extra dev --generate-hashes --no-emit-index-url --python-version 3.11 -o requirements/dev.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
