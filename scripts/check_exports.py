#!/usr/bin/env python3
"""Checks what the shared libraries export (hidden visibility, docs/decisions.md D31).

  check_exports.py NM LIBDIR INCLUDEDIR [--without-mpi]

- libgmmav.so defines no dynamic symbol of the internal namespaces
  (gmmav::engine, gemm, comm, numeric, api, reference, runtime, aclnn);
- it does export the native API (gmmav::run, gmmav::Plan::create, ...), with
  gmmav/mpi.hpp's functions; --without-mpi (a build with GMMAV_WITH_MPI=OFF,
  D98): none of them, and neither library refers to an MPI symbol;
- no public header but gmmav/mpi.hpp includes <mpi.h> or names an MPI_ type
  (a user of the rest needs no MPI, D98);
- libgmmav_aclnn.so exports every C function the compat headers declare
  (include/acl, hccl, aclnn, aclnnop: ACL_FUNC_VISIBILITY / ACLNN_API: 55, among them
  both operators' V1 and V2 entry points) and no C++ symbol of gmmav's namespaces.
Prints a summary; exit 1 with the offending symbols otherwise.
"""
import os
import re
import subprocess
import sys

INTERNAL = re.compile(r"\bgmmav::(engine|gemm|comm|numeric|api|reference|runtime|aclnn)::")
PUBLIC_NEEDED = ["gmmav::run(", "gmmav::Plan::create(", "gmmav::create_in_process_group(", "gmmav::workspace_size(",
                 "gmmav::PackedWeights::create(", "gmmav::create_mpi_group(", "gmmav::detail::run_packed(",
                 "gmmav::to_string(gmmav::DType)", "typeinfo for gmmav::Error"]
# gmmav/mpi.hpp's functions (in a build with MPI only), and the C names of MPI's own symbols.
MPI_API = ["gmmav::create_mpi_group(", "gmmav::create_mpi_group_from_root_info(", "gmmav::launched_by_mpi(",
           "gmmav::finalize_mpi("]
MPI_SYMBOL = re.compile(r"^(P?MPI_|ompi_|mpich|MPIR_)")
MPI_IN_HEADER = re.compile(r"#\s*include\s*[<\"]mpi\.h[>\"]|\bMPI_[A-Z][A-Za-z_]*\b")
# A declaration: a line (not a #define, not a comment) with the export macro, the name before "(".
DECL = re.compile(r"^(?!\s*(?:#|/\*|\*|//)).*\b(?:ACL_FUNC_VISIBILITY|ACLNN_API)\b[^(;\n]*?\b([A-Za-z_]\w*)\s*\(", re.M)


def defined(nm, lib, demangle):
    args = [nm, "-D", "--defined-only"] + (["-C"] if demangle else []) + [lib]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3:
            syms.append((parts[1], parts[2]))
    return syms


def public_headers_naming_mpi(incdir):
    """The public headers (include/, templates too) that include <mpi.h> or name an MPI_ identifier, but gmmav/mpi.hpp."""
    found = []
    for dirpath, _, files in os.walk(incdir):
        for f in sorted(files):
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, incdir)
            if rel == os.path.join("gmmav", "mpi.hpp") or not f.endswith((".h", ".hpp", ".in")):
                continue
            if MPI_IN_HEADER.search(open(path, encoding="utf-8").read()):
                found.append(rel)
    return found


def undefined(nm, lib):
    """The dynamic symbols `lib` needs from elsewhere (mangled names)."""
    out = subprocess.run([nm, "-D", "--undefined-only", lib], check=True, capture_output=True, text=True).stdout
    return [line.split()[-1] for line in out.splitlines() if line.split()]


def main():
    nm, libdir, incdir = sys.argv[1:4]
    without_mpi = "--without-mpi" in sys.argv[4:]
    bad = []
    core = defined(nm, os.path.join(libdir, "libgmmav.so"), True)
    internal = [s for _, s in core if INTERNAL.search(s)]
    bad += [f"libgmmav.so exports an internal symbol: {s}" for s in internal]
    names = [s for _, s in core]
    for want in PUBLIC_NEEDED:
        if want in MPI_API and without_mpi:
            continue
        if not any(s.startswith(want) for s in names):
            bad.append(f"libgmmav.so does not export {want}...")
    bad += [f"{h} includes <mpi.h> or names MPI (only gmmav/mpi.hpp may)" for h in public_headers_naming_mpi(incdir)]
    if without_mpi:
        bad += [f"libgmmav.so exports {s} in a build without MPI" for s in names if any(s.startswith(m) for m in MPI_API)]
        for lib in ("libgmmav.so", "libgmmav_aclnn.so"):
            bad += [f"{lib} refers to the MPI symbol {s} in a build without MPI"
                    for s in undefined(nm, os.path.join(libdir, lib)) if MPI_SYMBOL.match(s)]
    gm = [s for _, s in core if "gmmav::" in s and not s.startswith("std::")]

    declared = set()
    for sub in ("acl", "hccl", "aclnn", "aclnnop"):
        d = os.path.join(incdir, sub)
        for f in sorted(os.listdir(d)):
            if f.endswith(".h"):
                declared |= set(DECL.findall(open(os.path.join(d, f), encoding="utf-8").read()))
    skin = defined(nm, os.path.join(libdir, "libgmmav_aclnn.so"), False)
    functions = {s for t, s in skin if t == "T"}
    missing = sorted(declared - functions)
    bad += [f"libgmmav_aclnn.so does not export the declared C function {s}" for s in missing]
    skin_cxx = [s for _, s in defined(nm, os.path.join(libdir, "libgmmav_aclnn.so"), True) if INTERNAL.search(s)]
    bad += [f"libgmmav_aclnn.so exports an internal symbol: {s}" for s in skin_cxx]
    if len(declared) < 55:
        bad.append(f"only {len(declared)} C functions found in the compat headers, expected 55 or more (the parser lost them?)")
    # The operators' entry points by name: a header the parser skips must not pass unnoticed.
    for op in ("aclnnGroupedMatMulAlltoAllv", "aclnnAlltoAllvGroupedMatMul"):
        for suffix in ("GetWorkspaceSize", "", "V2GetWorkspaceSize", "V2"):
            if op + suffix not in declared:
                bad.append(f"{op + suffix} is not declared with ACLNN_API in include/aclnnop")

    print(f"libgmmav.so: {len(core)} dynamic symbols defined, {len(gm)} of namespace gmmav (public API), "
          f"{len(internal)} internal (gmmav::engine|gemm|comm|numeric|api|reference|runtime|aclnn::)")
    print(f"libgmmav_aclnn.so: {len(declared)} C functions declared by the compat headers, "
          f"{len(declared) - len(missing)} exported, {len(skin_cxx)} internal C++ symbols")
    if bad:
        print("\n".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
