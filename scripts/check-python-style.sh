#!/usr/bin/env bash
# Lints the Python package, its tests and the tools (python/, tests/, bench/, scripts/) with flake8 and python/.flake8
# (line length 130, as the C++). Exit 0 when clean, 1 listing what flake8 finds, 77 when no
# interpreter here has flake8 (ctest reports the test skipped; ./scripts/setup.sh --suite installs
# Debian's python3-flake8). The interpreter: $GMMAV_PYTHON, else /usr/bin/python3 (Debian's, the
# one python3-flake8 installs into), else python3 on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
python=""
for p in ${GMMAV_PYTHON:-} /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c "import flake8" 2>/dev/null; then
    python="$p"
    break
  fi
done
if [ -z "$python" ]; then
  echo "check-python-style: flake8 not installed (apt-get install python3-flake8); skipped"
  exit 77
fi
if ! out=$("$python" -m flake8 --config python/.flake8 python tests bench scripts 2>&1); then
  echo "check-python-style: flake8 ($python -m flake8 --config python/.flake8) finds:"
  echo "$out"
  exit 1
fi
echo "check-python-style: python/, tests/, bench/ and scripts/ pass flake8 ($("$python" -m flake8 --version | head -1 | cut -d' ' -f1))"
