#!/usr/bin/env bash
# The vendor's example_processes, unchanged but with its outputs checked on
# every rank (example_processes_checked: tests/compat/seed_output_check.cpp),
# across simulated hosts: every rank must print its "[seed-check] ... exact"
# line, none an "[ERROR]", and the job must exit 0.
# Usage: seed_example.sh SIM_CLUSTER EXAMPLE_CHECKED HOSTS RANKS_PER_HOST [RUNS]
set -u
sim=$1 example=$2 hosts=$3 rph=$4 runs=${5:-1}
"$sim" check || exit 77
np=$((hosts * rph))
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failures=0
for run in $(seq 1 "$runs"); do
  timeout 600 "$sim" exec --hosts "$hosts" --rate 5gbit --ranks-per-host "$rph" -- \
    sh -c 'exec "$0" --rank_id "$OMPI_COMM_WORLD_RANK"' "$example" >"$log" 2>&1
  rc=$?
  exact=$(grep -c '^\[seed-check\] rank [0-9]*: .* exact' "$log")
  errors=$(grep -c '\[ERROR\]' "$log")
  if [ "$rc" != 0 ] || [ "$exact" != "$np" ] || [ "$errors" != 0 ]; then
    failures=$((failures + 1))
    echo "run $run of $runs: FAILED (exit $rc, $exact of $np ranks exact, $errors [ERROR] lines):"
    grep -v '^\[INFO\]' "$log" | head -40
  else
    echo "run $run of $runs: $np ranks exact on $hosts hosts x $rph ranks"
  fi
done
echo "seed example on $hosts x $rph simulated hosts: $failures of $runs runs failed"
[ "$failures" = 0 ]
