# clap_plugin: the two commands a newcomer needs are `make demo` and `make test`.
PY ?= .venv/bin/python
PYTEST_ARGS ?=
DEMO_DIR ?= work_dirs/demo

.PHONY: install lint test demo data clean-demo

install:
	bash tools/install.sh

# one intra-op thread per process: the suite starts several processes (gloo ranks) on 2 cores, and
# oversubscribed OpenMP threads slow torch down by an order of magnitude
TEST_THREADS ?= 1

# ruff (pinned in requirements/constraints.txt) with the settings of pyproject.toml: E, F, W and isort
RUFF ?= $(dir $(PY))ruff

lint: install
	$(RUFF) check .

test: install lint
	OMP_NUM_THREADS=$(TEST_THREADS) $(PY) -m pytest tests $(PYTEST_ARGS)

demo: install
	bash tools/demo.sh $(DEMO_DIR)

clean-demo:
	rm -rf $(DEMO_DIR)
