# The two commands a newcomer types: `make demo` and `make test`. Both set up what they need,
# idempotently: a virtual environment in .venv, a Docker engine, and the sandbox image.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# pip -c: pins torch to the build we test with (see README, "Installing torch"). Empty: no pin.
CONSTRAINTS ?= constraints.txt

.PHONY: setup install sandbox browser test demo lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[dev]'
	@touch $@

sandbox: install
	$(BIN)/codestill sandbox setup

# Debian's Chromium for the viewer's browser test (Playwright drives it; it never downloads a browser).
browser:
	@command -v chromium >/dev/null || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null \
		|| { echo "chromium missing: install it (apt-get install chromium) as root" >&2; exit 1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

setup: install sandbox browser

# The type checker runs beside pytest (its ~40 s of CPU fill the time pytest waits on containers and
# servers); tests/conftest.py shows its report in pytest's summary, and either failing fails the target.
# pytest runs on TEST_WORKERS processes (pytest-xdist), each taking a whole test file at a time so a
# module's servers start once: on two cores, 11 minutes instead of 17. TEST_WORKERS=0 runs it in one.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/ruff check .
	@rm -f .typecheck.log .typecheck.log.done; \
	{ $(BIN)/basedpyright > .typecheck.log 2>&1; echo $$? > .typecheck.log.done; } & \
	CODESTILL_TYPECHECK_LOG=.typecheck.log $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile; tests=$$?; wait; \
	types=$$(cat .typecheck.log.done 2>/dev/null || echo 1); rm -f .typecheck.log .typecheck.log.done; \
	test $$tests -eq 0 && test $$types -eq 0

# MODEL=openai:NAME[@URL] (or OPENAI_API_KEY in the environment) uses a real model instead of the sim.
demo: install sandbox
	$(BIN)/codestill demo $(if $(MODEL),--model $(MODEL))

lint: install
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python bench/sandbox_throughput.py
	$(BIN)/python bench/llm_overhead.py
	$(BIN)/python bench/instruct_throughput.py
	$(BIN)/python bench/memory_scale.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/solve_overhead.py
	$(BIN)/python bench/viewer_scale.py
	$(BIN)/python bench/batch_throughput.py
	$(BIN)/python bench/sft_calls.py
	$(BIN)/python bench/real_model.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
