// Row tiles of a 16-bit matmul: out(rows x n) = round(x(rows x k) @ W), FP32
// accumulation over the whole k, one RNE rounding to the 16-bit type.
//
// Three routes; which one a GEMM takes depends only on its rows, its dtype, the
// data and the host (fixed for the process), never on threads, backends or
// whether the weights were packed in advance. route_of() is the one statement
// of the rule (the engine, GMMAV_LOG=plan and the bench ask it):
// - chain kernel (chain_kernel.hpp) on the weight as stored, no packed copy:
//   FP16 GEMMs of at most kSmallMRows rows (D13), every f32-route GEMM on hosts
//   where oneDNN has no FP32 brgemm kernel (AVX2 hosts, D24), every GEMM of a
//   shape oneDNN cannot take (onednn_accepts, D65), and BF16 GEMMs of at most
//   kSmallMRows rows whose data fail the exactness rule below. The host is the
//   process's ISA level (common/cpu_isa.hpp: GMMAV_MAX_CPU_ISA caps oneDNN too, D66).
// - f32 route (FP16 above kSmallMRows rows; BF16 ones when the native route is
//   not exact): on hosts with oneDNN's FP32 brgemm, inputs are converted to FP32
//   exactly, oneDNN's FP32 matmul runs on weights packed once, and the FP32
//   result is rounded once; elsewhere the chain kernel.
// - bf16 route (BF16 GEMMs of any rows where oneDNN has a real BF16 kernel, D82):
//   oneDNN's BF16 matmul (vdpbf16ps) on packed weights. Those instructions flush
//   subnormals, so the route is taken only when it is provably exact: every
//   nonzero input has |v| >= 2^-56, which keeps every product and partial sum a
//   multiple of 2^-126 (0 or normal). Otherwise the GEMM takes the chain kernel
//   (at most kSmallMRows rows) or the f32 route. The choice is made per GEMM (of
//   merged tiles): a row's result can depend on the other rows of its GEMM (D8).
// Each call is single-threaded (the compute pool owns the cores), so results
// never depend on how many threads run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "gmmav/types.hpp"

namespace gmmav::gemm {

/// One expert's (or the shared expert's) weight, prepared for row tiles.
class PreparedWeight {
 public:
  PreparedWeight();
  ~PreparedWeight();
  PreparedWeight(const PreparedWeight&) = delete;
  PreparedWeight& operator=(const PreparedWeight&) = delete;

  /// What prepare() packs at once (heavy: run it as one pool task); anything else is packed by
  /// the first tile that needs it (the others needing it wait for it). packing_for() chooses.
  enum class Packing {
    now,          ///< every copy a GEMM of more than kSmallMRows rows may need
    small_tiles,  ///< what GEMMs of at most kSmallMRows rows may need (the BF16 copy on the bf16 route)
    first_need,   ///< nothing
  };

  /// Prepares `w` (k x n, or n x k when `trans`) for the tile kernels.
  /// `w` must stay valid until the last matmul_rows call. `param` names the
  /// weight in errors: memory that cannot be had is Error{out_of_memory, param}
  /// (when packing and in matmul_rows), with the bytes and the shape that asked for them.
  void prepare(DType dtype, const std::uint16_t* w, std::int64_t k, std::int64_t n, bool trans, Packing packing = Packing::now,
               const char* param = "gmmWeight");

  /// out = round(x @ W) for `rows` rows; x rows are k wide, out rows n wide, both contiguous.
  /// Thread-safe; single-threaded.
  void matmul_rows(const std::uint16_t* x, std::int64_t rows, std::uint16_t* out) const;

  /// True when BF16 tiles may take the native route (the weight passed the exactness check).
  /// Makes the packed copy if it was not made yet.
  bool bf16_route() const;

  /// Bytes of packed data held now (the FP32 copy of a BF16 weight counts once a tile needed it).
  std::size_t bytes() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The kernel a GEMM runs, as far as its dtype, rows, shape and the host decide (the file's
/// comment). A GEMM on `onednn_bf16` still leaves it when its data fail the exactness rule: for
/// the chain kernel (at most kSmallMRows rows), else for the f32 route (oneDNN's FP32 brgemm
/// where the host has it, else the chain kernel).
enum class Route { chain, onednn_f32, onednn_bf16 };
Route route_of(DType dtype, std::int64_t rows, std::int64_t k, std::int64_t n);

/// "chain avx512", "oneDNN f32 brg:avx512_core", "oneDNN bf16 brg:avx512_core_bf16": the kernel
/// behind a route in this process.
std::string kernel_name(Route route);

/// What to pack when preparing a k x n weight whose GEMMs have at most `max_rows` rows:
/// first_need when none of them reads a packed copy.
PreparedWeight::Packing packing_for(DType dtype, std::int64_t max_rows, std::int64_t k, std::int64_t n);

/// True where f32-route tiles of more than kSmallMRows rows run oneDNN on a
/// packed FP32 copy of the weight (hosts where oneDNN has an FP32 brgemm
/// kernel); false where every f32-route tile takes the chain kernel on the
/// weight as stored (D24). A property of the host, fixed for the process.
bool f32_route_packs();

/// True where a BF16 weight can take the native route (oneDNN has a real BF16 matmul here).
bool native_bf16_matmul();

/// True where some GEMMs of this dtype compute from a packed copy of the weight (route_of is
/// not chain for some rows), so preparing a weight packs it; false where every GEMM reads it as stored.
bool packs_weights(DType dtype);
/// The same for a k x n weight: false also when oneDNN cannot take the shape (onednn_accepts).
bool packs_weights(DType dtype, std::int64_t k, std::int64_t n);

/// The largest dimension handed to oneDNN: 2^29 - 1 (a row of FP32 values stays below 2^31 bytes).
constexpr std::int64_t kOneDnnMaxDim = (std::int64_t{1} << 29) - 1;

/// True when an (m x k) @ (k x n) matmul may be handed to oneDNN: every dimension in
/// [1, kOneDnnMaxDim]. oneDNN 2.6 crashes (SIGFPE) or truncates on larger ones (D65); every
/// oneDNN call here is guarded by it, and a tile it refuses takes the chain kernel (which takes
/// any int64 shape: a shape too big for the machine then fails with Errc::out_of_memory).
bool onednn_accepts(std::int64_t m, std::int64_t k, std::int64_t n);

/// True when every nonzero BF16 value has |v| >= 2^-56 (no subnormal can occur in a dot product).
bool bf16_dot_exact(const std::uint16_t* v, std::size_t n);

/// The ISA level in use and the chain kernel's path, e.g. "isa avx2 (host avx512_bf16,
/// GMMAV_MAX_CPU_ISA=avx2), chain kernel avx2+fma+f16c".
std::string isa_info();

/// isa_info() and the implementations of the two large-tile routes here, e.g. "...; bf16:
/// brg:avx512_core_bf16, f32: brg:avx512_core" or "...; bf16: unavailable, f32: chain kernel
/// avx2+fma+f16c (oneDNN's is gemm:jit)".
std::string implementation_info();

/// oneDNN's implementation of a large tile of this route ("brg:avx512_core", "unavailable", ...).
std::string onednn_impl(bool bf16);

}  // namespace gmmav::gemm
