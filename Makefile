# The README's two commands: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)

.PHONY: setup demo test bench clean

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv

setup: $(UV)
	$(UV) sync --frozen

demo: setup
	$(UV) run --frozen lipobench synth demo-output/quick-data --preset quick --preview
	$(UV) run --frozen lipobench info demo-output/quick-data

test: setup
	$(UV) run --frozen pytest -q

bench: setup
	$(UV) run --frozen python benchmarks/run_all.py

clean:
	rm -rf demo-output .pytest_cache
