// The registry of live executors and aclDestroyAclOpExecutor.
#include "aclnn/executor.hpp"

#include <mutex>
#include <unordered_set>

#include "runtime/api_guard.hpp"
#include "runtime/status_codes.hpp"

namespace gmmav::aclnn {
namespace {

std::mutex g_mu;
std::unordered_set<const aclOpExecutor*> g_live;

}  // namespace

aclOpExecutor* adopt_executor(std::unique_ptr<aclOpExecutor> e) {
  std::lock_guard lk(g_mu);
  g_live.insert(e.get());
  return e.release();
}

const aclOpExecutor* find_executor(const aclOpExecutor* e) {
  std::lock_guard lk(g_mu);
  return g_live.count(e) != 0 ? e : nullptr;
}

std::unique_ptr<aclOpExecutor> take_executor(aclOpExecutor* e) {
  std::lock_guard lk(g_mu);
  if (g_live.erase(e) == 0) return nullptr;
  return std::unique_ptr<aclOpExecutor>(e);
}

}  // namespace gmmav::aclnn

extern "C" aclnnStatus aclDestroyAclOpExecutor(aclOpExecutor* executor) {
  using namespace gmmav::runtime;
  return guarded(__func__, kAclnnCodes, [&] {
    if (executor == nullptr) return ACLNN_SUCCESS;
    if (!gmmav::aclnn::take_executor(executor))
      raise(ACLNN_ERR_PARAM_INVALID, "executor", "expected a live executor, got {} (already run, destroyed or never created)",
            static_cast<const void*>(executor));
    return ACLNN_SUCCESS;
  });
}
