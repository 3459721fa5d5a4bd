/*
 * gmmav compat header: acl/acl_rt.h
 *
 * The subset of the CANN runtime API (aclInit, devices, contexts, streams, memory) that
 * the gmmav CPU runtime implements. "Device" memory is host memory, a device id is a
 * rank slot, and a stream is an in-order asynchronous queue run by a worker thread.
 * Names, enum values and signatures follow the public CANN header (see docs/compat.md);
 * every function declared here is implemented by gmmav.
 */
#ifndef GMMAV_COMPAT_ACL_ACL_RT_H_
#define GMMAV_COMPAT_ACL_ACL_RT_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acl_base.h"
#include "acl_rt_allocator.h"

/* ACL API version these declarations correspond to. */
#define ACL_MAJOR_VERSION 1
#define ACL_MINOR_VERSION 17
#define ACL_PATCH_VERSION 0

#ifdef __cplusplus
extern "C" {
#endif

/* Where the calling program runs (gmmav always reports ACL_HOST). */
typedef enum aclrtRunMode {
    ACL_DEVICE = 0,
    ACL_HOST = 1
} aclrtRunMode;

/* Copy direction. On gmmav all memory is host memory, so every kind copies bytes;
 * an out-of-range value is rejected with ACL_ERROR_INVALID_PARAM. */
typedef enum aclrtMemcpyKind {
    ACL_MEMCPY_HOST_TO_HOST = 0,
    ACL_MEMCPY_HOST_TO_DEVICE = 1,
    ACL_MEMCPY_DEVICE_TO_HOST = 2,
    ACL_MEMCPY_DEVICE_TO_DEVICE = 3,
    ACL_MEMCPY_DEFAULT = 4,
    ACL_MEMCPY_HOST_TO_BUF_TO_DEVICE = 5,
    ACL_MEMCPY_INNER_DEVICE_TO_DEVICE = 6,
    ACL_MEMCPY_INTER_DEVICE_TO_DEVICE = 7
} aclrtMemcpyKind;

/* Allocation policy of aclrtMalloc (accepted and ignored by gmmav). */
typedef enum aclrtMemMallocPolicy {
    ACL_MEM_MALLOC_HUGE_FIRST = 0,
    ACL_MEM_MALLOC_HUGE_ONLY = 1,
    ACL_MEM_MALLOC_NORMAL_ONLY = 2,
    ACL_MEM_MALLOC_HUGE_FIRST_P2P = 3,
    ACL_MEM_MALLOC_HUGE_ONLY_P2P = 4,
    ACL_MEM_MALLOC_NORMAL_ONLY_P2P = 5,
    ACL_MEM_MALLOC_HUGE1G_ONLY = 6,
    ACL_MEM_MALLOC_HUGE1G_ONLY_P2P = 7,
    ACL_MEM_TYPE_LOW_BAND_WIDTH = 0x0100,
    ACL_MEM_TYPE_HIGH_BAND_WIDTH = 0x1000,
    ACL_MEM_ACCESS_USER_SPACE_READONLY = 0x100000
} aclrtMemMallocPolicy;

/* Physical-memory handle type (referenced by the vendor hccl/hccl_comm.h). */
typedef void* aclrtDrvMemHandle;

/* ---- process lifetime ---- */

/* Initialise the runtime. configPath may be NULL (no configuration file). */
ACL_FUNC_VISIBILITY aclError aclInit(const char* configPath);

/* Release everything aclInit set up. */
ACL_FUNC_VISIBILITY aclError aclFinalize(void);

/* Most recent error message recorded by the runtime or an aclnn call; NULL if none. */
ACL_FUNC_VISIBILITY const char* aclGetRecentErrMsg(void);

/* ---- devices ---- */

/* Make deviceId the current device of the calling thread. */
ACL_FUNC_VISIBILITY aclError aclrtSetDevice(int32_t deviceId);

/* Release the resources of deviceId held by this process. */
ACL_FUNC_VISIBILITY aclError aclrtResetDevice(int32_t deviceId);

/* Current device of the calling thread. */
ACL_FUNC_VISIBILITY aclError aclrtGetDevice(int32_t* deviceId);

/* Number of device slots the runtime offers. */
ACL_FUNC_VISIBILITY aclError aclrtGetDeviceCount(uint32_t* count);

/* Whether the program runs on the host or on a device. */
ACL_FUNC_VISIBILITY aclError aclrtGetRunMode(aclrtRunMode* runMode);

/* Wait until all streams of the current device are idle. */
ACL_FUNC_VISIBILITY aclError aclrtSynchronizeDevice(void);

/* ---- contexts ---- */

ACL_FUNC_VISIBILITY aclError aclrtCreateContext(aclrtContext* context, int32_t deviceId);
ACL_FUNC_VISIBILITY aclError aclrtDestroyContext(aclrtContext context);
ACL_FUNC_VISIBILITY aclError aclrtSetCurrentContext(aclrtContext context);
ACL_FUNC_VISIBILITY aclError aclrtGetCurrentContext(aclrtContext* context);

/* ---- streams ---- */

/* Create an in-order stream in the current context. */
ACL_FUNC_VISIBILITY aclError aclrtCreateStream(aclrtStream* stream);

/* Destroy a stream. As on the vendor runtime, synchronize it first. */
ACL_FUNC_VISIBILITY aclError aclrtDestroyStream(aclrtStream stream);

/* Wait for all work queued on stream; returns the first error of that work. */
ACL_FUNC_VISIBILITY aclError aclrtSynchronizeStream(aclrtStream stream);

/* As aclrtSynchronizeStream, bounded by timeout milliseconds: -1 waits forever,
 * 0 only checks, > 0 waits at most that long. On expiry returns
 * ACL_ERROR_RT_STREAM_SYNC_TIMEOUT; timeout < -1 gives ACL_ERROR_RT_PARAM_INVALID. */
ACL_FUNC_VISIBILITY aclError aclrtSynchronizeStreamWithTimeout(aclrtStream stream, int32_t timeout);

/* ---- memory (all sizes in bytes) ---- */

/* Allocate "device" memory. size 0 or devPtr NULL gives ACL_ERROR_INVALID_PARAM. */
ACL_FUNC_VISIBILITY aclError aclrtMalloc(void** devPtr, size_t size, aclrtMemMallocPolicy policy);

/* Free memory from aclrtMalloc. NULL gives ACL_ERROR_INVALID_PARAM. */
ACL_FUNC_VISIBILITY aclError aclrtFree(void* devPtr);

/* Allocate host memory. size 0 or hostPtr NULL gives ACL_ERROR_INVALID_PARAM. */
ACL_FUNC_VISIBILITY aclError aclrtMallocHost(void** hostPtr, size_t size);

/* Free memory from aclrtMallocHost. NULL gives ACL_ERROR_INVALID_PARAM. */
ACL_FUNC_VISIBILITY aclError aclrtFreeHost(void* hostPtr);

/* Synchronous copy of count bytes into dst (capacity destMax). count 0 succeeds and
 * does nothing; NULL dst/src gives ACL_ERROR_INVALID_PARAM; count > destMax gives
 * ACL_ERROR_RT_PARAM_INVALID. */
ACL_FUNC_VISIBILITY aclError aclrtMemcpy(
    void* dst, size_t destMax, const void* src, size_t count, aclrtMemcpyKind kind);

/* Synchronous fill of count bytes of devPtr (capacity maxCount): every byte becomes
 * (unsigned char)value, as with memset. count 0 succeeds; NULL devPtr gives
 * ACL_ERROR_INVALID_PARAM. */
ACL_FUNC_VISIBILITY aclError aclrtMemset(void* devPtr, size_t maxCount, int32_t value, size_t count);

/* aclrtMemcpy queued on stream, in order with the stream's other work. */
ACL_FUNC_VISIBILITY aclError aclrtMemcpyAsync(
    void* dst, size_t destMax, const void* src, size_t count, aclrtMemcpyKind kind, aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* GMMAV_COMPAT_ACL_ACL_RT_H_ */
