# rattr: the two commands of the README are `make book` and `make test`; everything else is their parts.
# Both work on a fresh machine (Debian, Python 3.11, npm, root for apt): they create the venv and fetch the data.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SCALE  ?= cpu
LOCK   := requirements.lock
NODEPS := requirements-no-deps.lock

# Measured 1.2–4× faster torch on CPU (shared/reference/cpu-performance.md); must be set before Python starts.
export MALLOC_MMAP_THRESHOLD_ := 4294967296
export MALLOC_TRIM_THRESHOLD_ := 68719476736
export PYTHONUNBUFFERED := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: book test env lock data smoke-book chromium bench clean

## make book: environment + data + execute every chapter with papermill at SCALE (default cpu) + render HTML
book: data
	$(BIN)/python book/build.py --scale $(SCALE)

## make test: environment + data + the smoke book (each chapter executed once, at scale=smoke, and rendered into
## build/smoke-book) + pytest: the library tests, one test per chapter that it executed without error, and the
## browser tests (Debian's chromium) on the rendered pages. A failing chapter does not stop the build: pytest names it.
## pytest prints its 25 slowest tests, so a CI log shows where the minutes go.
test: data chromium smoke-book
	RATTR_SMOKE_BOOK_REQUIRED=1 $(BIN)/python -m pytest tests -p no:cacheprovider --durations=25

## two chapters at once, one torch thread each: 255 s instead of 328 s from an empty results cache (2 cores, 2026-12-02)
smoke-book: data
	rm -rf build/smoke-book/_build/html
	-$(BIN)/python book/build.py --scale smoke --out build/smoke-book --jobs 2

chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" -eq 0 ]; then \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
		else \
			echo "make test needs Debian's chromium (/usr/bin/chromium) for the browser tests; install it with:" >&2; \
			echo "  sudo apt-get install -y chromium" >&2; exit 1; \
		fi; \
	fi

## make env: the venv, installed from the lock files (exact versions, sha256 hashes), then rattrlib itself.
## requirements.lock holds pyproject.toml's dependencies and its book and test extras, resolved by `make lock`.
## requirements-no-deps.lock holds torchattacks (AutoAttack, rattrlib.leaderboard), installed with --no-deps: its
## metadata pins requests~=2.25.1 although it never imports requests, and resolving that would downgrade
## requests/urllib3 and Sphinx; its real dependencies (torch, torchvision, numpy, scipy, tqdm) are in requirements.lock.
env: $(VENV)/.installed

$(VENV)/.installed: $(LOCK) $(NODEPS) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -r $(NODEPS)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

## make lock: re-resolve the lock files with uv (installed in build/lock-tools), keeping the pins that still satisfy
## pyproject.toml; `make lock UPGRADE=1` re-resolves every package to its newest allowed version. uv does not read
## pip's configuration, so the extra indexes pip is configured with here (pip config) are passed on to it.
UV_VERSION   := 0.13.9
LOCK_TOOLS   := build/lock-tools
PIP_INDEXES   = $(shell $(PYTHON) -m pip config get global.extra-index-url 2>/dev/null)
LOCK_INDEXES  = $(foreach url,$(PIP_INDEXES),--extra-index-url $(url))
LOCK_FLAGS    = --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
                --index-strategy unsafe-best-match --no-progress $(LOCK_INDEXES) $(if $(UPGRADE),--upgrade)

lock:
	test -x $(LOCK_TOOLS)/bin/uv || \
		{ $(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install --quiet uv==$(UV_VERSION); }
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --extra book --extra test $(LOCK_FLAGS) -o $(LOCK)
	echo "torchattacks==3.5.1" | $(LOCK_TOOLS)/bin/uv pip compile - --no-deps $(LOCK_FLAGS) -o $(NODEPS)

data: env
	bash data_scripts/fetch_offline_data.sh

bench: data
	for b in benchmarks/bench_*.py; do $(BIN)/python "$$b" || exit 1; done

clean:
	rm -rf book/_build book/chapters build
