#!/usr/bin/env bash
# Run the whole suite several times on fresh clones under load, to find flaky tests (issue 14).
#
#   bash scripts/soak.sh [RUNS] [WORKDIR]      (defaults: 3, /tmp/gw-soak)
#
# Each run clones this repository's HEAD into WORKDIR/main (with ../shared linked beside it, as
# in CI), keeps one core busy with a second process, and runs `make test`. Run k changes what
# differs between machines and orders: odd runs use torch's AVX2 kernels, even runs the plain
# (unvectorised) ones, so float rounding differs as on another CPU; every third run orders
# tests/ with pytest-randomly (the seed is printed) and then runs the notebooks in their own
# order (nbval cells must run in sequence). The .venv is kept between runs (make re-checks it).
# A line per run goes to WORKDIR/summary.txt; the full logs are WORKDIR/runK.log.
set -uo pipefail
runs=${1:-3}
work=${2:-/tmp/gw-soak}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work"
[ -e "$work/shared" ] || ln -s "$repo/../shared" "$work/shared"
for k in $(seq 1 "$runs"); do
    [ -d "$work/main/.venv" ] && mv "$work/main/.venv" "$work/venv.keep"
    rm -rf "$work/main" && git clone -q "$repo" "$work/main"
    [ -d "$work/venv.keep" ] && mv "$work/venv.keep" "$work/main/.venv"
    cd "$work/main" || exit 1
    if [ $((k % 2)) = 1 ]; then isa=avx2; else isa=default; fi
    python3 -c "while True: pass" &
    load=$!
    start=$(date +%s)
    if [ $((k % 3)) = 0 ]; then
        seed=$RANDOM
        how="tests/ in random order (seed $seed), then the notebooks"
        {
            make .venv/.installed \
            && .venv/bin/pip install --quiet pytest-randomly \
            && PATH="$PWD/.venv/bin:$PATH" ATEN_CPU_CAPABILITY=$isa GW_FAST=1 GW_REQUIRE_BROWSER=1 \
                .venv/bin/python -m pytest -n 2 --dist loadfile -p randomly \
                --randomly-seed="$seed" tests \
            && PATH="$PWD/.venv/bin:$PATH" ATEN_CPU_CAPABILITY=$isa GW_FAST=1 \
                .venv/bin/python -m pytest -n 2 --dist loadfile -p no:randomly --nbval-lax source
        } > "$work/run$k.log" 2>&1
    else
        how="make test"
        ATEN_CPU_CAPABILITY=$isa GW_REQUIRE_BROWSER=1 PYTEST_ARGS="-p no:randomly" make test \
            > "$work/run$k.log" 2>&1
    fi
    rc=$?
    kill "$load"
    line="run $k: rc=$rc, $(($(date +%s) - start)) s, $(git rev-parse --short HEAD), $how, ATEN_CPU_CAPABILITY=$isa"
    echo "$line" | tee -a "$work/summary.txt"
    grep -E "^(FAILED|ERROR)" "$work/run$k.log" | tee -a "$work/summary.txt"
    cd "$repo" || exit 1
done
