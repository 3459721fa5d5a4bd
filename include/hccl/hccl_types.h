/*
 * gmmav compat header: hccl/hccl_types.h
 *
 * HCCL types for the gmmav CPU runtime: the HcclResult status enum, the HcclComm handle,
 * the reduce-op and data-type enums, the name-length constants and the 4108-byte
 * HcclRootInfo blob. Values follow the public CANN (hcomm) header; see docs/compat.md.
 * Usable from C++ and, unlike the vendor file, from C as well.
 */
#ifndef GMMAV_COMPAT_HCCL_HCCL_TYPES_H_
#define GMMAV_COMPAT_HCCL_HCCL_TYPES_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status of every Hccl* call. */
typedef enum {
    HCCL_SUCCESS = 0,
    HCCL_E_PARA = 1,             /* invalid parameter */
    HCCL_E_PTR = 2,              /* null pointer */
    HCCL_E_MEMORY = 3,           /* memory error */
    HCCL_E_INTERNAL = 4,         /* internal error */
    HCCL_E_NOT_SUPPORT = 5,      /* feature not supported */
    HCCL_E_NOT_FOUND = 6,        /* resource not found */
    HCCL_E_UNAVAIL = 7,          /* resource unavailable */
    HCCL_E_SYSCALL = 8,          /* system call failed */
    HCCL_E_TIMEOUT = 9,          /* timed out */
    HCCL_E_OPEN_FILE_FAILURE = 10,
    HCCL_E_TCP_CONNECT = 11,
    HCCL_E_ROCE_CONNECT = 12,
    HCCL_E_TCP_TRANSFER = 13,
    HCCL_E_ROCE_TRANSFER = 14,
    HCCL_E_RUNTIME = 15,         /* runtime (aclrt) call failed */
    HCCL_E_DRV = 16,
    HCCL_E_PROFILING = 17,
    HCCL_E_CCE = 18,
    HCCL_E_NETWORK = 19,
    HCCL_E_AGAIN = 20,           /* try again */
    HCCL_E_REMOTE = 21,
    HCCL_E_SUSPENDING = 22,
    HCCL_E_OPRETRY_FAIL = 23,
    HCCL_E_OOM = 24,             /* out of memory */
    HCCL_E_IN_STATUS = 1041,
    HCCL_E_RESERVED              /* = 1042 (older headers: 20) */
} HcclResult;

/* Opaque communicator handle. */
typedef void* HcclComm;

/* Reduction operators (no reducing collective is provided by gmmav). */
typedef enum {
    HCCL_REDUCE_SUM = 0,
    HCCL_REDUCE_PROD = 1,
    HCCL_REDUCE_MAX = 2,
    HCCL_REDUCE_MIN = 3,
    HCCL_REDUCE_RESERVED = 255
} HcclReduceOp;

/* Element types of collective buffers (value 13 is unused). */
typedef enum {
    HCCL_DATA_TYPE_INT8 = 0,
    HCCL_DATA_TYPE_INT16 = 1,
    HCCL_DATA_TYPE_INT32 = 2,
    HCCL_DATA_TYPE_FP16 = 3,
    HCCL_DATA_TYPE_FP32 = 4,
    HCCL_DATA_TYPE_INT64 = 5,
    HCCL_DATA_TYPE_UINT64 = 6,
    HCCL_DATA_TYPE_UINT8 = 7,
    HCCL_DATA_TYPE_UINT16 = 8,
    HCCL_DATA_TYPE_UINT32 = 9,
    HCCL_DATA_TYPE_FP64 = 10,
    HCCL_DATA_TYPE_BFP16 = 11,
    HCCL_DATA_TYPE_INT128 = 12,
    HCCL_DATA_TYPE_HIF8 = 14,
    HCCL_DATA_TYPE_FP8E4M3 = 15,
    HCCL_DATA_TYPE_FP8E5M2 = 16,
    HCCL_DATA_TYPE_FP8E8M0 = 17,
    HCCL_DATA_TYPE_RESERVED = 255
} HcclDataType;

/* Size constants. The vendor header declares them `const uint32_t`, which is only a
 * constant expression in C++; C gets macros with the same values. */
#ifdef __cplusplus
const uint32_t HCCL_ROOT_INFO_BYTES = 4108;  /* size of HcclRootInfo */
const uint32_t COMM_NAME_MAX_LENGTH = 128;   /* communicator name buffer, incl. NUL */
const uint32_t BUFFER_NAME_MAX_LENGTH = 128;
const uint32_t UDI_MAX_LENGTH = 128;
#else
#define HCCL_ROOT_INFO_BYTES 4108U
#define COMM_NAME_MAX_LENGTH 128U
#define BUFFER_NAME_MAX_LENGTH 128U
#define UDI_MAX_LENGTH 128U
#endif

/* Bytes that identify a group: produced by HcclGetRootInfo on one rank, shipped to the
 * others by the application, passed to HcclCommInitRootInfo by every rank. */
typedef struct HcclRootInfoDef {
    char internal[HCCL_ROOT_INFO_BYTES];
} HcclRootInfo;

#ifdef __cplusplus
static_assert(sizeof(HcclRootInfo) == 4108, "HcclRootInfo must be 4108 bytes");
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(HcclRootInfo) == 4108, "HcclRootInfo must be 4108 bytes");
#endif

#ifdef __cplusplus
}
#endif

#endif /* GMMAV_COMPAT_HCCL_HCCL_TYPES_H_ */
