package eplb

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// Tracker.Options gives back what NewTracker took (a tracker restored with Snapshot.Tracker had no
// way to tell its TopK, which Record needs), in NewTracker's conventions.
func TestTrackerOptions(t *testing.T) {
	for _, o := range []TrackerOptions{
		{Layers: 2, LogicalExperts: 12, TopK: 2, Window: "cumulative", ReservoirCapacity: 4096, Seed: 7},
		{Layers: 3, LogicalExperts: 8, TopK: 4, Window: "sliding", WindowBatches: 5, ReservoirCapacity: 10},
		{Layers: 1, LogicalExperts: 6, TopK: 1, Window: "decay", Decay: 0.5, ReservoirCapacity: -1},
	} {
		tracker, err := NewTracker(o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tracker.Options()
		if err != nil {
			t.Fatal(err)
		}
		if got != o {
			t.Errorf("Options() = %+v, want %+v", got, o)
		}
		// Through a statistics snapshot, and back into NewTracker.
		data, err := tracker.StatisticsToBuffer("")
		if err != nil {
			t.Fatal(err)
		}
		snapshot, err := SnapshotFromBuffer(data)
		if err != nil {
			t.Fatal(err)
		}
		restored, err := snapshot.Tracker()
		if err != nil {
			t.Fatal(err)
		}
		again, err := restored.Options()
		if err != nil || again != o {
			t.Errorf("restored Options() = %+v, %v; want %+v", again, err, o)
		}
		remade, err := NewTracker(again)
		if err != nil {
			t.Errorf("NewTracker(Options()) = %v", err)
		} else if opts, _ := remade.Options(); opts != again {
			t.Errorf("NewTracker(Options()).Options() = %+v, want %+v", opts, again)
		}
		remade.Close()
		restored.Close()
		snapshot.Close()
		tracker.Close()
		if _, err := tracker.Options(); err != ErrClosed {
			t.Errorf("Options after Close: %v", err)
		}
	}
}

func TestTrackerLayerCounts(t *testing.T) {
	tracker, err := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 12, TopK: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer tracker.Close()
	for i := 0; i < 3; i++ {
		if err := tracker.Record(1, []int32{0, 1, -1, -1, 4, 5}); err != nil {
			t.Fatal(err)
		}
	}
	if batches, tokens, err := tracker.LayerCounts(1); err != nil || batches != 3 || tokens != 6 {
		t.Errorf("LayerCounts(1) = %d, %d, %v; want 3 batches of 2 sampled tokens", batches, tokens, err)
	}
	if batches, tokens, err := tracker.LayerCounts(0); err != nil || batches != 0 || tokens != 0 {
		t.Errorf("LayerCounts(0) = %d, %d, %v; want nothing", batches, tokens, err)
	}
	for _, layer := range []int{-1, 2, 1 << 32} {
		if _, _, err := tracker.LayerCounts(layer); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "layer") {
			t.Errorf("LayerCounts(%d): %v, want an invalid argument naming layer", layer, err)
		}
	}
}

// LayerMetrics agrees with Metrics and GPULoads on the same layer.
func TestLayerMetrics(t *testing.T) {
	placement := readmePlacement(t)
	defer placement.Close()
	metrics, err := placement.Metrics(weight)
	if err != nil {
		t.Fatal(err)
	}
	gpuLoads, _ := placement.GPULoads(weight)
	sum, worst := 0.0, 1.0
	for layer := 0; layer < 2; layer++ {
		m, err := placement.LayerMetrics(layer, weight[layer*12:(layer+1)*12])
		if err != nil {
			t.Fatal(err)
		}
		busiest, total := 0.0, 0.0
		for _, load := range gpuLoads[layer*8 : (layer+1)*8] {
			busiest, total = math.Max(busiest, load), total+load
		}
		if math.Abs(m.MaxGPULoad-busiest) > 1e-9 || math.Abs(m.TotalLoad-total) > 1e-9 ||
			math.Abs(m.Balancedness-m.MeanGPULoad/m.MaxGPULoad) > 1e-12 || m.MaxLoadOverBound < 1 {
			t.Errorf("layer %d: %+v; GPU loads max %v, total %v", layer, m, busiest, total)
		}
		sum, worst = sum+m.Balancedness, math.Min(worst, m.Balancedness)
	}
	if math.Abs(sum/2-metrics.Balancedness) > 1e-12 || math.Abs(worst-metrics.MinBalancedness) > 1e-12 {
		t.Errorf("layer balancedness mean %v, min %v; Metrics %+v", sum/2, worst, metrics)
	}
	for _, layer := range []int{-1, 2, 1 << 32} {
		if _, err := placement.LayerMetrics(layer, weight[:12]); !errors.Is(err, ErrInvalidArgument) ||
			!strings.Contains(err.Error(), "layer") {
			t.Errorf("LayerMetrics(%d): %v, want an invalid argument naming layer", layer, err)
		}
	}
	if _, err := placement.LayerMetrics(0, []float64{1, math.NaN()}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("LayerMetrics(short, NaN): %v", err)
	}
}

// AlgorithmName is AlgorithmID's inverse, and names SnapshotInfo.Algorithm.
func TestAlgorithmName(t *testing.T) {
	if name, err := AlgorithmName(0); err != nil || name != "default" {
		t.Errorf("AlgorithmName(0) = %q, %v", name, err)
	}
	for _, name := range []string{"deepseek", "balanced", "balanced-relaxed"} {
		id, err := AlgorithmID(name)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := AlgorithmName(id); err != nil || back != name {
			t.Errorf("AlgorithmName(AlgorithmID(%q)) = %q, %v", name, back, err)
		}
	}
	if _, err := AlgorithmName(1 << 20); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "1048576") {
		t.Errorf("AlgorithmName(unknown): %v, want an invalid argument naming the id", err)
	}
}

// MigrationRelabel prints its name (as TransferKind and Status do), not a bare number.
func TestMigrationRelabelString(t *testing.T) {
	for value, name := range map[MigrationRelabel]string{RelabelNodesAndGPUs: "nodes_and_gpus",
		RelabelGPUsInNode: "gpus_in_node", RelabelNone: "none", RelabelRepackInNode: "repack_in_node",
		9: "MigrationRelabel(9)"} {
		if got := value.String(); got != name {
			t.Errorf("MigrationRelabel(%d).String() = %q, want %q", uint32(value), got, name)
		}
	}
	if got := DefaultMigrationOptions().Relabel.String(); got != "nodes_and_gpus" {
		t.Errorf("the default relabel mode prints %q", got)
	}
}
