# Sourced by the scripts that run Python tools: `python_venv DIR PROGRAM PACKAGE...` makes the
# virtual environment DIR (under target/, never the system Python: PEP 668) with PACKAGEs
# installed, unless DIR/bin/PROGRAM is already there.
python_venv() {
  local venv=$1 program=$2
  shift 2
  if ! python3 -c 'import ensurepip' 2>/dev/null; then
    # Debian's Python makes virtual environments only with python3-venv.
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv
    else sudo apt-get update -qq && sudo apt-get install -y -qq python3-venv; fi
  fi
  if [ ! -x "$venv/bin/$program" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "$@"
  fi
}
