# Two commands do all the set-up: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench bench-scale clean system

# The package is byte-compiled, as a regular (non-editable) install is: where PYTHONDONTWRITEBYTECODE
# is set (CI, containers), every command would otherwise compile its modules again (50 ms).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,pdf]'
	$(BIN)/python -m compileall -q pricing
	touch $(STAMP)

# The PDF test needs Pango (for WeasyPrint) and pdftoppm: Debian packages, installed when missing;
# and HarfBuzz's font subsetter, which WeasyPrint prefers to fontTools (and will require).
SYSTEM_PACKAGES := poppler-utils libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0
system:
	@if ! command -v pdftoppm >/dev/null 2>&1 || ! ldconfig -p | grep -q libpangoft2-1.0 \
		|| ! ldconfig -p | grep -q libharfbuzz-subset; then \
		echo "installing $(SYSTEM_PACKAGES)"; \
		apt-get install -y -q $(SYSTEM_PACKAGES) >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null && apt-get install -y -q $(SYSTEM_PACKAGES) >/dev/null); \
	fi

demo: $(STAMP)
	$(BIN)/pricing check specs/
	$(BIN)/pricing invoice specs/ --events examples/nimbus/events-2026-q1.jsonl --start 2026-01-01 --end 2026-04-01 --out out/demo --render html,md,txt

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict pricing

test: lint system
	$(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Byte-compiled again (as at the install): the modules edited since then, before they are timed.
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m compileall -q pricing
	$(BIN)/python benchmarks/bench_check.py
	$(BIN)/python benchmarks/bench_check.py --objects 50000 --repeat 2
	$(BIN)/python benchmarks/bench_metrics.py
	$(BIN)/python benchmarks/bench_usage.py --events 1000000 --events 10000000
	$(BIN)/python benchmarks/bench_invoice.py --events 1000000 --events 10000000
	$(BIN)/python benchmarks/bench_reading.py

# 100M events in ten Parquet files (1.5 GB, written on the first run): time and peak memory.
bench-scale: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m compileall -q pricing
	$(BIN)/python benchmarks/bench_scale.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache .hypothesis
