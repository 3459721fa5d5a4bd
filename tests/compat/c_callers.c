/* Calls from C: the acl headers compile as C, and C may pass any int as an enum argument. */
#include "acl/acl.h"

int compat_c_memcpy(void* dst, size_t destMax, const void* src, size_t count, int kind) {
  return aclrtMemcpy(dst, destMax, src, count, (aclrtMemcpyKind)kind);
}
