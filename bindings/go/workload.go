package eplb

import (
	"math"
	"runtime"
	"sync"

	"eplb/internal/capi"
)

// WorkloadOptions configure the workload simulator (eplb_workload_options; see the C header for
// the model). Fields are used as given: start from DefaultWorkloadOptions.
type WorkloadOptions struct {
	Layers, Experts, TopK uint32
	Groups, TopKGroups    uint32 // TopKGroups 0: all groups
	Topics, TopicExperts  uint32 // Topics 0: none; TopicExperts 0: 2 * TopK
	SigmaMin, SigmaMax    float64
	TopicZipf, Boost      float64
	TopicPersistence      float64
	DriftRho, NoiseScale  float64
	Seed                  uint64
}

// DefaultWorkloadOptions returns the library's defaults (eplb_workload_options_init).
func DefaultWorkloadOptions() WorkloadOptions {
	n := capi.NewEplb_workload_options()
	defer capi.DeleteEplb_workload_options(n)
	capi.Eplb_workload_options_init(n)
	return WorkloadOptions{
		Layers: uint32(n.GetNum_layers()), Experts: uint32(n.GetNum_experts()), TopK: uint32(n.GetTop_k()),
		Groups: uint32(n.GetNum_groups()), TopKGroups: uint32(n.GetTopk_groups()),
		Topics: uint32(n.GetNum_topics()), TopicExperts: uint32(n.GetTopic_experts()),
		SigmaMin: n.GetSigma_min(), SigmaMax: n.GetSigma_max(), TopicZipf: n.GetTopic_zipf(),
		Boost: n.GetBoost(), TopicPersistence: n.GetTopic_persistence(),
		DriftRho: n.GetDrift_rho(), NoiseScale: n.GetNoise_scale(), Seed: uint64(n.GetSeed()),
	}
}

// Workload generates synthetic top-k routing, deterministic for a seed. Calls are serialised
// by its mutex.
type Workload struct {
	mu                    sync.Mutex
	handle                uintptr
	layers, experts, topK int
}

// NewWorkload validates the options and creates a simulator.
func NewWorkload(o WorkloadOptions) (*Workload, error) {
	n := capi.NewEplb_workload_options()
	defer capi.DeleteEplb_workload_options(n)
	capi.Eplb_workload_options_init(n)
	n.SetNum_layers(uint(o.Layers))
	n.SetNum_experts(uint(o.Experts))
	n.SetTop_k(uint(o.TopK))
	n.SetNum_groups(uint(o.Groups))
	n.SetTopk_groups(uint(o.TopKGroups))
	n.SetNum_topics(uint(o.Topics))
	n.SetTopic_experts(uint(o.TopicExperts))
	n.SetSigma_min(o.SigmaMin)
	n.SetSigma_max(o.SigmaMax)
	n.SetTopic_zipf(o.TopicZipf)
	n.SetBoost(o.Boost)
	n.SetTopic_persistence(o.TopicPersistence)
	n.SetDrift_rho(o.DriftRho)
	n.SetNoise_scale(o.NoiseScale)
	n.SetSeed(o.Seed)
	var handle uintptr
	if err := check(capi.Eplb_workload_create(n, &handle)); err != nil {
		return nil, err
	}
	w := &Workload{handle: handle, layers: int(o.Layers), experts: int(o.Experts), topK: int(o.TopK)}
	runtime.SetFinalizer(w, (*Workload).Close)
	return w, nil
}

// NextBatch generates the next batch of tokens tokens: [layers][tokens][top_k] logical ids
// (distinct within a row), e.g. the input of Tracker.Record per layer. Drifts the popularity
// afterwards. tokens must be in [1, math.MaxInt32 / (layers * top_k)]: a batch holds at most
// 2^31 - 1 ids (larger counts are an invalid argument).
func (w *Workload) NextBatch(tokens int) ([]int32, error) {
	if w == nil {
		return nil, invalidArgument("workload is nil")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.handle == 0 {
		return nil, ErrClosed
	}
	// layers and top_k are uint32 values of a created simulator, both >= 1: no overflow, no zero.
	if idsPerToken := uint64(w.layers) * uint64(w.topK); tokens <= 0 || uint64(tokens) > math.MaxInt32/idsPerToken {
		return nil, invalidArgument("tokens (%d) must be in [1, %d]: at most 2^31 - 1 ids a batch", tokens,
			math.MaxInt32/idsPerToken)
	}
	out := make([]int32, w.layers*tokens*w.topK)
	err := check(capi.Eplb_workload_next_batch(capi.SwigcptrEplb_workload(w.handle), int64(tokens), out))
	runtime.KeepAlive(w)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Close releases the simulator once the call in progress returns; later calls return ErrClosed.
// Safe to call twice, from any goroutine, and on a nil workload (it does nothing).
func (w *Workload) Close() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.handle != 0 {
		capi.Eplb_workload_destroy(capi.SwigcptrEplb_workload(w.handle))
		w.handle = 0
		runtime.SetFinalizer(w, nil)
	}
	return nil
}
