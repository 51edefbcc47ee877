# Sourced by scripts/run and scripts/test: makes .venv and installs the package into it, but only when
# pyproject.toml changed since the last install (its hash is kept in .venv/.aura-installed, with the
# extras installed), so a call with nothing new starts at once.
#
#   ensure_venv ""       the package alone (scripts/run)
#   ensure_venv test     with the test extras (scripts/test); an install with them also serves scripts/run

STAMP=.venv/.aura-installed

ensure_venv() {
  local extras=$1 wanted installed=""
  wanted="$(sha256sum pyproject.toml | cut -d' ' -f1) ${extras}"
  [ -f "$STAMP" ] && installed=$(cat "$STAMP")
  if [ -x .venv/bin/python ] && [ -x .venv/bin/aura-sicd ]; then
    # the same pyproject.toml, installed with the extras asked for (or with the test extras)
    if [ "$installed" = "$wanted" ] || [ "$installed" = "${wanted% *} test" ]; then
      return 0
    fi
  fi
  echo "installing aura-sicd${extras:+[$extras]} into .venv (only when pyproject.toml changes) ..." >&2
  [ -x .venv/bin/python ] || python3 -m venv .venv
  rm -f "$STAMP"
  .venv/bin/python -m pip install -q --upgrade pip
  # setuptools' own deprecation warnings say nothing a user of this project can act on
  PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
  echo "$wanted" > "$STAMP"
}
