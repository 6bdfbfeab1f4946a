#!/usr/bin/env bash
# Time and size of a fresh install, as the README's command makes it, for each set of extras asked:
#   bash benchmarks/install.sh '.' '.[sweep]' '.[test]'
# Each goes into a new venv in a temporary folder (pip's download cache is used as it is: run it twice and read
# the second run for times that do not depend on the network). Prints one line per install.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
for target in "${@:-.}"; do
  venv=$(mktemp -d)
  start=$(date +%s.%N)
  python3 -m venv "$venv" && "$venv/bin/pip" install -q -c "$root/requirements-lock.txt" -e "$root/$target" >/dev/null
  seconds=$(echo "$(date +%s.%N) - $start" | bc)
  printf '%-12s %6.0f s  %6d MB  %4d packages  ray: %s\n' "$target" "$seconds" "$(du -sm "$venv" | cut -f1)" \
    "$("$venv/bin/pip" list 2>/dev/null | tail -n +3 | wc -l)" \
    "$("$venv/bin/python" -c 'import importlib.util as u; print("yes" if u.find_spec("ray") else "no")')"
  rm -rf "$venv"
done
