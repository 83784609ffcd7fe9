"""The kernels' CPU references (eplb.kernels) against numpy recomputations written from the
header: dispatch layout counts and send offsets, the padded expert sort, permute, and the float32
weighted unpermute, bit for bit."""

import numpy as np
import pytest

import eplb
from eplb import capi, kernels


def layout_oracle(ids, experts, ranks, nodes):
    valid = (ids >= 0) & (ids < experts)
    # experts + r is the shared expert's slot on rank r (eplb.shared_expert_waterfill's rows).
    shared = (ids >= experts) & (ids < experts + ranks)
    rank = np.where(valid, ids // (experts // ranks), np.where(shared, ids - experts, -1))
    in_rank = np.array([[(rank[t] == r).any() for r in range(ranks)] for t in range(len(ids))],
                       dtype=bool).reshape(len(ids), ranks)
    per_node = ranks // nodes
    in_node = in_rank.reshape(len(ids), nodes, per_node).any(axis=2)
    per_rank = in_rank.sum(axis=0)
    start = np.concatenate([[0], np.cumsum(per_rank)[:-1]])
    offsets = np.where(in_rank, start + np.cumsum(in_rank, axis=0) - 1, -1)
    return (np.bincount(ids[valid], minlength=experts), per_rank, in_node.sum(axis=0), in_rank,
            offsets)


def test_dispatch_layout_matches_numpy():
    rng = np.random.default_rng(2)
    for _ in range(30):
        nodes = int(rng.choice([1, 2, 4]))
        ranks = nodes * int(rng.integers(1, 4))
        experts = ranks * int(rng.integers(1, 5))
        tokens, top_k = int(rng.integers(0, 300)), int(rng.integers(1, 9))
        # Masked (-1) and out-of-range ids are ignored, not errors; experts + r is rank r's
        # shared-expert slot.
        ids = rng.integers(-1, experts + ranks + 2, size=(tokens, top_k)).astype(np.int32)
        got = kernels.dispatch_layout(ids, experts, ranks, nodes)
        want = layout_oracle(ids, experts, ranks, nodes)
        for field, value in zip(got._fields, want):
            assert getattr(got, field).tolist() == value.tolist(), field
        assert got.is_token_in_rank.dtype == np.bool_
        without = kernels.dispatch_layout(ids, experts, ranks, nodes, send_offsets=False)
        assert without.send_offsets is None


def sort_oracle(ids, experts, block):
    flat = ids.ravel()
    n = flat.size
    sorted_ids, offsets, inverse = [], [0], np.full(n, -1)
    for e in range(experts):
        pairs = np.flatnonzero(flat == e)
        inverse[pairs] = len(sorted_ids) + np.arange(len(pairs))
        padded = -(-len(pairs) // block) * block
        sorted_ids += pairs.tolist() + [n] * (padded - len(pairs))
        offsets.append(len(sorted_ids))
    return sorted_ids, offsets, inverse.reshape(ids.shape)


def test_expert_sort_matches_numpy():
    rng = np.random.default_rng(3)
    for _ in range(30):
        experts, block = int(rng.integers(1, 20)), int(rng.choice([1, 4, 16]))
        tokens, top_k = int(rng.integers(0, 100)), int(rng.integers(1, 5))
        ids = rng.integers(-1, experts + 1, size=(tokens, top_k)).astype(np.int32)
        got = kernels.expert_sort(ids, experts, block)
        n = tokens * top_k
        capacity = -(-(n + min(n, experts) * (block - 1)) // block) * block
        assert kernels.expert_sort_capacity(tokens, top_k, experts, block) == capacity
        assert len(got.sorted_ids) == capacity and len(got.block_experts) == capacity // block
        sorted_ids, offsets, inverse = sort_oracle(ids, experts, block)
        total = offsets[-1]
        assert got.total_padded == total
        assert got.sorted_ids.tolist() == sorted_ids + [n] * (capacity - total)
        assert got.expert_offsets.tolist() == offsets
        assert got.inverse.tolist() == inverse.tolist()
        starts = np.arange(capacity // block) * block
        owner = np.searchsorted(offsets, starts, side="right") - 1
        assert got.block_experts.tolist() == np.where(starts < total, owner, -1).tolist()


def bf16_to_f32(u16):
    return (u16.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(f32):
    bits = f32.view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)  # nearest even


def unpermute_oracle(permuted, inverse, weights, load, store):
    out = []
    for t in range(len(inverse)):
        acc = np.full(permuted.shape[1], -0.0, dtype=np.float32)
        valid = False
        for k in range(inverse.shape[1]):
            row = inverse[t, k]
            if 0 <= row < len(permuted):
                valid = True
                acc = acc + np.float32(weights[t, k]) * load(permuted[row])  # two roundings
        out.append(acc if valid else np.zeros_like(acc))
    return store(np.array(out, dtype=np.float32).reshape(len(inverse), permuted.shape[1]))


@pytest.mark.parametrize("row_dtype", ["float32", "float16", "bfloat16"])
def test_permute_and_unpermute_bit_for_bit(row_dtype):
    rng = np.random.default_rng(4)
    codecs = {"float32": (np.float32, lambda x: x, lambda x: x),
              "float16": (np.float16, lambda x: x.astype(np.float32),
                          lambda x: x.astype(np.float16)),
              "bfloat16": (np.uint16, bf16_to_f32, f32_to_bf16)}
    storage, load, store = codecs[row_dtype]
    tokens, top_k, hidden, experts = 37, 3, 24, 6
    ids = rng.integers(-1, experts, size=(tokens, top_k)).astype(np.int32)
    values = rng.standard_normal((tokens, hidden)).astype(np.float32)
    rows = store(values).astype(storage) if row_dtype != "float32" else values
    sort = kernels.expert_sort(ids, experts, block_size=4)
    explicit = None if row_dtype != "bfloat16" else "bfloat16"
    permuted = kernels.permute(rows, sort.inverse, len(sort.sorted_ids), row_dtype=explicit)
    want = np.zeros((len(sort.sorted_ids), hidden), dtype=rows.dtype)
    for t in range(tokens):
        for k in range(top_k):
            if sort.inverse[t, k] >= 0:
                want[sort.inverse[t, k]] = rows[t]
    assert permuted.dtype == rows.dtype and permuted.tobytes() == want.tobytes()
    # Each pair's row is its token's row: the sort's order, gathered.
    real = sort.sorted_ids < tokens * top_k
    assert (permuted[real] == rows[sort.sorted_ids[real] // top_k]).all()

    weights = rng.uniform(0, 1, size=(tokens, top_k)).astype(np.float32)
    out = kernels.unpermute(permuted, sort.inverse, weights, row_dtype=explicit)
    expected = unpermute_oracle(permuted, sort.inverse, weights, load, store)
    assert out.dtype == rows.dtype and out.tobytes() == expected.tobytes()
    # One slot with weight 1 reproduces its row exactly; a token with no valid slot gets +0.
    single = np.where(np.arange(top_k) == 0, sort.inverse, -1).astype(np.int32)
    back = kernels.unpermute(permuted, single, np.ones((tokens, top_k), np.float32),
                             row_dtype=explicit)
    has = sort.inverse[:, 0] >= 0
    assert back[has].tobytes() == rows[has].tobytes()
    assert (back[~has].view(storage if row_dtype != "float32" else np.uint32) == 0).all()


def test_misaligned_and_strided_rows_are_copied_not_refused():
    rows = np.arange(4 * 8, dtype=np.float32).reshape(4, 8)
    raw = np.zeros(rows.nbytes + 4, dtype=np.uint8)
    shifted = raw[4:].view(np.float32).reshape(4, 8)  # 4-byte aligned, not 16
    shifted[...] = rows
    inverse = np.array([[3], [2], [1], [0]], dtype=np.int32)
    want = rows[::-1]
    assert (kernels.permute(shifted, inverse, 4) == want).all()
    assert (kernels.permute(np.asfortranarray(rows), inverse, 4) == want).all()


@pytest.mark.parametrize("dtype", [">f4", ">f2"])
def test_rows_in_the_other_byte_order_give_the_same_results(dtype):
    """'>f4' is named float32 too: the kernels must read its values, not its bytes."""
    rng = np.random.default_rng(7)
    native = rng.standard_normal((5, 8)).astype(np.dtype(dtype).newbyteorder("="))
    swapped = native.astype(dtype)
    sort = kernels.expert_sort(rng.integers(0, 4, size=(5, 2)).astype(np.int32), 4, 1)
    weights = rng.uniform(0, 1, size=(5, 2)).astype(np.float32)
    for rows in (native, swapped):
        permuted = kernels.permute(rows, sort.inverse, len(sort.sorted_ids))
        assert (permuted == kernels.permute(native, sort.inverse, len(sort.sorted_ids))).all()
        out = kernels.unpermute(permuted, sort.inverse, weights)
        want = kernels.unpermute(kernels.permute(native, sort.inverse, len(sort.sorted_ids)),
                                 sort.inverse, weights)
        assert out.tobytes() == want.tobytes()


def test_the_unchecked_cpu_references_are_left_out_of_the_low_level_module():
    for name in ["record_load", "map_record", "fold_counts", "coactivation", "split_solve",
                 "shared_waterfill"]:
        assert not hasattr(capi, f"eplb_kernel_{name}_cpu"), name
    assert hasattr(capi, "eplb_kernel_permute_cpu")  # a checked wrapper


def test_kernel_bad_input_raises_with_the_c_status():
    invalid = capi.EPLB_ERR_INVALID_ARGUMENT
    ids = np.zeros((4, 2), dtype=np.int32)
    rows = np.zeros((4, 8), dtype=np.float32)
    cases = [
        (lambda: kernels.dispatch_layout(ids, 10, 4), "num_physical_experts (10)"),
        (lambda: kernels.dispatch_layout(ids, 8, 4, 3), "num_nodes (3)"),
        (lambda: kernels.dispatch_layout(ids, 8, 2000), "num_ranks (2000)"),
        (lambda: kernels.dispatch_layout(np.zeros((4, 0), np.int32), 8, 4), "top_k (0)"),
        (lambda: kernels.dispatch_layout([1, 2], 8, 4), "2-D"),
        (lambda: kernels.dispatch_layout([[0.5]], 8, 4), "integers"),
        (lambda: kernels.expert_sort(ids, 0), "num_experts (0)"),
        (lambda: kernels.expert_sort(ids, 8, 0), "block_size (0)"),
        (lambda: kernels.expert_sort(ids, 8, 4, capacity=4), "capacity"),
        (lambda: kernels.expert_sort(ids, 8, 4, capacity=30), "capacity"),
        (lambda: kernels.permute(np.zeros((4, 12), np.float32), ids, 8), "hidden (12)"),
        (lambda: kernels.permute(rows.astype(np.float64), ids, 8), "float64"),
        (lambda: kernels.permute(rows, ids[:3], 8), "inverse"),
        (lambda: kernels.permute(rows, ids, 8, row_dtype="bfloat16"), "2-byte"),
        (lambda: kernels.permute(rows, ids, 8, row_dtype="int8"), "row_dtype"),
        (lambda: kernels.permute(rows, ids, -1), "output_rows"),
        (lambda: kernels.unpermute(rows, ids, np.ones((4, 3))), "weights"),
        (lambda: kernels.unpermute(rows, ids, np.full((4, 2), "x")), "weights"),
    ]
    for call, part in cases:
        with pytest.raises(eplb.InvalidArgumentError) as info:
            call()
        assert info.value.status == invalid
        assert part in info.value.message, (part, info.value.message)
    # The raw module checks the output lengths the C functions do not take.
    out = [np.empty(8, np.int32), np.empty(4, np.int32), np.empty(1, np.int32),
           np.empty((4, 4), np.uint8), np.empty((4, 4), np.int32)]
    for index, bad, part in [(0, np.empty(7, np.int32), "tokens_per_expert has 7"),
                             (3, np.empty((4, 3), np.uint8), "is_token_in_rank has 12"),
                             (4, np.empty(3, np.int32), "send_offsets has 3")]:
        args = list(out)
        args[index] = bad
        with pytest.raises(eplb.InvalidArgumentError) as info:
            capi.eplb_kernel_dispatch_layout_cpu(ids, 8, 4, 1, *args)
        assert part in info.value.message, info.value.message
    with pytest.raises(eplb.InvalidArgumentError) as info:
        capi.eplb_kernel_permute_cpu(rows, 0, 8, ids, np.empty(20, np.float32))
    assert "output has 80 bytes" in info.value.message
    with pytest.raises(eplb.InvalidArgumentError) as info:
        capi.eplb_kernel_permute_cpu(rows[:3], 0, 8, ids, np.empty((8, 8), np.float32))
    assert "input has 96 bytes, expected 128" in info.value.message
    with pytest.raises(eplb.InvalidArgumentError) as info:
        capi.eplb_kernel_unpermute_cpu(rows, 0, 8, ids, np.ones((4, 2), np.float32),
                                       np.empty((3, 8), np.float32))
    assert "output has 96 bytes" in info.value.message
    with pytest.raises(eplb.InvalidArgumentError) as info:
        capi.eplb_kernel_permute_cpu(rows, 7, 8, ids, np.empty((8, 8), np.float32))
    assert "dtype (7)" in info.value.message
    with pytest.raises(TypeError):  # read-only output
        capi.eplb_kernel_permute_cpu(rows, 0, 8, ids, bytes(256))


def test_kernel_inputs_of_the_wrong_dtype_are_type_errors():
    ids = np.zeros((4, 2), dtype=np.int32)
    rows = np.zeros((4, 8), dtype=np.float32)
    cases = [
        (lambda: kernels.permute(rows > 0, ids, 8), "bool"),
        (lambda: kernels.permute(rows.astype(np.float64), ids, 8), "float64"),
        (lambda: kernels.permute(rows, ids, 8, row_dtype="bfloat16"), "2-byte"),
        (lambda: kernels.unpermute(rows, ids, np.ones((4, 2), complex)), "complex"),
        (lambda: kernels.unpermute(rows, ids, np.ones((4, 2), bool)), "bool"),
    ]
    for call, part in cases:
        with pytest.raises(eplb.InvalidTypeError) as info:  # also a TypeError, as elsewhere
            call()
        assert part in info.value.message, (part, info.value.message)
    with pytest.raises(eplb.InvalidArgumentError, match="weights"):  # was numpy's ValueError
        kernels.unpermute(rows, ids, [[1.0], [1.0, 2.0]])
