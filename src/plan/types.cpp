// The names of the public enums (DType, Errc of gmmav/types.hpp; Op of gmmav/plan.hpp).
#include "gmmav/types.hpp"
#include "gmmav/plan.hpp"

#include <array>
#include <cstdint>
#include <cstdio>

namespace gmmav {

const char* to_string(DType t) noexcept {
  switch (t) {
    case DType::f16:
      return "float16";
    case DType::bf16:
      return "bfloat16";
  }
  // Not a DType (an integer cast to one): say so, with its value.
  static const auto invalid = [] {
    std::array<std::array<char, 24>, 256> names{};
    for (std::size_t i = 0; i < names.size(); ++i) std::snprintf(names[i].data(), names[i].size(), "invalid DType (%zu)", i);
    return names;
  }();
  return invalid[static_cast<std::uint8_t>(t)].data();
}

const char* to_string(Errc c) noexcept {
  switch (c) {
    case Errc::null_argument:
      return "null argument";
    case Errc::invalid_argument:
      return "invalid argument";
    case Errc::count_mismatch:
      return "count mismatch across ranks";
    case Errc::timeout:
      return "timeout";
    case Errc::group_broken:
      return "group broken";
    case Errc::internal:
      return "internal error";
    case Errc::out_of_memory:
      return "out of memory";
  }
  return "unknown";
}

const char* to_string(Op op) noexcept {
  switch (op) {
    case Op::combine:
      return "combine (GroupedMatMulAlltoAllv)";
    case Op::dispatch:
      return "dispatch (AlltoAllvGroupedMatMul)";
  }
  return "invalid Op";
}

}  // namespace gmmav
