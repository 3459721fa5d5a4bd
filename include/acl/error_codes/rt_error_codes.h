/*
 * gmmav compat header: acl/error_codes/rt_error_codes.h
 *
 * Runtime (ACL_ERROR_RT_*) status codes as plain macros, with the values of the public
 * CANN header. This is the subset gmmav may return or that callers commonly test.
 */
#ifndef GMMAV_COMPAT_ACL_ERROR_CODES_RT_ERROR_CODES_H_
#define GMMAV_COMPAT_ACL_ERROR_CODES_RT_ERROR_CODES_H_

#include <stddef.h>

#define ACL_RT_SUCCESS 0

/* 107xxx: caller errors */
#define ACL_ERROR_RT_PARAM_INVALID 107000       /* invalid parameter */
#define ACL_ERROR_RT_INVALID_DEVICEID 107001    /* device id out of range */
#define ACL_ERROR_RT_CONTEXT_NULL 107002        /* no current context */
#define ACL_ERROR_RT_STREAM_CONTEXT 107003      /* stream not in the current context */
#define ACL_ERROR_RT_INVALID_HANDLE 107017      /* unknown handle */
#define ACL_ERROR_RT_INVALID_MALLOC_TYPE 107018 /* unknown allocation policy */
#define ACL_ERROR_RT_WAIT_TIMEOUT 107019        /* wait timed out */
#define ACL_ERROR_RT_TASK_TIMEOUT 107020        /* task timed out */

/* 207xxx: resource errors */
#define ACL_ERROR_RT_FEATURE_NOT_SUPPORT 207000 /* feature not supported */
#define ACL_ERROR_RT_MEMORY_ALLOCATION 207001   /* out of memory */
#define ACL_ERROR_RT_MEMORY_FREE 207002         /* free failed */
#define ACL_ERROR_RT_NO_DEVICE 207004           /* no device */
#define ACL_ERROR_RT_DEVICE_OOM 207018          /* device out of memory */
#define ACL_ERROR_RT_TIMEOUT 207020             /* driver timeout */

/* 507xxx: internal / execution errors */
#define ACL_ERROR_RT_INTERNAL_ERROR 507000      /* runtime internal error */
#define ACL_ERROR_RT_STREAM_NOT_COMPLETE 507004 /* stream still has pending work */
#define ACL_ERROR_RT_EVENT_NOT_COMPLETE 507006  /* event not reached */
#define ACL_ERROR_RT_AICORE_TIMEOUT 507014      /* compute task timed out */
#define ACL_ERROR_RT_STREAM_SYNC_TIMEOUT 507046 /* aclrtSynchronizeStreamWithTimeout expired */
#define ACL_ERROR_RT_EVENT_SYNC_TIMEOUT 507047  /* event synchronisation timed out */
#define ACL_ERROR_RT_DRV_INTERNAL_ERROR 507899  /* driver internal error */
#define ACL_ERROR_RT_COMM_OP_RETRY_FAIL 507904  /* collective retry failed */

#endif /* GMMAV_COMPAT_ACL_ERROR_CODES_RT_ERROR_CODES_H_ */
