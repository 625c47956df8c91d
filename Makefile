# rattr: the two commands of the README are `make book` and `make test`; everything else is their parts.
# Both work on a fresh machine (Debian, Python 3.11, npm, root for apt): they create the venv and fetch the data.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SCALE  ?= cpu

# Measured 1.2–4× faster torch on CPU (shared/reference/cpu-performance.md); must be set before Python starts.
export MALLOC_MMAP_THRESHOLD_ := 4294967296
export MALLOC_TRIM_THRESHOLD_ := 68719476736
export PYTHONUNBUFFERED := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: book test env data smoke-notebooks bench clean

## make book: environment + data + execute every chapter with papermill at SCALE (default cpu) + render HTML
book: data
	$(BIN)/python book/build.py --scale $(SCALE)

## make test: environment + data + pytest (library tests and nbval on the chapters at smoke scale)
test: data smoke-notebooks
	$(BIN)/python -m pytest tests build/smoke --nbval-lax -p no:cacheprovider

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[book,test]"
	# AutoAttack (rattrlib.leaderboard) comes from torchattacks, whose metadata pins requests~=2.25.1 although it
	# never imports requests; --no-deps keeps pip from downgrading requests/urllib3 (its real deps are above)
	$(BIN)/pip install --quiet --no-deps torchattacks==3.5.1
	touch $@

data: env
	bash data_scripts/fetch_offline_data.sh

smoke-notebooks: env
	rm -rf build/smoke && mkdir -p build/smoke
	for nb in notebooks/*.ipynb; do \
		$(BIN)/papermill --prepare-only "$$nb" "build/smoke/$$(basename $$nb)" -p scale smoke || exit 1; \
	done

bench: data
	for b in benchmarks/bench_*.py; do $(BIN)/python "$$b" || exit 1; done

clean:
	rm -rf book/_build book/chapters build
