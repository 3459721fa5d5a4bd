// The packed-weight cache of the aclnn skin (weight_cache.hpp): entries keyed
// by the weights' addresses and shapes, valid while their memory's write
// versions are unchanged, evicted least recently used beyond a byte budget.
#include "aclnn/weight_cache.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <tuple>

#include "common/config.hpp"
#include "runtime/memory_versions.hpp"

namespace gmmav::aclnn {
namespace {

struct Key {
  const void* gmm_weight;
  const void* mm_weight;
  DType dtype;
  int experts;
  std::int64_t h1, n1, h2, n2;
  bool trans_gmm, trans_mm, shared;
  auto tie() const { return std::tie(gmm_weight, mm_weight, dtype, experts, h1, n1, h2, n2, trans_gmm, trans_mm, shared); }
  bool operator==(const Key& o) const { return tie() == o.tie(); }
};

// The write versions of the weights' memory; nullopt when not cacheable.
struct Versions {
  std::uint64_t gmm = 0, mm = 0;
  bool operator==(const Versions&) const = default;
};

struct Entry {
  Key key;
  Versions versions;
  std::shared_ptr<const PackedWeights> packed;
  std::size_t bytes;
};

Key key_of(const Plan& plan, const OpTensors& t) {
  const ProblemDesc& d = plan.desc();
  Key k{t.gmm_weight.data, nullptr, d.dtype, d.local_experts, d.h1, d.n1, 0, 0, d.trans_gmm_weight, false, d.shared.has_value()};
  if (d.shared) {
    k.mm_weight = t.mm_weight->data;
    k.h2 = d.shared->h2;
    k.n2 = d.shared->n2;
    k.trans_mm = d.shared->trans_mm_weight;
  }
  return k;
}

std::optional<Versions> versions_of(const Key& k) {
  const auto bytes = [](std::int64_t a, std::int64_t b, std::int64_t c) { return static_cast<std::size_t>(a * b * c) * 2; };
  const std::size_t gmm_bytes = bytes(k.experts, k.h1, k.n1);
  if (gmm_bytes == 0) return std::nullopt;
  Versions v;
  auto g = runtime::device_range_version(k.gmm_weight, gmm_bytes);
  if (!g) return std::nullopt;
  v.gmm = *g;
  if (k.shared) {
    auto m = runtime::device_range_version(k.mm_weight, bytes(1, k.h2, k.n2));
    if (!m) return std::nullopt;
    v.mm = *m;
  }
  return v;
}

// GMMAV_WEIGHT_CACHE_MB: the budget in MiB (0 turns the cache off); default a
// quarter of the physical memory. Read once.
std::size_t budget_bytes() {
  static const std::size_t budget = [] {
    if (const auto mb = config::weight_cache_mb()) return static_cast<std::size_t>(*mb) << 20;
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) / 4 : std::size_t{1} << 30;
  }();
  return budget;
}

std::mutex g_mu;
std::list<Entry> g_entries;  // most recently used first
std::size_t g_bytes = 0;
std::uint64_t g_hits = 0, g_misses = 0;

// Under g_mu: drops entries whose memory was written or freed, then the least
// recently used ones until `incoming` more bytes fit.
void make_room(std::size_t incoming) {
  for (auto it = g_entries.begin(); it != g_entries.end();) {
    const auto v = versions_of(it->key);
    if (!v || *v != it->versions) {
      g_bytes -= it->bytes;
      it = g_entries.erase(it);
    } else {
      ++it;
    }
  }
  while (!g_entries.empty() && g_bytes + incoming > budget_bytes()) {
    g_bytes -= g_entries.back().bytes;
    g_entries.pop_back();
  }
}

}  // namespace

bool weight_cache_enabled() { return budget_bytes() != 0; }

std::shared_ptr<const PackedWeights> cached_weights(const Plan& plan, const OpTensors& t) {
  if (budget_bytes() == 0) return nullptr;
  const Key key = key_of(plan, t);
  const std::optional<Versions> before = versions_of(key);  // taken before the weights are read
  if (!before) return nullptr;
  {
    std::lock_guard lk(g_mu);
    auto it = std::find_if(g_entries.begin(), g_entries.end(), [&](const Entry& e) { return e.key == key; });
    if (it != g_entries.end()) {
      if (it->versions == *before) {
        g_entries.splice(g_entries.begin(), g_entries, it);
        ++g_hits;
        return it->packed;
      }
      g_bytes -= it->bytes;
      g_entries.erase(it);
    }
    ++g_misses;
  }
  auto packed = std::make_shared<const PackedWeights>(PackedWeights::create(plan, t));
  const std::size_t bytes = packed->bytes();
  // Kept only if no write overlapped the packing (the result is used for this call either way:
  // a write racing with the call's own reads is the caller's race, as on the device).
  if (versions_of(key) == before && bytes <= budget_bytes()) {
    std::lock_guard lk(g_mu);
    make_room(bytes);
    g_entries.push_front(Entry{key, *before, packed, bytes});
    g_bytes += bytes;
  }
  return packed;
}

WeightCacheStats weight_cache_stats() {
  std::lock_guard lk(g_mu);
  return {g_entries.size(), g_bytes, g_hits, g_misses};
}

}  // namespace gmmav::aclnn
