package eplb

import (
	"math"
	"reflect"
	"sort"
	"sync"
	"testing"
)

// rng is a small deterministic generator for the tests' random instances.
type rng uint64

func (r *rng) intn(n int) int {
	*r = *r*6364136223846793005 + 1442695040888963407
	return int(uint64(*r>>33) % uint64(n))
}

// weightedLoads returns each GPU's weighted load for a layer's quotas.
func weightedLoads(quotas []int32, slotsPerGPU int, weights, extra []float64) []float64 {
	out := make([]float64, len(weights))
	for g := range out {
		sum := extra[g]
		for s := g * slotsPerGPU; s < (g+1)*slotsPerGPU; s++ {
			sum += float64(quotas[s])
		}
		out[g] = weights[g] * sum
	}
	return out
}

func maxOf(values []float64) float64 {
	m := math.Inf(-1)
	for _, v := range values {
		m = math.Max(m, v)
	}
	return m
}

// Solve against a brute force over every integer split on a tiny placement: 3 GPUs of 2 slots,
// experts 0 and 1 replicated on two GPUs each.
func TestSplitSolveMatchesBruteForce(t *testing.T) {
	phy2log := []int32{0, 1, 0, 2, 1, 3}
	placement, err := PlacementFromPhy2Log(1, 4, 6, 1, 3, phy2log)
	if err != nil {
		t.Fatal(err)
	}
	defer placement.Close()
	workspace, err := NewSplitWorkspace()
	if err != nil {
		t.Fatal(err)
	}
	defer workspace.Close()
	r := rng(7)
	for trial := 0; trial < 50; trial++ {
		counts := []int32{int32(r.intn(20)), int32(r.intn(20)), int32(r.intn(10)), int32(r.intn(10))}
		weights := []float64{1, float64(1 + r.intn(3)), 1.5}
		extra := []float64{float64(r.intn(5)), 0, float64(r.intn(5))}
		best := math.Inf(1)
		for x0 := int32(0); x0 <= counts[0]; x0++ {
			for x1 := int32(0); x1 <= counts[1]; x1++ {
				q := []int32{x0, x1, counts[0] - x0, counts[2], counts[1] - x1, counts[3]}
				best = math.Min(best, maxOf(weightedLoads(q, 2, weights, extra)))
			}
		}
		ws := workspace
		if trial%2 == 1 {
			ws = nil // a temporary workspace
		}
		quotas, maxLoad, err := ws.Solve(placement, 0, counts, weights, extra)
		if err != nil {
			t.Fatal(err)
		}
		sums := make([]int32, 4)
		for s, q := range quotas {
			if q < 0 {
				t.Fatalf("negative quota %v", quotas)
			}
			sums[phy2log[s]] += q
		}
		if !reflect.DeepEqual(sums, counts) {
			t.Fatalf("quotas %v sum to %v, counts %v", quotas, sums, counts)
		}
		if got := maxOf(weightedLoads(quotas, 2, weights, extra)); got != maxLoad || math.Abs(maxLoad-best) > 1e-9 {
			t.Fatalf("counts %v weights %v extra %v: max load %v (from quotas %v), brute force %v", counts, weights, extra, maxLoad, got, best)
		}
	}
	// Default weights (all 1) and no extra load.
	quotas, maxLoad, err := workspace.Solve(placement, 0, []int32{4, 4, 0, 0}, nil, nil)
	if err != nil || maxLoad != 3 {
		t.Fatalf("quotas %v max %v %v, want max 3", quotas, maxLoad, err)
	}
}

// SolveByNode against a brute force on 4 GPUs of one slot on 2 nodes, each expert with one
// replica per node: the busiest GPU within (1 + slack) of the optimum, then the fewest tokens
// served off their node.
func TestSplitSolveByNodeMatchesBruteForce(t *testing.T) {
	phy2log := []int32{0, 1, 0, 1} // slots 0, 1 on node 0; 2, 3 on node 1
	placement, err := PlacementFromPhy2Log(1, 2, 4, 2, 4, phy2log)
	if err != nil {
		t.Fatal(err)
	}
	defer placement.Close()
	workspace, _ := NewSplitWorkspace()
	defer workspace.Close()
	r := rng(3)
	for trial := 0; trial < 40; trial++ {
		c := []int32{int32(r.intn(8)), int32(r.intn(8)), int32(r.intn(8)), int32(r.intn(8))} // [expert][node]
		weights := []float64{1, float64(1 + r.intn(2)), 1, 1}
		slack := []float64{0, 0.25}[trial%2]
		// Slot s = e + 2*node(s); a[e][n] tokens of expert e from node n go to node 0's replica.
		type outcome struct{ max, cross float64 }
		var all []outcome
		for a00 := int32(0); a00 <= c[0]; a00++ {
			for a01 := int32(0); a01 <= c[1]; a01++ {
				for a10 := int32(0); a10 <= c[2]; a10++ {
					for a11 := int32(0); a11 <= c[3]; a11++ {
						q := []int32{a00 + a01, a10 + a11, c[0] - a00 + c[1] - a01, c[2] - a10 + c[3] - a11}
						cross := float64(a01 + a11 + (c[0] - a00) + (c[2] - a10))
						all = append(all, outcome{maxOf(weightedLoads(q, 1, weights, make([]float64, 4))), cross})
					}
				}
			}
		}
		optimum := math.Inf(1)
		for _, o := range all {
			optimum = math.Min(optimum, o.max)
		}
		fewest := math.Inf(1)
		for _, o := range all {
			if o.max <= optimum*(1+slack)+1e-9 {
				fewest = math.Min(fewest, o.cross)
			}
		}
		quotas, maxLoad, cross, err := workspace.SolveByNode(placement, 0, c, weights, nil, slack)
		if err != nil {
			t.Fatal(err)
		}
		// Recount from the quotas [slot][node].
		summed := make([]int32, 4)
		perExpertNode := make([]int32, 4)
		counted := int64(0)
		for s := 0; s < 4; s++ {
			for n := 0; n < 2; n++ {
				q := quotas[s*2+n]
				summed[s] += q
				perExpertNode[int(phy2log[s])*2+n] += q
				if s/2 != n {
					counted += int64(q)
				}
			}
		}
		if !reflect.DeepEqual(perExpertNode, c) || counted != cross {
			t.Fatalf("quotas %v: per expert and node %v (counts %v), cross %d (reported %d)", quotas, perExpertNode, c, counted, cross)
		}
		if got := maxOf(weightedLoads(summed, 1, weights, make([]float64, 4))); got != maxLoad || maxLoad > optimum*(1+slack)+1e-9 {
			t.Fatalf("max load %v (quotas give %v), optimum %v, slack %v", maxLoad, got, optimum, slack)
		}
		if float64(cross) != fewest {
			t.Fatalf("counts %v weights %v slack %v: %d cross-node tokens, brute force %v", c, weights, slack, cross, fewest)
		}
		// Solve on the summed counts has the same optimum.
		_, solveMax, err := workspace.Solve(placement, 0, []int32{c[0] + c[1], c[2] + c[3]}, weights, nil)
		if err != nil || math.Abs(solveMax-optimum) > 1e-9 {
			t.Fatalf("Solve max %v, brute force %v, %v", solveMax, optimum, err)
		}
	}
}

func TestSplitRankQuotasMatchIntervals(t *testing.T) {
	placement := readmePlacement(t)
	defer placement.Close()
	log2phy, _ := placement.Log2Phy()
	X, E, R := placement.Log2PhyWidth, placement.LogicalExperts, placement.PhysicalExperts
	r := rng(11)
	const ranks = 4
	for layer := 0; layer < 2; layer++ {
		rankCounts := make([]int32, ranks*E)
		total := make([]int32, E)
		for i := range rankCounts {
			rankCounts[i] = int32(r.intn(9))
			total[i%E] += rankCounts[i]
		}
		quotas, _, err := (*SplitWorkspace)(nil).Solve(placement, layer, total, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		sum := make([]int32, R)
		for rank := 0; rank < ranks; rank++ {
			got, err := placement.SplitRankQuotas(layer, quotas, rankCounts, ranks, rank)
			if err != nil {
				t.Fatal(err)
			}
			// Oracle: rank owns entries [O, O + c) of each expert, replica k (log2phy order)
			// takes [Q, Q + q); the share is the intersection.
			want := make([]int32, R)
			for e := 0; e < E; e++ {
				O := int32(0)
				for g := 0; g < rank; g++ {
					O += rankCounts[g*E+e]
				}
				c := rankCounts[rank*E+e]
				Q := int32(0)
				for k := 0; k < X; k++ {
					slot := log2phy[(layer*E+e)*X+k]
					if slot < 0 {
						break
					}
					q := quotas[slot]
					lo, hi := max32(O, Q), min32(O+c, Q+q)
					if hi > lo {
						want[slot] = hi - lo
					}
					Q += q
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("layer %d rank %d: %v, want %v", layer, rank, got, want)
			}
			for s, v := range got {
				sum[s] += v
			}
		}
		if !reflect.DeepEqual(sum, quotas) {
			t.Fatalf("rank shares sum to %v, quotas %v", sum, quotas)
		}
	}
	quotas := make([]int32, R)
	if _, err := placement.SplitRankQuotas(0, quotas, make([]int32, 2*E), 2, 2); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("rank 2 of 2: %v", err)
	}
	bad := make([]int32, 2*E)
	bad[0] = 5 // expert 0 has 5 entries but quotas summing to 0
	if _, err := placement.SplitRankQuotas(0, quotas, bad, 2, 0); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("quotas not summing to the entries: %v", err)
	}
	if _, err := placement.SplitRankQuotas(0, quotas, bad[:5], 2, 0); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("short rank counts: %v", err)
	}
}

func min32(a, b int32) int32 {
	if a < b {
		return a
	}
	return b
}

func max32(a, b int32) int32 {
	if a > b {
		return a
	}
	return b
}

// The waterfill against a Go re-implementation of the header's rule: tokens with fewer
// candidates first (then token order), each to the candidate with the smallest weighted load
// after taking it, ties to its source GPU, then the lowest GPU.
func TestSharedExpertWaterfillMatchesRule(t *testing.T) {
	placement := readmePlacement(t) // 16 slots on 8 GPUs
	defer placement.Close()
	const tokens, topK, G, P = 40, 3, 8, 16
	r := rng(5)
	for trial := 0; trial < 10; trial++ {
		slots := make([]int32, tokens*topK)
		for i := range slots {
			slots[i] = int32(r.intn(P+4)) - 4 // about a fifth unused (-1 .. -4 -> -1)
			if slots[i] < 0 {
				slots[i] = -1
			}
		}
		for k := 0; k < topK; k++ {
			slots[7*topK+k] = -1 // token 7 has no valid entry
		}
		source := make([]int32, tokens)
		for i := range source {
			source[i] = int32(r.intn(G))
		}
		weights := make([]float64, G)
		loads := make([]float64, G)
		for g := range weights {
			weights[g] = float64(1 + r.intn(2))
			loads[g] = float64(r.intn(6))
		}
		anyGPU := trial%3 == 2
		// Oracle.
		want := make([]int32, tokens*(topK+1))
		wantLoads := append([]float64(nil), loads...)
		candidates := make([][]int, tokens)
		var order []int
		for tok := 0; tok < tokens; tok++ {
			copy(want[tok*(topK+1):], slots[tok*topK:(tok+1)*topK])
			set := map[int]bool{}
			for _, s := range slots[tok*topK : (tok+1)*topK] {
				if s >= 0 {
					set[int(s)/2] = true
				}
			}
			if len(set) == 0 {
				want[tok*(topK+1)+topK] = -1
				continue
			}
			set[int(source[tok])] = true
			if anyGPU {
				for g := 0; g < G; g++ {
					set[g] = true
				}
			}
			for g := range set {
				candidates[tok] = append(candidates[tok], g)
			}
			sort.Ints(candidates[tok])
			order = append(order, tok)
		}
		sort.SliceStable(order, func(i, j int) bool { return len(candidates[order[i]]) < len(candidates[order[j]]) })
		for _, tok := range order {
			best := -1
			for _, g := range candidates[tok] {
				if best < 0 {
					best = g
					continue
				}
				a, b := weights[g]*(wantLoads[g]+1), weights[best]*(wantLoads[best]+1)
				if a < b || a == b && g == int(source[tok]) && best != int(source[tok]) {
					best = g
				}
			}
			wantLoads[best]++
			want[tok*(topK+1)+topK] = int32(P + best)
		}
		gotLoads := append([]float64(nil), loads...)
		got, err := placement.SharedExpertWaterfill(slots, topK,
			WaterfillOptions{SourceGPU: source, GPUWeights: weights, GPULoads: gotLoads, AnyGPU: anyGPU})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotLoads, wantLoads) {
			t.Fatalf("trial %d:\n got %v\nwant %v\nloads %v, want %v", trial, got, want, gotLoads, wantLoads)
		}
	}
	// Without loads or sources: every shared slot is one of the token's GPUs.
	slots := []int32{0, 5, -1, 15, -1, -1, -1, -1}
	got, err := placement.SharedExpertWaterfill(slots, 2, WaterfillOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got[2] != 16+0 && got[2] != 16+2 || got[5] != 16+7 || got[8] != -1 || got[11] != -1 {
		t.Fatalf("waterfill %v", got)
	}
	for name, o := range map[string]WaterfillOptions{
		"source length": {SourceGPU: []int32{0}},
		"gpu lengths":   {GPUWeights: make([]float64, 8), GPULoads: make([]float64, 7)},
		"gpu count":     {GPUWeights: []float64{1, 1}},
		"source range":  {SourceGPU: []int32{0, 8, 0, 0}},
		"zero weight":   {GPUWeights: make([]float64, 8)},
	} {
		if _, err := placement.SharedExpertWaterfill(slots, 2, o); StatusOf(err) != StatusInvalidArgument {
			t.Errorf("%s: %v, want invalid argument", name, err)
		}
	}
	if _, err := placement.SharedExpertWaterfill(slots, 3, WaterfillOptions{}); StatusOf(err) != StatusInvalidArgument {
		t.Errorf("ragged rows: %v", err)
	}
	if _, err := placement.SharedExpertWaterfill([]int32{16, 0}, 2, WaterfillOptions{}); StatusOf(err) != StatusInvalidArgument {
		t.Errorf("slot out of range: %v", err)
	}
}

func TestSplitErrorsAndConcurrency(t *testing.T) {
	placement := readmePlacement(t)
	workspace, _ := NewSplitWorkspace()
	counts := make([]int32, 12)
	for i := range counts {
		counts[i] = int32(i)
	}
	negative := append([]int32(nil), counts...)
	negative[4] = -1
	for name, call := range map[string]func() error{
		"counts length": func() error { _, _, err := workspace.Solve(placement, 0, counts[:3], nil, nil); return err },
		"negative":      func() error { _, _, err := workspace.Solve(placement, 0, negative, nil, nil); return err },
		"layer":         func() error { _, _, err := workspace.Solve(placement, 2, counts, nil, nil); return err },
		"layer 2^32":    func() error { _, _, err := workspace.Solve(placement, 1<<32, counts, nil, nil); return err },
		"gpu lengths": func() error {
			_, _, err := workspace.Solve(placement, 0, counts, make([]float64, 8), make([]float64, 4))
			return err
		},
		"gpu count":     func() error { _, _, err := workspace.Solve(placement, 0, counts, nil, make([]float64, 4)); return err },
		"nil placement": func() error { _, _, err := workspace.Solve(nil, 0, counts, nil, nil); return err },
		"by node counts": func() error {
			_, _, _, err := workspace.SolveByNode(placement, 0, counts, nil, nil, 0)
			return err
		},
		"by node slack": func() error {
			_, _, _, err := workspace.SolveByNode(placement, 0, append(counts, counts...), nil, nil, math.NaN())
			return err
		},
	} {
		if err := call(); StatusOf(err) != StatusInvalidArgument {
			t.Errorf("%s: %v, want invalid argument", name, err)
		}
	}
	// Goroutines sharing one workspace (serialised) and using their own.
	var wg sync.WaitGroup
	want, wantMax, _ := workspace.Solve(placement, 1, counts, nil, nil)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			ws := workspace
			if g%2 == 1 {
				ws, _ = NewSplitWorkspace()
				defer ws.Close()
			}
			for i := 0; i < 50; i++ {
				got, max, err := ws.Solve(placement, 1, counts, nil, nil)
				if err != nil || max != wantMax || !reflect.DeepEqual(got, want) {
					t.Errorf("goroutine %d: %v %v %v", g, got, max, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	workspace.Close()
	workspace.Close()
	if _, _, err := workspace.Solve(placement, 0, counts, nil, nil); err != ErrClosed {
		t.Fatalf("closed workspace: %v", err)
	}
	placement.Close()
	if _, _, err := (*SplitWorkspace)(nil).Solve(placement, 0, counts, nil, nil); err != ErrClosed {
		t.Fatalf("closed placement: %v", err)
	}
	if _, err := placement.SharedExpertWaterfill([]int32{0}, 1, WaterfillOptions{}); err != ErrClosed {
		t.Fatalf("closed placement: %v", err)
	}
}
