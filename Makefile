# Two commands a newcomer needs (see README):
#   make demo   set up from nothing, run the demo workflow -> results/demo/tables/table1.csv
#   make test   set up from nothing, run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= 2
export HF_HUB_OFFLINE ?= 1
# Rules call `python`: the venv's, unless a rule runs in its conda env (--sdm conda).
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup demo test bench lint dag clean-demo install-profile mmseg-env venvs calibrate estimate readme

setup: $(VENV)/.installed

# Installed with uv (about 10 s from a warm cache instead of pip's 2-3 min: hard links, no
# re-unpacking of torch's 5.5 GB); uv is told the indexes pip is configured with, as
# scripts/build_venvs.py does for the per-rule venvs. torch and torchvision are pinned together
# so the resolver takes the matching pair (torchvision's PyPI build must match torch exactly).
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet uv==0.13.9
	$(VENV)/bin/uv pip install --quiet --python $(PY) $$($(PY) scripts/build_venvs.py --print-uv-sources) \
	  torch==2.14.1 torchvision==0.29.1 -e '.[workflow,test]'
	touch $@

# The env of `backend: mmseg` models, as a venv (envs/mmseg.yaml's pins, its CPU install:
# mmcv-lite + segaug's stand-in for compiled ops). tests/test_mmseg.py runs its scripts in it and
# skips when it is absent; .ci/run builds it. torch first, as for the main venv.
MMSEG_VENV ?= .venv-mmseg
mmseg-env: $(MMSEG_VENV)/.installed

$(MMSEG_VENV)/.installed: envs/mmseg.yaml | $(VENV)/.installed
	python3 -m venv $(MMSEG_VENV)
	$(MMSEG_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MMSEG_VENV)/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -c "import yaml; d = yaml.safe_load(open('envs/mmseg.yaml'))['dependencies']; \
	  print('\n'.join(next(x['pip'] for x in d if isinstance(x, dict))))" > $(MMSEG_VENV)/requirements.txt
	$(MMSEG_VENV)/bin/python -m pip install --quiet -r $(MMSEG_VENV)/requirements.txt
	touch $@

# Every envs/*.yaml as a venv of its own pins, in $(VENVS)/<env> (scripts/build_venvs.py, with
# uv: one unpacked copy of each wheel in uv's cache, hard-linked into the six venvs).
# `SEGAUG_VENVS=$(abspath $(VENVS)) snakemake ...` then runs every job in its rule's venv.
# Keep uv's cache (UV_CACHE_DIR, default ~/.cache/uv) on the file system of $(VENVS).
VENVS ?= .venvs
venvs: $(VENV)/.installed
	$(VENV)/bin/python -m pip install --quiet uv==0.13.9
	PATH=$(abspath $(VENV))/bin:$$PATH $(PY) scripts/build_venvs.py --dest $(VENVS)

demo: setup
	$(VENV)/bin/snakemake --cores $(CORES) --show-failed-logs --configfile config/demo.yaml

test: setup lint
	$(VENV)/bin/pytest -q

bench: setup
	$(PY) benchmarks/bench_convert.py
	$(PY) benchmarks/bench_paste.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_train_data.py
	$(PY) benchmarks/bench_evaluate.py
	$(PY) benchmarks/bench_paste_job.py
	$(PY) benchmarks/bench_dryrun.py
	$(PY) benchmarks/bench_context.py
	$(PY) benchmarks/bench_paste_modes.py
	$(PY) benchmarks/bench_vlm.py
	$(PY) benchmarks/bench_generate.py
	$(PY) benchmarks/bench_sdxl_gpu.py --dry-run

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/snakefmt --check Snakefile rules/
	$(VENV)/bin/snakemake --lint

# The rule graph of the paper config (needs graphviz's `dot`); tests/test_docs.py checks the svg's
# rules against `snakemake --rulegraph`, so rerun this after adding or removing a rule.
dag: setup
	$(VENV)/bin/snakemake --rulegraph --configfile config/config.yaml > docs/rulegraph.dot.tmp
	dot -Tsvg docs/rulegraph.dot.tmp > docs/rulegraph.svg.tmp
	mv docs/rulegraph.svg.tmp docs/rulegraph.svg && rm docs/rulegraph.dot.tmp

# The demo's numbers in README.md and docs/performance.md (between `readme:` markers), from a finished run:
# `make readme` after `make demo`; RESULTS=<outdir> for another run. Standard library only.
RESULTS ?= results/demo
.PHONY: readme
readme:
	python3 scripts/readme_tables.py --results $(RESULTS) README.md docs/performance.md

# The cost sheet of a config (runs no job) and the calibration it reads: run `make calibrate` once
# on a node with the cluster's GPU type (a few timed steps of each model, a few SDXL images; the
# SDXL weights must be prefetched), then `make estimate`. TINY=1: tiny models on the CPU.
CONFIG ?= config/config.yaml
CALIBRATION ?= calibration.json
calibrate: setup
	$(VENV)/bin/segaug calibrate --configfile $(CONFIG) --out $(CALIBRATION) $(if $(TINY),--tiny)

estimate: setup
	$(VENV)/bin/segaug estimate --configfile $(CONFIG) --calibration $(CALIBRATION)

clean-demo:
	rm -rf results/demo

# Make the bare `snakemake --profile slurm ...` work: Snakemake 9 looks a bare profile name up in
# ~/.config/snakemake/ (and /etc/xdg/snakemake/). The link keeps following this checkout.
# Refuses when ~/.config/snakemake/slurm exists and is not a link to this checkout's profile
# (a folder or another link there would stay in force, or get our link put inside it).
PROFILE_LINK := $(HOME)/.config/snakemake/slurm
install-profile:
	@if [ -L "$(PROFILE_LINK)" ] && [ "$$(readlink "$(PROFILE_LINK)")" = "$(abspath profiles/slurm)" ]; then \
	  echo "snakemake --profile slurm already uses $(abspath profiles/slurm)"; \
	elif [ -e "$(PROFILE_LINK)" ] || [ -L "$(PROFILE_LINK)" ]; then \
	  echo "error: $(PROFILE_LINK) exists and is not a link to $(abspath profiles/slurm);" \
	    "move it away (or use --profile $(abspath profiles/slurm)) and run make install-profile again" >&2; \
	  exit 1; \
	else \
	  mkdir -p "$(dir $(PROFILE_LINK))" && ln -s "$(abspath profiles/slurm)" "$(PROFILE_LINK)" && \
	  echo "snakemake --profile slurm now uses $(abspath profiles/slurm)"; \
	fi
