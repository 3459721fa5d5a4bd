// Creating an in-process group (ranks = threads of this process).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.hpp"

namespace gmmav::comm {

/// Element r is rank r's communicator. `name` empty = generated, unique in the process.
std::vector<std::shared_ptr<Communicator>> create_in_process(int world_size, std::chrono::milliseconds timeout,
                                                             const std::string& name = {});

}  // namespace gmmav::comm
