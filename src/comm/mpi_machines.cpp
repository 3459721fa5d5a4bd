#include "comm/mpi_machines.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <fstream>
#include <memory>
#include <string_view>

#include "comm/mpi_runtime.hpp"
#include "common/fail.hpp"

namespace gmmav::comm {
namespace {

constexpr std::size_t kKeyBytes = 160;  // a boot id (36) + "/" + "net:[4026531840]" fits with room to spare

std::string read_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return {};
  return line;
}

}  // namespace

std::string machine_key() {
  std::string id = read_line("/proc/sys/kernel/random/boot_id");
  if (id.empty()) {
    char name[HOST_NAME_MAX + 1] = {0};
    gethostname(name, sizeof name - 1);
    id = std::string("host:") + name;
  }
  return id;
}

std::string network_key() {
  char link[128] = {0};
  const ssize_t n = readlink("/proc/self/ns/net", link, sizeof link - 1);
  return machine_key() + "/" + (n > 0 ? std::string(link, static_cast<std::size_t>(n)) : std::string("net:?"));
}

int MachineMap::ranks_on_machine_of(int rank) const {
  const int m = machine[static_cast<std::size_t>(rank)];
  return static_cast<int>(std::count(machine.begin(), machine.end(), m));
}

MachineMap map_machines(MPI_Comm comm, std::chrono::milliseconds timeout) {
  int size = 1;
  {
    auto lk = mpi::lock();
    MPI_Comm_size(comm, &size);
  }
  // Two keys per rank, each truncated to kKeyBytes (the same cut everywhere).
  std::array<char, 2 * kKeyBytes> mine{};
  const std::string keys[2] = {machine_key(), network_key()};
  for (int k = 0; k < 2; ++k) std::memcpy(mine.data() + k * kKeyBytes, keys[k].data(), std::min(keys[k].size(), kKeyBytes - 1));
  // Both buffers outlive a timeout (MPI may still read and write them).
  auto buffers = std::make_unique<char[]>((static_cast<std::size_t>(size) + 1) * mine.size());
  std::memcpy(buffers.get(), mine.data(), mine.size());
  char* all = buffers.get() + mine.size();
  MPI_Request req = MPI_REQUEST_NULL;
  {
    auto lk = mpi::lock();
    mpi::check(MPI_Iallgather(buffers.get(), static_cast<int>(mine.size()), MPI_CHAR, all, static_cast<int>(mine.size()),
                              MPI_CHAR, comm, &req),
               "MPI_Iallgather");
  }
  mpi::wait_or_leak(&req, buffers, timeout,
                    "while the group's ranks told each other their machines (a rank of the communicator did not arrive)");
  MachineMap map;
  map.machine.resize(static_cast<std::size_t>(size));
  map.network.resize(static_cast<std::size_t>(size));
  const auto key = [&](int r, int k) { return std::string_view(all + r * mine.size() + k * kKeyBytes, kKeyBytes); };
  for (int r = 0; r < size; ++r) {
    int m = r, n = r;
    for (int q = r - 1; q >= 0; --q) {
      if (key(q, 0) == key(r, 0)) m = q;
      if (key(q, 1) == key(r, 1)) n = q;
    }
    map.machine[static_cast<std::size_t>(r)] = m;
    map.network[static_cast<std::size_t>(r)] = n;
  }
  return map;
}

}  // namespace gmmav::comm
