/*
 * gmmav compat header: aclnn/acl_meta.h
 *
 * The aclnn meta API: opaque aclTensor / aclIntArray / aclOpExecutor objects, the
 * aclnnStatus type and the functions that create, inspect and destroy them. Signatures
 * follow the public CANN (opbase) header; see docs/compat.md. C++ (as the vendor file);
 * additionally accepted by a C compiler.
 */
#ifndef GMMAV_COMPAT_ACLNN_ACL_META_H_
#define GMMAV_COMPAT_ACLNN_ACL_META_H_

#ifdef __cplusplus
#include <cstdint>
#include <cstdlib>
#else
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#endif

#include "acl/acl_base.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ACLNN_META
#define ACLNN_META
typedef struct aclOpExecutor aclOpExecutor; /* prepared call, from a GetWorkspaceSize */
typedef struct aclTensor aclTensor;         /* shape/stride/dtype view of device memory */
typedef struct aclScalar aclScalar;         /* no API declared here */
typedef struct aclIntArray aclIntArray;     /* host-side int64 list */
typedef struct aclFloatArray aclFloatArray; /* no API declared here */
typedef struct aclBoolArray aclBoolArray;   /* no API declared here */
typedef struct aclTensorList aclTensorList; /* no API declared here */
typedef struct aclScalarList aclScalarList; /* no API declared here */
typedef int32_t aclnnStatus;                /* 0 = success; see aclnn/aclnn_status.h */
#ifdef __cplusplus
constexpr aclnnStatus OK = 0;
#endif
#endif /* ACLNN_META */

/* Describe tensorData as a tensor. Shapes and strides are copied (caller arrays may be
 * freed afterwards); tensorData is only stored. stride NULL means contiguous; offset is
 * the view's first element, counted in elements. Returns NULL on failure. */
ACL_FUNC_VISIBILITY aclTensor* aclCreateTensor(const int64_t* viewDims, uint64_t viewDimsNum, aclDataType dataType,
                                               const int64_t* stride, int64_t offset, aclFormat format,
                                               const int64_t* storageDims, uint64_t storageDimsNum, void* tensorData);

/* Destroy a tensor descriptor (not its memory). NULL is accepted and returns 0. */
ACL_FUNC_VISIBILITY aclnnStatus aclDestroyTensor(const aclTensor* tensor);

/* Copy size int64 values into a new aclIntArray. Returns NULL on failure. */
ACL_FUNC_VISIBILITY aclIntArray* aclCreateIntArray(const int64_t* value, uint64_t size);

/* Destroy an aclIntArray. NULL is accepted and returns 0. */
ACL_FUNC_VISIBILITY aclnnStatus aclDestroyIntArray(const aclIntArray* array);

/* The three getters below allocate *out with new int64_t[n]; the caller delete[]s it.
 * A NULL argument gives ACLNN_ERR_PARAM_NULLPTR. */
ACL_FUNC_VISIBILITY aclnnStatus aclGetViewShape(const aclTensor* tensor, int64_t** viewDims, uint64_t* viewDimsNum);
ACL_FUNC_VISIBILITY aclnnStatus aclGetStorageShape(const aclTensor* tensor, int64_t** storageDims, uint64_t* storageDimsNum);
ACL_FUNC_VISIBILITY aclnnStatus aclGetViewStrides(const aclTensor* tensor, int64_t** stridesValue, uint64_t* stridesNum);

ACL_FUNC_VISIBILITY aclnnStatus aclGetViewOffset(const aclTensor* tensor, int64_t* offset);
ACL_FUNC_VISIBILITY aclnnStatus aclGetFormat(const aclTensor* tensor, aclFormat* format);
ACL_FUNC_VISIBILITY aclnnStatus aclGetDataType(const aclTensor* tensor, aclDataType* dataType);
ACL_FUNC_VISIBILITY aclnnStatus aclGetIntArraySize(const aclIntArray* array, uint64_t* size);

/* Release an executor that will not be run (running one consumes it). */
ACL_FUNC_VISIBILITY aclnnStatus aclDestroyAclOpExecutor(aclOpExecutor* executor);

#ifdef __cplusplus
}
#endif

#endif /* GMMAV_COMPAT_ACLNN_ACL_META_H_ */
