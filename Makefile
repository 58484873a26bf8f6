# Entry points; each sets up .venv first if needed (scripts/setup.sh).
.PHONY: run test test-fast lint setup

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/tinynas search --target stm32h7 --trials 20 --workers 2 --train-top 2 --train-budget 3m --export

# The whole suite (what CI runs); --durations lists the 15 slowest tests at the end.
test: setup
	.venv/bin/python -m pytest -q --durations=15

# Everything but the end-to-end tests marked slow (export, training, search runs).
test-fast: setup
	.venv/bin/python -m pytest -q -m "not slow" --durations=15

lint: setup
	.venv/bin/ruff check .
