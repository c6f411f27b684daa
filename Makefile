# Switchyard — developer commands. `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
# uv on PATH, else the one pip put beside python3 (scripts/bootstrap installs it if missing).
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
ARGS ?=
# llama-cpp-python compiles from source; uv's cache keeps the built wheel for next time.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
export UV_LINK_MODE ?= copy

.PHONY: help bootstrap install run test lint fmt bench bench-worker bench-gateway bench-webhook bench-session test-live-consul clean

help:
	@echo "make run     start the whole platform locally (ARGS='--port 9000' to pass options)"
	@echo "make test    run every package's tests and the cross-service tests"
	@echo "make lint    ruff + mypy"
	@echo "make bootstrap   install the Debian packages and uv the build and tests need"
	@echo "make fmt     format the code"
	@echo "make bench   all benchmarks (bench-worker, bench-gateway; ARGS=--quick for short runs)"
	@echo "make bench-webhook   webhook deliveries/s with 1 and 2 dispatchers (PostgreSQL)"
	@echo "make bench-session   session appends/s, context build p50/p99, gateway turn overhead (PostgreSQL)"
	@echo "make test-live-consul   discovery scenarios against a real agent at CONSUL_HTTP_ADDR"

# The system set-up (Debian packages: compiler, cmake, redis-server, postgresql, prometheus;
# then uv) lives in one idempotent script, shared with .ci/run.
bootstrap:
	scripts/bootstrap

.venv/.synced: pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	scripts/bootstrap
	$(UV) sync --all-packages --frozen
	@touch $@

install: .venv/.synced

run: install
	$(UV) run --no-sync switchyard up $(ARGS)

test: install
	$(UV) run --no-sync pytest $(PYTEST_ARGS)

lint: install
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync mypy

fmt: install
	$(UV) run --no-sync ruff format .
	$(UV) run --no-sync ruff check --fix .

bench: bench-worker bench-gateway bench-session bench-webhook

bench-worker: install
	$(UV) run --no-sync python bench/worker_bench.py $(ARGS)

bench-gateway: install
	$(UV) run --no-sync python bench/gateway_bench.py $(ARGS)

bench-webhook: install
	$(UV) run --no-sync python bench/webhook_bench.py $(ARGS)

bench-session: install
	$(UV) run --no-sync python bench/session_bench.py $(ARGS)

test-live-consul: install
	$(UV) run --no-sync pytest -m live_consul $(PYTEST_ARGS)

clean:
	rm -rf .venv .switchyard .pytest_cache .mypy_cache .ruff_cache
