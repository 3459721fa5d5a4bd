// What an aclOpExecutor is: one prepared call — the validated plan, the rank's
// communicator, views of the caller's tensors and the workspace it needs.
// Executors are one-shot (the vendor's default): running one consumes it;
// aclDestroyAclOpExecutor frees one that will not run. Live executors are
// registered so that a stale or foreign pointer is an error, not a crash.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "aclnn/acl_meta.h"
#include "gmmav/gmmav.hpp"

struct aclOpExecutor {
  gmmav::Plan plan;
  gmmav::Comm comm;
  gmmav::OpTensors tensors;
  std::size_t workspace = 0;
  std::string who;  ///< "rank r of group 'name'", for messages
  int device = -1;  ///< the device of the rank's communicator; its calls run on a stream of it (-1: any)
};

namespace gmmav::aclnn {

/// Registers `e` and hands it out.
aclOpExecutor* adopt_executor(std::unique_ptr<aclOpExecutor> e);

/// The executor if it is live (registered), else nullptr. Does not take it.
const aclOpExecutor* find_executor(const aclOpExecutor* e);

/// Unregisters `e` and returns it; nullptr if it is not live.
std::unique_ptr<aclOpExecutor> take_executor(aclOpExecutor* e);

}  // namespace gmmav::aclnn
