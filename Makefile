# clap_plugin: the two commands a newcomer needs are `make demo` and `make test`.
PY ?= .venv/bin/python
PYTEST_ARGS ?=
DEMO_DIR ?= work_dirs/demo

.PHONY: install test demo data clean-demo

install:
	bash tools/install.sh

test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: install
	bash tools/demo.sh $(DEMO_DIR)

clean-demo:
	rm -rf $(DEMO_DIR)
