#!/usr/bin/env bash
# Create or refresh the project's two environments. Idempotent: an environment whose inputs
# (pyproject.toml, constraints.txt, this script) have not changed since its last successful
# setup is reused as is, in well under a second.
#
#   scripts/setup-env.sh main   # .venv      : Python 3.11, torch 2.13.0 CPU, norse, nir, brian2, onnx
#   scripts/setup-env.sh lava   # .venv-lava : `sne-deploy setup lava` (Python 3.10, lava-nc 0.10.0,
#                               #              nir, numpy<2; no torch), the command pip users run
#   scripts/setup-env.sh data   # Debian's dataset-fashion-mnist, when apt-get can install it
#   scripts/setup-env.sh sinabs # .venv-sinabs: Python 3.11, torch 2.13.0 CPU, sinabs 3.1.3 (pins nir<=1.0.4),
#                               #                only for the interop tests' sinabs exports
#   scripts/setup-env.sh spyx   # .venv-spyx: Python 3.11, Spyx 1.0.0 (JAX, flax), only for the interop
#                               #             tests' Spyx exports (kept apart like sinabs: JAX's own pins)
#
# Python 3.10 for the Lava environment is found through $SNE_LAVA_PYTHON, then python3.10 on
# PATH, then pyenv (any 3.10.x pyenv knows).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

stamp_of() {  # hash of everything that decides an environment's content
    cat pyproject.toml constraints.txt scripts/setup-env.sh | sha256sum | cut -c1-16
}

find_python311() {
    for c in "${SNE_PYTHON:-}" python3.11 python3; do
        [ -n "$c" ] || continue
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            command -v "$c"; return 0
        fi
    done
    return 1
}

fresh() {  # fresh DIR LABEL: true (and says so) when DIR was built from the current inputs
    [ -f "$1/.sne-stamp" ] && [ "$(cat "$1/.sne-stamp")" = "$(stamp_of)" ] && say "$2 environment up to date ($1)"
}

new_venv() {  # new_venv DIR WHAT: a Python 3.11 venv at DIR (an existing one is reused)
    local py; py=$(find_python311) || die "Python 3.11 not found (set SNE_PYTHON=/path/to/python3.11)"
    say "building the $2 environment with $py"
    [ -x "$1/bin/python" ] || "$py" -m venv "$1"
}

setup_main() {
    local venv=$ROOT/.venv
    fresh "$venv" main && return 0
    local stamp; stamp=$(stamp_of)  # of the inputs this build reads, not of later edits
    new_venv "$venv" "main (torch==2.13.0 CPU, no CUDA packages)"
    "$venv/bin/pip" install -q -c constraints.txt torch==2.13.0
    "$venv/bin/pip" install -q -c constraints.txt -e ".[test,neurobench,dev,cluster]"
    "$venv/bin/python" -c 'import torch, norse, nir, brian2, onnx, sne_deploy.simulators, sne_deploy.exporters' \
        || die "main environment failed its import check"
    echo "$stamp" > "$venv/.sne-stamp"
    say "main environment ready"
}

setup_lava() {
    # the same command a pip user runs; it finds Python 3.10 (SNE_LAVA_PYTHON, python3.10, pyenv)
    # and is idempotent itself
    setup_main
    "$ROOT/.venv/bin/sne-deploy" setup lava --env "$ROOT/.venv-lava"
}

setup_data() {
    if dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then
        say "dataset-fashion-mnist already installed"; return 0
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian's dataset-fashion-mnist"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
            || die "apt-get could not install dataset-fashion-mnist"
    else
        say "warning: cannot install dataset-fashion-mnist (needs root and apt-get); pass --data-dir to use Fashion-MNIST"
    fi
}

setup_sinabs() {
    # sinabs pins nir<=1.0.4, so it cannot share the main environment; the interop tests run its
    # exporter here (tests/sinabs_nets.py) and read the files in the main environment
    local venv=$ROOT/.venv-sinabs
    fresh "$venv" sinabs && return 0
    local stamp; stamp=$(stamp_of)
    new_venv "$venv" "sinabs (torch==2.13.0 CPU, sinabs 3.1.3, nir<=1.0.4)"
    "$venv/bin/pip" install -q -c constraints.txt torch==2.13.0 sinabs==3.1.3
    "$venv/bin/python" -c 'import sinabs, nir' || die "sinabs environment failed its import check"
    echo "$stamp" > "$venv/.sne-stamp"
    say "sinabs environment ready"
}

setup_spyx() {
    # Spyx runs on JAX and flax; the interop tests build, simulate and export its networks here
    # (tests/spyx_nets.py) and read the files in the main environment
    local venv=$ROOT/.venv-spyx
    fresh "$venv" spyx && return 0
    local stamp; stamp=$(stamp_of)
    new_venv "$venv" "spyx (Spyx 1.0.0 on JAX, CPU)"
    "$venv/bin/pip" install -q -c constraints.txt spyx==1.0.0
    "$venv/bin/python" -c 'import spyx, nir' || die "spyx environment failed its import check"
    echo "$stamp" > "$venv/.sne-stamp"
    say "spyx environment ready"
}

[ $# -ge 1 ] || set -- main lava
for what in "$@"; do
    case "$what" in
        main) setup_main ;;
        lava) setup_lava ;;
        data) setup_data ;;
        sinabs) setup_sinabs ;;
        spyx) setup_spyx ;;
        *) die "unknown environment '$what' (main, lava, data, sinabs, spyx)" ;;
    esac
done
