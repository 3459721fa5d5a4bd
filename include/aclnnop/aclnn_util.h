/*
 * gmmav compat header: aclnnop/aclnn_util.h
 *
 * Defines ACLNN_API, the export attribute of the aclnn operator entry points.
 */
#ifndef GMMAV_COMPAT_ACLNNOP_ACLNN_UTIL_H_
#define GMMAV_COMPAT_ACLNNOP_ACLNN_UTIL_H_

#ifndef ACLNN_API
#if defined(__GNUC__) || defined(__clang__)
#define ACLNN_API __attribute__((visibility("default")))
#else
#define ACLNN_API
#endif
#endif

#endif /* GMMAV_COMPAT_ACLNNOP_ACLNN_UTIL_H_ */
