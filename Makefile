# Hexiao: the two commands a new user needs (make run, make test) and the ones developers use.
SHELL := /bin/bash
PY    ?= python3
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test bench sim heap32 lint typecheck test-fast firmware setup setup-test system-deps system-deps-test clean help

help:
	@echo "make run    - start the gateway (http://127.0.0.1:8000) with SQLite and an MQTT broker"
	@echo "make test   - run the whole test suite (lint, type checks, gateway, firmware on the MicroPython VM)"
	@echo "make bench  - load benchmark over MQTT (prints throughput and latency percentiles)"
	@echo "make sim    - start a simulated scanner (the real firmware on the MicroPython VM)"
	@echo "make heap32 - firmware heap figures on 32 bits (WebAssembly port, Node.js) and on the 64-bit VM"

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

heap32: setup  # the 32-bit heap figure (docs/firmware.md "Memory"): MicroPython's WebAssembly port under Node.js
	@test -d build/wasm/node_modules/@micropython/micropython-webassembly-pyscript || npm install --prefix build/wasm @micropython/micropython-webassembly-pyscript@1.27.0
	@$(BIN)/python -m tools.build_firmware --out build/heap32 >/dev/null
	@node tools/heap32/run.mjs build/wasm/node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs build/heap32 500
	@rm -rf build/heap32-flash && $(BIN)/micropython tools/heap32/burst.py build/heap32 build/heap32-flash 500

sim: setup
	@$(BIN)/python -m tools.sim run

clean:
	rm -rf $(VENV) var build .pytest_cache .mypy_cache .ruff_cache
