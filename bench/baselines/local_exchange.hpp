// An Exchange that moves nothing: every tile goes to this rank's own gmmY
// buffer (expert-major, docs/spec.md §3), so engine::compute_tiles measures the GEMMs
// alone, with the engine's own tiles, library and pool.
#pragma once

#include <cstddef>

#include "comm/communicator.hpp"
#include "gmmav/plan.hpp"

namespace gmmav::bench {

class LocalExchange final : public comm::Exchange {
 public:
  LocalExchange(const Plan& plan, void* gmm_y)
      : plan_(plan), base_(static_cast<std::byte*>(gmm_y)), row_bytes_(plan.desc().n1 * 2) {}
  void* rows_for(int dest, int j, std::int64_t first, std::int64_t) override {
    return base_ + (plan_.send_block_offset(j, dest) + first) * row_bytes_;
  }
  void rows_done(int, int, std::int64_t, std::int64_t, void*) override {}
  void progress() noexcept override {}
  void finish() override {}
  void abort(const std::string&) noexcept override {}

 private:
  const Plan& plan_;
  std::byte* base_;
  std::int64_t row_bytes_;
};

}  // namespace gmmav::bench
