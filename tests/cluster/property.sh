#!/usr/bin/env bash
# The across-hosts property test (issue 29): random cases of both ops on
# simulated hosts (scripts/sim-cluster), every rank's outputs compared bit
# for bit with the in-process backend (gmmav_mpi_check --property).
# Launch L runs on the hosts x ranks-per-host TOPOLOGIES[L % 11] with
# GMMAV_MPI_MESSAGE_BYTES unset / 0 / small (1 = one row per message, or
# 3000: partial tiles) by L % 3, and checks seeds L*CASES .. L*CASES+CASES-1
# one after another on one group (small calls after small calls carry heads).
#   property.sh SIM_CLUSTER MPI_CHECK [--launches FIRST COUNT] [--cases K] [--seeds N]
# --seeds N: the soak, N cases in all (launches of K cases from FIRST).
# Prints one line per launch and a total; exit 0 only with 0 mismatches.
set -u
sim=$1 check=$2
shift 2
first=0 launches=8 cases=6 seeds=""
while [ $# -gt 0 ]; do
  case $1 in
    --launches) first=$2 launches=$3; shift 3 ;;
    --cases) cases=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    *) echo "property.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -z "$seeds" ] || launches=$(( (seeds + cases - 1) / cases ))
"$sim" check || exit 77
topologies=("2 2" "3 1" "2 3" "4 2" "5 1" "3 2" "8 1" "2 1" "4 1" "6 1" "7 1")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0 total=0
for L in $(seq "$first" $((first + launches - 1))); do
  read -r hosts rph <<<"${topologies[$((L % 11))]}"
  case $((L % 3)) in
    0) bytes="" ;;
    1) bytes=0 ;;
    2) bytes=$([ $(((L / 3) % 2)) = 0 ] && echo 1 || echo 3000) ;;
  esac
  env=()
  [ -z "$bytes" ] || env=(env GMMAV_MPI_MESSAGE_BYTES="$bytes")
  timeout 600 "$sim" exec --hosts "$hosts" --rate 5gbit --ranks-per-host "$rph" -- \
    "${env[@]}" "$check" --property $((L * cases)) "$cases" >"$log" 2>&1
  rc=$?
  total=$((total + cases))
  line=$(grep '^property:' "$log")
  if [ "$rc" != 0 ] || [ -z "$line" ]; then
    failed=$((failed + 1))
    echo "launch $L ($hosts hosts x $rph ranks, bytes ${bytes:-unset}): FAILED (exit $rc)"
    grep -v '^sim-cluster' "$log" | head -30
  else
    echo "launch $L ($hosts hosts x $rph ranks): $line"
  fi
done
echo "property across simulated hosts: $launches launches, $total cases, $failed launches failed"
[ "$failed" = 0 ]
