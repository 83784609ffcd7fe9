package eplb

import (
	"eplb/internal/capi"
)

// LayerMetrics are one layer's balance under its loads (eplb_layer_metrics; see the C header for
// each field).
type LayerMetrics struct {
	DuplicateGPUs, MaxReplicas, CrossNodeReplicas  int
	TotalLoad, MeanGPULoad, MaxGPULoad, LowerBound float64
	Balancedness, NodeBalancedness                 float64
	MaxLoadOverBound, NodeBound                    float64
}

// LayerMetrics computes the metrics of layer under layerLoads, its [logical experts] loads.
func (p *Placement) LayerMetrics(layer int, layerLoads []float64) (LayerMetrics, error) {
	native := capi.NewEplb_layer_metrics()
	defer capi.DeleteEplb_layer_metrics(native)
	if err := p.use(func(raw capi.Eplb_placement) error {
		if err := checkIndex("layer", layer, p.shape.layers); err != nil {
			return err
		}
		return check(capi.Eplb_metrics_compute_layer(raw, uint(layer), layerLoads, native))
	}); err != nil {
		return LayerMetrics{}, err
	}
	return LayerMetrics{
		DuplicateGPUs: int(native.GetDuplicate_gpus()), MaxReplicas: int(native.GetMax_replicas()),
		CrossNodeReplicas: int(native.GetCross_node_replicas()),
		TotalLoad:         native.GetTotal_load(), MeanGPULoad: native.GetMean_gpu_load(),
		MaxGPULoad: native.GetMax_gpu_load(), LowerBound: native.GetLower_bound(),
		Balancedness: native.GetBalancedness(), NodeBalancedness: native.GetNode_balancedness(),
		MaxLoadOverBound: native.GetMax_load_over_bound(), NodeBound: native.GetNode_bound(),
	}, nil
}

// ExactOptimum returns the smallest possible busiest-GPU load of one layer's loads on the
// placement's topology (any replica counts, no two replicas of one expert on a GPU), with ok
// false when the instance is too large to solve exactly (more than two slots per GPU, or two
// with more than 16 slots per layer).
func (p *Placement) ExactOptimum(layerLoads []float64) (optimum float64, ok bool, err error) {
	err = p.use(func(raw capi.Eplb_placement) error {
		return check(capi.Eplb_metrics_exact_optimum(raw, layerLoads, &optimum))
	})
	if err != nil {
		return 0, false, err
	}
	return optimum, optimum >= 0, nil
}

// RelaxedBound returns a lower bound on the busiest GPU's load that any balanced-relaxed plan
// of one layer's loads with crossNodeBudget off-node replicas can reach on this topology.
func (p *Placement) RelaxedBound(layerLoads []float64, crossNodeBudget uint32) (float64, error) {
	var bound float64
	if err := p.use(func(raw capi.Eplb_placement) error {
		return check(capi.Eplb_metrics_relaxed_bound(raw, layerLoads, uint(crossNodeBudget), &bound))
	}); err != nil {
		return 0, err
	}
	return bound, nil
}

// NodesTouched returns the mean number of nodes a token of layer is served from, over the rows
// of rows ([rows][topK] logical ids, -1 masked, e.g. Tracker.Samples) with a valid id, by the
// node-aware replica choice of the C header (eplb_metrics_nodes_touched).
func (p *Placement) NodesTouched(layer int, rows []int32, topK int) (float64, error) {
	var mean float64
	if err := p.use(func(raw capi.Eplb_placement) error {
		if err := checkIndex("layer", layer, p.shape.layers); err != nil {
			return err
		}
		if topK <= 0 || topK > 1<<31 {
			return invalidArgument("topK (%d) must be positive", topK)
		}
		if len(rows)%topK != 0 {
			return invalidArgument("rows length %d is not a multiple of topK %d", len(rows), topK)
		}
		return check(capi.Eplb_metrics_nodes_touched(raw, uint(layer), rows, int64(len(rows)/topK), uint(topK), &mean))
	}); err != nil {
		return 0, err
	}
	return mean, nil
}
