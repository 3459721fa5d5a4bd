"""Multi-rank scenarios, run by every rank: over torch.distributed/gloo (spawned by
test_torch_dist.py) or under mpirun (`mpirun -np 2 python3 ranks.py <scenario>`: the MPI backend).
Exit status 0 = pass; a failing rank raises (spawn) or exits 1 (mpirun)."""
import os
import sys
import threading
import traceback
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402
import training  # noqa: E402
import gmmav.distributed as gd  # noqa: E402
import gmmav.torch as gt  # noqa: E402


def matrix(rank, W, name):
    n = 0
    for case in cases.matrix(W):
        y, mm_y = case.call(rank, name)
        assert y.dtype == case.dtype and y.shape == (sum(case.recv(rank)), case.n1), (y.shape, case.recv(rank))
        cases.check_case_rank(case, rank, y, mm_y)
        ref = cases.in_process_results(case)[rank]  # the C++ API, in-process ranks, same inputs
        assert cases.bits_equal(y, ref[0]), f"case {case.seed}: y differs from the C++ API's in-process result"
        assert cases.bits_equal(mm_y, ref[1]), f"case {case.seed}: mm_y differs from the C++ API's in-process result"
        n += 1
    # torch.ops and the torch_npu stand-in reach the same function.
    for case in (cases.matrix(W)[4], cases.matrix(W)[7]):  # without and with the shared expert
        y_op, mm_op = case.call(rank, name, op=torch.ops.gmmav.npu_gmm_alltoallv)
        y_fn, mm_fn = case.call(rank, name)
        assert cases.bits_equal(y_op, y_fn)
        # torch.ops cannot return None: an empty tensor stands for "no shared expert"
        assert cases.bits_equal(mm_op, mm_fn) if mm_fn is not None else mm_op.numel() == 0
    torch_npu = gt.patch_torch_npu()
    import torch_npu as again  # noqa: F401 - the import must succeed

    assert again is torch_npu
    y_npu, _ = case.call(rank, name, op=torch_npu.npu_gmm_alltoallv)
    assert cases.bits_equal(y_npu, y_fn)
    # Counts given as tensors (beyond torch_npu) give the same result.
    x, w, kw = case.inputs(rank)
    y_t, _ = gt.npu_gmm_alltoallv(x, w, name, W, None, None, send_counts_tensor=torch.tensor(case.send(rank)),
                                  recv_counts_tensor=torch.tensor(case.recv(rank)), trans_gmm_weight=case.trans_gmm,
                                  trans_mm_weight=case.trans_mm, **kw)
    assert cases.bits_equal(y_t, y_fn)
    print(f"rank {rank}: {n} cases within docs/spec.md §4's bound and bit-identical to the C++ API", flush=True)


def mismatch(rank, W, name):
    case = cases.Case(W, 2, 32, 16, torch.float16, 7)
    x, w, _ = case.inputs(rank)
    recv = case.recv(rank)
    if rank == W - 1:
        recv[0] += 1  # disagrees with rank 0's send_counts
        x = x  # own send counts unchanged
    try:
        gt.npu_gmm_alltoallv(x, w, name, W, case.send(rank), recv)
    except RuntimeError as e:
        assert "mismatch" in str(e), str(e)
        print(f"rank {rank}: RuntimeError as expected: {e}", flush=True)
    else:
        raise AssertionError(f"rank {rank}: a cross-rank count mismatch did not raise")
    # The group stays usable after a mismatch (D2).
    y, mm_y = case.call(rank, name)
    cases.check_case_rank(case, rank, y, mm_y)


def absent(rank, W, name):
    timeout = gd.native_group(name).timeout_ms / 1000.0
    if rank == 1:  # never calls; stays alive past the others' timeout
        time.sleep(timeout + 3)
        return
    case = cases.Case(W, 2, 32, 16, torch.bfloat16, 8)
    t0 = time.monotonic()
    try:
        case.call(rank, name)
    except RuntimeError as e:
        took = time.monotonic() - t0
        assert took < timeout + 2.0, f"rank {rank}: raised after {took:.1f} s, timeout {timeout} s"
        print(f"rank {rank}: RuntimeError after {took:.2f} s (timeout {timeout} s): {e}", flush=True)
    else:
        raise AssertionError(f"rank {rank}: a call without rank 1 did not raise")


def killed(rank, W, name):
    """Rank 1 dies (os._exit) while both ranks run calls back to back: rank 0's call fails within
    the timeout with a RuntimeError (a transfer failed, or no progress), never hangs or aborts,
    and the group then refuses every call as broken."""
    timeout = gd.native_group(name).timeout_ms / 1000.0
    case = cases.Case(W, 2, 512, 1024, torch.bfloat16, 9, pattern="heavy")
    if rank == 1:
        threading.Timer(1.5, os._exit, args=(0,)).start()
        while True:
            case.call(rank, name)
    calls = 0
    try:
        while True:
            t0 = time.monotonic()
            case.call(rank, name)
            calls += 1
    except RuntimeError as e:
        took = time.monotonic() - t0
        assert took < timeout + 2.0, f"rank 0: raised after {took:.1f} s, timeout {timeout} s"
        print(f"rank 0: after {calls} calls, RuntimeError after {took:.2f} s (timeout {timeout} s): {e}", flush=True)
    try:
        case.call(rank, name)
    except RuntimeError as e:
        assert "broken" in str(e), e
    else:
        raise AssertionError("rank 0: a broken group accepted a call")


def subgroups(rank, W, name):
    """W = 4 world ranks, two expert-parallel groups {0, 1} and {2, 3} (each rank names its own),
    calling at the same time: each group's results are its own (golden + bits of the C++ API)."""
    import torch.distributed as dist

    assert W == 4
    groups = [dist.new_group([0, 1], backend="gloo"), dist.new_group([2, 3], backend="gloo")]
    mine = groups[rank // 2]
    sub = gt.hcom(mine)
    assert gt.hcom(mine) == sub  # same group, same name
    gt.patch_torch_npu()  # torch_npu's way of asking: the group's HCCL comm name
    assert mine.get_hccl_comm_name(dist.get_rank()) == sub
    case = cases.Case(2, 3, 40, 24, torch.bfloat16, 20 + rank // 2, shared=(8, 16, 12))
    r = dist.get_rank(mine)
    y, mm_y = case.call(r, sub)
    cases.check_case_rank(case, r, y, mm_y)
    ref = cases.in_process_results(case)[r]
    assert cases.bits_equal(y, ref[0]) and cases.bits_equal(mm_y, ref[1])
    print(f"rank {rank}: subgroup {rank // 2} rank {r}: within bound and bit-identical", flush=True)


def dispatch(rank, W, name):
    """The dispatch op over this backend: the case matrix (permute_out on every other case) within
    docs/spec.md §4's bound and bit-identical to the C++ API in-process; combine(dispatch(x)) = x; torch.ops."""
    n = 0
    for i, case in enumerate(cases.matrix(W)):
        flag = i % 2 == 1
        out = cases.call_dispatch(case, rank, name, flag)
        cases.check_dispatch_rank(case, rank, out, flag)
        ref = cases.run_ranks(gt.in_process_hcoms(W), lambda r, nm: cases.call_dispatch(case, r, nm, flag))[rank]
        assert all(cases.bits_equal(a, b) for a, b in zip(out, ref)), f"case {case.seed}: differs from the C++ API in-process"
        n += 1
    for pattern in ("skewed", "empty"):
        case = cases.Case(W, 3, 24, 24, torch.bfloat16, 60, pattern=pattern)
        x, _, _ = case.inputs(rank)
        eye = torch.eye(24).expand(3, 24, 24).contiguous().to(torch.bfloat16)
        gmm_y, _, _ = gt.npu_alltoallv_gmm(x, eye, name, W, case.send(rank), case.recv(rank))
        back, _ = gt.npu_gmm_alltoallv(gmm_y, eye, name, W, case.recv(rank), case.send(rank))
        assert cases.bits_equal(back, x), f"combine(dispatch(x)) != x ({pattern})"
    case = cases.matrix(W)[7]
    via_op = cases.call_dispatch(case, rank, name, True, op=torch.ops.gmmav.npu_alltoallv_gmm)
    assert all(cases.bits_equal(a, b) for a, b in zip(via_op, cases.call_dispatch(case, rank, name, True)))
    print(f"rank {rank}: {n} dispatch cases within docs/spec.md §4's bound and bit-identical to the C++ API; "
          "combine(dispatch(x)) = x", flush=True)


def train(rank, W, name):
    """A training step of MoEExperts (bf16 and fp16) over this backend: every output and gradient
    bit-identical to the same step on in-process ranks, which is checked against float64 (rank 0)."""
    for dtype, seed in ((torch.bfloat16, 31), (torch.float16, 33)):
        case = training.LayerCase(W, 2, 48, 80, dtype, seed, shared=(12, 40))
        mine = training.step(case, rank, name)
        ref = training.in_process_step(case)
        bad = training.same_bits([mine], [ref[rank]])
        assert not bad, f"{dtype}: differs from the in-process step: {bad}"
        again = training.step(case, rank, name)
        assert not training.same_bits([mine], [again]), "a second step differs"
        if rank == 0:
            ratios, e2e = training.check_against_float64(case, ref)
            print(f"{dtype}: worst err/bound per GEMM {max(ratios.values()):.3f}; end-to-end {max(e2e.values()):.3g}", flush=True)
    print(f"rank {rank}: training steps bit-identical to in-process (bf16, fp16)", flush=True)


def _gloo_under_mpirun():
    """Under mpirun: torch.distributed (gloo) over the MPI ranks, meeting through a file named
    after the job (MindSpeed-style code needs torch.distributed groups)."""
    import torch.distributed as dist

    if dist.is_initialized():
        return None
    meeting = f"/tmp/gmmav_ranks_{os.environ.get('OMPI_MCA_ess_base_jobid') or os.environ['PMIX_NAMESPACE']}"
    dist.init_process_group("gloo", init_method=f"file://{meeting}", rank=int(os.environ["OMPI_COMM_WORLD_RANK"]),
                            world_size=int(os.environ["OMPI_COMM_WORLD_SIZE"]))
    return meeting


def mindspeed(rank, W, name):
    """MindSpeed's MC2 autograd pair (python/examples/mindspeed_mc2.py: torch_npu.* calls only,
    hcom from ep_group.get_hccl_comm_name(rank), transposed weights as views, dW from
    npu_grouped_matmul) over torch.distributed: every gradient of every rank within docs/spec.md §4's
    bound of float64 autograd, one GEMM at a time (rank 0 checks all ranks' tensors), bf16 and
    fp16, and every tensor the bits of MoEExperts' step. W = 2: the expert-parallel group is a
    subgroup made by new_group; otherwise the world."""
    import torch.distributed as dist

    meeting = _gloo_under_mpirun()
    training._mindspeed_example()  # its first lines: patch_torch_npu(), import torch_npu
    rank = dist.get_rank()
    ep_group = dist.new_group(list(range(W))) if W == 2 else dist.group.WORLD
    hcom = ep_group.get_hccl_comm_name(rank)  # what patch_torch_npu gave process groups
    assert gd.native_group(hcom) is not None and ep_group.get_hccl_comm_name(rank) == hcom and hcom == gt.hcom(ep_group)
    try:
        ep_group.get_hccl_comm_name(rank + 1)
    except ValueError as e:
        assert "global rank" in str(e), str(e)
    else:
        raise AssertionError("another rank's number was taken")
    for dtype, seed in ((torch.bfloat16, 41), (torch.float16, 43)):
        case = training.LayerCase(W, 2, 48, 80, dtype, seed, shared=(12, 40))
        mine = training.mindspeed_step(case, rank, ep_group)
        outs = [None] * W
        dist.all_gather_object(outs, mine, group=ep_group)
        if rank == 0:
            ratios, e2e = training.check_against_float64(case, outs)  # raises beyond docs/spec.md §4's bound
            u = 2.0 ** -8 if dtype == torch.bfloat16 else 2.0 ** -11
            assert all(v < 8 * u for v in e2e.values()), e2e
            print(f"W={W} {dtype}: err/bound per gradient (GEMM by GEMM vs float64): "
                  + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()), flush=True)
            print(f"W={W} {dtype}: end to end vs float64 of the whole layer (ulps): "
                  + ", ".join(f"{k} {v / u:.2f}" for k, v in e2e.items()), flush=True)
        # Every tensor is the bits of gmmav's own autograd (MoEExperts, in-process ranks).
        ref = training.in_process_step(case)[rank]
        bad = [k for k in training.KEYS if not cases.bits_equal(mine[k], ref[k])]
        assert not bad, f"{dtype}: differs from MoEExperts: {bad}"
    # A group whose backend gmmav cannot use: a clear error naming it.
    other = dist.new_group(list(range(W)))
    real = dist.get_backend
    dist.get_backend = lambda g=None: "nccl" if g is other else real(g)
    try:
        other.get_hccl_comm_name(rank)
    except ValueError as e:
        assert "nccl" in str(e) and str(list(range(W))) in str(e), str(e)
    else:
        raise AssertionError("an nccl group was taken")
    finally:
        dist.get_backend = real
    print(f"rank {rank}: MindSpeed-style layer (bf16, fp16) within bound of float64 and bit-identical to MoEExperts",
          flush=True)
    if meeting:
        dist.barrier()
        if rank == 0:
            os.remove(meeting)


def threads(rank, W, name):
    """Two threads of rank 0 call on the same gloo hcom at once (rank 1 calls once, later): one is
    refused with a RuntimeError at once, the other pairs with rank 1 and is right; the group stays
    usable. (Before: gloo's EnforceNotMet aborted the process.)"""
    case = cases.Case(W, 2, 32, 16, torch.bfloat16, 50)
    if rank == 0:
        start, results = threading.Barrier(2), [None, None]

        def body(i):
            start.wait()
            try:
                results[i] = case.call(rank, name)
            except RuntimeError as e:
                results[i] = e

        ts = [threading.Thread(target=body, args=(i,)) for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 1 and "one call at a time" in str(errors[0]), results
        y, mm_y = next(r for r in results if not isinstance(r, Exception))
        print(f"rank 0: the second thread's call refused: {errors[0]}", flush=True)
    else:
        time.sleep(1.5)  # rank 0's two threads are both in their call by now
        y, mm_y = case.call(rank, name)
    cases.check_case_rank(case, rank, y, mm_y)
    y, mm_y = case.call(rank, name)  # still usable
    cases.check_case_rank(case, rank, y, mm_y)


SCENARIOS = {"dispatch": dispatch, "train": train, "matrix": matrix, "mismatch": mismatch, "absent": absent, "killed": killed,
             "subgroups": subgroups, "mindspeed": mindspeed, "threads": threads}


def gloo_worker(rank, W, port, scenario):
    """torch.multiprocessing.spawn target."""
    import torch.distributed as dist

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=W)
    if scenario in ("absent", "killed"):
        # A process whose gloo group timed out sometimes aborts while torch tears the broken group
        # down ("terminate called without an active exception", ~1 run in 10 under load; not yet
        # understood, docs/status.md): after the check, leave without that teardown, with the
        # check's own status.
        status = 0
        try:
            SCENARIOS[scenario](rank, W, gt.hcom())
        except BaseException:
            traceback.print_exc()
            status = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    try:
        SCENARIOS[scenario](rank, W, gt.hcom())
    finally:
        dist.barrier()
        dist.destroy_process_group()


def join_gloo_under_mpirun():
    """gloo between mpirun's processes: they meet through a file named after the job."""
    import torch.distributed as dist

    job = os.environ.get("OMPI_MCA_ess_base_jobid") or os.environ["PMIX_NAMESPACE"]
    dist.init_process_group("gloo", init_method=f"file:///tmp/gmmav_ranks_{job}",
                            rank=int(os.environ["OMPI_COMM_WORLD_RANK"]), world_size=int(os.environ["OMPI_COMM_WORLD_SIZE"]))


if __name__ == "__main__":  # under mpirun: the MPI backend; with --gloo first, gloo between the processes
    import gmmav

    assert gmmav.launched_by_mpi(), "run me under mpirun"
    args = sys.argv[1:]
    gloo = args[0] == "--gloo"
    if gloo:
        join_gloo_under_mpirun()
        args = args[1:]
    name = gt.hcom()
    g = gd.native_group(name)
    try:
        for scenario in args[0].split(","):  # e.g. "dispatch,train": one mpirun, several scenarios
            SCENARIOS[scenario](g.rank, g.size, name)
            print(f"rank {g.rank}: {scenario} passed", flush=True)
        if gloo:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()
    except BaseException:
        traceback.print_exc()
        sys.stdout.flush()
        os._exit(1)
