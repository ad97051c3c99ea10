# Two commands do all the set-up on a fresh machine: `make dev` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
PORT ?= 8000
WORKERS ?= 2
PYTHON ?= python3.11
# uv on PATH, else the uv module of $(PYTHON) (installed with pip on first use).
UV_BIN := $(shell command -v uv 2>/dev/null)
UV := $(if $(UV_BIN),$(UV_BIN),$(PYTHON) -m uv)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -n 2

.PHONY: help bootstrap dev serve test lint typecheck chromium migrate messages bench clean

help:
	@echo "make dev    - set up and serve the shop on http://127.0.0.1:$(PORT) (SQLite + Stripe sandbox)"
	@echo "make test   - set up, lint, type-check and run the whole suite (browser tests included)"
	@echo "make serve  - serve the production way ($(WORKERS) workers, no reload)"
	@echo "make bench  - run the benchmarks under bench/"

bootstrap:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --user uv || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --python $(PYTHON) --quiet
	@mkdir -p var

migrate: bootstrap
	$(BIN)/storefront database upgrade --no-prompt

dev: migrate
	$(BIN)/storefront run --host 127.0.0.1 --port $(PORT) --reload --reload-dir app --reload-dir templates

serve: bootstrap
	$(BIN)/storefront serve --host 127.0.0.1 --port $(PORT) --workers $(WORKERS)

chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi
	@if ! fc-list 2>/dev/null | grep -qi "wenquanyi\|wqy"; then \
		echo "installing a Chinese font so the zh pages lay out (and screenshot) as buyers see them"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq fonts-wqy-microhei >/dev/null; \
	fi

lint: bootstrap
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench

typecheck: bootstrap
	$(BIN)/mypy

test: bootstrap chromium lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

messages: bootstrap
	$(BIN)/python -m app.i18n.check

bench: bootstrap
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
