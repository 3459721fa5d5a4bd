/*
 * gmmav compat header: aclnn/aclnn_status.h  (gmmav addition, not a vendor file)
 *
 * The aclnn status codes as macros. The vendor defines them in the internal header
 * opdev/op_errno.h, which no public aclnn header includes; gmmav exposes them here, and
 * aclnn/aclnn_base.h includes this file, so programs can test aclnn results by name.
 * The definitions are token-identical to the vendor's, so including both is harmless.
 */
#ifndef GMMAV_COMPAT_ACLNN_ACLNN_STATUS_H_
#define GMMAV_COMPAT_ACLNN_ACLNN_STATUS_H_

#define ACLNN_SUCCESS 0
#define ACLNN_ERR_PARAM_NULLPTR 161001 /* a required pointer argument is null */
#define ACLNN_ERR_PARAM_INVALID 161002 /* an argument breaks a shape/dtype/range rule */
#define ACLNN_ERR_RUNTIME_ERROR 361001 /* a runtime (aclrt / HCCL) call failed */
#define ACLNN_ERR_INNER 561000         /* internal error */
#define ACLNN_ERR_INNER_INFERSHAPE_ERROR 561001
#define ACLNN_ERR_INNER_TILING_ERROR 561002
#define ACLNN_ERR_INNER_FIND_KERNEL_ERROR 561003
#define ACLNN_ERR_INNER_CREATE_EXECUTOR 561101
#define ACLNN_ERR_INNER_NOT_TRANS_EXECUTOR 561102
#define ACLNN_ERR_INNER_NULLPTR 561103

#endif /* GMMAV_COMPAT_ACLNN_ACLNN_STATUS_H_ */
