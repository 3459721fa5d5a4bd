// The in-process way ranks run: W threads of this process (an in-process
// group). The other, this process as one rank of an MPI job, is mpi_backend.cpp.
#include <exception>

#include "case_runner.hpp"
#include "common/rank_threads.hpp"
#include "engine/compute_pool.hpp"

namespace gmmav::bench {

int Backend::cores_on_this_machine() const { return engine::available_cores(); }

namespace {

class InProcessBackend final : public Backend {
 public:
  explicit InProcessBackend(int w) : override_(w) {}
  std::string name() const override { return "inproc"; }
  bool is_mpi() const override { return false; }
  int process_rank() const override { return 0; }
  int world_size(const CaseShape& c) const override {
    if (c.required_world) return c.required_world;
    return override_ > 0 ? override_ : c.world_size;
  }
  void for_each_rank(int W, const std::function<void(support::RankGroup&, const Comm&)>& fn) override {
    auto comms = create_in_process_group(W);
    auto groups = support::make_in_process_group(W);
    const auto errors = run_rank_threads(W, [&](int r) {
      try {
        fn(*groups[static_cast<std::size_t>(r)], comms[static_cast<std::size_t>(r)]);
      } catch (const support::PeerAbandoned&) {  // not this rank's error: a peer's, reported below
      } catch (...) {
        groups[static_cast<std::size_t>(r)]->abandon();  // peers waiting for this rank give up
        throw;
      }
    });
    for (const auto& e : errors)
      if (e) std::rethrow_exception(e);
  }

 private:
  int override_;
};

}  // namespace

std::unique_ptr<Backend> make_in_process_backend(int world_size_override) {
  return std::make_unique<InProcessBackend>(world_size_override);
}

}  // namespace gmmav::bench
