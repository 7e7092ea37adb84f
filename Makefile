# hw2report: `make report` renders report/index.html, `make test` runs the tests.
# The first use of any target creates .venv and installs the project into it.
SHELL := /bin/bash
.DEFAULT_GOAL := report

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

MODE   ?= embedded# embedded | course
DATA   ?=# course mode: the hw2_data folder
DEVICE ?= cpu# cpu | cuda
SEED   ?= 0
# course mode extras (optional): the course's UNet.py, its MNIST-M Classifier.pth, and a P1
# checkpoint folder trained on the course data (make checkpoints MODE=course DATA=...)
UNET_MODULE ?=
COURSE_CLASSIFIER ?=
P1_CKPT ?=
PYTEST_ARGS ?=

# Nothing may wait on a network: hub libraries stay offline unless the user overrides it.
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
EXECUTED  := $(patsubst notebooks/%,build/executed/%,$(NOTEBOOKS))
DATA_ABS  := $(if $(DATA),$(abspath $(DATA)),)
opt_param  = $(if $(2),-p $(1)=$(abspath $(2)),)
PARAMS    := -p mode=$(MODE) -p data_dir=$(DATA_ABS) -p device=$(DEVICE) -p seed=$(SEED) \
             $(call opt_param,unet_module,$(UNET_MODULE)) \
             $(call opt_param,course_classifier,$(COURSE_CLASSIFIER)) \
             $(call opt_param,ckpt,$(P1_CKPT))

.PHONY: report test lab checkpoints bench clean venv

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,lab]'
	@touch $@

report: $(VENV)/.installed
	@set -e; start=$$(date +%s); \
	for nb in $(NOTEBOOKS); do \
	  $(PY) -m hw2lib report run $$nb build/executed/$$(basename $$nb) $(PARAMS); \
	done; \
	$(PY) -m hw2lib report build $(EXECUTED) --out report/index.html; \
	echo "report: $$(( $$(date +%s) - start )) s"

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab notebooks/

checkpoints: $(VENV)/.installed
	$(PY) -m hw2lib checkpoints --out checkpoints --seed $(SEED)

bench: $(VENV)/.installed
	$(PY) -m hw2lib bench

clean:
	rm -rf build report figures data_cache .pytest_cache
