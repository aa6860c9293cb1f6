# The README's two commands: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)

.PHONY: setup demo test bench bench-memory clean

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv

# crYOLO lives in its own Python 3.7 environment (cached in ~/.local/share/lipobench/tools);
# it is built when a Python 3.7 is found, and its tests skip with the hint where none is.
setup: $(UV)
	$(UV) sync --frozen
	$(UV) run --frozen lipobench tools install cryolo --if-python-available

demo: setup
	$(UV) run --frozen lipobench run experiments/quick.toml

test: setup
	$(UV) run --frozen pytest -q

bench: setup
	for bench in benchmarks/bench_*.py; do $(UV) run --frozen python "$$bench" || exit 1; done

# The memory targets at 4096²: each takes about an hour on 2 cores, so not part of `bench`.
bench-memory: setup
	$(UV) run --frozen python benchmarks/bench_lipopose_inference.py --memory-only --memory-at-model-scale
	$(UV) run --frozen python benchmarks/bench_lipopose_inference.py --memory-only
	$(UV) run --frozen python benchmarks/memory_run.py

clean:
	rm -rf results .pytest_cache
