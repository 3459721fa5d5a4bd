// One operator case stored as .npy files, one set per rank (`gmmav verify`):
//   gmmX_r{r}.npy (sum(sendCounts), H1)   gmmWeight_r{r}.npy (e, H1, N1) | (e, N1, H1)
//   sendCounts_r{r}.npy, recvCounts_r{r}.npy (int64, e*W)
//   optional: mmX_r{r}.npy (BS, H2), mmWeight_r{r}.npy (H2, N2) | (N2, H2)
//   optional expected outputs, combine op: y_r{r}.npy (sum(recvCounts), N1), mmY_r{r}.npy (BS, N2);
//   dispatch op: gmmY_r{r}.npy (sum(recvCounts), N1), mmY_r{r}.npy, permuteOut_r{r}.npy
//   (sum(recvCounts), H1; its presence also makes the run write permuteOut).
// FP16 tensors are '<f2'; BF16 tensors are their raw bit patterns, '<u2'.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "gmmav/plan.hpp"
#include "gmmav/types.hpp"

namespace gmmav::cli {

/// The case on disk is unusable (missing/extra file, wrong dtype or shape,
/// counts that break the contract). The message names the file(s).
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CaseLayout {
  Op op = Op::combine;
  DType dtype = DType::f16;
  bool trans_gmm_weight = false;
  bool trans_mm_weight = false;
};

struct RankCase {
  ProblemDesc desc;  // counts, e, H1, N1, dtype, shared-expert shape
  std::vector<std::uint16_t> gmm_x, gmm_weight, mm_x, mm_weight;
  std::optional<std::vector<std::uint16_t>> expected_y, expected_mm_y, expected_permute_out;
  std::int64_t rows_in = 0;   // sum(sendCounts): A (combine), BSK (dispatch)
  std::int64_t rows_out = 0;  // sum(recvCounts): BSK (combine), A (dispatch)
};

struct VerifyCase {
  std::filesystem::path dir;
  CaseLayout layout;
  std::vector<RankCase> ranks;
  int world_size() const { return static_cast<int>(ranks.size()); }
  bool has_shared_expert() const { return !ranks.empty() && ranks[0].desc.shared.has_value(); }
};

/// Loads every rank's files from `dir` and checks them against each other
/// (dtypes, shapes, count lengths, the cross-rank count contract). Throws
/// InputError or NpyError naming the file.
VerifyCase load_verify_case(const std::filesystem::path& dir, const CaseLayout& layout);

/// "gmmX_r3.npy"
std::string case_file(const std::string& tensor, int rank);

/// The routed output's file stem: "y" (combine) or "gmmY" (dispatch, the vendor's name).
const char* routed_output(Op op);

/// The .npy dtype string of a 16-bit tensor: '<f2' (fp16) or '<u2' (bf16 bit patterns).
const char* npy_descr(DType dtype);

}  // namespace gmmav::cli
