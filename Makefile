# molebench: two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel

install: $(PY)
	$(PY) -m pip install -q -e '.[test]'
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

demo: install
	$(VENV)/bin/molebench run --model tiny-sd15 --benchmark tiny-human --out results/demo

test: install
	$(PY) -m pytest -q tests

bench: install
	$(PY) -m molebench.perf

clean:
	rm -rf results/demo .pytest_cache
