package eplb

import (
	"math"
	"reflect"
	"testing"
)

func TestWorkloadSimulator(t *testing.T) {
	defaults := DefaultWorkloadOptions()
	if defaults.Layers != 1 || defaults.Experts != 256 || defaults.TopK != 8 || defaults.Topics != 32 ||
		defaults.SigmaMin != 0.5 || defaults.SigmaMax != 0.9 || defaults.DriftRho != 1 || defaults.NoiseScale != 1 {
		t.Fatalf("defaults %+v (the header's)", defaults)
	}
	o := defaults
	o.Layers, o.Experts, o.TopK, o.Seed = 2, 32, 4, 42
	a, err := NewWorkload(o)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _ := NewWorkload(o)
	defer b.Close()
	o.Seed = 43
	c, _ := NewWorkload(o)
	defer c.Close()
	tracker, _ := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 32, TopK: 4})
	defer tracker.Close()
	const tokens = 100
	want := make([]float64, 2*32)
	for batch := 0; batch < 3; batch++ {
		x, err := a.NextBatch(tokens)
		if err != nil {
			t.Fatal(err)
		}
		y, _ := b.NextBatch(tokens)
		z, _ := c.NextBatch(tokens)
		if !reflect.DeepEqual(x, y) || reflect.DeepEqual(x, z) || len(x) != 2*tokens*4 {
			t.Fatalf("batch %d: same seed equal %v, other seed equal %v, length %d", batch,
				reflect.DeepEqual(x, y), reflect.DeepEqual(x, z), len(x))
		}
		for row := 0; row < 2*tokens; row++ { // ids distinct within a row, in range
			seen := map[int32]bool{}
			for _, id := range x[row*4 : (row+1)*4] {
				if id < 0 || id >= 32 || seen[id] {
					t.Fatalf("row %d: %v", row, x[row*4:(row+1)*4])
				}
				seen[id] = true
				want[(row/tokens)*32+int(id)]++
			}
		}
		for layer := 0; layer < 2; layer++ {
			if err := tracker.Record(layer, x[layer*tokens*4:(layer+1)*tokens*4]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, _ := tracker.Loads(); !reflect.DeepEqual(got, want) {
		t.Fatalf("tracker loads %v, counted %v", got, want)
	}

	bad := defaults
	bad.TopK = bad.Experts + 1
	if _, err := NewWorkload(bad); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("top_k above experts: %v", err)
	}
	if _, err := a.NextBatch(0); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("0 tokens: %v", err)
	}
	a.Close()
	if _, err := a.NextBatch(1); err != ErrClosed {
		t.Fatalf("closed: %v", err)
	}
}

func TestPlanWindowsAndTracked(t *testing.T) {
	balanced, _ := NewPlanner(readme("balanced"))
	defer balanced.Close()
	deepseek, _ := NewPlanner(readme("deepseek"))
	defer deepseek.Close()
	phy2log := func(p *Placement, err error) []int32 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		out, _ := p.Phy2Log()
		return out
	}
	// One window is Plan; deepseek plans the sum of its windows.
	if a, b := phy2log(balanced.PlanWindows(weight, 1)), phy2log(balanced.Plan(weight)); !reflect.DeepEqual(a, b) {
		t.Fatalf("one window %v, Plan %v", a, b)
	}
	second := make([]float64, len(weight))
	sum := make([]float64, len(weight))
	for i := range weight {
		second[i] = weight[(i+5)%len(weight)]
		sum[i] = weight[i] + second[i]
	}
	if a, b := phy2log(deepseek.PlanWindows(append(append([]float64(nil), weight...), second...), 2)), phy2log(deepseek.Plan(sum)); !reflect.DeepEqual(a, b) {
		t.Fatalf("deepseek on two windows %v, on their sum %v", a, b)
	}
	if _, err := balanced.PlanWindows(weight, 0); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("0 windows: %v", err)
	}
	if _, err := balanced.PlanWindows(weight, 3); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("3 windows of 2: %v", err)
	}

	// A tracker fed by the simulator; without affinity PlanTracked is Plan on the chosen loads.
	o := DefaultWorkloadOptions()
	o.Layers, o.Experts, o.TopK, o.Seed = 2, 32, 4, 1
	workload, _ := NewWorkload(o)
	defer workload.Close()
	tracker, _ := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 32, TopK: 4})
	defer tracker.Close()
	for batch := 0; batch < 5; batch++ {
		ids, _ := workload.NextBatch(256)
		for layer := 0; layer < 2; layer++ {
			if err := tracker.Record(layer, ids[layer*256*4:(layer+1)*256*4]); err != nil {
				t.Fatal(err)
			}
		}
	}
	shape := PlannerOptions{Algorithm: "balanced", Layers: 2, LogicalExperts: 32, PhysicalExperts: 48, Nodes: 4, GPUs: 16}
	plain, _ := NewPlanner(shape)
	defer plain.Close()
	loads, _ := tracker.Loads()
	base := phy2log(plain.Plan(loads))
	if got := phy2log(plain.PlanTracked(nil, tracker)); !reflect.DeepEqual(got, base) {
		t.Fatal("PlanTracked without affinity differs from Plan on the tracker's loads")
	}
	if got, want := phy2log(plain.PlanTracked(weightsFor(64), tracker)), phy2log(plain.Plan(weightsFor(64))); !reflect.DeepEqual(got, want) {
		t.Fatal("PlanTracked with loads differs from Plan on them")
	}

	// With affinity: fewer nodes touched by the sampled rows, balance within 0.99.
	shape.Affinity = true
	affine, err := NewPlanner(shape)
	if err != nil {
		t.Fatal(err)
	}
	defer affine.Close()
	if _, err := affine.Plan(loads); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("Plan with affinity: %v", err)
	}
	tracked, err := affine.PlanTracked(nil, tracker)
	if err != nil {
		t.Fatal(err)
	}
	defer tracked.Close()
	balanceOnly, _ := plain.Plan(loads)
	defer balanceOnly.Close()
	mTracked, _ := tracked.Metrics(loads)
	mBase, _ := balanceOnly.Metrics(loads)
	var touchedTracked, touchedBase float64
	for layer := 0; layer < 2; layer++ {
		samples, err := tracker.Samples(layer)
		if err != nil || len(samples) != 5*256*4 { // fewer tokens than the reservoir: all rows
			t.Fatalf("samples %d %v", len(samples), err)
		}
		a, err1 := tracked.NodesTouched(layer, samples, 4)
		b, err2 := balanceOnly.NodesTouched(layer, samples, 4)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		touchedTracked += a
		touchedBase += b
	}
	if touchedTracked > touchedBase || mTracked.Balancedness < 0.99*mBase.Balancedness-1e-12 {
		t.Fatalf("affinity: nodes touched %v (balance-only %v), balancedness %v (balance-only %v)",
			touchedTracked, touchedBase, mTracked.Balancedness, mBase.Balancedness)
	}
	t.Logf("affinity: nodes touched %.3f -> %.3f, balancedness %.4f -> %.4f", touchedBase/2, touchedTracked/2,
		mBase.Balancedness, mTracked.Balancedness)

	if _, err := plain.PlanTracked(nil, nil); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("nil tracker: %v", err)
	}
	small, _ := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 12, TopK: 4})
	defer small.Close()
	if _, err := plain.PlanTracked(nil, small); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("tracker of another shape: %v", err)
	}
	small.Close()
	if _, err := plain.PlanTracked(nil, small); err != ErrClosed {
		t.Fatalf("closed tracker: %v", err)
	}
	plain.Close()
	if _, err := plain.PlanWindows(weight, 1); err != ErrClosed {
		t.Fatalf("closed planner: %v", err)
	}
}

// weightsFor returns n positive loads.
func weightsFor(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(1 + (i*37)%23)
	}
	return out
}

func TestMetricsExtras(t *testing.T) {
	// One slot per GPU: the optimum is min over replica counts of max load / replicas.
	layerLoads := []float64{9, 4, 2}
	one, err := PlacementFromPhy2Log(1, 3, 5, 1, 5, []int32{0, 1, 2, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	best := math.Inf(1)
	for c0 := 1; c0 <= 3; c0++ {
		for c1 := 1; c0+c1 <= 4; c1++ {
			c2 := 5 - c0 - c1
			best = math.Min(best, math.Max(9/float64(c0), math.Max(4/float64(c1), 2/float64(c2))))
		}
	}
	if got, ok, err := one.ExactOptimum(layerLoads); err != nil || !ok || math.Abs(got-best) > 1e-12 {
		t.Fatalf("exact optimum %v %v %v, brute force %v", got, ok, err, best)
	}
	// One node: the relaxed bound is the global bound, max(mean GPU load, best).
	if got, err := one.RelaxedBound(layerLoads, 0); err != nil || math.Abs(got-math.Max(15.0/5, best)) > 1e-12 {
		t.Fatalf("relaxed bound %v %v, want %v", got, err, math.Max(3, best))
	}
	three, _ := PlacementFromPhy2Log(1, 3, 6, 1, 2, []int32{0, 1, 2, 0, 1, 2})
	defer three.Close()
	if _, ok, err := three.ExactOptimum(layerLoads); err != nil || ok {
		t.Fatalf("3 slots per GPU: ok %v %v", ok, err)
	}
	if _, _, err := one.ExactOptimum(layerLoads[:2]); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("short loads: %v", err)
	}
	if _, err := one.RelaxedBound([]float64{1, math.NaN(), 1}, 0); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("NaN load: %v", err)
	}

	// Relaxed plans never beat the relaxed bound of their budget.
	options := readme("balanced-relaxed")
	options.CrossNodeBudget = 2
	relaxed, err := NewPlanner(options)
	if err != nil {
		t.Fatal(err)
	}
	defer relaxed.Close()
	plan, _ := relaxed.Plan(weight)
	defer plan.Close()
	gpu, _ := plan.GPULoads(weight)
	for layer := 0; layer < 2; layer++ {
		bound, err := plan.RelaxedBound(weight[layer*12:(layer+1)*12], 2)
		if err != nil || maxOf(gpu[layer*8:(layer+1)*8]) < bound-1e-9 {
			t.Fatalf("layer %d: busiest GPU %v below the relaxed bound %v (%v)", layer, maxOf(gpu[layer*8:(layer+1)*8]), bound, err)
		}
	}

	// Nodes touched on 2 nodes: 1 when one node holds every expert of the row, else 2.
	placement := readmePlacement(t)
	defer placement.Close()
	r := rng(9)
	for layer := 0; layer < 2; layer++ {
		onNode := [2]map[int32]bool{{}, {}}
		for s, e := range wantPhy2Log[layer*16 : (layer+1)*16] {
			onNode[s/8][e] = true
		}
		rows := make([]int32, 30*3)
		total, counted := 0.0, 0
		for i := range rows {
			rows[i] = int32(r.intn(14)) - 2
			if rows[i] < 0 {
				rows[i] = -1
			}
		}
		for row := 0; row < 30; row++ {
			valid := 0
			covered := [2]bool{true, true}
			for _, e := range rows[row*3 : (row+1)*3] {
				if e >= 0 {
					valid++
					covered[0] = covered[0] && onNode[0][e]
					covered[1] = covered[1] && onNode[1][e]
				}
			}
			if valid == 0 {
				continue
			}
			counted++
			if covered[0] || covered[1] {
				total++
			} else {
				total += 2
			}
		}
		got, err := placement.NodesTouched(layer, rows, 3)
		if err != nil || math.Abs(got-total/float64(counted)) > 1e-12 {
			t.Fatalf("layer %d: nodes touched %v %v, counted %v", layer, got, err, total/float64(counted))
		}
	}
	if _, err := placement.NodesTouched(0, []int32{0, 12}, 2); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("id 12: %v", err)
	}
	if _, err := placement.NodesTouched(0, []int32{0, 1, 2}, 2); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("ragged rows: %v", err)
	}
	if _, err := placement.NodesTouched(2, nil, 2); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("layer 2: %v", err)
	}
}

// The reservoir: at most ReservoirCapacity rows, each one of the recorded rows; none with a
// negative capacity (then affinity planning refuses); the same seed samples the same rows.
func TestTrackerReservoir(t *testing.T) {
	o := DefaultWorkloadOptions()
	o.Layers, o.Experts, o.TopK, o.Seed = 1, 16, 2, 8
	workload, _ := NewWorkload(o)
	defer workload.Close()
	ids, _ := workload.NextBatch(500)
	recorded := map[[2]int32]bool{}
	for i := 0; i < len(ids); i += 2 {
		recorded[[2]int32{ids[i], ids[i+1]}] = true
	}
	samples := func(capacity int, seed uint64) []int32 {
		tracker, err := NewTracker(TrackerOptions{Layers: 1, LogicalExperts: 16, TopK: 2, ReservoirCapacity: capacity, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		defer tracker.Close()
		if err := tracker.Record(0, ids); err != nil {
			t.Fatal(err)
		}
		out, err := tracker.Samples(0)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b, c := samples(10, 1), samples(10, 1), samples(10, 2)
	if len(a) != 20 || !reflect.DeepEqual(a, b) || reflect.DeepEqual(a, c) {
		t.Fatalf("capacity 10: %v / %v / %v", a, b, c)
	}
	for i := 0; i < len(a); i += 2 {
		if !recorded[[2]int32{a[i], a[i+1]}] {
			t.Fatalf("sampled row %v was never recorded", a[i:i+2])
		}
	}
	if all := samples(0, 0); len(all) != len(ids) { // the default holds 4096 rows
		t.Fatalf("default capacity: %d ids sampled of %d", len(all), len(ids))
	}
	if none := samples(-1, 0); len(none) != 0 {
		t.Fatalf("no reservoir: %v", none)
	}
	tracker, _ := NewTracker(TrackerOptions{Layers: 1, LogicalExperts: 16, TopK: 2, ReservoirCapacity: -1})
	defer tracker.Close()
	planner, _ := NewPlanner(PlannerOptions{Layers: 1, LogicalExperts: 16, PhysicalExperts: 24, Nodes: 2, GPUs: 4, Affinity: true})
	defer planner.Close()
	if _, err := planner.PlanTracked(nil, tracker); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("affinity without samples: %v", err)
	}
	if _, err := tracker.Samples(1); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("layer 1 of 1: %v", err)
	}
}
