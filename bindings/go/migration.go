package eplb

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"eplb/internal/capi"
)

// MigrationRelabel is how PlanMigration may relabel the new plan (eplb_migration_relabel; the
// values are checked against the header in the tests).
type MigrationRelabel uint32

const (
	// RelabelNodesAndGPUs permutes nodes, GPUs within a node and slots within a GPU (default);
	// every metric of the new plan is kept.
	RelabelNodesAndGPUs MigrationRelabel = 0
	// RelabelGPUsInNode permutes GPUs within their node and slots within a GPU.
	RelabelGPUsInNode MigrationRelabel = 1
	// RelabelNone only permutes slots within a GPU (vLLM's rule).
	RelabelNone MigrationRelabel = 2
	// RelabelRepackInNode is RelabelNodesAndGPUs plus, with loads, exchanges of replicas between
	// GPUs of one node that keep more experts in place (never above the layer's busiest GPU).
	RelabelRepackInNode MigrationRelabel = 3
)

// String returns the mode's name as the Python binding spells it ("nodes_and_gpus",
// "gpus_in_node", "none", "repack_in_node"; MigrationRelabel(N) for other values).
func (r MigrationRelabel) String() string {
	switch r {
	case RelabelNodesAndGPUs:
		return "nodes_and_gpus"
	case RelabelGPUsInNode:
		return "gpus_in_node"
	case RelabelNone:
		return "none"
	case RelabelRepackInNode:
		return "repack_in_node"
	}
	return fmt.Sprintf("MigrationRelabel(%d)", uint32(r))
}

// MigrationOptions configure PlanMigration (eplb_migration_options). Fields are used as given:
// start from DefaultMigrationOptions. Zero budgets mean no limit.
type MigrationOptions struct {
	Relabel          MigrationRelabel
	BytesPerExpert   uint64  // bytes of one expert's weights, > 0 (default 1: bytes count experts)
	MaxBytesPerStep  uint64  // 0: no limit (a cycle of swaps may exceed it alone in its step)
	MaxTotalBytes    uint64  // 0: migrate completely; else a partial schedule within the budget
	MaxLayersPerStep uint32  // 0: no limit
	MinGain          float64 // worth-it gate: predicted balancedness gain at least this (0.005)
	MinGainPerGiB    float64 // ... and at least this gain per GiB moved (0)
}

// DefaultMigrationOptions returns the library's defaults (eplb_migration_options_init).
func DefaultMigrationOptions() MigrationOptions {
	native := capi.NewEplb_migration_options()
	defer capi.DeleteEplb_migration_options(native)
	capi.Eplb_migration_options_init(native)
	return MigrationOptions{
		Relabel:          MigrationRelabel(native.GetRelabel()),
		BytesPerExpert:   uint64(native.GetBytes_per_expert()),
		MaxBytesPerStep:  uint64(native.GetMax_bytes_per_step()),
		MaxTotalBytes:    uint64(native.GetMax_total_bytes()),
		MaxLayersPerStep: uint32(native.GetMax_layers_per_step()),
		MinGain:          native.GetMin_gain(),
		MinGainPerGiB:    native.GetMin_gain_per_gib(),
	}
}

// TransferKind says where a transfer's source is relative to its destination
// (eplb_transfer_kind).
type TransferKind uint32

const (
	// TransferSameGPU: the source slot is on the destination's GPU (EPLB_TRANSFER_SAME_GPU).
	TransferSameGPU TransferKind = 0
	// TransferIntraNode: the source is another GPU of the destination's node
	// (EPLB_TRANSFER_INTRA_NODE).
	TransferIntraNode TransferKind = 1
	// TransferCrossNode: the source is a GPU of another node (EPLB_TRANSFER_CROSS_NODE).
	TransferCrossNode TransferKind = 2
)

// String returns "same-gpu", "intra-node" or "cross-node" (TransferKind(N) for other values).
func (k TransferKind) String() string {
	switch k {
	case TransferSameGPU:
		return "same-gpu"
	case TransferIntraNode:
		return "intra-node"
	case TransferCrossNode:
		return "cross-node"
	}
	return fmt.Sprintf("TransferKind(%d)", uint32(k))
}

// MigrationTransfer copies Expert's weights of Layer from slot SrcSlot (as it is before Step)
// into slot DstSlot. Slots are global (GPU = slot / slots per GPU).
type MigrationTransfer struct {
	Step, Layer, Expert int
	SrcSlot, DstSlot    int
	SrcGPU, DstGPU      int
	Kind                TransferKind
}

// MigrationSummary is what a migration moves and predicts (eplb_migration_summary). Experts
// count transfers; bytes are experts * BytesPerExpert. Balancedness fields are 0 without loads.
type MigrationSummary struct {
	Steps             int
	Complete          bool // the schedule reaches the relabeled new plan
	WorthIt           bool // the gate of MigrationOptions says apply
	HasLoads          bool
	MaxStagingExperts int // most experts one GPU stages in one step

	MovedExperts, SameGPUExperts, IntraNodeExperts, CrossNodeExperts uint64
	MovedBytes, SameGPUBytes, IntraNodeBytes, CrossNodeBytes         uint64
	MaxStepBytes                                                     uint64 // the largest step, all GPUs together
	FullMigrationExperts                                             uint64 // transfers to reach the relabeled new plan
	SameGPURuleExperts                                               uint64 // transfers without relabeling (vLLM's rule)
	NaiveExperts                                                     uint64 // a full reload: layers * physical experts

	OldBalancedness, TargetBalancedness, NewBalancedness, Gain float64
}

// AllSteps selects every step in Migration.Transfers.
const AllSteps = -1

// Migration is an immutable schedule of weight transfers from one placement to the next.
type Migration struct {
	mu     sync.RWMutex // read-held by every call, write-held by Close
	handle uintptr
	// Shape of the placements and number of steps.
	Layers, GPUs, Steps int
	layers, gpus        int // Layers and GPUs for this package's own use (a caller may change those)
}

// usePair calls f with both C placements under their read locks, taken in creation order: one
// order for every pair, so calls locking two placements each way round while a Close waits on
// one of them cannot deadlock.
func usePair(a, b *Placement, f func(ra, rb capi.Eplb_placement) error) error {
	if a == nil {
		return invalidArgument("old is nil")
	}
	if b == nil {
		return invalidArgument("new is nil")
	}
	if a.order == 0 || b.order == 0 {
		return ErrClosed // a zero value, never created (and without a place in the lock order)
	}
	if a == b {
		return a.use(func(raw capi.Eplb_placement) error { return f(raw, raw) })
	}
	first, second := a, b
	if first.order > second.order {
		first, second = second, first
	}
	return first.use(func(capi.Eplb_placement) error {
		return second.use(func(capi.Eplb_placement) error {
			return f(capi.SwigcptrEplb_placement(a.handle), capi.SwigcptrEplb_placement(b.handle))
		})
	})
}

// PlanMigration plans the migration from old (what the GPUs hold now) to new (a new plan).
// loads ([layers][logical experts], or nil or empty) is the measured load: with it the schedule
// moves the most useful changes first and the summary predicts balancedness. The placements may
// be closed afterwards: the migration keeps what it needs.
func PlanMigration(old, new *Placement, loads []float64, opts MigrationOptions) (*Migration, error) {
	native := capi.NewEplb_migration_options()
	defer capi.DeleteEplb_migration_options(native)
	capi.Eplb_migration_options_init(native)
	native.SetRelabel(uint(opts.Relabel))
	native.SetBytes_per_expert(opts.BytesPerExpert)
	native.SetMax_bytes_per_step(opts.MaxBytesPerStep)
	native.SetMax_total_bytes(opts.MaxTotalBytes)
	native.SetMax_layers_per_step(uint(opts.MaxLayersPerStep))
	native.SetMin_gain(opts.MinGain)
	native.SetMin_gain_per_gib(opts.MinGainPerGiB)
	var handle uintptr
	if err := usePair(old, new, func(rawOld, rawNew capi.Eplb_placement) error {
		return check(capi.Eplb_migration_plan(rawOld, rawNew, optional(loads), native, &handle))
	}); err != nil {
		return nil, err
	}
	m := &Migration{handle: handle, Layers: old.shape.layers, GPUs: old.shape.gpus,
		layers: old.shape.layers, gpus: old.shape.gpus}
	runtime.SetFinalizer(m, (*Migration).Close)
	summary, err := m.Summary()
	if err != nil {
		m.Close()
		return nil, err
	}
	m.Steps = summary.Steps
	return m, nil
}

// use calls f with the C migration under the read lock; an invalid argument for a nil
// migration, ErrClosed for a closed or zero-value one.
func (m *Migration) use(f func(capi.Eplb_migration) error) error {
	if m == nil {
		return invalidArgument("migration is nil")
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.handle == 0 {
		return ErrClosed
	}
	err := f(capi.SwigcptrEplb_migration(m.handle))
	runtime.KeepAlive(m)
	return err
}

// Summary returns what the migration moves and predicts.
func (m *Migration) Summary() (MigrationSummary, error) {
	native := capi.NewEplb_migration_summary()
	defer capi.DeleteEplb_migration_summary(native)
	if err := m.use(func(raw capi.Eplb_migration) error {
		return check(capi.Eplb_migration_get_summary(raw, native))
	}); err != nil {
		return MigrationSummary{}, err
	}
	return MigrationSummary{
		Steps: int(native.GetNum_steps()), Complete: native.GetComplete() != 0,
		WorthIt: native.GetWorth_it() != 0, HasLoads: native.GetHas_loads() != 0,
		MaxStagingExperts: int(native.GetMax_staging_experts()),
		MovedExperts:      uint64(native.GetMoved_experts()), SameGPUExperts: uint64(native.GetSame_gpu_experts()),
		IntraNodeExperts: uint64(native.GetIntra_node_experts()), CrossNodeExperts: uint64(native.GetCross_node_experts()),
		MovedBytes: uint64(native.GetMoved_bytes()), SameGPUBytes: uint64(native.GetSame_gpu_bytes()),
		IntraNodeBytes: uint64(native.GetIntra_node_bytes()), CrossNodeBytes: uint64(native.GetCross_node_bytes()),
		MaxStepBytes:         uint64(native.GetMax_step_bytes()),
		FullMigrationExperts: uint64(native.GetFull_migration_experts()),
		SameGPURuleExperts:   uint64(native.GetSame_gpu_rule_experts()),
		NaiveExperts:         uint64(native.GetNaive_experts()),
		OldBalancedness:      native.GetOld_balancedness(), TargetBalancedness: native.GetTarget_balancedness(),
		NewBalancedness: native.GetNew_balancedness(), Gain: native.GetGain(),
	}, nil
}

// cStep maps a Go step (AllSteps or an index) to the C argument; the C call checks the range.
func cStep(step int) (uint, error) {
	if step == AllSteps {
		return math.MaxUint32, nil // EPLB_MIGRATION_ALL_STEPS
	}
	if step < 0 || step >= math.MaxUint32 {
		return 0, invalidArgument("step (%d) must be AllSteps or in [0, steps)", step)
	}
	return uint(step), nil
}

// transferWords is the number of uint32 fields of eplb_migration_transfer.
const transferWords = 8

// Transfers returns the transfers of step (or of every step with AllSteps), ordered by step,
// layer and destination slot.
func (m *Migration) Transfers(step int) ([]MigrationTransfer, error) {
	var words []uint32
	if err := m.use(func(raw capi.Eplb_migration) error {
		cstep, err := cStep(step)
		if err != nil {
			return err
		}
		var count int64
		if err := check(capi.Eplb_migration_get_transfers(raw, cstep, nil, &count)); err != nil {
			return err
		}
		words = make([]uint32, count*transferWords)
		return check(capi.Eplb_migration_get_transfers(raw, cstep, words, &count))
	}); err != nil {
		return nil, err
	}
	out := make([]MigrationTransfer, len(words)/transferWords)
	for i := range out {
		w := words[i*transferWords : (i+1)*transferWords]
		out[i] = MigrationTransfer{Step: int(w[0]), Layer: int(w[1]), Expert: int(w[2]),
			SrcSlot: int(w[3]), DstSlot: int(w[4]), SrcGPU: int(w[5]), DstGPU: int(w[6]),
			Kind: TransferKind(w[7])}
	}
	return out, nil
}

// GPUMap returns the relabeling, [layers][GPUs]: the GPU each GPU of the new plan moved to.
func (m *Migration) GPUMap() ([]uint32, error) {
	var out []uint32
	if err := m.use(func(raw capi.Eplb_migration) error {
		out = make([]uint32, m.layers*m.gpus)
		return check(capi.Eplb_migration_get_gpu_map(raw, out))
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// Target returns the placement to serve once the schedule is done: the relabeled new plan, or
// the partial placement when MaxTotalBytes cut the schedule.
func (m *Migration) Target() (*Placement, error) {
	var out uintptr
	if err := m.use(func(raw capi.Eplb_migration) error {
		return check(capi.Eplb_migration_get_target(raw, &out))
	}); err != nil {
		return nil, err
	}
	return newPlacement(out)
}

// StepPlacement returns the placement in force after step (0-based) has been committed; every
// expert has a replica in it.
func (m *Migration) StepPlacement(step int) (*Placement, error) {
	var out uintptr
	if err := m.use(func(raw capi.Eplb_migration) error {
		if step < 0 || step >= math.MaxUint32 {
			return invalidArgument("step (%d) must be in [0, steps)", step)
		}
		return check(capi.Eplb_migration_get_step_placement(raw, uint(step), &out))
	}); err != nil {
		return nil, err
	}
	return newPlacement(out)
}

// Close releases the migration once the calls in progress return; later calls return
// ErrClosed. Safe to call twice, from any goroutine, and on a nil migration (it does nothing).
func (m *Migration) Close() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.handle != 0 {
		capi.Eplb_migration_destroy(capi.SwigcptrEplb_migration(m.handle))
		m.handle = 0
		runtime.SetFinalizer(m, nil)
	}
	return nil
}
