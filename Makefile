# hw2report: `make report` renders report/index.html, `make pdf` prints it to a PDF,
# `make test` runs the tests.
# The first use of any target creates .venv and installs the project into it.
SHELL := /bin/bash
.DEFAULT_GOAL := report

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

MODE   ?= embedded# embedded | course
DATA   ?=# course mode: the hw2_data folder (a path with spaces is fine)
DEVICE ?= cpu# cpu | cuda
SEED   ?= 0# draws every noise (samples, grids); never changes the data
DATA_SEED ?= 0# builds the embedded data sets and their splits; never changes the noise
# notebooks make report runs at a time (each with cores/JOBS torch threads; the appendix runs
# last, alone). Course mode: 1, so that two sections never share one GPU's memory.
JOBS   ?= $(if $(filter course,$(MODE)),1,2)
# course mode extras (optional): the course's UNet.py, its MNIST-M Classifier.pth, and a P1
# checkpoint folder trained on the course data (make checkpoints MODE=course DATA=...)
UNET_MODULE ?=
COURSE_CLASSIFIER ?=
P1_CKPT ?=
# course mode, problem 3: OpenAI's ViT-B/32 weights file (ViT-B-32.pt or open_clip_pytorch_model.bin)
CLIP_WEIGHTS ?=
# course mode, problem 3b: Stable Diffusion v1.4 (sd-v1-4.ckpt or a diffusers folder; SD_CONFIG:
# a folder of pipeline configs for a lone .ckpt, default the shipped v1.4 ones), the --out folder
# of `python -m hw2lib ti train` (TI_CKPT), and optionally hw2_3.sh's output folder (TI_OUT)
SD ?=
SD_CONFIG ?=
TI_CKPT ?=
TI_OUT ?=
REPORT_PARAMS ?=# more papermill parameters of make report, e.g. -p 'steps=2' (make rehearsal)
PYTEST_ARGS ?=
PROFILE ?= quick# make bench: tiny | quick | full
STUDENT_ID ?=# make pdf: on the title page and in the file name, report/hw2_<id>.pdf
LAB_PORT ?= 8888# make lab: the port on 127.0.0.1

# Nothing may wait on a network: hub libraries stay offline unless the user overrides it.
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# ISA=avx2: torch, oneDNN and MKL dispatch no wider than AVX2, to time an AVX2-only machine's
# code path on an AVX-512 CPU (e.g. make bench ISA=avx2; the appendix names the kernels used)
ISA ?=
ifneq ($(ISA),)
export ATEN_CPU_CAPABILITY := $(ISA)
export ONEDNN_MAX_CPU_ISA := $(shell echo $(ISA) | tr a-z A-Z)
export MKL_ENABLE_INSTRUCTIONS := $(shell echo $(ISA) | tr a-z A-Z)
endif

NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# Paths are passed as given (quoted: spaces survive); `report all` makes them absolute.
opt_param  = $(if $(2),-p '$(1)=$(2)',)
PARAMS    := -p 'mode=$(MODE)' -p 'data_dir=$(DATA)' -p 'device=$(DEVICE)' -p 'seed=$(SEED)' \
             -p 'data_seed=$(DATA_SEED)' \
             $(call opt_param,unet_module,$(UNET_MODULE)) \
             $(call opt_param,course_classifier,$(COURSE_CLASSIFIER)) \
             $(call opt_param,ckpt,$(P1_CKPT)) \
             $(call opt_param,clip_weights,$(CLIP_WEIGHTS)) \
             $(call opt_param,sd,$(SD)) $(call opt_param,sd_config,$(SD_CONFIG)) \
             $(call opt_param,ti_ckpt,$(TI_CKPT)) \
             $(call opt_param,ti_out,$(TI_OUT)) $(REPORT_PARAMS)

.PHONY: report pdf test lab checkpoints bench clean venv rehearsal

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,lab]'
	@touch $@

# Incremental: a notebook runs again only when its cells, hw2lib, its parameters or the files
# its parameters name (checkpoints, data) changed; FORCE=1 runs them all.
report: $(VENV)/.installed
	$(PY) -m hw2lib report all $(NOTEBOOKS) --build build --out report/index.html $(PARAMS) \
	  $(if $(FORCE),--force,) --jobs $(JOBS) $(if $(STUDENT_ID),--student-id '$(STUDENT_ID)',)

# The PDF the course collects, printed by Debian's chromium from the page `make report` just
# brought up to date; every page also goes to build/pdf_pages/ as a PNG to look at.
pdf: report
	$(PY) -m hw2lib report pdf report/index.html --pngs build/pdf_pages \
	  $(if $(STUDENT_ID),--student-id '$(STUDENT_ID)',)

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

# JupyterLab on notebooks/, on 127.0.0.1 only; it prints the URL with its token. --allow-root only
# as root (containers, CI); no browser is opened where there is no display.
LAB_ROOT    = $(if $(filter 0,$(shell id -u)),--allow-root,)
LAB_BROWSER = $(if $(or $(DISPLAY),$(WAYLAND_DISPLAY),$(filter Darwin,$(shell uname -s))),,--no-browser)
lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks --ServerApp.ip=127.0.0.1 \
	  --ServerApp.port=$(LAB_PORT) $(LAB_ROOT) $(LAB_BROWSER)

# Every embedded model, one target per model in dependency order (order-only: a model is
# trained when its folder has no manifest, whatever the files' dates). Each is resumable: after
# an interruption, rerun make. CKPT=runs/new trains a fresh set beside the committed one.
CKPT ?= checkpoints
TRAIN = $(PY) -m hw2lib train $(1) --out $(@D) --seed $(SEED) --data-seed $(DATA_SEED)
CHECKPOINTS := $(CKPT)/digit_classifier/info.json $(CKPT)/p1_ddpm/manifest.json \
               $(CKPT)/p2_faces/manifest.json $(CKPT)/p3_clip/manifest.json \
               $(CKPT)/p3_t2i/manifest.json $(CKPT)/p3_ti/manifest.json
checkpoints: $(CHECKPOINTS)
$(CKPT)/digit_classifier/info.json: | $(VENV)/.installed
	$(call TRAIN,classifier)
$(CKPT)/p1_ddpm/manifest.json: | $(VENV)/.installed
	$(call TRAIN,p1)
$(CKPT)/p2_faces/manifest.json: | $(VENV)/.installed
	$(call TRAIN,faces)
$(CKPT)/p3_clip/manifest.json: | $(VENV)/.installed
	$(call TRAIN,clip)
$(CKPT)/p3_t2i/manifest.json: | $(CKPT)/p3_clip/manifest.json
	$(call TRAIN,t2i) --clip $(CKPT)/p3_clip
$(CKPT)/p3_ti/manifest.json: | $(CKPT)/p3_t2i/manifest.json
	$(call TRAIN,ti) --t2i $(CKPT)/p3_t2i

bench: $(VENV)/.installed
	$(PY) -m hw2lib bench --profile $(PROFILE)

# The course mode at the course's sizes on random weights: every course command and
# make report MODE=course with minimal steps; per stage time, peak memory, and the GPU estimate.
REHEARSAL_DIR ?= build/rehearsal
rehearsal: $(VENV)/.installed
	$(PY) -m hw2lib rehearse --out '$(REHEARSAL_DIR)' --device $(DEVICE)

clean:
	rm -rf build report figures data_cache .pytest_cache
