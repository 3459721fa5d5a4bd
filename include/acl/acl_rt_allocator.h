/*
 * gmmav compat header: acl/acl_rt_allocator.h
 *
 * Placeholder for the custom-allocator API of CANN (aclrtAllocator*). gmmav does not
 * support user allocators; the file exists so that acl/acl_rt.h keeps the vendor
 * include layout.
 */
#ifndef GMMAV_COMPAT_ACL_ACL_RT_ALLOCATOR_H_
#define GMMAV_COMPAT_ACL_ACL_RT_ALLOCATOR_H_

#include "acl_base.h"

#endif /* GMMAV_COMPAT_ACL_ACL_RT_ALLOCATOR_H_ */
