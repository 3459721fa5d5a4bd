#include "tcp_loopback.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include "cpu_time.hpp"

namespace gmmav::bench {
namespace {

double thread_cpu_seconds() { return cpu_seconds(RUSAGE_THREAD); }

// Closes a descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

TcpLoopback measure_tcp_loopback(long long bytes) {
  TcpLoopback r;
  Fd listener{::socket(AF_INET, SOCK_STREAM, 0)};
  if (listener.fd < 0) return r;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener.fd, 1) != 0 ||
      ::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return r;
  // Connect first (the listen backlog completes it), then accept: no thread
  // can be left blocked if either step fails.
  Fd client{::socket(AF_INET, SOCK_STREAM, 0)};
  if (client.fd < 0 || ::connect(client.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return r;
  Fd conn{::accept(listener.fd, nullptr, nullptr)};
  if (conn.fd < 0) return r;
  constexpr std::size_t kChunk = std::size_t{1} << 20;
  double send_cpu = 0;
  bool send_ok = true;
  std::thread sender([&] {
    std::vector<char> buf(kChunk, 1);
    const double c0 = thread_cpu_seconds();
    for (long long sent = 0; sent < bytes;) {
      const ssize_t n = ::write(client.fd, buf.data(), kChunk);
      if (n <= 0) {
        send_ok = false;
        break;
      }
      sent += n;
    }
    send_cpu = thread_cpu_seconds() - c0;
    ::shutdown(client.fd, SHUT_WR);  // the reader sees end of stream
  });
  long long got = 0;
  std::vector<char> buf(kChunk);
  const double c0 = thread_cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  for (ssize_t n; (n = ::read(conn.fd, buf.data(), kChunk)) > 0;) got += n;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double recv_cpu = thread_cpu_seconds() - c0;
  sender.join();
  if (!send_ok || got < bytes || wall <= 0) return r;
  r.gbps = static_cast<double>(got) / wall * 1e-9;
  r.cpu_ns_per_byte = (send_cpu + recv_cpu) / static_cast<double>(got) * 1e9;
  return r;
}

}  // namespace gmmav::bench
