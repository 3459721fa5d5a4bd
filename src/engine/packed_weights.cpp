// gmmav::PackedWeights: every weight of a rank packed once, on the compute pool.
#include "engine/packed_weights.hpp"

#include <string>

#include "common/fail.hpp"
#include "engine/compute_pool.hpp"
#include "plan/rules.hpp"

namespace gmmav {
namespace {

const std::uint16_t* u16(const void* p) { return static_cast<const std::uint16_t*>(p); }

std::string routed_shape(std::int64_t e, std::int64_t h1, std::int64_t n1, bool trans) {
  return fmt::format("e={} H1={} N1={}{}", e, h1, n1, trans ? " transposed (e, N1, H1)" : " (e, H1, N1)");
}
std::string shared_shape(std::int64_t h2, std::int64_t n2, bool trans) {
  return fmt::format("H2={} N2={}{}", h2, n2, trans ? " transposed (N2, H2)" : " (H2, N2)");
}

}  // namespace

PackedWeights::PackedWeights() noexcept = default;
PackedWeights::~PackedWeights() = default;
PackedWeights::PackedWeights(PackedWeights&&) noexcept = default;
PackedWeights& PackedWeights::operator=(PackedWeights&&) noexcept = default;

PackedWeights PackedWeights::create(const Plan& plan, const OpTensors& t) {
  const ProblemDesc& d = plan.desc();
  detail::validate_weights(d, t);
  auto p = std::make_unique<detail::PackedWeightsData>();
  p->dtype = d.dtype;
  p->local_experts = d.local_experts;
  p->h1 = d.h1;
  p->n1 = d.n1;
  p->trans_gmm_weight = d.trans_gmm_weight;
  p->gmm_weight = t.gmm_weight.data;
  p->has_shared = d.shared.has_value();
  if (d.shared) {
    p->h2 = d.shared->h2;
    p->n2 = d.shared->n2;
    p->trans_mm_weight = d.shared->trans_mm_weight;
    p->mm_weight = t.mm_weight->data;
    p->shared = std::make_unique<gemm::PreparedWeight>();
  }
  const auto e = static_cast<std::size_t>(d.local_experts);
  for (std::size_t j = 0; j < e; ++j) p->experts.push_back(std::make_unique<gemm::PreparedWeight>());
  // One task per weight (each packing is one single-threaded reorder), experts first.
  detail::PackedWeightsData& q = *p;
  engine::ComputePool::instance().parallel_for(e + (q.has_shared ? 1 : 0), [&](std::size_t i) {
    if (i < e)
      q.experts[i]->prepare(q.dtype, u16(q.gmm_weight) + static_cast<std::int64_t>(i) * q.h1 * q.n1, q.h1, q.n1,
                            q.trans_gmm_weight);
    else
      q.shared->prepare(q.dtype, u16(q.mm_weight), q.h2, q.n2, q.trans_mm_weight, gemm::PreparedWeight::Packing::now,
                        "mmWeightOptional");
  });
  PackedWeights out;
  out.d_ = std::move(p);
  return out;
}

std::size_t PackedWeights::bytes() const noexcept {
  if (!d_) return 0;
  std::size_t n = d_->shared ? d_->shared->bytes() : 0;
  for (const auto& w : d_->experts) n += w->bytes();
  return n;
}

const detail::PackedWeightsData& detail::check_packed(const PackedWeights& pw, const Plan& plan, const OpTensors& t) {
  constexpr const char* kParam = "packedWeights";
  const PackedWeightsData* p = pw.data();
  if (p == nullptr)
    fail(Errc::invalid_argument, kParam, "expected weights packed by PackedWeights::create, got an empty PackedWeights");
  const ProblemDesc& d = plan.desc();
  if (p->dtype != d.dtype)
    fail(Errc::invalid_argument, kParam, "expected weights packed as {} (the plan's dtype), got weights packed as {}",
         to_string(d.dtype), to_string(p->dtype));
  if (p->local_experts != d.local_experts || p->h1 != d.h1 || p->n1 != d.n1 || p->trans_gmm_weight != d.trans_gmm_weight)
    fail(Errc::invalid_argument, kParam, "expected gmmWeight packed with the plan's {}, got {}",
         routed_shape(d.local_experts, d.h1, d.n1, d.trans_gmm_weight),
         routed_shape(p->local_experts, p->h1, p->n1, p->trans_gmm_weight));
  if (p->has_shared != d.shared.has_value())
    fail(Errc::invalid_argument, kParam, "expected {} (the plan has {}), got {}",
         d.shared ? "a packed shared-expert weight" : "no shared-expert weight", d.shared ? "a shared expert" : "none",
         p->has_shared ? "one" : "none");
  if (d.shared) {
    const SharedExpertDesc& s = *d.shared;
    if (p->h2 != s.h2 || p->n2 != s.n2 || p->trans_mm_weight != s.trans_mm_weight)
      fail(Errc::invalid_argument, kParam, "expected mmWeightOptional packed with the plan's {}, got {}",
           shared_shape(s.h2, s.n2, s.trans_mm_weight), shared_shape(p->h2, p->n2, p->trans_mm_weight));
  }
  // Shapes agree: are these the very tensors that were packed? (Contents are not compared.)
  if (p->gmm_weight != t.gmm_weight.data)
    fail(Errc::invalid_argument, kParam, "expected gmmWeight packed from this call's gmmWeight at {}, got weights packed from {}",
         t.gmm_weight.data, p->gmm_weight);
  if (d.shared) {
    const void* mm = t.mm_weight ? t.mm_weight->data : nullptr;
    if (p->mm_weight != mm)
      fail(Errc::invalid_argument, kParam,
           "expected mmWeightOptional packed from this call's mmWeightOptional at {}, got weights packed from {}", mm,
           p->mm_weight);
  }
  return *p;
}

}  // namespace gmmav
