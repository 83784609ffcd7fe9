"""CPU references of the dispatch kernels (eplb_kernel_*_cpu): the same integer results, bit for
bit, as the GPU kernels, for callers without a GPU who test their own dispatch. They work on
PHYSICAL expert ids: expert p lives on rank p // (num_physical_experts // num_ranks), rank r on
node r // (num_ranks // num_nodes); ids outside [0, num_physical_experts) (-1 for a masked slot)
are ignored, except that dispatch_layout reads num_physical_experts + r (r < num_ranks) as the
shared expert's slot on rank r, as shared_expert_waterfill appends it."""

import collections

import numpy as np

from . import _array, _as_i32, _capi, _invalid, _unsigned, _wrong_type

DispatchLayout = collections.namedtuple(
    "DispatchLayout",
    ("tokens_per_expert", "tokens_per_rank", "tokens_per_node", "is_token_in_rank",
     "send_offsets"))
DispatchLayout.__doc__ = (
    "eplb_kernel_dispatch_layout's outputs: tokens_per_expert int32 [physical experts] (entries "
    "per expert), tokens_per_rank int32 [ranks] and tokens_per_node int32 [nodes] (tokens with an "
    "entry there, once each), is_token_in_rank bool [tokens][ranks], send_offsets int32 "
    "[tokens][ranks] (the token's row in a rank-major packed send buffer, -1 where it does not "
    "send; None when not asked for).")

ExpertSort = collections.namedtuple(
    "ExpertSort", ("sorted_ids", "block_experts", "expert_offsets", "inverse", "total_padded"))
ExpertSort.__doc__ = (
    "eplb_kernel_expert_sort's outputs (moe_align_block_size, deterministic): sorted_ids int32 "
    "[capacity] flat (token * top_k + slot) indices grouped by expert, each segment padded to a "
    "multiple of block_size with tokens * top_k; block_experts int32 [capacity // block_size] "
    "(-1 from total_padded on); expert_offsets int32 [experts + 1]; inverse int32 [tokens][top_k] "
    "(each pair's row in the permuted order, -1 for a masked id); total_padded (int).")

_ROW_DTYPES = {"float32": (_capi.EPLB_ROW_DTYPE_FLOAT32, 4),
               "float16": (_capi.EPLB_ROW_DTYPE_FLOAT16, 2),
               "bfloat16": (_capi.EPLB_ROW_DTYPE_BFLOAT16, 2)}


def _topk(topk_ids, name="topk_ids"):
    ids = _as_i32(topk_ids, name, masked_ids=True)
    if ids.ndim != 2:
        raise _invalid(f"{name} must be 2-D [tokens][top_k], got shape {ids.shape}")
    return ids


def dispatch_layout(topk_ids, num_physical_experts, num_ranks, num_nodes=1, send_offsets=True):
    """The dispatch layout of one batch (DeepEP's get_dispatch_layout plus per-node counts and
    send offsets) for `topk_ids` int [tokens][top_k] physical ids: a DispatchLayout."""
    ids = _topk(topk_ids)
    experts = _unsigned(num_physical_experts, "num_physical_experts")
    ranks = _unsigned(num_ranks, "num_ranks")
    nodes = _unsigned(num_nodes, "num_nodes")
    tokens, top_k = ids.shape
    # The size query checks top_k, the topology and the limits before anything is allocated.
    _capi.eplb_kernel_dispatch_layout_workspace_size(tokens, top_k, experts, ranks, nodes)
    per_expert = np.empty(experts, dtype=np.int32)
    per_rank = np.empty(ranks, dtype=np.int32)
    per_node = np.empty(nodes, dtype=np.int32)
    in_rank = np.empty((tokens, ranks), dtype=np.uint8)
    offsets = np.empty((tokens, ranks), dtype=np.int32) if send_offsets else None
    _capi.eplb_kernel_dispatch_layout_cpu(ids, experts, ranks, nodes, per_expert, per_rank,
                                          per_node, in_rank, offsets)
    return DispatchLayout(per_expert, per_rank, per_node, in_rank.view(np.bool_), offsets)


def expert_sort_capacity(num_tokens, top_k, num_experts, block_size):
    """The worst-case padded length of expert_sort for these sizes (its minimum capacity)."""
    return _capi.eplb_kernel_expert_sort_capacity(
        _unsigned(num_tokens, "num_tokens", 64), _unsigned(top_k, "top_k", 64),
        _unsigned(num_experts, "num_experts"), _unsigned(block_size, "block_size"))


def expert_sort(topk_ids, num_experts, block_size=1, capacity=None):
    """Stable sort of the (token, slot) pairs of `topk_ids` int [tokens][top_k] by expert, each
    expert's segment padded to a multiple of `block_size`: an ExpertSort. `capacity` (default
    the worst case, expert_sort_capacity) is the length of sorted_ids, a multiple of block_size."""
    ids = _topk(topk_ids)
    experts = _unsigned(num_experts, "num_experts")
    block = _unsigned(block_size, "block_size")
    # The capacity query checks top_k, num_experts, block_size and the limits.
    minimum = expert_sort_capacity(ids.shape[0], ids.shape[1], experts, block)
    capacity = minimum if capacity is None else _unsigned(capacity, "capacity", 31)
    sorted_ids = np.empty(capacity, dtype=np.int32)
    block_experts = np.empty(capacity // block, dtype=np.int32)
    expert_offsets = np.empty(experts + 1, dtype=np.int32)
    inverse = np.empty(ids.shape, dtype=np.int32)
    total = np.empty(1, dtype=np.int32)
    _capi.eplb_kernel_expert_sort_cpu(ids, experts, block,
                                      sorted_ids, block_experts, expert_offsets, inverse, total)
    return ExpertSort(sorted_ids, block_experts, expert_offsets, inverse, int(total[0]))


def _row_dtype(rows, row_dtype):
    if row_dtype is None:
        name = rows.dtype.name
        if name not in _ROW_DTYPES:
            raise _wrong_type(f"rows have dtype {rows.dtype}; pass float32 or float16 rows, "
                              "or row_dtype='bfloat16' with 2-byte items")
        row_dtype = name
    if row_dtype not in _ROW_DTYPES:
        raise _invalid(f"row_dtype {row_dtype!r} is unknown (use one of {', '.join(_ROW_DTYPES)})")
    code, size = _ROW_DTYPES[row_dtype]
    if rows.dtype.itemsize != size:
        raise _wrong_type(f"row_dtype {row_dtype} needs {size}-byte items, rows have dtype "
                          f"{rows.dtype}")
    return code


def _aligned_empty(shape, dtype):
    """An uninitialised array whose data is 16-byte aligned (the kernels move rows as 16-byte
    vectors and check it)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + 16, dtype=np.uint8)
    start = -raw.ctypes.data % 16
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def _rows(rows, name):
    rows = _array(rows, name)
    if rows.ndim != 2:
        raise _invalid(f"{name} must be 2-D [rows][hidden], got shape {rows.shape}")
    if not rows.dtype.isnative:  # the kernels read this machine's byte order ('>f4' is float32)
        rows = rows.astype(rows.dtype.newbyteorder("="))
    if not rows.flags.c_contiguous or rows.ctypes.data % 16:
        aligned = _aligned_empty(rows.shape, rows.dtype)
        aligned[...] = rows
        rows = aligned
    return rows


def permute(rows, inverse, output_rows, row_dtype=None):
    """Gathers token rows into the expert-contiguous order of expert_sort: row t of `rows`
    [tokens][hidden] (float32, float16, or 2-byte bfloat16 items with row_dtype="bfloat16";
    hidden a multiple of 8) goes to row inverse[t][k] of the result [output_rows][hidden] for
    every slot k with 0 <= inverse[t][k] < output_rows (bit-exact copies). Rows no pair maps to
    are zero."""
    rows = _rows(rows, "rows")
    code = _row_dtype(rows, row_dtype)
    inverse = _topk(inverse, "inverse")
    if inverse.shape[0] != rows.shape[0]:
        raise _invalid(f"inverse has {inverse.shape[0]} rows, rows has {rows.shape[0]}")
    out = _aligned_empty((_unsigned(output_rows, "output_rows", 31), rows.shape[1]), rows.dtype)
    out[...] = 0
    _capi.eplb_kernel_permute_cpu(rows, code, rows.shape[1], inverse, out)
    return out


def unpermute(permuted, inverse, weights, row_dtype=None):
    """The weighted top-k sum back in token order: out[t] = sum over k, in order, of
    weights[t][k] * permuted[inverse[t][k]] (slots with inverse outside the permuted rows
    skipped), accumulated in float32 and rounded once to the rows' type. `permuted`
    [rows][hidden] as permute's rows, `inverse` int [tokens][top_k], `weights` float32
    [tokens][top_k]. Returns [tokens][hidden] of the rows' type."""
    permuted = _rows(permuted, "permuted")
    code = _row_dtype(permuted, row_dtype)
    inverse = _topk(inverse, "inverse")
    weights = _array(weights, "weights")
    if weights.shape != inverse.shape:
        raise _invalid(f"weights has shape {weights.shape}, expected {inverse.shape} (inverse's)")
    if weights.dtype.kind not in "fiu":
        raise _wrong_type(f"weights must be real numbers, got dtype {weights.dtype}")
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    out = _aligned_empty((inverse.shape[0], permuted.shape[1]), permuted.dtype)
    _capi.eplb_kernel_unpermute_cpu(permuted, code, permuted.shape[1], inverse, weights, out)
    return out
