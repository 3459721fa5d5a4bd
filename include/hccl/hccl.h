/*
 * gmmav compat header: hccl/hccl.h
 *
 * Entry header of the HCCL API as provided by the gmmav CPU runtime. As in the current
 * vendor layout it pulls in the types, the communicator-management calls and acl/acl.h.
 * gmmav declares no stand-alone collectives (HcclAllReduce, HcclAlltoAllV, ...): the only
 * communication it offers is the one inside aclnnGroupedMatMulAlltoAllv.
 */
#ifndef GMMAV_COMPAT_HCCL_HCCL_H_
#define GMMAV_COMPAT_HCCL_HCCL_H_

#include <hccl/hccl_types.h>
#include <hccl/hccl_comm.h>
#include <acl/acl.h>

#endif /* GMMAV_COMPAT_HCCL_HCCL_H_ */
