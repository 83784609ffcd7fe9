package eplb

import (
	"math"
	"runtime"
	"sync"

	"eplb/internal/capi"
)

// SplitWorkspace is scratch space for per-batch replica splits: after the first solve of a
// shape, a solve allocates nothing. Calls on one workspace are serialised by its mutex; a nil
// *SplitWorkspace is valid and uses a temporary workspace per call.
type SplitWorkspace struct {
	mu     sync.Mutex
	handle uintptr
}

// NewSplitWorkspace creates a workspace.
func NewSplitWorkspace() (*SplitWorkspace, error) {
	var handle uintptr
	if err := check(capi.Eplb_split_workspace_create(&handle)); err != nil {
		return nil, err
	}
	w := &SplitWorkspace{handle: handle}
	runtime.SetFinalizer(w, (*SplitWorkspace).Close)
	return w, nil
}

// Close releases the workspace once the call in progress returns; later calls return ErrClosed.
// Safe to call twice, from any goroutine, and on a nil workspace (it does nothing).
func (w *SplitWorkspace) Close() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.handle != 0 {
		capi.Eplb_split_workspace_destroy(capi.SwigcptrEplb_split_workspace(w.handle))
		w.handle = 0
		runtime.SetFinalizer(w, nil)
	}
	return nil
}

// use calls f with the C workspace (NULL for a nil w) under the mutex, or returns ErrClosed for a
// closed or zero-value workspace.
func (w *SplitWorkspace) use(f func(capi.Eplb_split_workspace) error) error {
	if w == nil {
		return f(capi.SwigcptrEplb_split_workspace(0))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.handle == 0 {
		return ErrClosed
	}
	err := f(capi.SwigcptrEplb_split_workspace(w.handle))
	runtime.KeepAlive(w)
	return err
}

// gpuLen is the common length of the per-GPU arrays a and b that are given (C takes one length
// for both and cannot check the arrays themselves); pass them through optional first.
func gpuLen(nameA string, a []float64, nameB string, b []float64) (int64, error) {
	if a != nil && b != nil && len(a) != len(b) {
		return 0, invalidArgument("%s has %d entries but %s has %d", nameA, len(a), nameB, len(b))
	}
	if a != nil {
		return int64(len(a)), nil
	}
	return int64(len(b)), nil
}

// Solve splits this batch's tokens of each logical expert of layer over its replicas so that
// the busiest GPU's weighted load is minimal (exact, in integers). counts has one entry per
// logical expert; gpuWeights (nil or empty: all 1) and gpuExtraLoad (nil or empty: all 0) one
// per GPU. Returns
// the tokens each slot of the layer takes (summing over an expert's replicas to its count) and
// the busiest GPU's weighted load.
func (w *SplitWorkspace) Solve(p *Placement, layer int, counts []int32, gpuWeights, gpuExtraLoad []float64) ([]int32, float64, error) {
	gpuWeights, gpuExtraLoad = optional(gpuWeights), optional(gpuExtraLoad)
	if p == nil {
		return nil, 0, invalidArgument("placement is nil")
	}
	var quotas []int32
	var maxLoad float64
	err := w.use(func(ws capi.Eplb_split_workspace) error {
		return p.use(func(raw capi.Eplb_placement) error {
			if err := checkIndex("layer", layer, p.shape.layers); err != nil {
				return err
			}
			n, err := gpuLen("gpuWeights", gpuWeights, "gpuExtraLoad", gpuExtraLoad)
			if err != nil {
				return err
			}
			quotas = make([]int32, p.shape.physical)
			return check(capi.Eplb_split_solve(ws, raw, uint(layer), counts, gpuWeights, gpuExtraLoad, n, quotas, &maxLoad))
		})
	})
	if err != nil {
		return nil, 0, err
	}
	return quotas, maxLoad, nil
}

// SolveByNode is Solve for tokens known by the node they come from: countsByNode is
// [logical experts][nodes]. The busiest GPU stays within (1 + slack) x Solve's optimum on the
// summed counts and, under that bound, as few tokens as possible are served off their node.
// Returns quotas [physical experts][nodes] (the tokens from node n that slot r takes), the
// busiest GPU's weighted load and the tokens served off their node.
func (w *SplitWorkspace) SolveByNode(p *Placement, layer int, countsByNode []int32, gpuWeights, gpuExtraLoad []float64, slack float64) ([]int32, float64, int64, error) {
	gpuWeights, gpuExtraLoad = optional(gpuWeights), optional(gpuExtraLoad)
	if p == nil {
		return nil, 0, 0, invalidArgument("placement is nil")
	}
	var quotas []int32
	var maxLoad float64
	var crossNode int64
	err := w.use(func(ws capi.Eplb_split_workspace) error {
		return p.use(func(raw capi.Eplb_placement) error {
			if err := checkIndex("layer", layer, p.shape.layers); err != nil {
				return err
			}
			n, err := gpuLen("gpuWeights", gpuWeights, "gpuExtraLoad", gpuExtraLoad)
			if err != nil {
				return err
			}
			quotas = make([]int32, p.shape.physical*p.shape.nodes)
			return check(capi.Eplb_split_solve_by_node(ws, raw, uint(layer), countsByNode, gpuWeights, gpuExtraLoad, n,
				slack, quotas, &maxLoad, &crossNode))
		})
	})
	if err != nil {
		return nil, 0, 0, err
	}
	return quotas, maxLoad, crossNode, nil
}

// SplitRankQuotas returns rank's share of a batch-wide split of layer, for when every rank maps
// only its own tokens: quotas is the batch-wide split ([physical experts], Solve's output on the
// counts summed over ranks), rankCounts [ranks][logical experts] each rank's entries per expert.
// Fed to every rank's quota mode, the shares make each slot take exactly its batch-wide quota.
func (p *Placement) SplitRankQuotas(layer int, quotas, rankCounts []int32, ranks, rank int) ([]int32, error) {
	var out []int32
	err := p.use(func(raw capi.Eplb_placement) error {
		if err := checkIndex("layer", layer, p.shape.layers); err != nil {
			return err
		}
		if ranks <= 0 || ranks > math.MaxUint32 {
			return invalidArgument("ranks (%d) must be in [1, 2^32)", ranks)
		}
		if err := checkIndex("rank", rank, ranks); err != nil {
			return err
		}
		out = make([]int32, p.shape.physical)
		return check(capi.Eplb_split_rank_quotas(raw, uint(layer), quotas, rankCounts, uint(ranks), uint(rank), out))
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// WaterfillOptions are the optional inputs of SharedExpertWaterfill (an empty slice is nil).
type WaterfillOptions struct {
	SourceGPU  []int32   // [tokens]: each token's source GPU, or nil if unknown
	GPUWeights []float64 // [GPUs]: nil means all 1
	// GPULoads [GPUs] is in/out: the tokens each GPU already has (nil: counted from the slots),
	// plus the shared tokens assigned, written back on success.
	GPULoads []float64
	AnyGPU   bool // every GPU is a candidate (adds traffic)
}

// SharedExpertWaterfill gives each token's shared-expert work to one GPU, deterministically.
// topkSlots is [tokens][topK] physical slots (-1 unused). Returns [tokens][topK+1]: each row
// followed by the shared expert's slot PhysicalExperts + g of the chosen GPU g (-1 for a token
// without a valid entry). Only the placement's topology matters.
func (p *Placement) SharedExpertWaterfill(topkSlots []int32, topK int, o WaterfillOptions) ([]int32, error) {
	o.SourceGPU, o.GPUWeights, o.GPULoads = optional(o.SourceGPU), optional(o.GPUWeights), optional(o.GPULoads)
	var out []int32
	err := p.use(func(raw capi.Eplb_placement) error {
		if topK <= 0 || topK >= math.MaxUint32 {
			return invalidArgument("topK (%d) must be positive", topK)
		}
		if len(topkSlots)%topK != 0 {
			return invalidArgument("topkSlots length %d is not a multiple of topK %d", len(topkSlots), topK)
		}
		tokens := len(topkSlots) / topK
		if o.SourceGPU != nil && len(o.SourceGPU) != tokens {
			return invalidArgument("SourceGPU has %d entries, want one per token (%d)", len(o.SourceGPU), tokens)
		}
		n, err := gpuLen("GPUWeights", o.GPUWeights, "GPULoads", o.GPULoads)
		if err != nil {
			return err
		}
		var flags uint
		if o.AnyGPU {
			flags |= capi.EPLB_WATERFILL_ANY_GPU
		}
		out = make([]int32, tokens*(topK+1))
		return check(capi.Eplb_shared_expert_waterfill(raw, topkSlots, int64(tokens), uint(topK), o.SourceGPU,
			o.GPUWeights, o.GPULoads, n, flags, out))
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
