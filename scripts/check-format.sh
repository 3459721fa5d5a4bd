#!/usr/bin/env bash
# Checks (or with --fix, applies) .clang-format on every C/C++ file of the repository that git
# tracks, except the vendor-compatible headers under include/acl, include/hccl, include/aclnnop
# (their layout follows the vendor's declarations). Exit 0 when clean, 1 listing the files that
# are not, 77 when clang-format is absent (ctest reports the test skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
[ "${1:-}" = "--fix" ] && fix=1
command -v clang-format >/dev/null || { echo "check-format: clang-format not installed (apt-get install clang-format); skipped"; exit 77; }
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.c' 2>/dev/null | grep -v -E '^include/(acl|hccl|aclnnop)/' || true)
if [ ${#files[@]} -eq 0 ]; then
  echo "check-format: no git checkout here (nothing to check); skipped"
  exit 77
fi
if [ "$fix" = 1 ]; then
  clang-format -i --style=file "${files[@]}"
  echo "check-format: formatted ${#files[@]} files"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --style=file --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format: ${#bad[@]} of ${#files[@]} files differ from .clang-format (fix: scripts/check-format.sh --fix):"
  printf '  %s\n' "${bad[@]}"
  exit 1
fi
echo "check-format: ${#files[@]} files match .clang-format"
