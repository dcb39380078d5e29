#!/usr/bin/env bash
# Set up repro on a fresh machine, in a virtual environment (.venv, or $REPRO_VENV), so it works where the
# system Python is "externally managed" (PEP 668: Debian 12+, Ubuntu 23.04+) and never touches it.
#   bash scripts/setup.sh            # to run experiments:  . .venv/bin/activate && snakemake --cores all
#   bash scripts/setup.sh --test     # to run the tests too (Debian packages: SLURM, munge, chromium)
# PyTorch: a machine without an NVIDIA GPU gets the CPU build of torch==2.13.0 (from a local wheel when pip
# can see one, else from PyTorch's CPU index); a GPU machine gets the default (CUDA) build of the same pin.
# REPRO_TORCH="" keeps whatever torch the environment already has; REPRO_TORCH=SPEC installs that instead.
# PYTHON=/path/to/python3 picks the interpreter the environment is made from (default: python3 on PATH);
# when there is none and this runs as root on Debian/Ubuntu, python3 and python3-venv are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${REPRO_VENV:-.venv}
PY_SYS=${PYTHON:-python3}
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

apt_install() {  # apt_install PKG...: install Debian packages when root, else say what is missing
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: $*"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "setup: please install the Debian packages: $* (needs root)" >&2
    return 1
  fi
}

if [[ "${1:-}" == "--test" ]]; then
  need=()
  command -v slurmctld >/dev/null || need+=(slurm-wlm)
  command -v munged >/dev/null || need+=(munge)
  command -v chromium >/dev/null || need+=(chromium)
  command -v git >/dev/null || need+=(git)
  (( ${#need[@]} )) && { apt_install "${need[@]}" || echo "setup: SLURM/browser tests will be skipped" >&2; }
  extra="[dev]"
else
  extra=""
fi

if ! command -v "$PY_SYS" >/dev/null; then  # a bare Debian/Ubuntu image has no Python at all
  apt_install python3 python3-venv || { echo "setup: no $PY_SYS found; install Python >= 3.10" >&2; exit 1; }
fi
if ! "$PY_SYS" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "setup: $PY_SYS is Python $("$PY_SYS" -V 2>&1); repro needs >= 3.10 (set PYTHON=/path/to/python3.X)" >&2
  exit 1
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup: creating the virtual environment $VENV"
  if ! "$PY_SYS" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    # Debian/Ubuntu ship venv's pip bootstrap separately (python3-venv, or python3.X-venv)
    ver=$("$PY_SYS" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt_install python3-venv "python$ver-venv" || apt_install python3-venv
    "$PY_SYS" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
pip() { "$PY" -m pip "$@"; }

TORCH=${REPRO_TORCH-torch==2.13.0}
if [[ -n "$TORCH" ]] && ! "$PY" -c "import torch" 2>/dev/null; then
  if [[ "${REPRO_TORCH+set}" == "set" ]] || command -v nvidia-smi >/dev/null; then
    echo "setup: installing $TORCH"
    pip install -q "$TORCH"
  else
    # A machine without a GPU: the CPU build ("+cpu"). A local wheel if pip's config can see one, else
    # PyTorch's CPU index (a stock pip given plain torch==2.13.0 downloads the multi-GB CUDA build).
    echo "setup: installing $TORCH (CPU build)"
    PIP_RETRIES=0 pip install -q "$TORCH+cpu" 2>/dev/null \
      || pip install -q "$TORCH" --index-url https://download.pytorch.org/whl/cpu
  fi
fi
echo "setup: installing repro$extra into $VENV"
pip install -q -e ".$extra"
"$PY" -m repro.setup_data   # offline data that libraries expect to download (NLTK's punkt tables for IFEval)
"$PY" -c "import repro, torch, trl, snakemake, dvc" && echo "setup: ok ($VENV; activate with: . $VENV/bin/activate)"
