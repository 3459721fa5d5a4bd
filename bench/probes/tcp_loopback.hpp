// What moving bytes through the kernel's loopback TCP costs on this machine:
// the wall-clock rate and, more to the point for overlap, the CPU time the
// kernel spends copying (send + receive side) per byte. With MPI over TCP on
// one machine that CPU time comes out of the same cores the GEMMs use, so an
// exchange can hide behind compute only as far as the cores have time left.
#pragma once

namespace gmmav::bench {

struct TcpLoopback {
  double gbps = 0;             ///< payload GB/s, one blocking stream (0: not measured / failed)
  double cpu_ns_per_byte = 0;  ///< CPU time of sender + receiver threads per payload byte
};

/// One sender thread, one receiver thread, blocking sockets on 127.0.0.1, `bytes` moved.
TcpLoopback measure_tcp_loopback(long long bytes = 512LL << 20);

}  // namespace gmmav::bench
