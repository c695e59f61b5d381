# Sluice — the two commands: `make run` (a single-node broker) and `make test` (everything CI runs).
# Each installs what is missing first (Debian, as root or with sudo), idempotently.
SHELL := /bin/bash
CARGO ?= cargo
CONFIG ?= config/single-node.toml

.PHONY: deps venv node_modules run test lint client-only bench fuzz help

help:
	@echo "make run    build and run a single-node broker from $(CONFIG)"
	@echo "make test   formatting, clippy and every test (what CI runs)"
	@echo "make bench  the benchmark harness (docs/PERFORMANCE.md) and the micro-benchmarks"
	@echo "make fuzz   the fuzz targets for FUZZ_SECONDS each (default 300; FUZZ_SAVE=1 grows the corpus)"

# Prerequisites: protoc and the well-known .proto includes (etcd-client's build); the real
# ZooKeeper and etcd servers the coordination tests start on loopback ports.
deps:
	@missing=""; \
	command -v protoc >/dev/null 2>&1 || missing="$$missing protobuf-compiler"; \
	[ -f /usr/include/google/protobuf/timestamp.proto ] || missing="$$missing libprotobuf-dev"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc"; \
	[ -x /usr/share/zookeeper/bin/zkServer.sh ] || missing="$$missing zookeeperd"; \
	command -v etcd >/dev/null 2>&1 || missing="$$missing etcd-server"; \
	command -v kcat >/dev/null 2>&1 || missing="$$missing kcat"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v $(CARGO) >/dev/null 2>&1 || { echo "make deps: cargo not found (install Rust with rustup)"; exit 1; }

# Python environments for the real-client tests (tests/clients.rs): .venv has confluent-kafka and
# kafka-python 2.x, .venv-kp3 has kafka-python 3.x. A stamp named after the requirements file's
# hash marks a finished install, so a second run installs nothing.
venv: deps
	@set -e; for spec in .venv:tests/clients/requirements.txt .venv-kp3:tests/clients/requirements-kp3.txt; do \
	  dir=$${spec%%:*}; req=$${spec#*:}; \
	  stamp="$$dir/.installed-$$(sha256sum "$$req" | cut -c1-16)"; \
	  if [ -f "$$stamp" ] && "$$dir/bin/python" -c '' >/dev/null 2>&1; then continue; fi; \
	  echo "make venv: installing $$req into $$dir"; \
	  "$$dir/bin/python" -c '' >/dev/null 2>&1 || { rm -rf "$$dir"; python3 -m venv "$$dir"; }; \
	  "$$dir/bin/python" -m pip install --disable-pip-version-check -q -r "$$req"; \
	  rm -f "$$dir"/.installed-*; touch "$$stamp"; \
	done

# kafkajs for tests/kafkajs.rs: `npm ci` from tests/clients/js/package-lock.json (kafkajs 2.2.4,
# pinned with its integrity hash). A stamp named after the lock file's hash marks a finished
# install, so a second run installs nothing.
JS_DIR := tests/clients/js
node_modules: deps
	@set -e; stamp="$(JS_DIR)/node_modules/.installed-$$(sha256sum $(JS_DIR)/package-lock.json | cut -c1-16)"; \
	if [ ! -f "$$stamp" ]; then \
	  echo "make node_modules: npm ci in $(JS_DIR)"; \
	  ( cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error ); \
	  touch "$$stamp"; \
	fi

run: deps
	$(CARGO) run --release --bin sluice -- --config $(CONFIG)

# The client alone must build without the broker's dependencies (actix, sled, the
# coordination services and etcd-client's protoc step).
BROKER_ONLY_CRATES := actix|actix-rt|sled|etcd-client|zookeeper-client|tonic|prost|sluice-coordination
client-only: deps
	$(CARGO) clippy -p sluice --lib --no-default-features --features client -- -D warnings
	@pulled=$$($(CARGO) tree -p sluice --no-default-features --features client -e normal --prefix none \
	  | awk '{print $$1}' | grep -xE '$(BROKER_ONLY_CRATES)' | sort -u | tr '\n' ' '); \
	if [ -n "$$pulled" ]; then echo "the client-only build pulls in: $$pulled"; exit 1; fi; \
	echo "client-only build: no broker dependencies"

lint: deps client-only
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The last line sums every test binary's result ("N passed, N failed").
# `--no-fail-fast` runs every test binary even after one fails; the recipe still exits
# with cargo's status, so a failing test fails `make test` (and CI).
test: lint venv node_modules
	@set -o pipefail; mkdir -p target; \
	$(CARGO) test --workspace --no-fail-fast 2>&1 | tee target/test.log; status=$$?; \
	awk '/^test result:/ { p += $$4; f += $$6 } END { printf "%d passed, %d failed\n", p, f }' target/test.log; \
	exit $$status

# The benchmark harness (docs/PERFORMANCE.md): the machine's limits, the null broker, the
# produce/consume/latency/partition-count matrix against the release `sluice` binary with
# librdkafka (built from the sources rdkafka-sys ships; `bench` feature only) and the Sluice
# client as load generators; then the log engine and coordination micro-benchmarks.
# BENCH_ARGS: e.g. `--runs 5`, `--quick`, `--only produce,consume`.
BENCH_ARGS ?=
bench: deps
	@command -v strace >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || { \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends strace make; }
	$(CARGO) build --release --features bench --bin sluice --bin sluice-bench
	./target/release/sluice-bench --out target/bench $(BENCH_ARGS)
	$(CARGO) bench -p sluice-actors --bench log_append
	$(CARGO) bench -p sluice-coordination --bench coordination

# The fuzz targets (tests/fuzz.rs) for longer than `make test`'s fixed-seed smoke run:
# FUZZ_SECONDS per target (default 300); FUZZ_SAVE=1 adds inputs with new outcomes to
# tests/fuzz/corpus/ (replayed by `make test`); failing inputs land in tests/fuzz/crashes/.
FUZZ_SECONDS ?= 300
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test --release --test fuzz -- --ignored --nocapture
