# Two entry points; each sets up .venv first if needed (scripts/setup.sh).
.PHONY: run test lint setup

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/tinynas baselines --target stm32h7

test: setup
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check .
