#!/usr/bin/env bash
# Runs an MPI job in which rank KILLED dies mid-call, then requires the verdict
# of every other rank: each survivor writes "... -> expected" to DIR/rank<r>.
# The launcher's status says nothing useful once a rank was killed, and one
# survivor's line on stdout does not show that the other did not crash or hang.
# Usage: survivors_report.sh DIR NP KILLED -- COMMAND...
set -u
dir=$1 np=$2 killed=$3
shift 4
rm -rf "$dir" && mkdir -p "$dir"
"$@"
echo "launcher exited with $? (rank $killed was killed; the survivors' verdicts decide)"
status=0
for ((r = 0; r < np; r++)); do
  [ "$r" -eq "$killed" ] && continue
  if [ ! -s "$dir/rank$r" ]; then
    echo "rank $r: no verdict (it crashed, hung or never ran) -> FAILED"
    status=1
  elif ! grep -q -- '-> expected$' "$dir/rank$r"; then
    echo "rank $r: $(cat "$dir/rank$r") -> FAILED"
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "every survivor reported: expected"
exit "$status"
