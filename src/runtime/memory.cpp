// "Device" memory is host memory: aclrtMalloc / aclrtMallocHost hand out
// 64-byte aligned blocks (one cache line; the vendor promises 32), every copy
// kind copies bytes, and the error codes are the vendor's (docs/compat.md).
// Every block carries a write version (runtime/memory_versions.hpp).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>

#include "runtime/api_guard.hpp"
#include "runtime/memory_versions.hpp"
#include "runtime/status_codes.hpp"
#include "runtime/stream.hpp"

namespace gmmav::runtime {
namespace {

constexpr std::size_t kAlignment = 64;

enum class Kind : bool { device, host };

struct Block {
  Kind kind;
  std::size_t size;
  std::uint64_t version;
};

// Live blocks by address, so that a free of a foreign or already freed pointer
// is an error, not a crash, and an address inside a block finds its block.
std::mutex g_mu;
std::map<std::uintptr_t, Block> g_blocks;
std::uint64_t g_last_version = 0;  // under g_mu

std::uintptr_t addr(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

const char* name(Kind k) { return k == Kind::device ? "aclrtMalloc" : "aclrtMallocHost"; }

void* allocate(Kind kind, void** out, std::size_t size) {
  const char* param = kind == Kind::device ? "devPtr" : "hostPtr";
  if (out == nullptr) raise(ACL_ERROR_INVALID_PARAM, param, "expected a place to store the pointer, got null");
  if (size == 0) raise(ACL_ERROR_INVALID_PARAM, "size", "expected a size > 0 bytes, got 0");
  if (size > SIZE_MAX - kAlignment)
    raise(ACL_ERROR_RT_MEMORY_ALLOCATION, "size", "expected a size that fits in memory, got {} bytes", size);
  const std::size_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;  // aligned_alloc needs a multiple
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr)
    raise(ACL_ERROR_RT_MEMORY_ALLOCATION, "size", "expected {} bytes to be available, got an allocation failure", size);
  {
    std::lock_guard lk(g_mu);
    g_blocks[addr(p)] = Block{kind, size, ++g_last_version};
  }
  *out = p;
  return p;
}

void release(Kind kind, void* p) {
  const char* param = kind == Kind::device ? "devPtr" : "hostPtr";
  if (p == nullptr) raise(ACL_ERROR_INVALID_PARAM, param, "expected a pointer from {}, got null", name(kind));
  {
    std::lock_guard lk(g_mu);
    auto it = g_blocks.find(addr(p));
    if (it == g_blocks.end())
      raise(ACL_ERROR_INVALID_PARAM, param, "expected a live pointer from {}, got {} (never allocated or already freed)",
            name(kind), p);
    if (it->second.kind != kind)
      raise(ACL_ERROR_INVALID_PARAM, param, "expected a pointer from {}, got one from {}", name(kind), name(it->second.kind));
    g_blocks.erase(it);
  }
  std::free(p);
}

// The int a caller passed as aclrtMemcpyKind. A C caller may pass any int, and
// loading an out-of-range value as the enum would be undefined in C++.
int raw_kind(const aclrtMemcpyKind& kind) {
  int k = 0;
  static_assert(sizeof k == sizeof kind);
  std::memcpy(&k, &kind, sizeof k);
  return k;
}

// The checks of aclrtMemcpy, in the vendor's order: count 0 first, then pointers, size, kind.
bool check_copy(void* dst, std::size_t destMax, const void* src, std::size_t count, int kind) {
  if (count == 0) return false;
  if (dst == nullptr) raise(ACL_ERROR_INVALID_PARAM, "dst", "expected a destination, got null");
  if (src == nullptr) raise(ACL_ERROR_INVALID_PARAM, "src", "expected a source, got null");
  if (count > destMax) raise(ACL_ERROR_RT_PARAM_INVALID, "count", "expected at most destMax = {} bytes, got {}", destMax, count);
  if (kind < ACL_MEMCPY_HOST_TO_HOST || kind > ACL_MEMCPY_INTER_DEVICE_TO_DEVICE)
    raise(ACL_ERROR_INVALID_PARAM, "kind", "expected an aclrtMemcpyKind in [0, 7], got {}", kind);
  return true;
}

}  // namespace

std::optional<std::uint64_t> device_range_version(const void* p, std::size_t bytes) {
  std::lock_guard lk(g_mu);
  auto it = g_blocks.upper_bound(addr(p));
  if (it == g_blocks.begin()) return std::nullopt;
  --it;  // the last block starting at or before p
  const Block& b = it->second;
  if (b.kind != Kind::device || addr(p) - it->first > b.size || bytes > b.size - (addr(p) - it->first)) return std::nullopt;
  return b.version;
}

void note_write(const void* p, std::size_t bytes) {
  if (bytes == 0) return;
  const std::uintptr_t first = addr(p), end = first + bytes < first ? UINTPTR_MAX : first + bytes;
  std::lock_guard lk(g_mu);
  auto it = g_blocks.upper_bound(first);
  if (it != g_blocks.begin() && std::prev(it)->first + std::prev(it)->second.size > first) --it;
  for (; it != g_blocks.end() && it->first < end; ++it) it->second.version = ++g_last_version;
}

}  // namespace gmmav::runtime

using namespace gmmav::runtime;

extern "C" {

aclError aclrtMalloc(void** devPtr, size_t size, aclrtMemMallocPolicy) {
  return guarded(__func__, kAclCodes, [&] {
    allocate(Kind::device, devPtr, size);
    return ACL_SUCCESS;
  });
}

aclError aclrtFree(void* devPtr) {
  return guarded(__func__, kAclCodes, [&] {
    release(Kind::device, devPtr);
    return ACL_SUCCESS;
  });
}

aclError aclrtMallocHost(void** hostPtr, size_t size) {
  return guarded(__func__, kAclCodes, [&] {
    allocate(Kind::host, hostPtr, size);
    return ACL_SUCCESS;
  });
}

aclError aclrtFreeHost(void* hostPtr) {
  return guarded(__func__, kAclCodes, [&] {
    release(Kind::host, hostPtr);
    return ACL_SUCCESS;
  });
}

aclError aclrtMemcpy(void* dst, size_t destMax, const void* src, size_t count, aclrtMemcpyKind kind) {
  return guarded(__func__, kAclCodes, [&] {
    if (check_copy(dst, destMax, src, count, raw_kind(kind))) {
      note_write(dst, count);
      std::memmove(dst, src, count);
      note_write(dst, count);
    }
    return ACL_SUCCESS;
  });
}

aclError aclrtMemset(void* devPtr, size_t maxCount, int32_t value, size_t count) {
  return guarded(__func__, kAclCodes, [&] {
    if (count == 0) return ACL_SUCCESS;
    if (devPtr == nullptr) raise(ACL_ERROR_INVALID_PARAM, "devPtr", "expected a destination, got null");
    if (count > maxCount)
      raise(ACL_ERROR_RT_PARAM_INVALID, "count", "expected at most maxCount = {} bytes, got {}", maxCount, count);
    note_write(devPtr, count);
    std::memset(devPtr, static_cast<unsigned char>(value), count);
    note_write(devPtr, count);
    return ACL_SUCCESS;
  });
}

aclError aclrtMemcpyAsync(void* dst, size_t destMax, const void* src, size_t count, aclrtMemcpyKind kind, aclrtStream stream) {
  return guarded(__func__, kAclCodes, [&] {
    Stream& s = resolve_stream(stream);
    if (check_copy(dst, destMax, src, count, raw_kind(kind))) {
      note_write(dst, count);  // work queued after this copy must not trust what was derived before it
      s.enqueue([dst, src, count] {
        note_write(dst, count);
        std::memmove(dst, src, count);
        note_write(dst, count);
        return WorkResult{};
      });
    }
    return ACL_SUCCESS;
  });
}

size_t aclDataTypeSize(aclDataType dataType) {
  switch (dataType) {
    case ACL_STRING:
    case ACL_DT_UNDEFINED:
      return 0;
    case ACL_UINT1:
    case ACL_INT4:
    case ACL_BOOL:
    case ACL_INT8:
    case ACL_UINT8:
    case ACL_HIFLOAT8:
    case ACL_FLOAT8_E5M2:
    case ACL_FLOAT8_E4M3FN:
    case ACL_FLOAT8_E8M0:
      return 1;
    case ACL_FLOAT16:
    case ACL_BF16:
    case ACL_INT16:
    case ACL_UINT16:
      return 2;
    case ACL_FLOAT:
    case ACL_INT32:
    case ACL_UINT32:
    case ACL_COMPLEX32:
      return 4;
    case ACL_COMPLEX128:
      return 16;
    default:
      return 8;
  }
}

}  // extern "C"
