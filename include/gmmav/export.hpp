// gmmav native API: the export macro.
//
// libgmmav is built with hidden visibility (-fvisibility=hidden,
// -fvisibility-inlines-hidden): only what a public header marks GMMAV_API is
// exported; the engine, GEMM, comm and numeric internals are not (the
// project's own tests, bench and CLI reach them through the internal static
// target gmmav_internal, never through the shared library). The C API
// (include/acl, hccl, aclnn, aclnnop) is exported by ACL_FUNC_VISIBILITY / ACLNN_API.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define GMMAV_API __attribute__((visibility("default")))
#else
#define GMMAV_API
#endif
