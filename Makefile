# Hexiao: the two commands a new user needs (make run, make test) and the ones developers use.
SHELL := /bin/bash
PY    ?= python3
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test bench bench-camera sim lint typecheck test-fast firmware setup setup-test system-deps system-deps-test clean help

help:
	@echo "make run    - start the gateway (http://127.0.0.1:8000) with SQLite and an MQTT broker"
	@echo "make test   - run the whole test suite (lint, type checks, gateway, firmware on the MicroPython VM)"
	@echo "make bench  - load benchmark over MQTT (prints throughput and latency percentiles)"
	@echo "make bench-camera - camera frame decoding on the project's generated frame set + loopback round trip"
	@echo "make sim    - start a simulated scanner (the real firmware on the MicroPython VM)"

setup: system-deps $(STAMP)
setup-test: system-deps-test $(STAMP)

# Debian packages, installed only when missing and we are root: what running needs (mosquitto) ...
system-deps:
	@bash tools/system_deps.sh run

# ... and what the test suite needs too (PostgreSQL, Chromium for the browser tests, a CJK font).
system-deps-test:
	@bash tools/system_deps.sh test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo ">> installing Python packages into $(VENV) (first run takes a minute)"
	@$(BIN)/pip install -q --upgrade pip 2>/dev/null
	@$(BIN)/pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

run: setup
	@$(BIN)/python -m gateway run

firmware: setup
	@$(BIN)/python -m tools.build_firmware

lint: setup
	@$(BIN)/ruff check gateway tools tests
	@$(BIN)/ruff format --check gateway tools tests
	@$(BIN)/lint-imports --no-logo --no-cache  # the layers' dependency rule (pyproject.toml, docs/architecture.md)

typecheck: setup
	@$(BIN)/mypy
	@$(BIN)/python -m tools.typecheck_firmware

test: setup-test lint typecheck
	@$(BIN)/python -m pytest -q

test-fast: setup
	@$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	@$(BIN)/python -m tools.loadgen all

# Not part of `make test`: a few minutes of rendering and decoding (figures in docs/benchmarks.md).
bench-camera: setup
	@$(BIN)/python -m tools.camera.bench

sim: setup
	@$(BIN)/python -m tools.sim run

clean:
	rm -rf $(VENV) var build .pytest_cache .mypy_cache .ruff_cache
