#!/usr/bin/env bash
# Installs the build into a fresh prefix and uses it from outside the tree:
# the installed CLI and libgmmav_aclnn (RPATH), then the consumer project built via
# find_package(gmmav CONFIG) and via pkg-config, running each program.
# Usage: check_install.sh BUILD_DIR CONSUMER_PROJECT_DIR WORK_DIR LIBDIR
set -euo pipefail
build=$1 project=$2 work=$3 libdir=$4
prefix=$work/prefix
rm -rf "$work"
mkdir -p "$work"

step() { echo "== $*"; }

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
# gmmav/mpi.hpp only in a build with MPI, as the installed gmmav/build_options.hpp says (D98).
with_mpi=$(sed -n 's/^#define GMMAV_WITH_MPI \([01]\)$/\1/p' "$prefix/include/gmmav/build_options.hpp" 2>/dev/null || true)
[ "$with_mpi" = 0 ] || [ "$with_mpi" = 1 ] || { echo "the install has no gmmav/build_options.hpp saying GMMAV_WITH_MPI" >&2; exit 1; }
if [ "$with_mpi" = 1 ]; then
  [ -e "$prefix/include/gmmav/mpi.hpp" ] || { echo "missing from the install: include/gmmav/mpi.hpp" >&2; exit 1; }
else
  [ ! -e "$prefix/include/gmmav/mpi.hpp" ] || { echo "installed include/gmmav/mpi.hpp in a build without MPI" >&2; exit 1; }
  if ldd "$prefix/$libdir/libgmmav.so" "$prefix/bin/gmmav" | grep -i 'libmpi' >&2; then
    echo "a build without MPI links MPI" >&2
    exit 1
  fi
fi
for f in bin/gmmav include/gmmav/gmmav.hpp include/acl/acl.h include/hccl/hccl.h \
         include/aclnn/aclnn_status.h include/aclnnop/aclnn_grouped_mat_mul_allto_allv.h \
         "$libdir/libgmmav.so" "$libdir/libgmmav_aclnn.so" "$libdir/cmake/gmmav/gmmavConfig.cmake" \
         "$libdir/pkgconfig/gmmav.pc" "$libdir/pkgconfig/gmmav-aclnn.pc"; do
  [ -e "$prefix/$f" ] || { echo "missing from the install: $f" >&2; exit 1; }
done

step "the installed CLI loads nothing from the build tree (it carries the engine: gmmav_internal, D31)"
if ldd "$prefix/bin/gmmav" | grep -F "$build/" >&2; then
  echo "the installed gmmav loads libraries from the build tree $build" >&2
  exit 1
fi
step "the installed libgmmav_aclnn finds libgmmav in the prefix (RPATH)"
if ! ldd "$prefix/$libdir/libgmmav_aclnn.so" | grep 'libgmmav\.so' | grep -qF "$prefix/"; then
  ldd "$prefix/$libdir/libgmmav_aclnn.so" >&2
  echo "the installed libgmmav_aclnn does not load libgmmav from $prefix" >&2
  exit 1
fi
"$prefix/bin/gmmav" --version
"$prefix/bin/gmmav" run -W 2 -e 2 --bs 8 --h1 16 --n1 16 --n2 8 --repeat 1 | tail -1

step "find_package(gmmav CONFIG)"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$project" -B "$work/cmake-build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" >"$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/cmake-build" >"$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/cmake-build/native_consumer"
"$work/cmake-build/aclnn_consumer"

step "pkg-config (g++ \$(pkg-config --cflags --libs gmmav))"
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
pc_libdir=$(pkg-config --variable=libdir gmmav)
set -x
g++ -std=c++20 -O1 "$project/native_main.cpp" -o "$work/pc_native" $(pkg-config --cflags --libs gmmav) -pthread \
    -Wl,-rpath,"$pc_libdir"
g++ -std=c++17 -O1 "$project/aclnn_main.cpp" -o "$work/pc_aclnn" $(pkg-config --cflags --libs gmmav-aclnn) \
    -Wl,-rpath,"$pc_libdir"
{ set +x; } 2>/dev/null
"$work/pc_native"
"$work/pc_aclnn"

# The Python package, when the build has it: imported from the prefix alone (not the build tree),
# in-process calls of both ops (and a backward) checked against their exact values (8 ones times 8 ones = 8).
pkg="$prefix/lib/python3/dist-packages"
if [ -d "$pkg/gmmav" ]; then
  step "the installed Python package (PYTHONPATH=$pkg)"
  if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    (cd "$work" && PYTHONPATH="$pkg" /usr/bin/python3 - "$build" <<'PY'
import sys, torch
import gmmav, gmmav.torch as gt
import os
assert not gmmav.__file__.startswith(os.path.join(sys.argv[1], "python") + os.sep), "imported from the build tree: " + gmmav.__file__
name = gt.in_process_hcoms(1)[0]
y, mm_y = gt.npu_gmm_alltoallv(torch.ones(4, 8, dtype=torch.float16), torch.ones(1, 8, 8, dtype=torch.float16), name, 1, [4], [4])
assert y.shape == (4, 8) and bool((y == 8).all()) and mm_y is None, (y, mm_y)
# The dispatch op and autograd through it: gmm_y = 8 everywhere; d(sum gmm_y)/dW = sum of the rows = 4.
w = torch.ones(1, 8, 8, dtype=torch.float16, requires_grad=True)
gmm_y, _, perm = gt.npu_alltoallv_gmm(torch.ones(4, 8, dtype=torch.float16), w, name, 1, [4], [4], permute_out_flag=True)
gmm_y.float().sum().backward()
assert bool((gmm_y == 8).all()) and bool((perm == 1).all()) and bool((w.grad == 4).all()), (gmm_y, w.grad)
print("installed gmmav.torch:", gmmav.__file__, "PASS")
PY
    )
  else
    echo "skipped: /usr/bin/python3 has no torch (./scripts/setup.sh --suite installs it)"
  fi
fi
echo "install + consumers: PASS"
