#!/usr/bin/env bash
# A virtualenv with pyarrow and numpy for the Arrow end-to-end test (tests/tests/arrow_two_hosts.rs)
# and the demo's Arrow step: tests/python/cache/venv, from the pins in requirements.txt.
#
#   tests/python/setup.sh          create or update it (quick when it is up to date)
#   PYTHON=python3.11 tests/python/setup.sh   build it with another interpreter
#
# Idempotent: a stamp records the interpreter and the requirements the venv was built from; the
# venv is rebuilt only when either changes or it no longer imports pyarrow and numpy. Prints the
# venv's python on the last line. Installs wheels only (no compiler needed).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/cache/venv"
req="$here/requirements.txt"
py="${PYTHON:-python3}"

command -v "$py" >/dev/null 2>&1 || { echo "setup.sh: $py not found (install python3 and pip)" >&2; exit 1; }
"$py" -c 'import venv, ensurepip' 2>/dev/null ||
    { echo "setup.sh: $py cannot make virtualenvs (Debian: apt-get install python3-venv)" >&2; exit 1; }

want="$("$py" -c 'import sys; print(sys.executable, sys.version.split()[0])') $(sha256sum "$req" | cut -d' ' -f1)"
stamp="$venv/.famfs-setup-stamp"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
    "$venv/bin/python" -c 'import pyarrow, numpy' 2>/dev/null; then
    echo "$venv/bin/python"
    exit 0
fi

echo "setup.sh: creating $venv ($want)" >&2
rm -rf "$venv"
mkdir -p "$here/cache"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: -r "$req" >&2
"$venv/bin/python" -c 'import pyarrow, numpy; print("setup.sh: pyarrow", pyarrow.__version__, "numpy", numpy.__version__)' >&2
# The stamp last: an interrupted setup is redone next time.
printf '%s\n' "$want" > "$stamp"
echo "$venv/bin/python"
