// Uses the installed native API: docs/spec.md §3's worked example (W = 2 ranks as
// threads, e = 2 experts each) plus a shared expert, in BF16 with small
// integers (every result is exact), checked element by element.
#include <gmmav/gmmav.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

namespace {

// BF16 is the top half of a float; exact for the small integers used here.
std::uint16_t bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<std::uint16_t>(u >> 16);
}
float value(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

constexpr int W = 2, E = 2, H1 = 2, N1 = 3, BS = 2, H2 = 2, N2 = 2;
const std::vector<std::int64_t> kSend[W] = {{2, 1, 3, 1}, {1, 2, 0, 2}};
const std::vector<std::int64_t> kRecv[W] = {{2, 1, 1, 2}, {3, 1, 0, 2}};
// Rows of y on each rank as (source rank, source gmmX row), from docs/spec.md §3.
const std::vector<std::pair<int, int>> kYRows[W] = {{{0, 0}, {0, 1}, {0, 5}, {1, 0}, {1, 1}, {1, 2}},
                                                    {{0, 2}, {0, 3}, {0, 4}, {0, 6}, {1, 3}, {1, 4}}};
const int kExpertOfRow[W][7] = {{0, 0, 0, 0, 0, 1, 1}, {0, 1, 1, 1, 1, -1, -1}};

float x_of(int rank, int row, int col) {
  return col == 0 ? static_cast<float>(100 * rank + row + 1) : -static_cast<float>(row + 1);
}
// Expert j's weight: [[j+1, 0, 1], [0, j+1, 1]], so a row (a, b) gives ((j+1)a, (j+1)b, a+b).
float w_of(int j, int k, int n) { return n == 2 ? 1.0f : (k == n ? static_cast<float>(j + 1) : 0.0f); }

}  // namespace

int main() {
  auto comms = gmmav::create_in_process_group(W);
  struct Rank {
    std::vector<std::uint16_t> x, w, y, mm_x, mm_w, mm_y;
    std::string error;
  };
  std::vector<Rank> ranks(W);
  for (int r = 0; r < W; ++r) {
    Rank& k = ranks[r];
    const int a = r == 0 ? 7 : 5;
    for (int i = 0; i < a; ++i)
      for (int c = 0; c < H1; ++c) k.x.push_back(bf16(x_of(r, i, c)));
    for (int j = 0; j < E; ++j)
      for (int h = 0; h < H1; ++h)
        for (int n = 0; n < N1; ++n) k.w.push_back(bf16(w_of(j, h, n)));
    k.y.assign(6 * N1, 0xFFFF);
    k.mm_x = {bf16(1.0f + r), bf16(2), bf16(3), bf16(4.0f + r)};
    k.mm_w = {bf16(1), bf16(0), bf16(0), bf16(2)};
    k.mm_y.assign(BS * N2, 0xFFFF);
  }

  std::vector<std::thread> threads;
  for (int r = 0; r < W; ++r) {
    threads.emplace_back([&, r] {
      Rank& k = ranks[r];
      try {
        gmmav::ProblemDesc d;
        d.world_size = W;
        d.rank = r;
        d.local_experts = E;
        d.send_counts = kSend[r];
        d.recv_counts = kRecv[r];
        d.h1 = H1;
        d.n1 = N1;
        d.dtype = gmmav::DType::bf16;
        d.shared = gmmav::SharedExpertDesc{BS, H2, N2};
        const gmmav::Plan plan = gmmav::Plan::create(d);
        gmmav::OpTensors t;
        t.gmm_x = gmmav::ConstTensorView::matrix(k.x.data(), d.dtype, plan.rows_in(), H1);
        t.gmm_weight = gmmav::ConstTensorView::cube(k.w.data(), d.dtype, E, H1, N1);
        t.y = gmmav::TensorView::matrix(k.y.data(), d.dtype, plan.rows_out(), N1);
        t.mm_x = gmmav::ConstTensorView::matrix(k.mm_x.data(), d.dtype, BS, H2);
        t.mm_weight = gmmav::ConstTensorView::matrix(k.mm_w.data(), d.dtype, H2, N2);
        t.mm_y = gmmav::TensorView::matrix(k.mm_y.data(), d.dtype, BS, N2);
        gmmav::run(plan, comms[r], t);
        // Again with the weights packed once (gmmav/packed_weights.hpp); the checks below see this call's outputs.
        std::fill(k.y.begin(), k.y.end(), 0xFFFF);
        std::fill(k.mm_y.begin(), k.mm_y.end(), 0xFFFF);
        const gmmav::PackedWeights packed = gmmav::PackedWeights::create(plan, t);
        gmmav::run(plan, comms[r], t, packed);
      } catch (const gmmav::Error& e) {
        k.error = std::string(gmmav::to_string(e.code())) + " (" + e.param() + "): " + e.what();
      }
    });
  }
  for (auto& t : threads) t.join();

  int bad = 0;
  for (int d = 0; d < W; ++d) {
    if (!ranks[d].error.empty()) {
      std::fprintf(stderr, "rank %d: %s\n", d, ranks[d].error.c_str());
      ++bad;
      continue;
    }
    for (std::size_t row = 0; row < kYRows[d].size(); ++row) {
      const auto [s, i] = kYRows[d][row];
      const int j = kExpertOfRow[s][i];
      for (int n = 0; n < N1; ++n) {
        const float want = x_of(s, i, 0) * w_of(j, 0, n) + x_of(s, i, 1) * w_of(j, 1, n);
        const float got = value(ranks[d].y[row * N1 + n]);
        if (got != want) {
          std::fprintf(stderr, "rank %d y(%zu, %d): got %g, expected %g\n", d, row, n, got, want);
          ++bad;
        }
      }
    }
    const float mm_want[4] = {1.0f + d, 4.0f, 3.0f, 8.0f + 2 * d};
    for (int e = 0; e < BS * N2; ++e)
      if (value(ranks[d].mm_y[e]) != mm_want[e]) {
        std::fprintf(stderr, "rank %d mmY[%d]: got %g, expected %g\n", d, e, value(ranks[d].mm_y[e]), mm_want[e]);
        ++bad;
      }
  }
  std::printf("native consumer: %s (W=%d, e=%d, bf16, %d compute threads)\n", bad ? "FAIL" : "PASS", W, E,
              gmmav::compute_threads());
  return bad ? 1 : 0;
}
