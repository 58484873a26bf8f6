# Two entry points; each sets up .venv first if needed (scripts/setup.sh).
.PHONY: run test lint setup

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/tinynas search --target stm32h7 --trials 30 --workers 2 --train-top 2 --train-budget 3m --export

test: setup
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check .
