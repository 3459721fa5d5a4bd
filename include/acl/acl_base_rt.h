/*
 * gmmav compat header: acl/acl_base_rt.h
 *
 * Base types of the CANN runtime API (aclError, stream/context handles, aclDataType,
 * aclFormat), the export macro ACL_FUNC_VISIBILITY and the general ACL error codes,
 * declared from scratch for the gmmav CPU runtime. Names, values and signatures follow
 * the public CANN headers (see docs/compat.md); nothing here is vendor code.
 * Valid as C (C99 or later) and as C++.
 */
#ifndef GMMAV_COMPAT_ACL_ACL_BASE_RT_H_
#define GMMAV_COMPAT_ACL_ACL_BASE_RT_H_

#include <stddef.h>
#include <stdint.h>

/* Export macro for every ACL / aclnn entry point. The vendor header expands it to
 * default visibility only when FUNC_VISIBILITY is defined; gmmav always exports. */
#ifndef ACL_FUNC_VISIBILITY
#if defined(__GNUC__) || defined(__clang__)
#define ACL_FUNC_VISIBILITY __attribute__((visibility("default")))
#else
#define ACL_FUNC_VISIBILITY
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- handles and scalar types ---- */
typedef int aclError;                          /* every aclrt* / acl* status */
typedef void* aclrtStream;                     /* in-order asynchronous work queue */
typedef void* aclrtContext;                    /* per-device context */
typedef void* aclrtEvent;                      /* declared for completeness; no event API here */
typedef uint16_t aclFloat16;                   /* IEEE binary16 bit pattern */
typedef struct aclDataBuffer aclDataBuffer;    /* opaque; no API declared here */

/* ---- general ACL error codes (static const int, as in the vendor header) ---- */
static const int ACL_SUCCESS = 0;
static const int ACL_ERROR_NONE = 0;

static const int ACL_ERROR_INVALID_PARAM = 100000;
static const int ACL_ERROR_UNINITIALIZE = 100001;
static const int ACL_ERROR_REPEAT_INITIALIZE = 100002;
static const int ACL_ERROR_INVALID_FILE = 100003;
static const int ACL_ERROR_REPEAT_FINALIZE = 100037;

static const int ACL_ERROR_BAD_ALLOC = 200000;
static const int ACL_ERROR_API_NOT_SUPPORT = 200001;
static const int ACL_ERROR_INVALID_DEVICE = 200002;
static const int ACL_ERROR_MEMORY_ADDRESS_UNALIGNED = 200003;
static const int ACL_ERROR_RESOURCE_NOT_MATCH = 200004;
static const int ACL_ERROR_INVALID_RESOURCE_HANDLE = 200005;
static const int ACL_ERROR_FEATURE_UNSUPPORTED = 200006;

static const int ACL_ERROR_STORAGE_OVER_LIMIT = 300000;

static const int ACL_ERROR_INTERNAL_ERROR = 500000;
static const int ACL_ERROR_FAILURE = 500001;
static const int ACL_ERROR_GE_FAILURE = 500002;
static const int ACL_ERROR_RT_FAILURE = 500003;
static const int ACL_ERROR_DRV_FAILURE = 500004;
static const int ACL_ERROR_PROFILING_FAILURE = 500005;

/* ---- element types (values 5, 14, 15 and 18-26 are unused) ---- */
typedef enum {
    ACL_DT_UNDEFINED = -1,
    ACL_FLOAT = 0,
    ACL_FLOAT16 = 1,
    ACL_INT8 = 2,
    ACL_INT32 = 3,
    ACL_UINT8 = 4,
    ACL_INT16 = 6,
    ACL_UINT16 = 7,
    ACL_UINT32 = 8,
    ACL_INT64 = 9,
    ACL_UINT64 = 10,
    ACL_DOUBLE = 11,
    ACL_BOOL = 12,
    ACL_STRING = 13,
    ACL_COMPLEX64 = 16,
    ACL_COMPLEX128 = 17,
    ACL_BF16 = 27,
    ACL_INT4 = 29,
    ACL_UINT1 = 30,
    ACL_COMPLEX32 = 33,
    ACL_HIFLOAT8 = 34,
    ACL_FLOAT8_E5M2 = 35,
    ACL_FLOAT8_E4M3FN = 36,
    ACL_FLOAT8_E8M0 = 37,
    ACL_FLOAT6_E3M2 = 38,
    ACL_FLOAT6_E2M3 = 39,
    ACL_FLOAT4_E2M1 = 40,
    ACL_FLOAT4_E1M2 = 41
} aclDataType;

/* ---- tensor memory formats (gmmav supports ACL_FORMAT_ND only) ---- */
typedef enum {
    ACL_FORMAT_UNDEFINED = -1,
    ACL_FORMAT_NCHW = 0,
    ACL_FORMAT_NHWC = 1,
    ACL_FORMAT_ND = 2,
    ACL_FORMAT_NC1HWC0 = 3,
    ACL_FORMAT_FRACTAL_Z = 4,
    ACL_FORMAT_NC1HWC0_C04 = 12,
    ACL_FORMAT_HWCN = 16,
    ACL_FORMAT_NDHWC = 27,
    ACL_FORMAT_FRACTAL_NZ = 29,
    ACL_FORMAT_NCDHW = 30,
    ACL_FORMAT_NDC1HWC0 = 32,
    ACL_FRACTAL_Z_3D = 33, /* sic: no "_FORMAT_" in this name */
    ACL_FORMAT_NC = 35,
    ACL_FORMAT_NCL = 47,
    ACL_FORMAT_FRACTAL_NZ_C0_16 = 50,
    ACL_FORMAT_FRACTAL_NZ_C0_32 = 51,
    ACL_FORMAT_FRACTAL_NZ_C0_2 = 52,
    ACL_FORMAT_FRACTAL_NZ_C0_4 = 53,
    ACL_FORMAT_FRACTAL_NZ_C0_8 = 54
} aclFormat;

/* Size in bytes of one element of dataType. Vendor table (hicann/runtime
 * src/acl/aclrt_impl/data_buffer.cpp): 0 for ACL_STRING and ACL_DT_UNDEFINED; 1 for
 * ACL_UINT1, ACL_INT4, ACL_BOOL, ACL_INT8, ACL_UINT8 and the 8-bit floats; 2 for
 * ACL_FLOAT16, ACL_BF16, ACL_INT16, ACL_UINT16; 4 for ACL_FLOAT, ACL_INT32, ACL_UINT32,
 * ACL_COMPLEX32; 16 for ACL_COMPLEX128; 8 for everything else (incl. unknown values). */
ACL_FUNC_VISIBILITY size_t aclDataTypeSize(aclDataType dataType);

#ifdef __cplusplus
}
#endif

#endif /* GMMAV_COMPAT_ACL_ACL_BASE_RT_H_ */
