#!/usr/bin/env bash
# Prints the path of a Python 3.10 interpreter that actually runs.
# TFX 1.16 supports Python 3.9-3.10 only. Looks, in order, at: a python3.10 on PATH
# (pyenv's shim counts only if it runs), `pyenv prefix 3.10`, then
# $HOME/.pyenv/versions/3.10*/bin/python3.10.
set -u

works() { [ -n "$1" ] && "$1" -c 'import sys, venv; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; }

candidate=$(command -v python3.10 2>/dev/null || true)
if works "$candidate"; then echo "$candidate"; exit 0; fi

if command -v pyenv >/dev/null 2>&1; then
  for prefix in $(pyenv prefix 3.10 2>/dev/null) $(pyenv versions --bare 2>/dev/null | grep '^3\.10' | while read -r v; do pyenv prefix "$v" 2>/dev/null; done); do
    if works "$prefix/bin/python3.10"; then echo "$prefix/bin/python3.10"; exit 0; fi
  done
fi

for candidate in "$HOME"/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do
  if works "$candidate"; then echo "$candidate"; exit 0; fi
done

cat >&2 <<'MSG'
error: no working Python 3.10 found.
  TFX 1.16 runs on Python 3.9-3.10 only. Install 3.10 (for example `pyenv install 3.10.13`)
  or put a python3.10 on PATH, then run make again.
MSG
exit 1
