# Sourced by the other scripts: make sure .venv exists and holds this checkout of fieldsync
# (installed editable) with its dev tools. A fresh machine needs only python3 (3.11+) with venv;
# everything else comes from PyPI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
is_this_checkout() {
    .venv/bin/python - <<'PY' 2>/dev/null
import pathlib, sys
import fieldsync, pytest, ruff  # noqa: F401  (the dev tools are there too)
sys.exit(0 if pathlib.Path(fieldsync.__file__).resolve().parent == pathlib.Path("fieldsync").resolve() else 1)
PY
}
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ] || ! is_this_checkout; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    touch .venv/.installed
fi
