// Package eplb is the Go binding of libeplb: expert-parallel load balancing for
// Mixture-of-Experts serving.
//
// Failed calls return an *Error holding the C status and the library's message (read inside the
// same cgo call); errors.Is(err, ErrInvalidArgument), ErrIO, ... test the status, and
// errors.Is(err, fs.ErrNotExist) holds when a snapshot file (or the directory to save one in)
// does not exist. Arguments the C call cannot check (slice lengths it is not given, indices that
// would not fit its uint32_t, strings with a NUL byte, which C would cut there) are checked first
// and refused with the status the library uses, StatusInvalidArgument. No call panics: a nil
// handle (receiver or argument) is an invalid argument too. Handles are released by Close, or by
// a finalizer when forgotten; a closed handle, or a zero value not made by this package, returns
// ErrClosed. A failed call returns nil slices. Slices go in and out; an optional one (loads,
// per-GPU weights, ...) is absent when nil or empty. C never keeps a Go pointer, and buffers the
// library allocates are copied into Go memory and freed before a call returns. Every type is
// safe for concurrent use, Close included: Placement, Migration and Snapshot are immutable and
// read under a shared lock (Close waits for the calls in progress); Planner, Tracker,
// SplitWorkspace and Workload serialise their calls with a mutex (the C objects need one caller
// at a time), PlanControl's calls may run at any time. Plans can be cancelled: PlanContext,
// PlanWindowsContext, PlanTrackedContext and PlanNearContext stop at the next layer boundary once
// their context is done, and a PlanControl cancels the plans of the planners it is attached to
// and reports their progress; no other call can be cancelled.
//
// Files: eplb.go (errors, planners, placements, trackers), control.go (PlanControl and the
// context variants of the plan methods), migration.go (PlanMigration),
// interop.go (SGLang and vLLM-Ascend JSON), snapshot.go (snapshots in files and bytes, tracker
// statistics), split.go (per-batch replica split and shared-expert waterfill on the CPU),
// metrics.go (layer metrics, exact optimum, relaxed bound, nodes touched), workload.go (routing
// simulator).
package eplb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"eplb/internal/capi"
)

// Error is a failed libeplb call, or an argument refused before the C call with the status C
// would give it. Status is the C eplb_status (see Status for its name); Message names the bad
// value. errors.Is(err, ErrInvalidArgument) (or the sentinel of another status) tests the status.
type Error struct {
	Status  int
	Message string
	// cause is what Go sees of an I/O failure (the *fs.PathError of a file that does not exist),
	// for errors.Is(err, fs.ErrNotExist), or the context's error (ctx.Err()) of a plan its context
	// stopped, for errors.Is(err, context.Canceled); nil otherwise.
	cause error
}

// Error returns "eplb: " and the message, or the status's name when the message is empty.
func (e *Error) Error() string {
	if e.Message == "" {
		return "eplb: " + Status(e.Status).String()
	}
	return "eplb: " + e.Message
}

// Unwrap returns the underlying Go error of an I/O failure, if known: a snapshot file (or the
// directory to save one in) that does not exist gives an *fs.PathError, so that
// errors.Is(err, fs.ErrNotExist) holds. For a plan stopped by its context (PlanContext, ...) it
// returns ctx.Err(), so that errors.Is(err, context.Canceled) or context.DeadlineExceeded holds.
// Nil for every other failure.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error without a message (such as ErrInvalidArgument and the
// other status sentinels) of e's status.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Status == e.Status
}

// check turns an error of the generated package into an *Error: every C call's result goes
// through it, so that errors.Is and errors.As see this package's type.
func check(err error) error {
	var e *capi.Error
	if errors.As(err, &e) {
		return &Error{Status: e.Status, Message: e.Message}
	}
	return err
}

// Status is a C status code (eplb_status); String returns the C library's name of it
// (eplb_status_string).
type Status int

// C status codes (eplb_status; checked against the header in the tests). They are untyped
// constants, so that they compare with Error.Status and StatusOf as well as with a Status.
const (
	StatusOK                 = 0
	StatusInvalidArgument    = 1
	StatusOutOfMemory        = 2
	StatusBufferTooSmall     = 3
	StatusInternal           = 4
	StatusIO                 = 5
	StatusCorrupt            = 6
	StatusTruncated          = 7
	StatusUnsupportedVersion = 8
	StatusNoDevice           = 9
	StatusDevice             = 10
	StatusNoNccl             = 11
	StatusNccl               = 12
	StatusCancelled          = 13
)

// statusNames are eplb_status_string's texts (the generated package does not wrap it; checked
// against capi/src/errors.cpp in the tests).
var statusNames = [...]string{
	StatusOK:                 "ok",
	StatusInvalidArgument:    "invalid argument",
	StatusOutOfMemory:        "out of memory",
	StatusBufferTooSmall:     "buffer too small",
	StatusInternal:           "internal error",
	StatusIO:                 "input/output error",
	StatusCorrupt:            "corrupt data",
	StatusTruncated:          "truncated data",
	StatusUnsupportedVersion: "unsupported version",
	StatusNoDevice:           "no CUDA device",
	StatusDevice:             "CUDA error",
	StatusNoNccl:             "NCCL not available",
	StatusNccl:               "NCCL error",
	StatusCancelled:          "cancelled",
}

// String returns the C library's text for s ("invalid argument", ...), or "unknown status N"
// for a value this package does not know.
func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("unknown status %d", int(s))
}

// Sentinels of the C statuses, for errors.Is: errors.Is(err, ErrIO) holds for every *Error of
// status StatusIO, whatever its message.
var (
	ErrInvalidArgument    error = &Error{Status: StatusInvalidArgument}
	ErrOutOfMemory        error = &Error{Status: StatusOutOfMemory}
	ErrBufferTooSmall     error = &Error{Status: StatusBufferTooSmall}
	ErrInternal           error = &Error{Status: StatusInternal}
	ErrIO                 error = &Error{Status: StatusIO}
	ErrCorrupt            error = &Error{Status: StatusCorrupt}
	ErrTruncated          error = &Error{Status: StatusTruncated}
	ErrUnsupportedVersion error = &Error{Status: StatusUnsupportedVersion}
	ErrNoDevice           error = &Error{Status: StatusNoDevice}
	ErrDevice             error = &Error{Status: StatusDevice}
	ErrNoNccl             error = &Error{Status: StatusNoNccl}
	ErrNccl               error = &Error{Status: StatusNccl}
	// ErrCancelled: a plan was stopped by its context (PlanContext, ...) or by a PlanControl's
	// Cancel. A plan stopped by its context also satisfies errors.Is(err, ctx.Err()).
	ErrCancelled error = &Error{Status: StatusCancelled}
)

// invalidArgument is a Go-side check failing before the C call, with the C status it would get.
func invalidArgument(format string, args ...any) error {
	return &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// optional returns nil for an empty slice: an optional array is absent when nil or empty (C tells
// a NULL pointer from an empty array, and refuses the latter where it takes the former).
func optional[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// withPathCause adds to err, a failed I/O call on path, the error Go gets for path when it does
// not exist (for errors.Is(err, fs.ErrNotExist)). The C library reports only "I/O error" and a
// message; a stat after the failure tells "absent" from "unreadable" or "corrupt".
func withPathCause(err error, path string) error {
	var e *Error
	if errors.As(err, &e) && e.Status == StatusIO {
		if _, statErr := os.Stat(path); errors.Is(statErr, fs.ErrNotExist) {
			e.cause = statErr
		}
	}
	return err
}

// checkIndex refuses an index outside [0, n): a Go int would be truncated to C's uint32_t.
func checkIndex(name string, value, n int) error {
	if value < 0 || value >= n {
		return invalidArgument("%s (%d) must be in [0, %d)", name, value, n)
	}
	return nil
}

// checkString refuses a string with a NUL byte: C would read it only up to the NUL.
func checkString(name, value string) error {
	if i := strings.IndexByte(value, 0); i >= 0 {
		return invalidArgument("%s %q contains a NUL byte at offset %d", name, value, i)
	}
	return nil
}

// checkJSON refuses JSON text with a NUL byte (never valid JSON; the C parser would stop there).
func checkJSON(json []byte) error {
	if i := bytes.IndexByte(json, 0); i >= 0 {
		return invalidArgument("json contains a NUL byte at offset %d", i)
	}
	return nil
}

// StatusOf returns the C status of err (an *Error, possibly wrapped), or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// ErrClosed is returned when a closed handle, or a zero value never created by this package, is
// used (a nil handle is an invalid argument instead).
var ErrClosed = errors.New("eplb: use of a closed handle")

// Version is the version string of the libeplb actually loaded.
func Version() string { return capi.Eplb_version_string() }

// CheckVersion fails, with an *Error of status StatusUnsupportedVersion, when the loaded libeplb
// is incompatible with the header of this package.
func CheckVersion() error {
	return checkVersion(int(capi.Eplb_version_number()), int(capi.EPLB_VERSION_NUMBER))
}

func checkVersion(runtimeVersion, header int) error {
	// One SONAME holds major.minor while the major is 0, the major after: within it the ABI only
	// grows, so the library must be at least as new as this package's header.
	sameABI := runtimeVersion/10000 == header/10000
	if header/10000 == 0 {
		sameABI = runtimeVersion/100 == header/100
	}
	if !sameABI || runtimeVersion < header {
		return &Error{Status: StatusUnsupportedVersion,
			Message: fmt.Sprintf("libeplb %d is loaded but this package needs %d", runtimeVersion, header)}
	}
	return nil
}

// AlgorithmID looks an algorithm up by name ("deepseek", "balanced", ...).
func AlgorithmID(name string) (uint32, error) {
	if err := checkString("name", name); err != nil {
		return 0, err
	}
	var id uint32
	if err := check(capi.Eplb_algorithm_from_name(name, &id)); err != nil {
		return 0, err
	}
	return id, nil
}

// AlgorithmName returns the name of an algorithm id (as AlgorithmID takes it, and as
// SnapshotInfo.Algorithm holds it): "default" for 0, "deepseek", "balanced", ...
func AlgorithmName(id uint32) (string, error) {
	name := capi.Eplb_algorithm_name(uint(id))
	if name == "" {
		return "", invalidArgument("algorithm id %d is unknown (known: 0..%d)", id, capi.Eplb_algorithm_count())
	}
	return name, nil
}

// Algorithms returns the id of every algorithm the loaded library offers (1..count), in order;
// 0, "default", is not among them: it stands for one (DefaultAlgorithm).
func Algorithms() []uint32 {
	count := uint32(capi.Eplb_algorithm_count())
	ids := make([]uint32, 0, count)
	for id := uint32(1); id <= count; id++ {
		ids = append(ids, id)
	}
	return ids
}

// AlgorithmDescription returns the one-line description of an algorithm id.
func AlgorithmDescription(id uint32) (string, error) {
	text := capi.Eplb_algorithm_description(uint(id))
	if text == "" {
		return "", invalidArgument("algorithm id %d is unknown (known: 0..%d)", id, capi.Eplb_algorithm_count())
	}
	return text, nil
}

// DefaultAlgorithm returns the id "default" (0) stands for in the loaded library (today
// balanced's).
func DefaultAlgorithm() uint32 { return uint32(capi.Eplb_algorithm_default()) }

// PlannerOptions are the model shape, topology and algorithm of a Planner. Zero Groups and
// Nodes mean 1; an empty Algorithm means the library default. Affinity makes PlanTracked keep
// experts that tokens pick together on one node while the plan's balancedness stays at least
// AffinityMinBalance (0 means the library default, 0.99) times the balance-only plan's; Plan then
// refuses. CrossNodeBudget is balanced-relaxed's (replicas per layer off their group's node);
// every other algorithm refuses a non-zero one.
type PlannerOptions struct {
	Algorithm                               string
	Layers, LogicalExperts, PhysicalExperts uint32
	Groups, Nodes, GPUs                     uint32
	CrossNodeBudget, Threads                uint32
	Affinity                                bool
	AffinityMinBalance                      float64
}

// Planner turns load matrices into placements. Its calls are serialised; PlanContext and the
// other context variants stop a plan when their context is done, and SetControl attaches a
// PlanControl that cancels plans and reports their progress from any goroutine.
type Planner struct {
	mu              sync.Mutex
	handle          uintptr
	layers, experts int
	control         *PlanControl // attached with SetControl; nil when none
}

// NewPlanner validates the options and creates a planner.
func NewPlanner(o PlannerOptions) (*Planner, error) {
	options := capi.NewEplb_planner_options()
	defer capi.DeleteEplb_planner_options(options)
	capi.Eplb_planner_options_init(options)
	if o.Algorithm != "" {
		if err := checkString("Algorithm", o.Algorithm); err != nil {
			return nil, err
		}
		id, err := AlgorithmID(o.Algorithm)
		if err != nil {
			return nil, err
		}
		options.SetAlgorithm(uint(id))
	}
	options.SetNum_layers(uint(o.Layers))
	options.SetNum_logical_experts(uint(o.LogicalExperts))
	options.SetNum_physical_experts(uint(o.PhysicalExperts))
	options.SetNum_gpus(uint(o.GPUs))
	options.SetCross_node_budget(uint(o.CrossNodeBudget))
	options.SetNum_threads(uint(o.Threads))
	if o.Groups != 0 {
		options.SetNum_groups(uint(o.Groups))
	}
	if o.Nodes != 0 {
		options.SetNum_nodes(uint(o.Nodes))
	}
	if o.Affinity {
		options.SetAffinity(1)
	}
	if o.AffinityMinBalance != 0 {
		options.SetAffinity_min_balance(o.AffinityMinBalance)
	}
	var handle uintptr
	if err := check(capi.Eplb_planner_create(options, &handle)); err != nil {
		return nil, err
	}
	p := &Planner{handle: handle, layers: int(o.Layers), experts: int(o.LogicalExperts)}
	runtime.SetFinalizer(p, (*Planner).Close)
	return p, nil
}

// use calls f with the C planner under the mutex; an invalid argument for a nil planner,
// ErrClosed for a closed or zero-value one.
func (p *Planner) use(f func(capi.Eplb_planner) error) error {
	if p == nil {
		return invalidArgument("planner is nil")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.handle == 0 {
		return ErrClosed
	}
	err := f(capi.SwigcptrEplb_planner(p.handle))
	runtime.KeepAlive(p)
	return err
}

// Plan plans a placement for loads, [layers][logical experts] row-major. PlanContext is Plan
// with a context that can stop it.
func (p *Planner) Plan(loads []float64) (*Placement, error) {
	return p.PlanContext(context.Background(), loads)
}

// PlanWindows plans one placement from several load matrices, loads [windows][layers][logical
// experts] row-major: the balanced algorithms minimise the mean over windows of each window's
// busiest GPU, the others plan on the sum. PlanWindowsContext is PlanWindows with a context.
func (p *Planner) PlanWindows(loads []float64, windows int) (*Placement, error) {
	return p.PlanWindowsContext(context.Background(), loads, windows)
}

// PlanTracked plans from a tracker's statistics: loads ([layers][logical experts]) or, when loads
// is nil or empty, the tracker's current loads. With PlannerOptions.Affinity the plan also lowers
// the nodes each sampled token touches; without it this is Plan on those loads. The tracker is
// locked (not recorded into) during the call. PlanTrackedContext is PlanTracked with a context.
func (p *Planner) PlanTracked(loads []float64, tracker *Tracker) (*Placement, error) {
	return p.PlanTrackedContext(context.Background(), loads, tracker)
}

// NearOptions configure PlanNear (eplb_plan_near_options). Fields are used as given: start from
// DefaultNearOptions.
type NearOptions struct {
	// MinBalance: per layer, the plan's balancedness stays at least this times that of the
	// planner's own plan of the loads; in (0, 1] (default 0.998). 1 asks for a busiest GPU no
	// higher than the planner's own plan's.
	MinBalance float64
}

// DefaultNearOptions returns the library's defaults (eplb_plan_near_options_init).
func DefaultNearOptions() NearOptions {
	native := capi.NewEplb_plan_near_options()
	defer capi.DeleteEplb_plan_near_options(native)
	capi.Eplb_plan_near_options_init(native)
	return NearOptions{MinBalance: native.GetMin_balance()}
}

// NearReport is what PlanNear did with each layer (eplb_plan_near_report); every layer is
// counted once.
type NearReport struct {
	LayersKept       int // balanced enough already: the current layout, nothing moves
	LayersRebalanced int // the current layout with some replicas moved
	// LayersReplanned took the planner's own plan: rebalancing fell short of the target, or the
	// current layout breaks the algorithm's locality.
	LayersReplanned int
	// LayersPartlyReplanned (hierarchical and relaxed plans only) rebalanced some nodes and took
	// the planner's own plan on the others, whose expert groups change nodes.
	LayersPartlyReplanned int
}

// PlanNear re-plans for loads ([layers][logical experts]) near current, the placement the GPUs
// hold now, so that a migration from current (PlanMigration) moves few experts. Per layer the
// planner's own plan of loads sets the target: the layer is kept as it is when its balancedness
// is at least options.MinBalance times that plan's, else rebalanced by moving a few replicas,
// else replaced by that plan's layer; the algorithm's locality holds (see
// eplb_planner_plan_near). The report says which layers took which path. current is only read
// (under its read lock, so it may be shared with other readers). An attached PlanControl counts
// two steps per layer (the planner's own plan, then this one). Errors (StatusInvalidArgument): a
// nil current; a current of another shape than the planner's (the message names the field, e.g.
// "num_nodes (1)"); MinBalance outside (0, 1] or NaN; an affinity planner; bad loads as for
// Plan. ErrClosed for a closed planner or current. PlanNearContext is PlanNear with a context.
func (p *Planner) PlanNear(loads []float64, current *Placement, options NearOptions) (*Placement, NearReport, error) {
	return p.PlanNearContext(context.Background(), loads, current, options)
}

// Close releases the planner once the call in progress (a plan may take seconds) returns; later
// calls return ErrClosed. Safe to call twice, from any goroutine, and on a nil planner (it does
// nothing).
func (p *Planner) Close() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.handle != 0 {
		capi.Eplb_planner_destroy(capi.SwigcptrEplb_planner(p.handle))
		p.handle = 0
		runtime.SetFinalizer(p, nil)
	}
	if p.control != nil {
		p.control.detach()
		p.control = nil
	}
	return nil
}

// Placement is an immutable expert placement for all layers.
type Placement struct {
	mu     sync.RWMutex // read-held by every call, write-held by Close
	handle uintptr
	order  uint64 // creation order: calls on two placements lock them in it
	// Shape and topology.
	Layers, LogicalExperts, PhysicalExperts, Nodes, GPUs, Log2PhyWidth int
	// shape holds the same values for this package's own use: the exported fields can be
	// changed by a caller, and output sizes and index checks must not follow.
	shape placementShape
}

type placementShape struct {
	layers, logical, physical, nodes, gpus, width int
}

func newPlacement(handle uintptr) (*Placement, error) {
	p := &Placement{handle: handle, order: placementsCreated.Add(1)}
	runtime.SetFinalizer(p, (*Placement).Close)
	info := capi.NewEplb_placement_info()
	defer capi.DeleteEplb_placement_info(info)
	if err := check(capi.Eplb_placement_get_info(capi.SwigcptrEplb_placement(handle), info)); err != nil {
		p.Close()
		return nil, err
	}
	p.shape = placementShape{layers: int(info.GetNum_layers()), logical: int(info.GetNum_logical_experts()),
		physical: int(info.GetNum_physical_experts()), nodes: int(info.GetNum_nodes()),
		gpus: int(info.GetNum_gpus()), width: int(info.GetLog2phy_width())}
	p.Layers, p.LogicalExperts, p.PhysicalExperts = p.shape.layers, p.shape.logical, p.shape.physical
	p.Nodes, p.GPUs, p.Log2PhyWidth = p.shape.nodes, p.shape.gpus, p.shape.width
	return p, nil
}

var placementsCreated atomic.Uint64

// use calls f with the C placement under the read lock; an invalid argument for a nil
// placement, ErrClosed for a closed or zero-value one.
func (p *Placement) use(f func(capi.Eplb_placement) error) error {
	if p == nil {
		return invalidArgument("placement is nil")
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.handle == 0 {
		return ErrClosed
	}
	err := f(capi.SwigcptrEplb_placement(p.handle))
	runtime.KeepAlive(p)
	return err
}

// PlacementFromPhy2Log builds a placement from a [layers][physical experts] map.
func PlacementFromPhy2Log(layers, logicalExperts, physicalExperts, nodes, gpus uint32, phy2log []int32) (*Placement, error) {
	var out uintptr
	if err := check(capi.Eplb_placement_create_from_phy2log(uint(layers), uint(logicalExperts),
		uint(physicalExperts), uint(nodes), uint(gpus), phy2log, &out)); err != nil {
		return nil, err
	}
	return newPlacement(out)
}

// Phy2Log returns [layers][physical experts]: the logical expert held by each slot.
func (p *Placement) Phy2Log() ([]int32, error) {
	var out []int32
	if err := p.use(func(raw capi.Eplb_placement) error {
		out = make([]int32, p.shape.layers*p.shape.physical)
		return check(capi.Eplb_placement_get_phy2log(raw, out))
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// ReplicaCounts returns [layers][logical experts]: the replicas of each expert.
func (p *Placement) ReplicaCounts() ([]int32, error) {
	var out []int32
	if err := p.use(func(raw capi.Eplb_placement) error {
		out = make([]int32, p.shape.layers*p.shape.logical)
		return check(capi.Eplb_placement_get_replica_counts(raw, out))
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// Log2Phy returns [layers][logical experts][Log2PhyWidth]: each replica's slot, -1 padded.
func (p *Placement) Log2Phy() ([]int32, error) {
	var out []int32
	if err := p.use(func(raw capi.Eplb_placement) error {
		out = make([]int32, p.shape.layers*p.shape.logical*p.shape.width)
		return check(capi.Eplb_placement_get_log2phy(raw, out))
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// Metrics are a placement's balance under a load matrix (eplb_metrics): over the layers that
// carry load (LoadedLayers of Layers), see the C header for each field.
type Metrics struct {
	Layers, LoadedLayers, MaxReplicas       int
	DuplicatePairs, CrossNodeReplicas       uint64
	Balancedness, MinBalancedness           float64
	NodeBalancedness, MaxOverMean           float64
	MaxLoadOverBound, WorstMaxLoadOverBound float64
	MaxLoadOverNodeBound                    float64
}

// Metrics computes the placement's metrics under loads, [layers][logical experts] row-major.
func (p *Placement) Metrics(loads []float64) (Metrics, error) {
	native := capi.NewEplb_metrics()
	defer capi.DeleteEplb_metrics(native)
	if err := p.use(func(raw capi.Eplb_placement) error {
		return check(capi.Eplb_metrics_compute(raw, loads, native))
	}); err != nil {
		return Metrics{}, err
	}
	return Metrics{
		Layers: int(native.GetNum_layers()), LoadedLayers: int(native.GetLoaded_layers()),
		MaxReplicas: int(native.GetMax_replicas()), DuplicatePairs: uint64(native.GetDuplicate_pairs()),
		CrossNodeReplicas: uint64(native.GetCross_node_replicas()),
		Balancedness:      native.GetBalancedness(), MinBalancedness: native.GetMin_balancedness(),
		NodeBalancedness: native.GetNode_balancedness(), MaxOverMean: native.GetMax_over_mean(),
		MaxLoadOverBound:      native.GetMax_load_over_bound(),
		WorstMaxLoadOverBound: native.GetWorst_max_load_over_bound(),
		MaxLoadOverNodeBound:  native.GetMax_load_over_node_bound(),
	}, nil
}

// Balancedness is the mean, over the layers with load, of mean GPU load / max GPU load under
// loads (Metrics(loads).Balancedness).
func (p *Placement) Balancedness(loads []float64) (float64, error) {
	metrics, err := p.Metrics(loads)
	if err != nil {
		return 0, err
	}
	return metrics.Balancedness, nil
}

// GPULoads returns [layers][GPUs]: each GPU's load under loads.
func (p *Placement) GPULoads(loads []float64) ([]float64, error) {
	var out []float64
	if err := p.use(func(raw capi.Eplb_placement) error {
		out = make([]float64, p.shape.layers*p.shape.gpus)
		return check(capi.Eplb_metrics_gpu_loads(raw, loads, out))
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// Save writes the placement to an .eplb snapshot atomically; loads (may be nil or empty) are
// stored with it, label may be "". Neither path nor label may contain a NUL byte. When the
// directory does not exist, errors.Is(err, fs.ErrNotExist) holds. SaveWith also stores a
// tracker's statistics or sets the compression level.
func (p *Placement) Save(path string, loads []float64, label string) error {
	return p.SaveWith(path, SnapshotOptions{Loads: loads, Label: label})
}

// Close releases the placement once the calls in progress return; later calls return
// ErrClosed. Safe to call twice, from any goroutine, and on a nil placement (it does nothing).
func (p *Placement) Close() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.handle != 0 {
		capi.Eplb_placement_destroy(capi.SwigcptrEplb_placement(p.handle))
		p.handle = 0
		runtime.SetFinalizer(p, nil)
	}
	return nil
}

// LoadSnapshot reads and validates an .eplb file and returns its placement and label. When the
// file does not exist, errors.Is(err, fs.ErrNotExist) holds (and errors.Is(err, ErrIO)).
func LoadSnapshot(path string) (*Placement, string, error) {
	if err := checkString("path", path); err != nil {
		return nil, "", err
	}
	var handle uintptr
	if err := check(capi.Eplb_snapshot_load(path, &handle)); err != nil {
		return nil, "", withPathCause(err, path)
	}
	snapshot := capi.SwigcptrEplb_snapshot(handle)
	defer capi.Eplb_snapshot_destroy(snapshot)
	info := capi.NewEplb_snapshot_info()
	defer capi.DeleteEplb_snapshot_info(info)
	if err := check(capi.Eplb_snapshot_get_info(snapshot, info)); err != nil {
		return nil, "", err
	}
	var out uintptr
	if err := check(capi.Eplb_snapshot_get_placement(snapshot, &out)); err != nil {
		return nil, "", err
	}
	placement, err := newPlacement(out)
	if err != nil {
		return nil, "", err
	}
	return placement, info.GetLabel(), nil
}

// TrackerOptions configure a Tracker. Window is "cumulative" (default), "sliding" (the last
// WindowBatches batches; 0 means the library default, 64) or "decay" (factor Decay per batch, in
// (0, 1]; 0 means the library default, 0.99). ReservoirCapacity is the number of top-k rows
// sampled per layer (for Samples, NodesTouched and affinity planning): 0 means the library
// default (4096), a negative value none. Seed seeds the sampling.
type TrackerOptions struct {
	Layers, LogicalExperts, TopK uint32
	Window                       string
	WindowBatches                uint32
	Decay                        float64
	ReservoirCapacity            int
	Seed                         uint64
}

// Tracker records per-layer expert load and co-activation from top-k routing. Its calls are
// serialised: to record from many goroutines without contention, give each its own tracker (same
// options) and Merge them into one before planning.
type Tracker struct {
	mu                    sync.Mutex
	handle                uintptr
	layers, experts, topK int
	order                 uint64 // creation order: Merge locks two trackers in it
}

var trackersCreated atomic.Uint64

// NewTracker creates an empty tracker.
func NewTracker(o TrackerOptions) (*Tracker, error) {
	options := capi.NewEplb_tracker_options()
	defer capi.DeleteEplb_tracker_options(options)
	capi.Eplb_tracker_options_init(options)
	options.SetNum_layers(uint(o.Layers))
	options.SetNum_logical_experts(uint(o.LogicalExperts))
	options.SetTop_k(uint(o.TopK))
	switch o.Window {
	case "", "cumulative":
	case "sliding":
		options.SetWindow(uint(capi.EPLB_WINDOW_SLIDING))
		if o.WindowBatches != 0 {
			options.SetWindow_batches(uint(o.WindowBatches))
		}
	case "decay":
		options.SetWindow(uint(capi.EPLB_WINDOW_DECAY))
		if o.Decay != 0 {
			options.SetDecay(o.Decay)
		}
	default:
		return nil, invalidArgument("unknown window %q", o.Window)
	}
	switch {
	case o.ReservoirCapacity < 0:
		options.SetReservoir_capacity(0)
	case o.ReservoirCapacity > math.MaxUint32:
		return nil, invalidArgument("ReservoirCapacity (%d) does not fit in 32 bits", o.ReservoirCapacity)
	case o.ReservoirCapacity > 0:
		options.SetReservoir_capacity(uint(o.ReservoirCapacity))
	}
	options.SetSeed(o.Seed)
	var handle uintptr
	if err := check(capi.Eplb_tracker_create(options, &handle)); err != nil {
		return nil, err
	}
	t := &Tracker{handle: handle, layers: int(o.Layers), experts: int(o.LogicalExperts), topK: int(o.TopK),
		order: trackersCreated.Add(1)}
	runtime.SetFinalizer(t, (*Tracker).Close)
	return t, nil
}

// use calls f with the C tracker under the mutex; an invalid argument for a nil tracker,
// ErrClosed for a closed or zero-value one.
func (t *Tracker) use(f func(capi.Eplb_tracker) error) error {
	if t == nil {
		return invalidArgument("tracker is nil")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.handle == 0 {
		return ErrClosed
	}
	err := f(capi.SwigcptrEplb_tracker(t.handle))
	runtime.KeepAlive(t)
	return err
}

// checkBatch refuses a layer outside the tracker (C would truncate it to 32 bits) and a batch
// that is not whole [tokens][top_k] rows. Called on an open tracker (topK > 0).
func (t *Tracker) checkBatch(layer int, topkIDs []int32) error {
	if err := checkIndex("layer", layer, t.layers); err != nil {
		return err
	}
	if len(topkIDs)%t.topK != 0 {
		return invalidArgument("topk_ids length %d is not a multiple of top_k %d", len(topkIDs), t.topK)
	}
	return nil
}

// Record records one batch of layer: topkIDs is [tokens][top_k] logical ids, -1 masked.
func (t *Tracker) Record(layer int, topkIDs []int32) error {
	return t.use(func(raw capi.Eplb_tracker) error {
		if err := t.checkBatch(layer, topkIDs); err != nil {
			return err
		}
		return check(capi.Eplb_tracker_record(raw, uint(layer), topkIDs, int64(len(topkIDs)/t.topK), uint(t.topK)))
	})
}

// RecordPhysical records one batch of layer with physical slot ids of placement.
func (t *Tracker) RecordPhysical(placement *Placement, layer int, topkIDs []int32) error {
	if placement == nil {
		return invalidArgument("placement is nil")
	}
	return t.use(func(raw capi.Eplb_tracker) error {
		return placement.use(func(rawPlacement capi.Eplb_placement) error {
			if err := t.checkBatch(layer, topkIDs); err != nil {
				return err
			}
			return check(capi.Eplb_tracker_record_physical(raw, rawPlacement, uint(layer), topkIDs,
				int64(len(topkIDs)/t.topK), uint(t.topK)))
		})
	})
}

// Merge adds other's statistics into t (both are locked, so other may still be recording).
func (t *Tracker) Merge(other *Tracker) error {
	if t == nil {
		return invalidArgument("tracker is nil")
	}
	if other == nil {
		return invalidArgument("other is nil")
	}
	if t.order == 0 || other.order == 0 {
		return ErrClosed // a zero value, never created (and without a place in the lock order)
	}
	first, second := t, other
	if t != other {
		// One order for every pair, so two goroutines merging each way cannot deadlock.
		if t.order > other.order {
			first, second = other, t
		}
		first.mu.Lock()
		defer first.mu.Unlock()
		second.mu.Lock()
		defer second.mu.Unlock()
	} else {
		t.mu.Lock()
		defer t.mu.Unlock()
	}
	if t.handle == 0 || other.handle == 0 {
		return ErrClosed
	}
	err := check(capi.Eplb_tracker_merge(capi.SwigcptrEplb_tracker(t.handle), capi.SwigcptrEplb_tracker(other.handle)))
	runtime.KeepAlive(t)
	runtime.KeepAlive(other)
	return err
}

// Reset forgets all statistics.
func (t *Tracker) Reset() error {
	return t.use(func(raw capi.Eplb_tracker) error { return check(capi.Eplb_tracker_reset(raw)) })
}

// Coactivation returns one layer's pair counts as a packed upper triangle: pair (a, b), a < b,
// at a*(2E-a-1)/2 + b-a-1.
func (t *Tracker) Coactivation(layer int) ([]float64, error) {
	var out []float64
	if err := t.use(func(raw capi.Eplb_tracker) error {
		if err := checkIndex("layer", layer, t.layers); err != nil {
			return err
		}
		out = make([]float64, t.experts*(t.experts-1)/2)
		return check(capi.Eplb_tracker_get_coactivation(raw, uint(layer), out))
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// Loads returns [layers][logical experts] at current weights, ready for Planner.Plan.
func (t *Tracker) Loads() ([]float64, error) {
	var out []float64
	if err := t.use(func(raw capi.Eplb_tracker) error {
		out = make([]float64, t.layers*t.experts)
		return check(capi.Eplb_tracker_get_loads(raw, out))
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// Samples returns one layer's sampled top-k rows, [rows][top_k] logical ids as recorded (a
// uniform sample of at most ReservoirCapacity rows), ready for Placement.NodesTouched.
func (t *Tracker) Samples(layer int) ([]int32, error) {
	var out []int32
	if err := t.use(func(raw capi.Eplb_tracker) error {
		if err := checkIndex("layer", layer, t.layers); err != nil {
			return err
		}
		var rows int64
		if err := check(capi.Eplb_tracker_get_samples(raw, uint(layer), nil, &rows)); err != nil {
			return err
		}
		out = make([]int32, int(rows)*t.topK)
		return check(capi.Eplb_tracker_get_samples(raw, uint(layer), out, &rows))
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// Options returns the tracker's options as NewTracker takes them to make an equal one (e.g. the
// TopK of a tracker from Snapshot.Tracker): ReservoirCapacity is -1 for a tracker that samples
// nothing, and WindowBatches and Decay are 0 unless the window uses them.
func (t *Tracker) Options() (TrackerOptions, error) {
	options := capi.NewEplb_tracker_options()
	defer capi.DeleteEplb_tracker_options(options)
	capi.Eplb_tracker_options_init(options)
	if err := t.use(func(raw capi.Eplb_tracker) error {
		return check(capi.Eplb_tracker_get_options(raw, options))
	}); err != nil {
		return TrackerOptions{}, err
	}
	o := TrackerOptions{Layers: uint32(options.GetNum_layers()),
		LogicalExperts: uint32(options.GetNum_logical_experts()), TopK: uint32(options.GetTop_k()),
		WindowBatches: uint32(options.GetWindow_batches()), Decay: options.GetDecay(),
		ReservoirCapacity: int(options.GetReservoir_capacity()), Seed: options.GetSeed()}
	switch window := options.GetWindow(); window {
	case uint(capi.EPLB_WINDOW_CUMULATIVE):
		o.Window = "cumulative"
	case uint(capi.EPLB_WINDOW_SLIDING):
		o.Window = "sliding"
	case uint(capi.EPLB_WINDOW_DECAY):
		o.Window = "decay"
	default: // a window of a newer library
		o.Window = fmt.Sprintf("window %d", window)
	}
	// The library keeps the unused one's default (or, loaded from a snapshot, 0 and 1).
	if o.Window != "sliding" {
		o.WindowBatches = 0
	}
	if o.Window != "decay" {
		o.Decay = 0
	}
	if o.ReservoirCapacity == 0 {
		o.ReservoirCapacity = -1
	}
	return o, nil
}

// LayerCounts returns how much layer has recorded since creation or Reset: the batches (Record
// calls; after a Merge, the larger of the two) and the tokens with at least one valid id that its
// sampler saw (0 without sampling).
func (t *Tracker) LayerCounts(layer int) (batches, tokens uint64, err error) {
	err = t.use(func(raw capi.Eplb_tracker) error {
		if err := checkIndex("layer", layer, t.layers); err != nil {
			return err
		}
		return check(capi.Eplb_tracker_get_layer_counts(raw, uint(layer), &batches, &tokens))
	})
	if err != nil {
		return 0, 0, err
	}
	return batches, tokens, nil
}

// Clone returns a new, independent tracker with t's whole state (options, counts, window,
// sampled rows and the sampler's RNG): recording the same batches into both gives the same
// statistics. E.g. plan from a clone in another goroutine while serving keeps recording into t.
// Closing either one leaves the other usable.
func (t *Tracker) Clone() (*Tracker, error) {
	var clone *Tracker
	if err := t.use(func(raw capi.Eplb_tracker) error {
		var handle uintptr
		if err := check(capi.Eplb_tracker_clone(raw, &handle)); err != nil {
			return err
		}
		clone = &Tracker{handle: handle, layers: t.layers, experts: t.experts, topK: t.topK,
			order: trackersCreated.Add(1)}
		runtime.SetFinalizer(clone, (*Tracker).Close)
		return nil
	}); err != nil {
		return nil, err
	}
	return clone, nil
}

// Close releases the tracker once the call in progress returns; later calls return ErrClosed.
// Safe to call twice, from any goroutine, and on a nil tracker (it does nothing).
func (t *Tracker) Close() error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.handle != 0 {
		capi.Eplb_tracker_destroy(capi.SwigcptrEplb_tracker(t.handle))
		t.handle = 0
		runtime.SetFinalizer(t, nil)
	}
	return nil
}
