/*
 * gmmav compat header: acl/error_codes/ge_error_codes.h
 *
 * A few graph-engine (ACL_ERROR_GE_*) status codes, typed static const uint32_t as in the
 * public CANN header. gmmav has no graph engine; they exist for source compatibility.
 */
#ifndef GMMAV_COMPAT_ACL_ERROR_CODES_GE_ERROR_CODES_H_
#define GMMAV_COMPAT_ACL_ERROR_CODES_GE_ERROR_CODES_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

static const uint32_t ACL_ERROR_GE_PARAM_INVALID = 145000U;
static const uint32_t ACL_ERROR_GE_MEMORY_ALLOCATION = 245000U;
static const uint32_t ACL_ERROR_GE_INTERNAL_ERROR = 545000U;

#ifdef __cplusplus
}
#endif

#endif /* GMMAV_COMPAT_ACL_ERROR_CODES_GE_ERROR_CODES_H_ */
