/*
 * gmmav compat header: hccl/hccl_comm.h
 *
 * Communicator management of HCCL as implemented by the gmmav CPU runtime. Same file and
 * prototypes as the public CANN (hcomm) header, but: the vendor includes of
 * hccl/hccl_res.h and hccl/hccl_launch.h are dropped (gmmav provides neither), the
 * functions are ordinary (not weak) symbols with default visibility, and only the calls
 * gmmav implements are declared.
 */
#ifndef GMMAV_COMPAT_HCCL_HCCL_COMM_H_
#define GMMAV_COMPAT_HCCL_HCCL_COMM_H_

#include <hccl/hccl_types.h>
#include <acl/acl.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Fill rootInfo with fresh group-identifying bytes (call on one rank, then share). */
extern ACL_FUNC_VISIBILITY HcclResult HcclGetRootInfo(HcclRootInfo* rootInfo);

/* Join the nRanks-rank group named by rootInfo as rank `rank` (one rank per process). */
extern ACL_FUNC_VISIBILITY HcclResult HcclCommInitRootInfo(
    uint32_t nRanks, const HcclRootInfo* rootInfo, uint32_t rank, HcclComm* comm);

/* Create ndev communicators at once, one per entry of devices[] (all ranks in this
 * process); comms must have room for ndev handles, rank i uses devices[i]. */
extern ACL_FUNC_VISIBILITY HcclResult HcclCommInitAll(uint32_t ndev, int32_t* devices, HcclComm* comms);

/* Copy the communicator's name (NUL-terminated, at most COMM_NAME_MAX_LENGTH bytes
 * including the NUL) into commName, which must hold COMM_NAME_MAX_LENGTH bytes. */
extern ACL_FUNC_VISIBILITY HcclResult HcclGetCommName(HcclComm comm, char* commName);

/* Number of ranks in comm. */
extern ACL_FUNC_VISIBILITY HcclResult HcclGetRankSize(HcclComm comm, uint32_t* rankSize);

/* Rank of the caller in comm. */
extern ACL_FUNC_VISIBILITY HcclResult HcclGetRankId(HcclComm comm, uint32_t* rank);

/* Destroy one communicator handle. */
extern ACL_FUNC_VISIBILITY HcclResult HcclCommDestroy(HcclComm comm);

/* Static description of a status code (never NULL). */
extern ACL_FUNC_VISIBILITY const char* HcclGetErrorString(HcclResult code);

#ifdef __cplusplus
}
#endif

#endif /* GMMAV_COMPAT_HCCL_HCCL_COMM_H_ */
