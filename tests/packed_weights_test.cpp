// gmmav::PackedWeights: weights packed once and passed to run().
// - the outputs are bit-identical to a call that packs its own weights (FP16,
//   BF16 on both routes, with and without the shared expert, transposed weights);
// - one object serves many calls (other x, other counts) and many threads;
// - the call really uses the packed copy (it does not pack again);
// - every mismatch throws Error{invalid_argument, "packedWeights"} before
//   anything is written.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <thread>

#include "engine/packed_weights.hpp"
#include "engine/tile_schedule.hpp"
#include "gemm/chain_kernel.hpp"
#include "gemm/tile_matmul.hpp"
#include "gmmav/gmmav.hpp"
#include "numeric/half.hpp"
#include "reference/synthetic_case.hpp"
#include "support/expect_error.hpp"
#include "support/spawn.hpp"

namespace {

using gmmav::DType;
using gmmav::Errc;
using gmmav::PackedWeights;
using gmmav::Plan;
using namespace gmmav::reference;

constexpr std::uint16_t kSentinel = 0xA5A5;  // make_case fills y and mmY with it

struct Outputs {
  std::vector<std::vector<std::uint16_t>> y, mm_y;
  bool operator==(const Outputs&) const = default;
};

Outputs outputs_of(const Case& c) {
  Outputs o;
  for (const auto& r : c.ranks) {
    o.y.push_back(r.y);
    o.mm_y.push_back(r.mm_y);
  }
  return o;
}

void reset_outputs(Case& c) {
  for (auto& r : c.ranks) {
    std::fill(r.y.begin(), r.y.end(), kSentinel);
    std::fill(r.mm_y.begin(), r.mm_y.end(), kSentinel);
  }
}

// Runs every rank of `c` on a fresh in-process group (the spawn harness), one thread per rank:
// with packed[r] when `packed` is given, else packing in the call. An error fails the test, naming the rank.
void run_all(Case& c, const std::vector<PackedWeights>* packed, const std::vector<gmmav::OpTensors>* tensors = nullptr) {
  gmmav::testing::spawn(gmmav::testing::Backend::in_process, c.spec.world_size, [&](const gmmav::testing::Rank& me) {
    const auto i = static_cast<std::size_t>(me.rank);
    const Plan plan = Plan::create(c.desc(me.rank));
    const gmmav::OpTensors t = tensors ? (*tensors)[i] : c.tensors(me.rank);
    if (packed)
      gmmav::run(plan, me.comm, t, (*packed)[i]);
    else
      gmmav::run(plan, me.comm, t);
  });
}

std::vector<PackedWeights> pack_all(Case& c) {
  std::vector<PackedWeights> p;
  for (int r = 0; r < c.spec.world_size; ++r) p.push_back(PackedWeights::create(Plan::create(c.desc(r)), c.tensors(r)));
  return p;
}

// Outputs of `c` computed the ordinary way (packing in the call), on a copy.
Outputs unpacked_outputs(const Case& c) {
  Case u = c;
  reset_outputs(u);
  run_all(u, nullptr);
  return outputs_of(u);
}

// Whether this CPU has the native BF16 route (the library's own criterion: a real BF16 kernel).
bool native_bf16() { return gmmav::gemm::native_bf16_matmul(); }

// ---------------------------------------------------------------- bit-identical results

struct Variant {
  DType dtype;
  bool shared;
  bool trans;
};

CaseSpec spec_of(const Variant& v, std::uint64_t seed = 11) {
  CaseSpec s;
  s.world_size = 3;
  s.local_experts = 3;
  s.rows_per_rank = 800;  // blocks of ~90 rows, some > 128: several tiles
  s.h1 = 200;             // long dot products: the accumulation order shows
  s.n1 = 70;
  s.dtype = v.dtype;
  s.trans_gmm_weight = v.trans;
  s.shared_expert = v.shared;
  s.bs = 300;
  s.h2 = 150;
  s.n2 = 40;
  s.trans_mm_weight = v.trans;
  s.counts = CountPattern::random;
  s.values = ValueKind::random;  // |v| >= 2^-56: BF16 takes the native route where the CPU has one
  s.seed = seed;
  return s;
}

class PackedBitIdentical : public ::testing::TestWithParam<Variant> {};

TEST_P(PackedBitIdentical, SameBitsAsPackingInTheCall) {
  Case c = make_case(spec_of(GetParam()));
  const Outputs want = unpacked_outputs(c);
  auto packed = pack_all(c);
  run_all(c, &packed);
  EXPECT_TRUE(outputs_of(c) == want);
  const CaseCheck check = check_case(c, false);
  EXPECT_TRUE(check.ok) << check.first_failure;
}

INSTANTIATE_TEST_SUITE_P(Variants, PackedBitIdentical,
                         ::testing::Values(Variant{DType::f16, false, false}, Variant{DType::f16, true, false},
                                           Variant{DType::bf16, false, false}, Variant{DType::bf16, true, false},
                                           Variant{DType::f16, true, true}, Variant{DType::bf16, true, true}),
                         [](const auto& i) {
                           return std::string(i.param.dtype == DType::f16 ? "fp16" : "bf16") +
                                  (i.param.shared ? "_shared" : "_routed_only") + (i.param.trans ? "_transposed" : "");
                         });

// BF16 weights with a value below 2^-56 cannot take the native route (its kernels flush
// subnormals): that expert, and the shared expert, take the f32 route; rows below 2^-56
// send single tiles of native-route experts to the f32 route as well.
TEST(PackedWeights, Bf16TinyValuesTakeTheExactRouteWithTheSameBits) {
  CaseSpec spec = spec_of({DType::bf16, true, false});
  Case c = make_case(spec);
  const std::uint16_t tiny = gmmav::numeric::double_to_bf16(std::ldexp(1.0, -60));
  const std::int64_t slice = spec.h1 * spec.n1;
  for (auto& r : c.ranks) {
    r.gmm_weight[static_cast<std::size_t>(1 * slice + 5)] = tiny;  // expert 1 only
    r.mm_weight[7] = tiny;
  }
  // A row of one of expert 0's GEMMs of more than kSmallMRows rows (smaller ones leave the bf16
  // route for the chain kernel, which needs no copy, D82): that one GEMM of rank 0 takes the f32 route.
  std::int64_t tiny_row = -1;
  for (const auto& g : gmmav::engine::routed_groups(Plan::create(c.desc(0)), 0))
    if (g.rows > gmmav::gemm::kSmallMRows) {
      tiny_row = g.src_row;
      break;
    }
  ASSERT_GE(tiny_row, 0) << "expert 0 of rank 0 has a GEMM of more than kSmallMRows rows";
  c.ranks[0].gmm_x[static_cast<std::size_t>(tiny_row * spec.h1 + 3)] = tiny;
  for (auto& r : c.ranks) {
    EXPECT_TRUE(gmmav::gemm::bf16_dot_exact(r.gmm_weight.data(), static_cast<std::size_t>(slice)));
    EXPECT_FALSE(gmmav::gemm::bf16_dot_exact(r.gmm_weight.data() + slice, static_cast<std::size_t>(slice)));
  }
  const Outputs want = unpacked_outputs(c);
  auto packed = pack_all(c);
  for (const auto& p : packed) {
    const auto& d = *p.data();
    EXPECT_EQ(d.expert(0).bf16_route(), native_bf16());
    EXPECT_FALSE(d.expert(1).bf16_route());
    EXPECT_FALSE(d.shared->bf16_route());
  }
  const std::size_t bytes_before = packed[0].bytes();
  for (int call = 0; call < 2; ++call) {  // the second call reuses the FP32 copy the first one made
    reset_outputs(c);
    run_all(c, &packed);
    EXPECT_TRUE(outputs_of(c) == want) << "call " << call;
  }
  if (native_bf16()) {
    EXPECT_GT(packed[0].bytes(), bytes_before) << "rank 0's tiny rows needed an FP32 copy";
  }
  const CaseCheck check = check_case(c, false);
  EXPECT_TRUE(check.ok) << check.first_failure;
}

// ---------------------------------------------------------------- reuse

class PackedReuse : public ::testing::TestWithParam<DType> {};

TEST_P(PackedReuse, ThreeCallsWithOtherX) {
  Case c = make_case(spec_of({GetParam(), true, false}));
  // Each rank packs its own weights on its own thread (not collective), once.
  std::vector<PackedWeights> packed(static_cast<std::size_t>(c.spec.world_size));
  {
    std::vector<std::thread> th;
    for (int r = 0; r < c.spec.world_size; ++r)
      th.emplace_back(
          [&, r] { packed[static_cast<std::size_t>(r)] = PackedWeights::create(Plan::create(c.desc(r)), c.tensors(r)); });
    for (auto& t : th) t.join();
  }
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const auto enc = [&](double v) { return gmmav::numeric::from_double(GetParam(), v); };
  std::vector<Outputs> seen;
  for (int call = 0; call < 3; ++call) {
    for (auto& r : c.ranks) {  // new activations in the same buffers
      for (auto& v : r.gmm_x) v = enc(u(rng));
      for (auto& v : r.mm_x) v = enc(u(rng));
    }
    reset_outputs(c);
    const Outputs want = unpacked_outputs(c);
    run_all(c, &packed);
    const Outputs got = outputs_of(c);
    EXPECT_TRUE(got == want) << "call " << call;
    const CaseCheck check = check_case(c, false);
    EXPECT_TRUE(check.ok) << "call " << call << ": " << check.first_failure;
    for (const Outputs& s : seen) EXPECT_FALSE(s == got) << "the new x should change the outputs";
    seen.push_back(got);
  }
}

TEST_P(PackedReuse, OtherCountsSameWeights) {
  // The routing changes every call, the weights do not: one object serves plans with other counts.
  Case a = make_case(spec_of({GetParam(), true, false}, 21));
  Case b = make_case(spec_of({GetParam(), true, false}, 22));
  ASSERT_NE(a.ranks[0].send_counts, b.ranks[0].send_counts);
  auto packed = pack_all(a);
  std::vector<gmmav::OpTensors> tb;
  for (int r = 0; r < b.spec.world_size; ++r) {
    auto& rb = b.ranks[static_cast<std::size_t>(r)];
    const auto& ra = a.ranks[static_cast<std::size_t>(r)];
    rb.gmm_weight = ra.gmm_weight;  // same values for the reference and the unpacked run
    rb.mm_weight = ra.mm_weight;
    gmmav::OpTensors t = b.tensors(r);
    t.gmm_weight.data = ra.gmm_weight.data();  // and the very memory that was packed
    t.mm_weight->data = ra.mm_weight.data();
    tb.push_back(t);
  }
  const Outputs want = unpacked_outputs(b);
  run_all(b, &packed, &tb);
  EXPECT_TRUE(outputs_of(b) == want);
  const CaseCheck check = check_case(b, false);
  EXPECT_TRUE(check.ok) << check.first_failure;
}

TEST_P(PackedReuse, OneObjectFromManyThreadsAtOnce) {
  // Four independent W = 1 groups share one PackedWeights (same weights, own x and y).
  CaseSpec spec = spec_of({GetParam(), true, false}, 31);
  spec.world_size = 1;
  spec.counts = CountPattern::balanced;  // the same counts for every seed
  Case base = make_case(spec);
  const Plan plan = Plan::create(base.desc(0));
  const PackedWeights packed = PackedWeights::create(plan, base.tensors(0));
  constexpr int kThreads = 4;
  std::vector<Case> cases;
  for (int i = 0; i < kThreads; ++i) {
    CaseSpec si = spec;
    si.seed = 100 + static_cast<std::uint64_t>(i);  // other x (and weights, replaced below)
    Case ci = make_case(si);
    ci.ranks[0].gmm_weight = base.ranks[0].gmm_weight;
    ci.ranks[0].mm_weight = base.ranks[0].mm_weight;
    cases.push_back(std::move(ci));
  }
  std::vector<Outputs> want;
  for (const Case& ci : cases) want.push_back(unpacked_outputs(ci));
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> th;
  for (int i = 0; i < kThreads; ++i)
    th.emplace_back([&, i] {
      try {
        auto comms = gmmav::create_in_process_group(1);
        Case& ci = cases[static_cast<std::size_t>(i)];
        gmmav::OpTensors t = ci.tensors(0);
        t.gmm_weight.data = base.ranks[0].gmm_weight.data();
        t.mm_weight->data = base.ranks[0].mm_weight.data();
        for (int k = 0; k < 3; ++k) gmmav::run(plan, comms[0], t, packed);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(i)] = e.what();
      }
    });
  for (auto& t : th) t.join();
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(errors[static_cast<std::size_t>(i)], "");
    EXPECT_TRUE(outputs_of(cases[static_cast<std::size_t>(i)]) == want[static_cast<std::size_t>(i)]) << "thread " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, PackedReuse, ::testing::Values(DType::f16, DType::bf16),
                         [](const auto& i) { return std::string(i.param == DType::f16 ? "fp16" : "bf16"); });

// White-box: a call with PackedWeights computes with the packed copy and does
// not pack again. (Changing weights after create() breaks the contract; this
// only shows that the object is what the call uses.)
TEST_P(PackedReuse, TheCallUsesThePackedCopy) {
  if (!gmmav::gemm::packs_weights(GetParam()))
    GTEST_SKIP() << "on this host this dtype's tiles read the weights as stored (D24): there is no packed copy to use";
  CaseSpec spec = spec_of({GetParam(), true, false}, 41);
  spec.world_size = 1;
  Case c = make_case(spec);
  const Outputs original = unpacked_outputs(c);
  const Plan plan = Plan::create(c.desc(0));
  const PackedWeights packed = PackedWeights::create(plan, c.tensors(0));
  for (auto& v : c.ranks[0].gmm_weight) v = static_cast<std::uint16_t>(v ^ 0x0100);  // other values, same memory
  for (auto& v : c.ranks[0].mm_weight) v = static_cast<std::uint16_t>(v ^ 0x0100);
  ASSERT_FALSE(unpacked_outputs(c) == original);
  auto comms = gmmav::create_in_process_group(1);
  gmmav::run(plan, comms[0], c.tensors(0), packed);
  EXPECT_TRUE(outputs_of(c) == original);
}

// ---------------------------------------------------------------- mismatches

CaseSpec small_spec(DType t = DType::f16) {
  CaseSpec s;
  s.world_size = 1;
  s.local_experts = 2;
  s.rows_per_rank = 40;
  s.h1 = 32;
  s.n1 = 24;
  s.dtype = t;
  s.shared_expert = true;
  s.bs = 10;
  s.h2 = 16;
  s.n2 = 12;
  s.counts = CountPattern::balanced;
  s.seed = 3;
  return s;
}

bool untouched(const Case& c) {
  for (const auto& r : c.ranks) {
    for (auto v : r.y)
      if (v != kSentinel) return false;
    for (auto v : r.mm_y)
      if (v != kSentinel) return false;
  }
  return true;
}

// Runs `c` (W = 1) with `packed` and `t`, expects the packedWeights error and nothing written.
void expect_packed_error(Case& c, const gmmav::OpTensors& t, const PackedWeights& packed, const std::string& fragment) {
  auto comms = gmmav::create_in_process_group(1);
  const Plan plan = Plan::create(c.desc(0));
  try {
    gmmav::run(plan, comms[0], t, packed);
    ADD_FAILURE() << "expected an error mentioning '" << fragment << "'";
  } catch (const gmmav::Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.code(), Errc::invalid_argument) << what;
    EXPECT_EQ(e.param(), "packedWeights") << what;
    EXPECT_EQ(what.rfind("packedWeights: expected ", 0), 0u) << what;
    EXPECT_NE(what.find(", got "), std::string::npos) << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << what;
  }
  EXPECT_TRUE(untouched(c));
  // The group is still usable: a correct call afterwards succeeds.
  gmmav::run(plan, comms[0], c.tensors(0));
  EXPECT_FALSE(untouched(c));
}

PackedWeights pack(Case& c) { return PackedWeights::create(Plan::create(c.desc(0)), c.tensors(0)); }

TEST(PackedWeightsErrors, EmptyObject) {
  Case c = make_case(small_spec());
  const PackedWeights none;
  EXPECT_TRUE(none.empty());
  EXPECT_FALSE(none);
  EXPECT_EQ(none.bytes(), 0u);
  expect_packed_error(c, c.tensors(0), none, "got an empty PackedWeights");
}

TEST(PackedWeightsErrors, MovedFromObjectIsEmpty) {
  Case c = make_case(small_spec());
  PackedWeights a = pack(c);
  EXPECT_FALSE(a.empty());
  if (gmmav::gemm::packs_weights(DType::f16))
    EXPECT_GE(a.bytes(), static_cast<std::size_t>(2 * 32 * 24 * 4));  // FP16 packs as FP32
  else
    EXPECT_EQ(a.bytes(), 0u);  // the chain kernel reads the weights as stored (D24)
  PackedWeights b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the documented state
  expect_packed_error(c, c.tensors(0), a, "got an empty PackedWeights");
  reset_outputs(c);
  auto comms = gmmav::create_in_process_group(1);
  gmmav::run(Plan::create(c.desc(0)), comms[0], c.tensors(0), b);
  EXPECT_TRUE(check_case(c, true).ok);
}

TEST(PackedWeightsErrors, OtherGmmWeightMemory) {
  Case c = make_case(small_spec());
  const PackedWeights packed = pack(c);
  const std::vector<std::uint16_t> copy = c.ranks[0].gmm_weight;  // same values, other memory
  gmmav::OpTensors t = c.tensors(0);
  t.gmm_weight.data = copy.data();
  expect_packed_error(c, t, packed, "gmmWeight");
}

TEST(PackedWeightsErrors, OtherMmWeightMemory) {
  Case c = make_case(small_spec());
  const PackedWeights packed = pack(c);
  const std::vector<std::uint16_t> copy = c.ranks[0].mm_weight;
  gmmav::OpTensors t = c.tensors(0);
  t.mm_weight->data = copy.data();
  expect_packed_error(c, t, packed, "mmWeightOptional");
}

TEST(PackedWeightsErrors, OtherDtype) {
  Case bf = make_case(small_spec(DType::bf16));
  const PackedWeights packed = pack(bf);
  Case c = make_case(small_spec(DType::f16));
  expect_packed_error(c, c.tensors(0), packed, "packed as bfloat16");
}

TEST(PackedWeightsErrors, OtherShapes) {
  const auto with = [](const std::function<void(CaseSpec&)>& change) {
    CaseSpec s = small_spec();
    change(s);
    return s;
  };
  const std::vector<std::pair<CaseSpec, std::string>> others = {
      {with([](CaseSpec& s) { s.h1 = 48; }), "H1=48"},
      {with([](CaseSpec& s) { s.n1 = 16; }), "N1=16"},
      {with([](CaseSpec& s) { s.local_experts = 4; }), "e=4"},
      {with([](CaseSpec& s) { s.trans_gmm_weight = true; }), "transposed"},
      {with([](CaseSpec& s) { s.shared_expert = false; }), "got none"},
      {with([](CaseSpec& s) { s.h2 = 8; }), "H2=8"},
      {with([](CaseSpec& s) { s.n2 = 20; }), "N2=20"},
      {with([](CaseSpec& s) { s.trans_mm_weight = true; }), "transposed"},
  };
  for (const auto& [spec, fragment] : others) {
    SCOPED_TRACE(fragment);
    Case other = make_case(spec);
    const PackedWeights packed = pack(other);
    Case c = make_case(small_spec());
    expect_packed_error(c, c.tensors(0), packed, fragment);
  }
  // And the other way round: weights packed with a shared expert, a plan without one.
  Case shared = make_case(small_spec());
  const PackedWeights packed = pack(shared);
  CaseSpec s = small_spec();
  s.shared_expert = false;
  Case c = make_case(s);
  gmmav::OpTensors t = c.tensors(0);
  t.gmm_weight.data = shared.ranks[0].gmm_weight.data();  // the routed part matches, only the shared part differs
  expect_packed_error(c, t, packed, "no shared-expert weight");
}

TEST(PackedWeightsErrors, CreateChecksTheWeights) {
  Case c = make_case(small_spec());
  const Plan plan = Plan::create(c.desc(0));
  gmmav::OpTensors t = c.tensors(0);
  t.gmm_weight.dims[1] = 31;
  gmmav::testing::expect_error([&] { (void)PackedWeights::create(plan, t); }, Errc::invalid_argument, "gmmWeight");
  t = c.tensors(0);
  t.mm_weight.reset();
  gmmav::testing::expect_error([&] { (void)PackedWeights::create(plan, t); }, Errc::null_argument, "mmWeightOptional");
  // Only the weights are read: empty activation and output views are fine.
  gmmav::OpTensors weights_only;
  weights_only.gmm_weight = c.tensors(0).gmm_weight;
  weights_only.mm_weight = c.tensors(0).mm_weight;
  EXPECT_FALSE(PackedWeights::create(plan, weights_only).empty());
}

TEST(PackedWeightsErrors, EmptyBracesStillMeanNoWorkspace) {
  Case c = make_case(small_spec());
  auto comms = gmmav::create_in_process_group(1);
  gmmav::run(Plan::create(c.desc(0)), comms[0], c.tensors(0), {});  // must not be ambiguous with the packed overload
  EXPECT_TRUE(check_case(c, true).ok);
}

}  // namespace
