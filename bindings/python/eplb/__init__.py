"""libeplb for Python: expert-parallel load balancing for Mixture-of-Experts serving.

A thin pythonic layer over the C API (the `eplb.capi` SWIG module). Arrays go in and out as
numpy arrays without copies where the C API allows (C-contiguous float64 loads and int32 ids are
passed as they are; outputs are written straight into new numpy arrays). Failed calls raise an
`eplb.Error` subclass carrying the C status and the library's message. The GIL is released while
the library plans, records and reads or writes files. Ctrl-C (or any exception a signal handler
raises) stops a plan running on the main thread at its next layer and reaches the caller at once.

Handles are safe to close from any thread: a call already running on one keeps the native object
alive until it returns, and later calls raise ValueError. Their shapes are read-only attributes.
Placement, Tracker, Planner and SplitSolver copy and pickle exactly; the other handles refuse.

    import eplb
    planner = eplb.Planner(num_layers=2, num_logical_experts=12, num_physical_experts=16,
                           num_gpus=8, num_nodes=2, num_groups=4, algorithm="deepseek")
    placement = planner.plan(weight)
    placement.phy2log          # int32 [layers][physical experts]

For DeepSeek's EPLB signature see `eplb.rebalance_experts`. Moving weights from one placement
to the next: `eplb.plan_migration(old, new, loads)` (a `Migration`: summary, transfers, step
placements). Per-batch balancing on the CPU: `SplitSolver`, `shared_expert_waterfill`. Simulated
routing: `Workload`. The dispatch kernels' CPU references: `eplb.kernels`. Cancelling a plan from
another thread and watching its progress: `PlanControl` (`Planner(..., control=...)`).
Re-planning near the placement the GPUs hold, so that few experts move:
`planner.plan_near(current, loads)`.
"""

import _thread
import collections
import contextlib
import operator
import os
import threading

import numpy as np

from . import capi as _capi
from ._errors import (
    BufferTooSmallError,
    CancelledError,
    CorruptError,
    DeviceError,
    Error,
    InternalError,
    InvalidArgumentError,
    InvalidTypeError,
    NcclError,
    NoDeviceError,
    NoNcclError,
    OutOfMemoryError,
    TruncatedError,
    UnsupportedVersionError,
)
from ._errors import IOError  # noqa: F401,A004 (eplb.IOError; see __all__)

__all__ = [
    # IOError is left out (it would shadow the builtin): eplb.IOError, a subclass of OSError.
    "Error", "InvalidArgumentError", "InvalidTypeError", "OutOfMemoryError",
    "BufferTooSmallError", "InternalError", "CorruptError", "TruncatedError",
    "UnsupportedVersionError", "NoDeviceError", "DeviceError", "NoNcclError", "NcclError",
    "CancelledError", "Planner", "PlanControl", "PlanProgress", "NearReport", "Placement",
    "Tracker", "Snapshot", "Metrics", "SplitSolver", "split_rank_quotas",
    "algorithms", "rebalance_experts", "load_snapshot", "save_snapshot", "snapshot_bytes",
    "save_statistics", "statistics_bytes", "loads_from_sglang_json", "version",
    "HEADER_VERSION", "WINDOW_CUMULATIVE", "WINDOW_SLIDING", "WINDOW_DECAY",
    "LayerMetrics", "shared_expert_waterfill",
    "Migration", "MigrationSummary", "plan_migration", "RELABEL_MODES", "TRANSFER_DTYPE",
    "TRANSFER_SAME_GPU", "TRANSFER_INTRA_NODE", "TRANSFER_CROSS_NODE", "Workload", "kernels",
]

#: EPLB_VERSION_NUMBER of the header this module was generated from.
HEADER_VERSION = _capi.EPLB_VERSION_NUMBER


def _check_runtime_version():
    runtime = _capi.eplb_version_number()
    # Within one SONAME (major.minor while major is 0) the ABI only grows: the library must be
    # at least as new as the header, with the same major (and minor while major is 0).
    header_major, header_minor = HEADER_VERSION // 10000, HEADER_VERSION // 100 % 100
    major, minor = runtime // 10000, runtime // 100 % 100
    compatible = major == header_major and (minor == header_minor if major == 0
                                            else minor >= header_minor)
    if not compatible or runtime < HEADER_VERSION:
        raise ImportError(
            f"eplb: the loaded libeplb is version {_capi.eplb_version_string()} ({runtime}) but "
            f"this module was built for {_capi.EPLB_VERSION_STRING} ({HEADER_VERSION})")


_check_runtime_version()

WINDOW_CUMULATIVE = _capi.EPLB_WINDOW_CUMULATIVE
WINDOW_SLIDING = _capi.EPLB_WINDOW_SLIDING
WINDOW_DECAY = _capi.EPLB_WINDOW_DECAY
_WINDOWS = {"cumulative": WINDOW_CUMULATIVE, "sliding": WINDOW_SLIDING, "decay": WINDOW_DECAY}
_WINDOW_NAMES = {value: name for name, value in _WINDOWS.items()}


def version():
    """The version string of the libeplb actually loaded."""
    return _capi.eplb_version_string()


def algorithms():
    """{name: description} of every placement algorithm, in id order."""
    return {_capi.eplb_algorithm_name(i): _capi.eplb_algorithm_description(i)
            for i in range(1, _capi.eplb_algorithm_count() + 1)}


def _algorithm_id(algorithm):
    if algorithm is None:
        return _capi.EPLB_ALGORITHM_DEFAULT
    if isinstance(algorithm, str):
        if "\0" in algorithm:  # C would read the name up to the NUL: "deepseek\0x" as deepseek
            raise _invalid(f"algorithm {algorithm!r} contains a NUL character")
        return _capi.eplb_algorithm_from_name(algorithm)
    return _unsigned(algorithm, "algorithm")  # an id: the library checks its range


def _invalid(message):
    return InvalidArgumentError(_capi.EPLB_ERR_INVALID_ARGUMENT, message)


def _wrong_type(message):
    return InvalidTypeError(_capi.EPLB_ERR_INVALID_ARGUMENT, message)


def _expect(value, cls, name):
    """`value` when it is a `cls` (a handle class), else InvalidTypeError naming the argument
    (instead of an AttributeError or SWIG's TypeError from deeper down)."""
    if not isinstance(value, cls):
        raise _wrong_type(f"{name} must be an eplb.{cls.__name__}, got {type(value).__name__}")
    return value


def _array(array, name):
    if np.ma.is_masked(array):  # np.asarray would drop the mask and read the hidden values
        raise _invalid(f"{name} has masked values: fill them first (e.g. .filled(0))")
    try:
        return np.asarray(array)
    except (TypeError, ValueError) as error:  # e.g. ragged nested lists
        raise _invalid(f"{name} is not an array: {error}") from None


def _as_f64(array, name, shape=None):
    """A C-contiguous float64 view of `array` (no copy when it already is one). With `shape`
    (None entries match any size), a different shape is an error: the C API sees only the
    length, and a transposed matrix of the right size would be read as nonsense. Only integer
    and real dtypes convert: complex (its imaginary part would be dropped), bool, object (None
    would read as NaN) and strings are refused."""
    values = _array(array, name)
    if values.dtype.kind not in "fiu":
        raise _wrong_type(f"{name} must hold real numbers, got dtype {values.dtype}")
    result = np.ascontiguousarray(values, dtype=np.float64)
    if result.ndim == 0:
        raise _invalid(f"{name} must be an array")
    if shape is not None and (result.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(result.shape, shape))):
        expected = "(" + ", ".join("any" if n is None else str(n) for n in shape) + ")"
        raise _invalid(f"{name} has shape {result.shape}, expected {expected}")
    return result


_INT32 = np.iinfo(np.int32)


def _as_i32(array, name, masked_ids=False):
    """A C-contiguous int32 view of integer ids. Floats and values outside int32 are errors, not
    truncated or wrapped into other (valid) ids. With `masked_ids` (top-k ids) a masked array's
    masked slots are -1, the library's masked id; elsewhere masked values are refused."""
    if masked_ids and isinstance(array, np.ma.MaskedArray) and array.dtype.kind in "iu":
        array = array.astype(np.int64).filled(-1)
    values = _array(array, name)
    if values.size == 0:
        return np.ascontiguousarray(values, dtype=np.int32)
    if values.dtype.kind not in "iu":
        raise _wrong_type(f"{name} must hold integers, got dtype {values.dtype}")
    if values.dtype.itemsize >= 4 and values.dtype != np.int32:
        low, high = values.min(), values.max()
        if low < _INT32.min or high > _INT32.max:
            bad = low if low < _INT32.min else high
            raise _invalid(f"{name} holds {bad}, outside int32")
    return np.ascontiguousarray(values, dtype=np.int32)


def _unsigned(value, name, bits=32):
    """An int in [0, 2^bits) for a uint32_t or uint64_t parameter, from anything with
    __index__ (numpy integers too): InvalidTypeError for a bool or a non-integer,
    InvalidArgumentError for a value out of range (SWIG would raise TypeError or OverflowError
    naming its own wrapper instead)."""
    if isinstance(value, (bool, np.bool_)):
        raise _wrong_type(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise _wrong_type(f"{name} must be an integer, got {value!r}") from None
    if not 0 <= value < 1 << bits:
        raise _invalid(f"{name} ({value}) must be in [0, {(1 << bits) - 1}]")
    return value


def _real(value, name):
    """A float for a double parameter; the library checks its range."""
    if not isinstance(value, (str, bytes, bool, complex, np.bool_, np.complexfloating)):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise _wrong_type(f"{name} must be a real number, got {value!r}")


def _json_bytes(text, name):
    """A JSON document given as str or bytes, as UTF-8 bytes."""
    if isinstance(text, str):
        return text.encode("utf-8")
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text)
    raise _wrong_type(f"{name} must be a str or bytes, got {type(text).__name__}")


def _path(path):
    """A file path for the C API: str, bytes or os.PathLike (bytes and non-UTF-8 names reach the
    OS as os.fsencode gives them). A NUL would end the path early in C: refused, as open() does."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise _wrong_type(f"path must be a str, bytes or os.PathLike, got "
                          f"{type(path).__name__}") from None
    if ("\0" if isinstance(path, str) else b"\0") in path:
        raise _invalid(f"path {path!r} contains a NUL character")
    return path


def _as_rows(array, name):
    """int32 [rows][top_k] ids, masked slots -1: a C-contiguous 2-D array (see _as_i32)."""
    rows = _as_i32(array, name, masked_ids=True)
    if rows.ndim != 2:
        raise _invalid(f"{name} must be 2-D [tokens][top_k], got shape {rows.shape}")
    return rows


def _layer(layer):
    return _unsigned(layer, "layer")  # the library checks it against num_layers


class _Native:
    """One native object: destroyed when the last reference goes. SWIG accepts it wherever the
    raw pointer goes (it reads `this`), and a call in progress holds a reference, so closing a
    handle in another thread cannot free the object under that call."""

    __slots__ = ("this", "_destroy")

    def __init__(self, pointer, destroy):
        self.this = pointer
        self._destroy = destroy

    def __del__(self):
        destroy = getattr(self, "_destroy", None)  # unset when __init__ did not run
        if destroy is not None:
            destroy(self.this)

    def __reduce__(self):  # a copy would destroy the same object twice
        raise TypeError("cannot copy or pickle a native libeplb handle")


_SWIG_POINTER = type(_capi.eplb_planner_options().this)  # what the raw module returns


class _Handle:
    """Owns one C handle; close() (or the context manager, or garbage collection) releases it."""

    _destroy = None
    _made_by = "the package's functions"  # named when a caller passes something else

    def __init__(self, handle):
        if not isinstance(handle, _SWIG_POINTER):
            # e.g. eplb.Placement(phy2log) or eplb.Snapshot(path): SWIG refused it naming its
            # wrapper, and the half-made handle's destructor printed a second TypeError.
            raise _wrong_type(f"eplb.{type(self).__name__} is not constructed directly (got "
                              f"{type(handle).__name__}): use {self._made_by}")
        self._handle = _Native(handle, type(self)._destroy)

    def close(self):
        """Releases the native object now, or when a call running in another thread returns.
        Further use raises ValueError."""
        self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __reduce__(self):
        # copy.copy, copy.deepcopy and pickle all land here; the classes that can be recreated
        # exactly (Placement, Tracker, Planner, SplitSolver) override it.
        raise TypeError(f"cannot copy or pickle an eplb.{type(self).__name__}")

    @property
    def _h(self):
        handle = self._handle  # read once: close() may run in another thread meanwhile
        if handle is None:
            raise ValueError(f"{type(self).__name__} is closed")
        return handle


def _field(name, doc):
    """A read-only attribute: `name` in self._fields, read from the C object when it was
    created (the object never changes it). Assigning raises AttributeError."""
    return property(lambda self: self._fields[name], doc=doc)


class Metrics:
    """Balance metrics of a placement under a load matrix (eplb_metrics as attributes)."""

    _FIELDS = ("num_layers", "loaded_layers", "max_replicas", "duplicate_pairs", "balancedness",
               "min_balancedness", "node_balancedness", "max_load_over_bound",
               "worst_max_load_over_bound", "max_over_mean", "max_load_over_node_bound",
               "cross_node_replicas")

    def __init__(self, native):
        for field in self._FIELDS:
            setattr(self, field, getattr(native, field))

    def __repr__(self):
        return (type(self).__name__ + "(" +
                ", ".join(f"{f}={getattr(self, f)!r}" for f in self._FIELDS) + ")")

    def _values(self):
        return tuple(getattr(self, f) for f in self._FIELDS)

    def __eq__(self, other):
        """Field by field, between metrics of the same kind (compare two plans' figures)."""
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # the attributes can be reassigned


class LayerMetrics(Metrics):
    """Balance metrics of one layer (eplb_layer_metrics as attributes)."""

    _FIELDS = ("duplicate_gpus", "max_replicas", "cross_node_replicas", "total_load",
               "mean_gpu_load", "max_gpu_load", "lower_bound", "balancedness",
               "node_balancedness", "max_load_over_bound", "node_bound")


_PLACEMENT_SHAPE = ("num_layers", "num_logical_experts", "num_physical_experts", "num_nodes",
                    "num_gpus")


class Placement(_Handle):
    """An immutable expert placement for all layers; safe to share between threads.

    Placements compare equal when they have the same shape (layers, logical and physical
    experts, nodes, GPUs) and the same phy2log, whatever planned them, and hash consistently
    (dict keys, sets). copy.copy, copy.deepcopy and pickle make an exact, independent copy
    (through the snapshot format, as snapshot_bytes). Made by Planner.plan, the from_*
    classmethods, Snapshot.placement and Migration.target/step_placement."""

    _destroy = staticmethod(_capi.eplb_placement_destroy)
    _made_by = ("Planner.plan, Placement.from_phy2log, Placement.from_sglang_json, "
                "Placement.from_vllm_ascend_json or Snapshot.placement")

    num_layers = _field("num_layers", "MoE layers (rows).")
    num_logical_experts = _field("num_logical_experts", "Logical experts per layer (E).")
    num_physical_experts = _field("num_physical_experts", "Slots per layer over all GPUs (R).")
    num_nodes = _field("num_nodes", "Nodes.")
    num_gpus = _field("num_gpus", "GPUs.")
    num_groups = _field("num_groups", "Expert groups the planner was given (1 if none).")
    slots_per_gpu = _field("slots_per_gpu", "num_physical_experts // num_gpus.")
    log2phy_width = _field("log2phy_width", "The most replicas of any expert in any layer.")
    algorithm = _field("algorithm", "The algorithm's name, None for an imported placement.")
    hierarchical = _field("hierarchical", "Whether replicas were kept on their group's node.")
    plan_seconds = _field("plan_seconds", "Wall time of planning (0 for an imported one).")

    def __init__(self, handle):
        super().__init__(handle)
        info = _capi.eplb_placement_info()
        _capi.eplb_placement_get_info(handle, info)
        self._fields = {name: getattr(info, name) for name in _PLACEMENT_SHAPE + (
            "num_groups", "slots_per_gpu", "log2phy_width", "plan_seconds")}
        self._fields["algorithm"] = (_capi.eplb_algorithm_name(info.algorithm)
                                     if info.algorithm else None)
        self._fields["hierarchical"] = bool(info.hierarchical)
        self._load_shape = (self.num_layers, self.num_logical_experts)

    @classmethod
    def from_phy2log(cls, phy2log, num_logical_experts, num_nodes, num_gpus):
        """Builds a placement from a [layers][physical experts] map (e.g. SGLang's)."""
        phy2log = _as_i32(phy2log, "phy2log")
        if phy2log.ndim != 2:
            raise _invalid(f"phy2log must be 2-D, got shape {phy2log.shape}")
        return cls(_capi.eplb_placement_create_from_phy2log(
            _unsigned(phy2log.shape[0], "phy2log's rows (layers)"),
            _unsigned(num_logical_experts, "num_logical_experts"),
            _unsigned(phy2log.shape[1], "phy2log's columns (physical experts)"),
            _unsigned(num_nodes, "num_nodes"), _unsigned(num_gpus, "num_gpus"), phy2log))

    @classmethod
    def from_sglang_json(cls, text, num_nodes, num_gpus, num_logical_experts=0,
                         num_dense_layers=0):
        """Reads SGLang's {"physical_to_logical_map": ...} document (str or bytes)."""
        return cls(_capi.eplb_placement_from_sglang_json(
            _json_bytes(text, "text"), _unsigned(num_logical_experts, "num_logical_experts"),
            _unsigned(num_nodes, "num_nodes"), _unsigned(num_gpus, "num_gpus"),
            _unsigned(num_dense_layers, "num_dense_layers")))

    @classmethod
    def from_vllm_ascend_json(cls, text, num_nodes, num_logical_experts=0):
        """Reads vLLM-Ascend's expert map document (str or bytes) for `num_nodes` nodes; the
        GPUs are its devices. num_logical_experts 0: one more than the largest id."""
        return cls(_capi.eplb_placement_from_vllm_ascend_json(
            _json_bytes(text, "text"), _unsigned(num_logical_experts, "num_logical_experts"),
            _unsigned(num_nodes, "num_nodes")))

    def to_sglang_json(self, num_dense_layers=0):
        """SGLang's placement document, `num_dense_layers` trivial rows first."""
        return _capi.eplb_placement_to_sglang_json(
            self._h, _unsigned(num_dense_layers, "num_dense_layers"))

    def to_vllm_ascend_json(self):
        """vLLM-Ascend's expert map document."""
        return _capi.eplb_placement_to_vllm_ascend_json(self._h)

    @property
    def phy2log(self):
        """int32 [layers][physical experts]: the logical expert held by each slot (a new array)."""
        out = np.empty((self.num_layers, self.num_physical_experts), dtype=np.int32)
        _capi.eplb_placement_get_phy2log(self._h, out)
        return out

    @property
    def replica_counts(self):
        """int32 [layers][logical experts]: replicas of each expert."""
        out = np.empty((self.num_layers, self.num_logical_experts), dtype=np.int32)
        _capi.eplb_placement_get_replica_counts(self._h, out)
        return out

    @property
    def log2phy(self):
        """int32 [layers][logical experts][log2phy_width]: slots of each replica, -1 padded."""
        out = np.empty((self.num_layers, self.num_logical_experts, self.log2phy_width),
                       dtype=np.int32)
        _capi.eplb_placement_get_log2phy(self._h, out)
        return out

    def metrics(self, loads):
        """Metrics of this placement under `loads` [layers][logical experts]."""
        native = _capi.eplb_metrics()
        _capi.eplb_metrics_compute(self._h, _as_f64(loads, "loads", self._load_shape), native)
        return Metrics(native)

    def _layer_loads(self, layer_loads):
        return _as_f64(layer_loads, "layer_loads", (self.num_logical_experts,))

    def layer_metrics(self, layer, layer_loads):
        """LayerMetrics of `layer` under its loads, float64 [logical experts]."""
        native = _capi.eplb_layer_metrics()
        _capi.eplb_metrics_compute_layer(self._h, _layer(layer), self._layer_loads(layer_loads),
                                         native)
        return LayerMetrics(native)

    def exact_optimum(self, layer_loads):
        """The smallest busiest-GPU load any placement on this topology can reach for one layer's
        loads (float64 [logical experts]), or None when the instance is too large to solve
        exactly (the library solves one slot per GPU, or two with at most 16 slots per layer)."""
        optimum = _capi.eplb_metrics_exact_optimum(self._h, self._layer_loads(layer_loads))
        return None if optimum < 0 else optimum

    def relaxed_bound(self, layer_loads, cross_node_budget=0):
        """A lower bound on the busiest GPU's load of any balanced-relaxed plan of one layer's
        loads on this topology with at most `cross_node_budget` replicas off their group's node
        (never below the global bound, LayerMetrics.lower_bound)."""
        return _capi.eplb_metrics_relaxed_bound(self._h, self._layer_loads(layer_loads),
                                                _unsigned(cross_node_budget, "cross_node_budget"))

    def nodes_touched(self, layer, rows):
        """The mean number of distinct nodes a token of `layer` is served from (1 at best):
        `rows` int [tokens][top_k] logical ids, -1 masked (e.g. Tracker.samples(layer)); rows
        with no valid id are left out, 0.0 when none is left."""
        return _capi.eplb_metrics_nodes_touched(self._h, _layer(layer), _as_rows(rows, "rows"))

    def gpu_loads(self, loads):
        """float64 [layers][gpus]: each GPU's load under `loads`."""
        out = np.empty((self.num_layers, self.num_gpus), dtype=np.float64)
        _capi.eplb_metrics_gpu_loads(self._h, _as_f64(loads, "loads", self._load_shape), out)
        return out

    def save(self, path, loads=None, label=None, compression_level=None, tracker=None):
        """Writes this placement to an .eplb snapshot file atomically (see save_snapshot)."""
        save_snapshot(path, self, loads=loads, label=label, compression_level=compression_level,
                      tracker=tracker)

    def __eq__(self, other):
        """Same shape and same phy2log (a placement never changes). A closed placement equals
        only itself, so `p in some_list` never raises."""
        if not isinstance(other, Placement):
            return NotImplemented
        if other is self:
            return True
        if self._handle is None or other._handle is None:
            return False
        return (all(self._fields[name] == other._fields[name] for name in _PLACEMENT_SHAPE)
                and np.array_equal(self.phy2log, other.phy2log))

    def __hash__(self):
        """Consistent with ==: the shape and phy2log, computed once (a placement never changes),
        so placements work as dict keys, in sets and with functools caches."""
        cached = self.__dict__.get("_value_hash")
        if cached is None:
            shape = tuple(self._fields[name] for name in _PLACEMENT_SHAPE)
            cached = hash((shape, self.phy2log.tobytes()))  # a closed placement raises here
            self.__dict__["_value_hash"] = cached
        return cached

    def __reduce__(self):
        return _placement_from_bytes, (snapshot_bytes(self),)

    def __repr__(self):
        if self._handle is None:
            return "Placement(closed)"
        return (f"Placement(layers={self.num_layers}, logical={self.num_logical_experts}, "
                f"physical={self.num_physical_experts}, gpus={self.num_gpus}, "
                f"nodes={self.num_nodes}, algorithm={self.algorithm!r})")


def _placement_from_bytes(data):
    """Placement.__reduce__'s reconstructor (a module-level name, as pickle requires)."""
    with Snapshot.from_bytes(data) as snapshot:
        return snapshot.placement()


PlanProgress = collections.namedtuple("PlanProgress", ("steps_done", "steps_total", "cancelled"))
PlanProgress.__doc__ = (
    "How far the plans that use a PlanControl are (eplb_plan_progress; cancelled as a bool). "
    "Steps are one per layer and pass (two per layer for plan_near and for an affinity "
    "plan_tracked on more than one node, one for every other plan), announced when a plan "
    "starts, so they add up over every plan that used the control; steps_done <= steps_total, "
    "equal when every plan finished (a failed or cancelled plan leaves a gap).")


NearReport = collections.namedtuple(
    "NearReport",
    ("layers_kept", "layers_rebalanced", "layers_replanned", "layers_partly_replanned"),
    defaults=(0,))
NearReport.__doc__ = (
    "What Planner.plan_near did with each layer (eplb_plan_near_report); every layer is counted "
    "once. layers_kept: balanced enough already, nothing moves; layers_rebalanced: the current "
    "layout with some replicas moved; layers_replanned: the planner's own plan of the loads "
    "(rebalancing fell short of the target, or the current layout breaks the algorithm's "
    "locality); layers_partly_replanned (hierarchical and relaxed plans only): some nodes "
    "rebalanced, the planner's own plan on the others, whose expert groups change nodes.")


class PlanControl(_Handle):
    """Cancels the plans of the planners it is attached to, from any thread, and reports their
    progress (eplb_plan_control). Attach it with Planner(..., control=c) or planner.control = c;
    one control may serve several planners, which then stop together.

    cancel() is sticky: a plan in progress stops at its next layer boundary (milliseconds; an
    affinity layer, or a near layer where experts have dozens of replicas, up to about a
    second on one core) and raises eplb.CancelledError,
    and so does every later plan with this control, before it starts; the planner stays usable
    (detach the control or attach a new one to plan again). Planning releases the GIL, so
    another Python thread can cancel or poll `progress` meanwhile (e.g. a deadline or a progress
    bar). Ctrl-C during a plan on the main thread cancels the attached control as cancel() would
    (see Planner), so later plans with it raise CancelledError too. Every method is thread-safe.
    close() (or the context manager, or garbage collection) releases this handle; the planners it
    is attached to keep the native control alive."""

    _destroy = staticmethod(_capi.eplb_plan_control_destroy)

    def __init__(self):
        """A new control: not cancelled, no steps."""
        super().__init__(_capi.eplb_plan_control_create())

    def cancel(self):
        """Cancels every plan using this control, now and later. Idempotent; any thread."""
        _capi.eplb_plan_control_cancel(self._h)

    @property
    def progress(self):
        """A PlanProgress (steps_done, steps_total, cancelled) read now: cheap enough to poll."""
        native = _capi.eplb_plan_progress()
        _capi.eplb_plan_control_get_progress(self._h, native)
        return PlanProgress(native.steps_done, native.steps_total, bool(native.cancelled))

    @property
    def cancelled(self):
        """Whether cancel() was called."""
        return self.progress.cancelled

    def __repr__(self):
        if self._handle is None:
            return "PlanControl(closed)"
        done, total, cancelled = self.progress
        return f"PlanControl(steps_done={done}, steps_total={total}, cancelled={cancelled})"


def _check_control(control):
    if control is not None and not isinstance(control, PlanControl):
        raise _wrong_type(f"control must be an eplb.PlanControl or None, got "
                          f"{type(control).__name__}")


class _PlanThread:
    """One native plan run on a thread of its own while the main thread waits for it in an
    interruptible lock acquire. Python runs signal handlers on the main thread between bytecodes
    only, so a plan running on the main thread itself held Ctrl-C back until it returned."""

    __slots__ = ("_call", "_claim", "_done", "_finished", "_result", "_error")

    def __init__(self, call):
        self._call = call
        # Taken by the worker before it plans, or by an interrupted caller before the worker got
        # to it: then the worker does nothing and there is no plan to wait for.
        self._claim = _thread.allocate_lock()
        self._done = _thread.allocate_lock()  # released by the worker when the plan returned
        self._done.acquire()
        # Set before _done is released: _stop must not wait for a release already consumed.
        self._finished = False
        self._result = self._error = None

    def _work(self):
        if not self._claim.acquire(False):
            return
        try:
            self._result = self._call()
        except BaseException as error:  # an eplb.Error, passed on to the caller unchanged
            self._error = error
        finally:
            self._finished = True
            self._done.release()

    def run(self, cancel):
        """call()'s result or exception. When an exception (KeyboardInterrupt) interrupts the
        wait, a plan in progress is cancelled with cancel() and waited for before the exception
        is re-raised; its result or error is dropped."""
        try:
            _thread.start_new_thread(self._work, ())
            self._done.acquire()
        except BaseException as error:
            if not self._claim.acquire(False):  # the plan runs, or has just returned
                self._stop(cancel)
                raise
            if not isinstance(error, RuntimeError):
                raise  # interrupted before the worker began: there is no plan to stop
        else:
            error, self._error = self._error, None
            if error is None:
                return self._result
            try:
                raise error
            finally:
                del error  # its traceback references this frame
        # No new thread (Python 3.12 refuses them in atexit handlers; a thread limit): plan on
        # this thread, as other threads do.
        return self._call()

    def _stop(self, cancel):
        # A plan cancelled stops at its next layer boundary: milliseconds, an affinity layer up
        # to about a second. A second Ctrl-C meanwhile must not end the wait: the caller would
        # release the planner's lock while the plan still uses the planner. The exception
        # re-raised is the first one.
        while not self._finished:
            try:
                cancel()
                self._done.acquire()
            except BaseException:
                pass


_PLANNER_COUNTS = ("num_layers", "num_logical_experts", "num_physical_experts", "num_gpus",
                   "num_nodes", "num_groups")


class Planner(_Handle):
    """Turns load matrices into placements for one model shape, topology and algorithm.

    The C planner is used by one thread at a time; this class serialises calls with a lock, so
    sharing one Planner between threads is safe (use one per thread to plan concurrently).
    Its options are read-only attributes (algorithm by name); copy.copy, copy.deepcopy and
    pickle make a new planner with the same options (a planner has no other state but its
    control, which copies leave out). A PlanControl attached through `control` cancels its plans
    from another thread (they raise CancelledError) and counts their progress.

    Ctrl-C during a plan on the main thread stops it at its next layer boundary (milliseconds; an
    affinity layer, or a near layer where experts have dozens of replicas, up to about a
    second) and raises KeyboardInterrupt, as does any
    other exception a signal handler raises then. The planner stays usable: without a
    PlanControl it plans on as a new one would; an attached one is cancelled (sticky, as
    control.cancel() would), so later plans raise CancelledError until it is replaced or
    detached. For this a plan called on the main thread runs on a new thread while the main
    thread waits (a thread start and two wake-ups: about 0.1 ms per plan, more when the CPUs
    are oversubscribed); other threads plan directly."""

    _destroy = staticmethod(_capi.eplb_planner_destroy)

    num_layers = _field("num_layers", "MoE layers per plan.")
    num_logical_experts = _field("num_logical_experts", "Logical experts per layer (E).")
    num_physical_experts = _field("num_physical_experts", "Slots per layer over all GPUs (R).")
    num_gpus = _field("num_gpus", "GPUs.")
    num_nodes = _field("num_nodes", "Nodes.")
    num_groups = _field("num_groups", "Expert groups.")
    algorithm = _field("algorithm", "The algorithm's name (the library's default resolved).")
    cross_node_budget = _field("cross_node_budget", "balanced-relaxed's cross-node budget (other "
                               "algorithms refuse a non-zero one).")
    num_threads = _field("num_threads", "Threads the layers are split across.")
    affinity = _field("affinity", "Whether plan_tracked also keeps co-activated experts together.")
    affinity_min_balance = _field("affinity_min_balance", "Affinity's balancedness floor.")

    def __init__(self, num_layers, num_logical_experts, num_physical_experts, num_gpus,
                 num_nodes=1, num_groups=1, algorithm=None, cross_node_budget=0, num_threads=1,
                 affinity=False, affinity_min_balance=None, control=None):
        """`algorithm`: a name from eplb.algorithms() or an id; None is the library's default
        (as in every other binding). `affinity`: plan_tracked also keeps experts that tokens
        pick together on one node, with balancedness >= `affinity_min_balance` (default 0.99)
        x the balance-only plan's; plan() then refuses (it has no co-activation statistics).
        affinity_min_balance without affinity is an InvalidArgumentError (the library would
        ignore it). `control`: a PlanControl to attach at once (see the control property)."""
        _check_control(control)
        given = dict(locals())
        options = _capi.eplb_planner_options()
        options.algorithm = _algorithm_id(algorithm)
        for name in _PLANNER_COUNTS + ("cross_node_budget", "num_threads"):
            setattr(options, name, _unsigned(given[name], name))
        options.affinity = 1 if affinity else 0
        if affinity_min_balance is not None:
            if not affinity:
                raise _invalid(f"affinity_min_balance ({affinity_min_balance!r}) applies with "
                               "affinity=True only")
            options.affinity_min_balance = _real(affinity_min_balance, "affinity_min_balance")
        self._lock = threading.Lock()
        super().__init__(_capi.eplb_planner_create(options))
        self._fields = {name: getattr(options, name) for name in _PLANNER_COUNTS + (
            "cross_node_budget", "num_threads", "affinity_min_balance")}
        self._fields["algorithm"] = _capi.eplb_algorithm_name(
            options.algorithm or _capi.eplb_algorithm_default())
        self._fields["affinity"] = bool(options.affinity)
        self._shape = (self.num_layers, self.num_logical_experts)
        self._attach(control)

    @property
    def control(self):
        """The PlanControl attached to this planner, or None (the default).

        Assigning a PlanControl attaches it: from then on plan, plan_windows, plan_tracked and
        plan_near count their steps in it and raise CancelledError once it is cancelled (a plan in
        progress stops at its next layer boundary). None detaches it; the planner then plans as
        a new one would, also after a cancelled plan. Anything else is an InvalidTypeError, and a
        closed PlanControl a ValueError. Assigning waits for a plan in progress on this planner
        to return (cancel it through its control to stop it sooner). The planner holds a
        reference to the attached control, so `planner.control = eplb.PlanControl()` keeps it
        alive, and closing the PlanControl's handle does not detach it. Ctrl-C during a plan
        cancels the attached control (see the class)."""
        return self._control

    @control.setter
    def control(self, control):
        _check_control(control)
        with self._lock:
            self._attach(control)

    def _attach(self, control):
        """Attaches `control`, or for None a private control that only Ctrl-C cancels (see
        _run). The caller holds self._lock, or is __init__."""
        if control is None:
            native = _Native(_capi.eplb_plan_control_create(), _capi.eplb_plan_control_destroy)
        else:
            native = control._h  # kept: a closed PlanControl's native control is still attached
        _capi.eplb_planner_set_control(self._h, native)
        self._control = control
        self._attached = native
        self._private_cancelled = False

    def _cancel(self):
        """What Ctrl-C during a plan does: cancels the attached control."""
        self._private_cancelled = self._control is None  # set first: replaced by the next plan
        _capi.eplb_plan_control_cancel(self._attached)

    def _run(self, call):
        """call() (a native plan): on the main thread on a worker thread, so that Ctrl-C
        cancels it (see the class); elsewhere directly. The caller holds self._lock."""
        if self._private_cancelled:  # an interrupted plan cancelled the private control
            self._attach(None)
        if threading.current_thread() is not threading.main_thread():
            return call()
        return _PlanThread(call).run(self._cancel)

    def plan(self, loads):
        """A new Placement for `loads`, float64 [layers][logical experts] (the GIL is released
        while planning). Raises CancelledError when the attached control is cancelled, and
        KeyboardInterrupt at Ctrl-C on the main thread (see the class), as do plan_windows,
        plan_tracked and plan_near."""
        loads = _as_f64(loads, "loads", self._shape)
        with self._lock:
            return self._run(lambda: Placement(_capi.eplb_planner_plan(self._h, loads)))

    def plan_windows(self, loads):
        """One Placement robust over windows: `loads` is [windows][layers][logical experts]."""
        loads = _as_f64(loads, "loads", (None,) + self._shape)
        with self._lock:
            return self._run(lambda: Placement(_capi.eplb_planner_plan_windows(self._h, loads)))

    def plan_tracked(self, tracker, loads=None):
        """A new Placement from a Tracker's statistics: `loads` (as plan) or, when None, the
        tracker's current loads; with affinity=True, also its co-activation samples. The tracker
        is locked meanwhile."""
        _expect(tracker, Tracker, "tracker")
        if loads is not None:
            loads = _as_f64(loads, "loads", self._shape)
        with self._lock, tracker._lock:
            return self._run(lambda: Placement(
                _capi.eplb_planner_plan_tracked(self._h, loads, tracker._h)))

    def plan_near(self, current, loads, min_balance=None):
        """(placement, report): a new Placement for `loads` (as plan) near Placement `current`,
        the one the GPUs hold now, so that a migration from `current` (plan_migration) moves few
        experts, and a NearReport of what happened to each layer.

        Per layer, plan(loads)'s layer sets the target: the layer is kept as it is when its
        balancedness is at least `min_balance` x that plan's, else rebalanced by moving a few
        replicas, else replaced by that plan's layer; the algorithm's locality holds (see
        eplb_planner_plan_near). `min_balance` in (0, 1]; None is the library's default, 0.998.
        `current` is only read. The GIL is released while planning; an attached control counts
        two passes per layer (plan's, then this one). Raises InvalidArgumentError for a
        min_balance outside (0, 1] or NaN, for a `current` of another shape than the planner's
        (the message names the field, e.g. "num_nodes (1)"), on an affinity planner, and for
        bad loads as plan does; InvalidTypeError when `current` is not a Placement;
        ValueError when it is closed; CancelledError and KeyboardInterrupt as plan."""
        current_handle = _expect(current, Placement, "current")._h
        loads = _as_f64(loads, "loads", self._shape)
        options = _capi.eplb_plan_near_options()
        if min_balance is not None:
            options.min_balance = _real(min_balance, "min_balance")  # the library checks range
        report = _capi.eplb_plan_near_report()
        with self._lock:
            placement = self._run(lambda: Placement(_capi.eplb_planner_plan_near(
                self._h, loads, current_handle, options, report)))
        return placement, NearReport(report.layers_kept, report.layers_rebalanced,
                                     report.layers_replanned, report.layers_partly_replanned)

    def __reduce__(self):
        fields = self._fields
        return type(self), tuple(fields[name] for name in _PLANNER_COUNTS + (
            "algorithm", "cross_node_budget", "num_threads", "affinity")) + (
                fields["affinity_min_balance"] if fields["affinity"] else None,)

    def __repr__(self):
        if self._handle is None:
            return "Planner(closed)"
        affinity = f", affinity_min_balance={self.affinity_min_balance}" if self.affinity else ""
        return (f"Planner(layers={self.num_layers}, logical={self.num_logical_experts}, "
                f"physical={self.num_physical_experts}, gpus={self.num_gpus}, "
                f"nodes={self.num_nodes}, groups={self.num_groups}, "
                f"algorithm={self.algorithm!r}{affinity})")


class Tracker(_Handle):
    """Per-layer expert load and co-activation statistics recorded from top-k routing.

    Calls are serialised with a lock (the C tracker is not synchronised); for throughput use one
    tracker per thread and merge them before planning. clone(), copy.copy and copy.deepcopy make
    an exact, independent copy of the whole state (eplb_tracker_clone); pickle does too, through
    a statistics snapshot (as statistics_bytes). Recording into a copy continues as the original
    would."""

    _destroy = staticmethod(_capi.eplb_tracker_destroy)

    num_layers = _field("num_layers", "MoE layers.")
    num_logical_experts = _field("num_logical_experts", "Logical experts per layer (E).")
    top_k = _field("top_k", "Slots per token.")

    def __init__(self, num_layers, num_logical_experts, top_k, window="cumulative",
                 window_batches=None, decay=None, reservoir_capacity=None, seed=0):
        """`window`: "cumulative", "sliding" (the last `window_batches` batches) or "decay"
        (older batches weigh `decay` less each); `reservoir_capacity` sampled top-k rows are kept
        per layer (for affinity planning) with the sampler seeded by `seed`. window_batches
        with another window than "sliding", or decay with another than "decay", is an
        InvalidArgumentError (the library would ignore it)."""
        options = _capi.eplb_tracker_options()
        options.num_layers = _unsigned(num_layers, "num_layers")
        options.num_logical_experts = _unsigned(num_logical_experts, "num_logical_experts")
        options.top_k = _unsigned(top_k, "top_k")
        if isinstance(window, str) and window not in _WINDOWS:
            raise _invalid(f"window {window!r} is unknown (use one of {', '.join(_WINDOWS)})")
        if isinstance(window, str):
            options.window = _WINDOWS[window]
        else:
            options.window = _unsigned(window, "window")  # an id: the library checks its range
        window_name = _WINDOW_NAMES.get(options.window, options.window)
        if window_batches is not None:
            if options.window != WINDOW_SLIDING:
                raise _invalid(f"window_batches ({window_batches!r}) applies to window "
                               f"'sliding' only, not {window_name!r}")
            options.window_batches = _unsigned(window_batches, "window_batches")
        if decay is not None:
            if options.window != WINDOW_DECAY:
                raise _invalid(f"decay ({decay!r}) applies to window 'decay' only, not "
                               f"{window_name!r}")
            options.decay = _real(decay, "decay")
        if reservoir_capacity is not None:
            options.reservoir_capacity = _unsigned(reservoir_capacity, "reservoir_capacity")
        options.seed = _unsigned(seed, "seed", 64)
        self._wrap(_capi.eplb_tracker_create(options))

    def _wrap(self, handle):
        _Handle.__init__(self, handle)
        self._lock = threading.Lock()
        self._fields = self.options()  # the shape, and the window for repr

    @classmethod
    def _adopt(cls, handle):
        """Wraps a tracker handle the caller owns (e.g. from a snapshot)."""
        tracker = cls.__new__(cls)
        tracker._wrap(handle)
        return tracker

    def options(self):
        """The tracker's options as a dict: window as its name, window_batches only for a
        sliding window and decay only for a decaying one (None otherwise)."""
        native = _capi.eplb_tracker_options()
        with self._lock:
            _capi.eplb_tracker_get_options(self._h, native)
        window = _WINDOW_NAMES.get(native.window, native.window)
        return {"num_layers": native.num_layers,
                "num_logical_experts": native.num_logical_experts, "top_k": native.top_k,
                "window": window,
                "window_batches": native.window_batches if window == "sliding" else None,
                "decay": native.decay if window == "decay" else None,
                "reservoir_capacity": native.reservoir_capacity, "seed": native.seed}

    def layer_counts(self, layer):
        """(batches, tokens) recorded into `layer` since creation or reset: record calls, and
        tokens with a valid slot that its sampler saw (0 without a reservoir)."""
        layer = _layer(layer)
        with self._lock:
            return tuple(int(n) for n in _capi.eplb_tracker_get_layer_counts(self._h, layer))

    def save(self, path, label=None, compression_level=None):
        """Writes a statistics snapshot (save_statistics) of this tracker to `path`."""
        save_statistics(path, self, label=label, compression_level=compression_level)

    def _batch(self, topk_ids):
        ids = _as_i32(topk_ids, "topk_ids", masked_ids=True)
        if ids.ndim == 1 and ids.size == 0:
            ids = ids.reshape(0, self.top_k)
        return _as_rows(ids, "topk_ids")

    def record(self, layer, topk_ids):
        """Records one batch of `layer`: int32 [tokens][top_k] logical ids, -1 masked."""
        layer, ids = _layer(layer), self._batch(topk_ids)
        with self._lock:
            _capi.eplb_tracker_record(self._h, layer, ids)

    def record_physical(self, placement, layer, topk_ids):
        """As record, with physical slot ids of `placement`."""
        _expect(placement, Placement, "placement")
        layer, ids = _layer(layer), self._batch(topk_ids)
        with self._lock:
            _capi.eplb_tracker_record_physical(self._h, placement._h, layer, ids)

    def merge(self, other):
        """Adds `other`'s statistics into this tracker (both are locked, so `other` may still be
        recording in another thread)."""
        _expect(other, Tracker, "other")
        if other is self:
            with self._lock:
                _capi.eplb_tracker_merge(self._h, other._h)
            return
        first, second = sorted((self, other), key=id)
        with first._lock, second._lock:
            _capi.eplb_tracker_merge(self._h, other._h)

    def reset(self):
        """Forgets all statistics."""
        with self._lock:
            _capi.eplb_tracker_reset(self._h)

    def loads(self):
        """float64 [layers][logical experts] at current weights, ready for Planner.plan."""
        out = np.empty((self.num_layers, self.num_logical_experts), dtype=np.float64)
        with self._lock:
            _capi.eplb_tracker_get_loads(self._h, out)
        return out

    def coactivation(self, layer):
        """float64 [E*(E-1)/2]: one layer's pair counts as a packed upper triangle."""
        layer, e = _layer(layer), self.num_logical_experts
        out = np.empty(e * (e - 1) // 2, dtype=np.float64)
        with self._lock:
            _capi.eplb_tracker_get_coactivation(self._h, layer, out)
        return out

    def samples(self, layer):
        """int32 [rows][top_k]: one layer's sampled top-k rows."""
        layer = _layer(layer)
        with self._lock:
            rows = _capi.eplb_tracker_get_samples(self._h, layer, None)
            out = np.empty((rows, self.top_k), dtype=np.int32)
            if rows:
                _capi.eplb_tracker_get_samples(self._h, layer, out)
        return out

    def clone(self):
        """A new, independent Tracker with this one's whole state (options, counts, window,
        sampled rows and the sampler's RNG): recording the same batches into both gives the
        same statistics. E.g. plan from a clone in another thread while serving keeps recording
        into this one. Closing either leaves the other usable."""
        with self._lock:
            handle = _capi.eplb_tracker_clone(self._h)
        return Tracker._adopt(handle)

    def __copy__(self):
        return self.clone()

    def __deepcopy__(self, memo):
        return self.clone()

    def __reduce__(self):
        return _tracker_from_bytes, (statistics_bytes(self),)

    def __repr__(self):
        if self._handle is None:
            return "Tracker(closed)"
        fields = self._fields
        extra = "".join(f", {name}={fields[name]!r}" for name in ("window_batches", "decay")
                        if fields[name] is not None)
        return (f"Tracker(layers={self.num_layers}, logical={self.num_logical_experts}, "
                f"top_k={self.top_k}, window={fields['window']!r}{extra})")


def _tracker_from_bytes(data):
    """Tracker.__reduce__'s reconstructor."""
    with Snapshot.from_bytes(data) as snapshot:
        return snapshot.tracker()


def _as_i32_shaped(array, name, shape):
    ids = _as_i32(array, name)
    if ids.shape != shape:
        raise _invalid(f"{name} has shape {ids.shape}, expected {shape}")
    return ids


def _per_gpu(array, name, placement):
    return None if array is None else _as_f64(array, name, (placement.num_gpus,))


class SplitSolver(_Handle):
    """Per-batch balancing on the CPU: splits each expert's tokens of one batch over its
    replicas so that the busiest GPU's load is minimal, exactly and in integers
    (eplb_split_solve). Holds scratch memory reused between solves; calls are serialised with a
    lock (use one solver per thread to solve concurrently)."""

    _destroy = staticmethod(_capi.eplb_split_workspace_destroy)

    def __init__(self):
        self._lock = threading.Lock()
        super().__init__(_capi.eplb_split_workspace_create())

    def solve(self, placement, layer, counts, gpu_weights=None, gpu_extra_load=None):
        """(quotas, max_load) for this batch's `counts`, int [logical experts] tokens per expert:
        quotas int32 [physical experts] are the tokens each slot of `layer` takes (over an
        expert's replicas they sum to its count); max_load is the busiest GPU's load, where GPU
        g's load is gpu_weights[g] * (gpu_extra_load[g] + its tokens) (defaults 1 and 0)."""
        _expect(placement, Placement, "placement")
        layer = _layer(layer)
        counts = _as_i32_shaped(counts, "counts", (placement.num_logical_experts,))
        weights = _per_gpu(gpu_weights, "gpu_weights", placement)
        extra = _per_gpu(gpu_extra_load, "gpu_extra_load", placement)
        quotas = np.empty(placement.num_physical_experts, dtype=np.int32)
        with self._lock:
            max_load = _capi.eplb_split_solve(self._h, placement._h, layer, counts, weights, extra,
                                              quotas)
        return quotas, max_load

    def solve_by_node(self, placement, layer, counts_by_node, slack=0.0, gpu_weights=None,
                      gpu_extra_load=None):
        """(quotas, max_load, cross_node_tokens) for tokens known by the node they come from:
        `counts_by_node` int [logical experts][nodes]. The busiest GPU stays within
        (1 + slack) x solve's optimum and, under that, as few tokens as possible are served off
        their node; quotas int32 [physical experts][nodes]."""
        _expect(placement, Placement, "placement")
        layer, slack = _layer(layer), _real(slack, "slack")
        shape = (placement.num_logical_experts, placement.num_nodes)
        counts = _as_i32_shaped(counts_by_node, "counts_by_node", shape)
        weights = _per_gpu(gpu_weights, "gpu_weights", placement)
        extra = _per_gpu(gpu_extra_load, "gpu_extra_load", placement)
        quotas = np.empty((placement.num_physical_experts, placement.num_nodes), dtype=np.int32)
        with self._lock:
            max_load, cross = _capi.eplb_split_solve_by_node(
                self._h, placement._h, layer, counts, weights, extra, slack, quotas)
        return quotas, max_load, int(cross)

    def __reduce__(self):
        return type(self), ()  # only scratch memory: a new solver solves the same

    def __repr__(self):
        return "SplitSolver(closed)" if self._handle is None else "SplitSolver()"


def split_rank_quotas(placement, layer, quotas, rank_counts, rank):
    """Rank `rank`'s share of a batch-wide split (eplb_split_rank_quotas): `quotas` int32
    [physical experts] from SplitSolver.solve on the counts summed over ranks, `rank_counts` int
    [ranks][logical experts] each rank's tokens per expert; int32 [physical experts]."""
    _expect(placement, Placement, "placement")
    layer, rank = _layer(layer), _unsigned(rank, "rank")
    quotas = _as_i32_shaped(quotas, "quotas", (placement.num_physical_experts,))
    rank_counts = _as_i32(rank_counts, "rank_counts")
    if rank_counts.ndim != 2 or rank_counts.shape[1] != placement.num_logical_experts:
        raise _invalid(f"rank_counts has shape {rank_counts.shape}, expected "
                       f"(ranks, {placement.num_logical_experts})")
    out = np.empty(placement.num_physical_experts, dtype=np.int32)
    _capi.eplb_split_rank_quotas(placement._h, layer, quotas, rank_counts, rank_counts.shape[0],
                                 rank, out)
    return out


def shared_expert_waterfill(placement, topk_slots, source_gpu=None, gpu_weights=None,
                            gpu_loads=None, any_gpu=False):
    """Gives each token's shared-expert work to one GPU, deterministically, least loaded first
    (eplb_shared_expert_waterfill). `topk_slots` int [tokens][top_k]: the physical slots each
    token is dispatched to, -1 unused. A token's candidates are the GPUs of its slots plus its
    source GPU (`source_gpu` int [tokens], optional), or every GPU with any_gpu=True; tokens with
    fewer candidates choose first (then in token order), each taking the candidate whose
    weighted load after taking it is smallest (ties to its source GPU, then the lowest id).
    `gpu_loads` float64 [gpus]: what each GPU already has (None: one per entry of topk_slots);
    `gpu_weights` float64 [gpus] as in SplitSolver.solve. Only the placement's topology matters.

    Returns (topk, loads): topk int32 [tokens][top_k + 1], each input row followed by the shared
    expert's slot num_physical_experts + g of the chosen GPU g (-1 for a token with no valid
    entry); loads float64 [gpus], the GPU loads including the shared tokens (a new array;
    `gpu_loads` is not modified)."""
    _expect(placement, Placement, "placement")
    slots = _as_rows(topk_slots, "topk_slots")
    tokens, top_k = slots.shape
    source = None if source_gpu is None else _as_i32_shaped(source_gpu, "source_gpu", (tokens,))
    weights = _per_gpu(gpu_weights, "gpu_weights", placement)
    loads = None
    if gpu_loads is not None:
        loads = np.array(_as_f64(gpu_loads, "gpu_loads", (placement.num_gpus,)), copy=True)
    out = np.empty((tokens, top_k + 1), dtype=np.int32)
    flags = _capi.EPLB_WATERFILL_ANY_GPU if any_gpu else 0
    _capi.eplb_shared_expert_waterfill(placement._h, slots, source, weights, loads, flags, out)
    if loads is None:
        # The library counted one token per valid entry; the same count, plus what it assigned
        # (every value is checked by now).
        entries = slots[slots >= 0] // placement.slots_per_gpu
        shared = out[:, top_k][out[:, top_k] >= 0] - placement.num_physical_experts
        loads = (np.bincount(entries, minlength=placement.num_gpus) +
                 np.bincount(shared, minlength=placement.num_gpus)).astype(np.float64)
    return out, loads


class Snapshot(_Handle):
    """A loaded .eplb snapshot: placement, provenance and optional load statistics. Made by
    eplb.load_snapshot(path) (Snapshot.load) or Snapshot.from_bytes(data)."""

    _destroy = staticmethod(_capi.eplb_snapshot_destroy)
    _made_by = "eplb.load_snapshot(path) or eplb.Snapshot.from_bytes(data)"

    def __init__(self, handle):
        super().__init__(handle)
        info = _capi.eplb_snapshot_info()
        _capi.eplb_snapshot_get_info(handle, info)
        self._info = _info_dict(info)

    @property
    def info(self):
        """What the snapshot holds, as a dict (a new one: see Snapshot.inspect)."""
        return dict(self._info)

    @classmethod
    def load(cls, path):
        """Reads and validates a snapshot file (the GIL is released while reading)."""
        return cls(_capi.eplb_snapshot_load(_path(path)))

    @classmethod
    def from_bytes(cls, data):
        """Reads a snapshot from bytes (e.g. eplb.snapshot_bytes(placement)) or any other
        bytes-like object (bytearray, memoryview, mmap, a numpy array)."""
        try:
            view = memoryview(data)  # None was read as zero bytes; a str, refused naming SWIG
        except TypeError:
            raise _wrong_type(f"data must be bytes-like (bytes, bytearray, memoryview, a numpy "
                              f"array), got {type(data).__name__}") from None
        if not view.c_contiguous:
            view = memoryview(view.tobytes())
        return cls(_capi.eplb_snapshot_load_from_buffer(view.cast("B")))

    def placement(self):
        """A new Placement equal to the stored one."""
        return Placement(_capi.eplb_snapshot_get_placement(self._h))

    def loads(self):
        """The stored load statistics [layers][logical experts], or None."""
        if not self._info["has_loads"]:
            return None
        out = np.empty((self._info["num_layers"], self._info["num_logical_experts"]),
                       dtype=np.float64)
        _capi.eplb_snapshot_get_loads(self._h, out)
        return out

    def tracker(self):
        """A new Tracker equal to the stored co-activation statistics (recording into it
        continues exactly as the saved one would), or None when the snapshot has none."""
        if not self._info["has_coactivation"]:
            return None
        return Tracker._adopt(_capi.eplb_snapshot_get_tracker(self._h))

    @staticmethod
    def inspect(path):
        """What a snapshot file holds, from its header only, as a dict: the shape, the
        algorithm's name (None if imported), has_loads and has_coactivation (bools), provenance
        (created_unix_seconds, file_size, plan_seconds, balancedness, library_version, label)
        and the format version."""
        info = _capi.eplb_snapshot_info()
        _capi.eplb_snapshot_inspect(_path(path), info)
        return _info_dict(info)

    def __repr__(self):
        if self._handle is None:
            return "Snapshot(closed)"
        info = self._info
        return (f"Snapshot(layers={info['num_layers']}, logical={info['num_logical_experts']}, "
                f"physical={info['num_physical_experts']}, algorithm={info['algorithm']!r}, "
                f"has_loads={info['has_loads']}, has_coactivation={info['has_coactivation']}, "
                f"label={info['label']!r})")


def _info_dict(info):
    fields = ("format_major", "format_minor", "num_layers", "num_logical_experts",
              "num_physical_experts", "num_nodes", "num_gpus", "num_groups", "algorithm",
              "has_loads", "has_coactivation", "created_unix_seconds", "file_size",
              "plan_seconds", "balancedness", "library_version", "label")
    result = {field: getattr(info, field) for field in fields}
    result["algorithm"] = _capi.eplb_algorithm_name(info.algorithm) if info.algorithm else None
    result["has_loads"] = bool(info.has_loads)
    result["has_coactivation"] = bool(info.has_coactivation)
    return result


def _label(label):
    """A label as the NUL-terminated UTF-8 the C API reads (a str; the library checks its
    length)."""
    if not isinstance(label, str):
        raise _wrong_type(f"label must be a str, got {type(label).__name__}")
    if "\0" in label:
        raise _invalid(f"label {label!r} contains a NUL character (it would end the label)")
    try:
        return label.encode("utf-8")
    except UnicodeEncodeError as error:
        raise _invalid(f"label {label!r} is not valid Unicode: {error}") from None


def _snapshot_options(placement, loads, label, compression_level, tracker=None):
    options = _capi.eplb_snapshot_options()
    keep = []
    if compression_level is not None:
        options.compression_level = _unsigned(compression_level, "compression_level")
    if loads is not None:
        loads = _as_f64(loads, "loads", (placement.num_layers, placement.num_logical_experts))
        keep.append(loads)
        options.set_loads(loads)
    if tracker is not None:
        handle = _expect(tracker, Tracker, "tracker")._h
        keep.append(handle)
        options.tracker = handle.this
    if label is not None:
        encoded = _label(label)
        keep.append(encoded)
        options.set_label(encoded)
    return options, keep


def save_snapshot(path, placement, loads=None, label=None, compression_level=None,
                  tracker=None):
    """Writes `placement` (plus optional `loads` statistics, a Tracker's co-activation
    statistics and a `label`) to `path` atomically (temporary file, fsync, rename): a crash
    leaves the previous file intact."""
    _expect(placement, Placement, "placement")
    options, keep = _snapshot_options(placement, loads, label, compression_level, tracker)
    with _locked(tracker):
        _capi.eplb_snapshot_save(placement._h, options, _path(path))
    del keep


def snapshot_bytes(placement, loads=None, label=None, compression_level=None, tracker=None):
    """The .eplb snapshot of `placement` as bytes (arguments as save_snapshot)."""
    _expect(placement, Placement, "placement")
    options, keep = _snapshot_options(placement, loads, label, compression_level, tracker)
    with _locked(tracker):
        data = _capi.eplb_snapshot_save_to_buffer(placement._h, options)
    del keep
    return data


def save_statistics(path, tracker, label=None, compression_level=None):
    """Writes a statistics snapshot of `tracker` (its whole state: recording into the tracker
    loaded back with load_snapshot(path).tracker() continues exactly) to `path` atomically."""
    _expect(tracker, Tracker, "tracker")
    options, keep = _snapshot_options(None, None, label, compression_level)
    with tracker._lock:
        _capi.eplb_snapshot_save_statistics(tracker._h, options, _path(path))
    del keep


def statistics_bytes(tracker, label=None, compression_level=None):
    """The statistics snapshot of `tracker` as bytes."""
    _expect(tracker, Tracker, "tracker")
    options, keep = _snapshot_options(None, None, label, compression_level)
    with tracker._lock:
        data = _capi.eplb_snapshot_save_statistics_to_buffer(tracker._h, options)
    del keep
    return data


def _locked(tracker):
    return tracker._lock if tracker is not None else contextlib.nullcontext()


def load_snapshot(path):
    """Snapshot.load(path)."""
    return Snapshot.load(path)


def loads_from_sglang_json(text):
    """Reads SGLang's {"logical_count": ...} document; float64 [layers][experts]."""
    address, layers, experts = _capi.eplb_loads_from_sglang_json(_json_bytes(text, "text"))
    return _capi._loads_from_address(address, layers, experts)


from ._deepseek import rebalance_experts  # noqa: E402  (needs the names above)
from ._migration import (  # noqa: E402
    RELABEL_MODES,
    TRANSFER_CROSS_NODE,
    TRANSFER_DTYPE,
    TRANSFER_INTRA_NODE,
    TRANSFER_SAME_GPU,
    Migration,
    MigrationSummary,
    plan_migration,
)
from ._workload import Workload  # noqa: E402
from . import kernels  # noqa: E402  (eplb.kernels: the CPU references)
