"""Migration planning: the weight transfers that take the GPUs from one placement to the next
(the C header's "migration" section)."""

import collections

import numpy as np

from . import Placement, _as_f64, _capi, _expect, _field, _Handle, _invalid, _real, _unsigned

#: Relabel modes of plan_migration, by name (eplb_migration_relabel).
RELABEL_MODES = {
    "nodes_and_gpus": _capi.EPLB_MIGRATION_RELABEL_NODES_AND_GPUS,
    "gpus_in_node": _capi.EPLB_MIGRATION_RELABEL_GPUS_IN_NODE,
    "none": _capi.EPLB_MIGRATION_RELABEL_NONE,
    "repack_in_node": _capi.EPLB_MIGRATION_RELABEL_REPACK_IN_NODE,
}

TRANSFER_SAME_GPU = _capi.EPLB_TRANSFER_SAME_GPU
TRANSFER_INTRA_NODE = _capi.EPLB_TRANSFER_INTRA_NODE
TRANSFER_CROSS_NODE = _capi.EPLB_TRANSFER_CROSS_NODE

#: numpy dtype of one transfer, field for field eplb_migration_transfer (8 x uint32, no padding;
#: `kind` is one of the TRANSFER_* constants).
TRANSFER_DTYPE = np.dtype([(name, np.uint32) for name in (
    "step", "layer", "expert", "src_slot", "dst_slot", "src_gpu", "dst_gpu", "kind")])
_TRANSFER_WORDS = TRANSFER_DTYPE.itemsize // 4

_SUMMARY_FIELDS = (
    "num_steps", "complete", "worth_it", "has_loads", "max_staging_experts", "moved_experts",
    "same_gpu_experts", "intra_node_experts", "cross_node_experts", "moved_bytes",
    "same_gpu_bytes", "intra_node_bytes", "cross_node_bytes", "max_step_bytes",
    "full_migration_experts", "same_gpu_rule_experts", "naive_experts", "old_balancedness",
    "target_balancedness", "new_balancedness", "gain")
_SUMMARY_FLAGS = ("complete", "worth_it", "has_loads")

MigrationSummary = collections.namedtuple("MigrationSummary", _SUMMARY_FIELDS)
MigrationSummary.__doc__ = (
    "What a migration moves and predicts (eplb_migration_summary, every field; complete, "
    "worth_it and has_loads as bools). Experts count transfers, bytes are experts x "
    "bytes_per_expert; the balancedness fields and gain are 0 without loads. worth_it is the "
    "gate: with loads, something moves and gain > 0, gain >= min_gain and gain >= "
    "min_gain_per_gib x GiB moved; without loads, something moves.")


def _relabel_id(relabel):
    if isinstance(relabel, str):
        if relabel not in RELABEL_MODES:
            raise _invalid(f"relabel {relabel!r} is unknown (use one of "
                           f"{', '.join(RELABEL_MODES)})")
        return RELABEL_MODES[relabel]
    return _unsigned(relabel, "relabel", 32)  # an id: the library checks its range


class Migration(_Handle):
    """A migration plan from an old placement to a new one: an immutable schedule of weight
    transfers cut into steps, after each of which every expert keeps a replica. Has the
    placements' shape attributes (num_layers, num_gpus, slots_per_gpu, ...) and num_steps. Safe
    to share between threads; close() (or the context manager) releases it."""

    _destroy = staticmethod(_capi.eplb_migration_destroy)
    _made_by = "eplb.plan_migration(old, new)"

    num_layers = _field("num_layers", "MoE layers.")
    num_logical_experts = _field("num_logical_experts", "Logical experts per layer (E).")
    num_physical_experts = _field("num_physical_experts", "Slots per layer over all GPUs (R).")
    num_nodes = _field("num_nodes", "Nodes.")
    num_gpus = _field("num_gpus", "GPUs.")
    slots_per_gpu = _field("slots_per_gpu", "num_physical_experts // num_gpus.")
    num_steps = _field("num_steps", "Steps of the schedule.")

    def __init__(self, handle, placement):
        super().__init__(handle)
        self._fields = {name: getattr(placement, name) for name in (
            "num_layers", "num_logical_experts", "num_physical_experts", "num_nodes", "num_gpus",
            "slots_per_gpu")}
        self._fields["num_steps"] = self.summary().num_steps

    def summary(self):
        """The MigrationSummary of this plan."""
        native = _capi.eplb_migration_summary()
        _capi.eplb_migration_get_summary(self._h, native)
        return MigrationSummary(*(bool(getattr(native, f)) if f in _SUMMARY_FLAGS
                                  else getattr(native, f) for f in _SUMMARY_FIELDS))

    def _step_id(self, step):
        if step is None:
            return _capi.EPLB_MIGRATION_ALL_STEPS
        step = _unsigned(step, "step", 32)
        if step == _capi.EPLB_MIGRATION_ALL_STEPS:
            raise _invalid(f"step ({step}) is out of range: the schedule has {self.num_steps} "
                           "steps (pass None for all)")
        return step  # the library checks it against the schedule

    def transfers(self, step=None):
        """The transfers of `step` (0-based), or of every step when None, ordered by step, layer
        and destination slot: a numpy structured array of TRANSFER_DTYPE (fields step, layer,
        expert, src_slot, dst_slot, src_gpu, dst_gpu, kind). Each copies `expert`'s weights of
        `layer` from src_slot as it is before the step into dst_slot."""
        step = self._step_id(step)
        handle = self._h
        count = _capi.eplb_migration_get_transfers(handle, step, None)
        words = np.empty((count, _TRANSFER_WORDS), dtype=np.uint32)
        if count:
            _capi.eplb_migration_get_transfers(handle, step, words)
        return words.view(TRANSFER_DTYPE).reshape(count)

    def gpu_map(self):
        """uint32 [layers][gpus]: the GPU each GPU of the new plan moved to in the relabeling."""
        out = np.empty((self.num_layers, self.num_gpus), dtype=np.uint32)
        _capi.eplb_migration_get_gpu_map(self._h, out)
        return out

    def target(self):
        """A new Placement to serve once the schedule is done: the relabeled new plan, or the
        partial placement when max_total_bytes cut the schedule (summary().complete False)."""
        return Placement(_capi.eplb_migration_get_target(self._h))

    def step_placement(self, step):
        """A new Placement in force after step `step` (0-based) is committed."""
        if step is None:
            raise _invalid("step must be an integer, got None")
        return Placement(_capi.eplb_migration_get_step_placement(self._h,
                                                                 self._step_id(step)))

    def __repr__(self):
        if self._handle is None:
            return "Migration(closed)"
        s = self.summary()
        return (f"Migration(steps={s.num_steps}, moved_experts={s.moved_experts}, "
                f"complete={s.complete}, worth_it={s.worth_it}, gain={s.gain:.4f})")


def plan_migration(old, new, loads=None, relabel="nodes_and_gpus", bytes_per_expert=None,
                   max_bytes_per_step=None, max_total_bytes=None, max_layers_per_step=None,
                   min_gain=None, min_gain_per_gib=None):
    """Plans moving the GPUs from Placement `old` (what they hold) to Placement `new` (a new
    plan of the same shape), returning a Migration.

    `loads` float64 [layers][logical experts] (optional): the measured load; with it the most
    useful changes move first and the summary predicts balancedness. `relabel`: how the new plan
    may be relabeled to keep experts where they are ("nodes_and_gpus", the default; "gpus_in_node";
    "none", vLLM's rule; "repack_in_node") or an eplb_migration_relabel id. Sizes and budgets in
    bytes (None: the library's default): `bytes_per_expert` (default 1, so bytes count experts),
    `max_bytes_per_step` and `max_total_bytes` (0: no limit; a total budget may end the schedule at
    a partial placement), `max_layers_per_step` (0: no limit). The worth-it gate: `min_gain`
    (default 0.005) and `min_gain_per_gib` (default 0) of predicted balancedness gain. The GIL is
    released while planning."""
    _expect(old, Placement, "old")
    _expect(new, Placement, "new")
    options = _capi.eplb_migration_options()
    options.relabel = _relabel_id(relabel)
    for name, value, bits in (("bytes_per_expert", bytes_per_expert, 64),
                              ("max_bytes_per_step", max_bytes_per_step, 64),
                              ("max_total_bytes", max_total_bytes, 64),
                              ("max_layers_per_step", max_layers_per_step, 32)):
        if value is not None:
            setattr(options, name, _unsigned(value, name, bits))
    for name, value in (("min_gain", min_gain), ("min_gain_per_gib", min_gain_per_gib)):
        if value is not None:
            setattr(options, name, _real(value, name))  # the library checks range
    if loads is not None:
        loads = _as_f64(loads, "loads", (old.num_layers, old.num_logical_experts))
    return Migration(_capi.eplb_migration_plan(old._h, new._h, loads, options), old)
