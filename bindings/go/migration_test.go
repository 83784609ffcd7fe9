package eplb

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"sync"
	"testing"

	"eplb/internal/capi"
)

// planBoth plans the README example with deepseek (old) and balanced on other loads (new).
func planBoth(t *testing.T) (old, new *Placement, loads []float64) {
	t.Helper()
	deepseek, err := NewPlanner(readme("deepseek"))
	if err != nil {
		t.Fatal(err)
	}
	defer deepseek.Close()
	balanced, err := NewPlanner(readme("balanced"))
	if err != nil {
		t.Fatal(err)
	}
	defer balanced.Close()
	old, err = deepseek.Plan(weight)
	if err != nil {
		t.Fatal(err)
	}
	// The load moved: the new plan is made for reversed loads, and the migration judged on them.
	loads = make([]float64, len(weight))
	for i := range weight {
		loads[i] = weight[len(weight)-1-i]
	}
	new, err = balanced.Plan(loads)
	if err != nil {
		t.Fatal(err)
	}
	return old, new, loads
}

// gpuMultiset returns the sorted experts of one GPU of one layer of a phy2log map.
func gpuMultiset(phy2log []int32, physical, slotsPerGPU, layer, gpu int) []int32 {
	out := append([]int32(nil), phy2log[layer*physical+gpu*slotsPerGPU:layer*physical+(gpu+1)*slotsPerGPU]...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// overlap is the size of the multiset intersection of two sorted lists.
func overlap(a, b []int32) int {
	n, i, j := 0, 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			n, i, j = n+1, i+1, j+1
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return n
}

// replay applies the migration's transfers step by step to old's phy2log, checking every
// transfer and every intermediate placement against an independent count; it returns the final
// map and the transfers of all steps.
func replay(t *testing.T, m *Migration, old *Placement, bytesPerExpert uint64) ([]int32, []MigrationTransfer, MigrationSummary) {
	t.Helper()
	summary, err := m.Summary()
	if err != nil {
		t.Fatal(err)
	}
	state, _ := old.Phy2Log()
	R, E, spg := old.PhysicalExperts, old.LogicalExperts, old.PhysicalExperts/old.GPUs
	gpn := old.GPUs / old.Nodes
	var all []MigrationTransfer
	var counts [3]uint64
	var maxStepBytes uint64
	maxStaging := 0
	for step := 0; step < summary.Steps; step++ {
		transfers, err := m.Transfers(step)
		if err != nil {
			t.Fatal(err)
		}
		if len(transfers) == 0 {
			t.Fatalf("step %d is empty", step)
		}
		next := append([]int32(nil), state...)
		staging := map[[2]int]int{}
		for _, tr := range transfers {
			if tr.Step != step || tr.Layer < 0 || tr.Layer >= old.Layers {
				t.Fatalf("transfer %+v in step %d", tr, step)
			}
			if got := state[tr.Layer*R+tr.SrcSlot]; int(got) != tr.Expert {
				t.Fatalf("step %d: source slot %d holds %d, transfer %+v", step, tr.SrcSlot, got, tr)
			}
			if tr.SrcGPU != tr.SrcSlot/spg || tr.DstGPU != tr.DstSlot/spg {
				t.Fatalf("GPUs of %+v", tr)
			}
			kind := TransferCrossNode
			if tr.SrcGPU == tr.DstGPU {
				kind = TransferSameGPU
			} else if tr.SrcGPU/gpn == tr.DstGPU/gpn {
				kind = TransferIntraNode
			}
			if tr.Kind != kind {
				t.Fatalf("kind of %+v, want %v", tr, kind)
			}
			counts[kind]++
			staging[[2]int{tr.DstGPU, 0}]++
			next[tr.Layer*R+tr.DstSlot] = int32(tr.Expert) // all reads (state) before any write
		}
		for _, n := range staging {
			if n > maxStaging {
				maxStaging = n
			}
		}
		if b := uint64(len(transfers)) * bytesPerExpert; b > maxStepBytes {
			maxStepBytes = b
		}
		state = next
		stepPlacement, err := m.StepPlacement(step)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := stepPlacement.Phy2Log()
		stepPlacement.Close()
		if !reflect.DeepEqual(got, state) {
			t.Fatalf("step %d: placement %v, replayed %v", step, got, state)
		}
		for layer := 0; layer < old.Layers; layer++ { // every expert keeps a replica
			seen := make([]bool, E)
			for _, e := range state[layer*R : (layer+1)*R] {
				seen[e] = true
			}
			for e, ok := range seen {
				if !ok {
					t.Fatalf("step %d layer %d: expert %d has no replica", step, layer, e)
				}
			}
		}
		all = append(all, transfers...)
	}
	everything, err := m.Transfers(AllSteps)
	if err != nil || !(len(all) == 0 && len(everything) == 0 || reflect.DeepEqual(everything, all)) {
		t.Fatalf("Transfers(AllSteps) = %d transfers, %v; the steps hold %d", len(everything), err, len(all))
	}
	// The summary's counts, recomputed from the transfers.
	moved := uint64(len(all))
	if summary.MovedExperts != moved || summary.SameGPUExperts != counts[0] ||
		summary.IntraNodeExperts != counts[1] || summary.CrossNodeExperts != counts[2] {
		t.Fatalf("summary %+v; counted moved %d, kinds %v", summary, moved, counts)
	}
	if summary.MovedBytes != moved*bytesPerExpert || summary.SameGPUBytes != counts[0]*bytesPerExpert ||
		summary.IntraNodeBytes != counts[1]*bytesPerExpert || summary.CrossNodeBytes != counts[2]*bytesPerExpert ||
		summary.MaxStepBytes != maxStepBytes {
		t.Fatalf("summary bytes %+v; counted %d x %d, kinds %v, max step %d", summary, moved, bytesPerExpert, counts, maxStepBytes)
	}
	if summary.MaxStagingExperts != maxStaging {
		t.Errorf("MaxStagingExperts %d, counted %d (transfers into one GPU in one step)", summary.MaxStagingExperts, maxStaging)
	}
	if summary.NaiveExperts != uint64(old.Layers*R) {
		t.Fatalf("NaiveExperts %d", summary.NaiveExperts)
	}
	return state, all, summary
}

func TestMigrationReplayReachesTarget(t *testing.T) {
	old, new, loads := planBoth(t)
	defer old.Close()
	defer new.Close()
	opts := DefaultMigrationOptions()
	if opts.BytesPerExpert != 1 || opts.MinGain != 0.005 || opts.Relabel != RelabelNodesAndGPUs {
		t.Fatalf("defaults %+v", opts)
	}
	opts.BytesPerExpert = 1000
	m, err := PlanMigration(old, new, loads, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	final, all, summary := replay(t, m, old, 1000)
	target, err := m.Target()
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	want, _ := target.Phy2Log()
	if !summary.Complete || !reflect.DeepEqual(final, want) {
		t.Fatalf("complete %v; replayed %v, target %v", summary.Complete, final, want)
	}
	if summary.Steps == 0 || len(all) == 0 {
		t.Fatal("nothing moves between two different plans")
	}
	// After the last step of a complete schedule the step placement is the target, replica
	// order included.
	last, err := m.StepPlacement(summary.Steps - 1)
	if err != nil {
		t.Fatal(err)
	}
	lastLog2Phy, _ := last.Log2Phy()
	targetLog2Phy, _ := target.Log2Phy()
	last.Close()
	if !reflect.DeepEqual(lastLog2Phy, targetLog2Phy) {
		t.Fatalf("last step log2phy %v, target %v", lastLog2Phy, targetLog2Phy)
	}

	// The target is the new plan with its GPUs relabeled by GPUMap: every GPU ends with exactly
	// the experts of the new plan's GPU mapped onto it.
	gpuMap, err := m.GPUMap()
	if err != nil {
		t.Fatal(err)
	}
	newMap, _ := new.Phy2Log()
	oldMap, _ := old.Phy2Log()
	R, spg := old.PhysicalExperts, old.PhysicalExperts/old.GPUs
	var full, sameGPURule uint64
	for layer := 0; layer < old.Layers; layer++ {
		used := make([]bool, old.GPUs)
		for g := 0; g < old.GPUs; g++ {
			to := int(gpuMap[layer*old.GPUs+g])
			if to >= old.GPUs || used[to] {
				t.Fatalf("GPU map of layer %d is not a permutation: %v", layer, gpuMap)
			}
			used[to] = true
			if a, b := gpuMultiset(newMap, R, spg, layer, g), gpuMultiset(want, R, spg, layer, to); !reflect.DeepEqual(a, b) {
				t.Fatalf("layer %d: new GPU %d holds %v, target GPU %d holds %v", layer, g, a, to, b)
			}
			o := gpuMultiset(oldMap, R, spg, layer, g)
			full += uint64(spg - overlap(o, gpuMultiset(want, R, spg, layer, g)))
			sameGPURule += uint64(spg - overlap(o, gpuMultiset(newMap, R, spg, layer, g)))
		}
	}
	// An expert already on its GPU keeps its slot: each other slot is one transfer.
	if summary.FullMigrationExperts != full || summary.MovedExperts != full {
		t.Fatalf("FullMigrationExperts %d, moved %d; counted %d", summary.FullMigrationExperts, summary.MovedExperts, full)
	}
	if summary.SameGPURuleExperts != sameGPURule || full > sameGPURule {
		t.Fatalf("SameGPURuleExperts %d, counted %d (relabeled: %d)", summary.SameGPURuleExperts, sameGPURule, full)
	}

	// Predicted balancedness: the metrics of each placement under the loads.
	oldM, _ := old.Metrics(loads)
	newM, _ := new.Metrics(loads)
	targetM, _ := target.Metrics(loads)
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	if !summary.HasLoads || !near(summary.OldBalancedness, oldM.Balancedness) ||
		!near(summary.NewBalancedness, newM.Balancedness) || !near(summary.TargetBalancedness, targetM.Balancedness) ||
		!near(summary.Gain, targetM.Balancedness-oldM.Balancedness) || !near(targetM.Balancedness, newM.Balancedness) {
		t.Fatalf("summary %+v; metrics old %v new %v target %v", summary, oldM.Balancedness, newM.Balancedness, targetM.Balancedness)
	}
	if summary.WorthIt != (summary.Gain >= opts.MinGain) {
		t.Fatalf("worth_it %v with gain %v, min gain %v", summary.WorthIt, summary.Gain, opts.MinGain)
	}
	// The gate: a gain threshold above the gain says no; the schedule is the same.
	opts.MinGain = summary.Gain + 0.01
	strict, err := PlanMigration(old, new, loads, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close()
	if s, _ := strict.Summary(); s.WorthIt || s.MovedExperts != summary.MovedExperts {
		t.Fatalf("strict gate: %+v", s)
	}
	// ... and so does a gain per GiB above what moving 1000-byte experts gives.
	opts.MinGain = 0
	opts.MinGainPerGiB = summary.Gain/(float64(summary.MovedBytes)/(1<<30))*2 + 1
	perGiB, err := PlanMigration(old, new, loads, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer perGiB.Close()
	if s, _ := perGiB.Summary(); s.WorthIt {
		t.Fatalf("gain per GiB gate: %+v", s)
	}

	// A migration to the same plan moves nothing.
	same, err := PlanMigration(old, old, loads, DefaultMigrationOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()
	if s, _ := same.Summary(); s.Steps != 0 || s.MovedExperts != 0 || s.WorthIt {
		t.Fatalf("same plan: %+v", s)
	}
	if tr, err := same.Transfers(AllSteps); err != nil || len(tr) != 0 {
		t.Fatalf("same plan transfers %v %v", tr, err)
	}
}

func TestMigrationBudgetsAndRelabelModes(t *testing.T) {
	old, new, loads := planBoth(t)
	defer old.Close()
	defer new.Close()
	// Step limits: at most one layer and 3 experts per step (no cycle is needed here: plans
	// have replicas to spare, checked by the replay).
	opts := DefaultMigrationOptions()
	opts.MaxLayersPerStep = 1
	opts.MaxBytesPerStep = 3
	m, err := PlanMigration(old, new, loads, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	final, all, summary := replay(t, m, old, 1)
	target, _ := m.Target()
	want, _ := target.Phy2Log()
	target.Close()
	if !summary.Complete || !reflect.DeepEqual(final, want) {
		t.Fatal("a complete migration in small steps does not reach its target")
	}
	layersOf := map[int]map[int]bool{}
	perStep := map[int]int{}
	for _, tr := range all {
		if layersOf[tr.Step] == nil {
			layersOf[tr.Step] = map[int]bool{}
		}
		layersOf[tr.Step][tr.Layer] = true
		perStep[tr.Step]++
	}
	for step, layers := range layersOf {
		if len(layers) > 1 {
			t.Errorf("step %d touches layers %v", step, layers)
		}
		if perStep[step] > 3 {
			t.Errorf("step %d moves %d experts, budget 3", step, perStep[step])
		}
	}

	// A total budget (over all layers): a partial schedule within it whose replay still ends at
	// its target; a budget of the full migration completes it.
	for _, budget := range []uint64{1, 2, 5, 15, 16} {
		opts = DefaultMigrationOptions()
		opts.MaxTotalBytes = budget
		partial, err := PlanMigration(old, new, loads, opts)
		if err != nil {
			t.Fatal(err)
		}
		final, _, s := replay(t, partial, old, 1)
		target, _ := partial.Target()
		want, _ := target.Phy2Log()
		target.Close()
		partial.Close()
		if !reflect.DeepEqual(final, want) || s.MovedBytes > budget || s.MovedExperts == 0 ||
			s.Complete != (budget >= summary.FullMigrationExperts) {
			t.Fatalf("budget %d: %+v (full migration %d)", budget, s, summary.FullMigrationExperts)
		}
	}

	// Without loads: no prediction, and the gate only checks that something moves.
	noLoads, err := PlanMigration(old, new, nil, DefaultMigrationOptions())
	if err != nil {
		t.Fatal(err)
	}
	_, _, s := replay(t, noLoads, old, 1)
	noLoads.Close()
	if s.HasLoads || s.OldBalancedness != 0 || s.TargetBalancedness != 0 || s.Gain != 0 || !s.WorthIt || !s.Complete {
		t.Fatalf("without loads: %+v", s)
	}

	// Every relabel mode keeps the replay exact; without relabeling the transfers are those of
	// vLLM's rule.
	for _, mode := range []MigrationRelabel{RelabelNodesAndGPUs, RelabelGPUsInNode, RelabelNone, RelabelRepackInNode} {
		opts = DefaultMigrationOptions()
		opts.Relabel = mode
		mm, err := PlanMigration(old, new, loads, opts)
		if err != nil {
			t.Fatal(err)
		}
		final, _, s := replay(t, mm, old, 1)
		target, _ := mm.Target()
		want, _ := target.Phy2Log()
		targetCounts, _ := target.ReplicaCounts()
		targetMetrics, _ := target.Metrics(loads)
		target.Close()
		if !reflect.DeepEqual(final, want) {
			t.Fatalf("relabel %d: replay differs from the target", mode)
		}
		// Relabeling keeps every metric; repacking within nodes keeps replica counts and never
		// lowers balancedness.
		newCounts, _ := new.ReplicaCounts()
		newMetrics, _ := new.Metrics(loads)
		if !reflect.DeepEqual(targetCounts, newCounts) || targetMetrics.NodeBalancedness != newMetrics.NodeBalancedness ||
			mode != RelabelRepackInNode && math.Abs(targetMetrics.Balancedness-newMetrics.Balancedness) > 1e-12 ||
			targetMetrics.Balancedness < newMetrics.Balancedness-1e-12 {
			t.Fatalf("relabel %d: target metrics %+v, new %+v", mode, targetMetrics, newMetrics)
		}
		if mode == RelabelNone {
			gpuMap, _ := mm.GPUMap()
			for i, g := range gpuMap {
				if int(g) != i%old.GPUs {
					t.Fatalf("relabel none moved GPUs: %v", gpuMap)
				}
			}
			if s.MovedExperts != s.SameGPURuleExperts {
				t.Fatalf("relabel none moves %d, vLLM's rule %d", s.MovedExperts, s.SameGPURuleExperts)
			}
		}
		mm.Close()
	}
}

func TestMigrationErrors(t *testing.T) {
	for value, header := range map[MigrationRelabel]int{RelabelNodesAndGPUs: capi.EPLB_MIGRATION_RELABEL_NODES_AND_GPUS,
		RelabelGPUsInNode: capi.EPLB_MIGRATION_RELABEL_GPUS_IN_NODE, RelabelNone: capi.EPLB_MIGRATION_RELABEL_NONE,
		RelabelRepackInNode: capi.EPLB_MIGRATION_RELABEL_REPACK_IN_NODE} {
		if int(value) != header {
			t.Fatalf("relabel constant %d != header value %d", value, header)
		}
	}
	for value, header := range map[TransferKind]int{TransferSameGPU: capi.EPLB_TRANSFER_SAME_GPU,
		TransferIntraNode: capi.EPLB_TRANSFER_INTRA_NODE, TransferCrossNode: capi.EPLB_TRANSFER_CROSS_NODE} {
		if int(value) != header {
			t.Fatalf("transfer kind %d != header value %d", value, header)
		}
	}
	old, new, loads := planBoth(t)
	defer new.Close()
	defaults := DefaultMigrationOptions()
	other, _ := PlacementFromPhy2Log(1, 12, 16, 2, 8, wantPhy2Log[:16])
	defer other.Close()
	bad := defaults
	bad.BytesPerExpert = 0
	badRelabel := defaults
	badRelabel.Relabel = 7
	negative := append([]float64(nil), loads...)
	negative[3] = -1
	for name, call := range map[string]func() error{
		"nil old":        func() error { _, err := PlanMigration(nil, new, loads, defaults); return err },
		"shape":          func() error { _, err := PlanMigration(old, other, nil, defaults); return err },
		"loads length":   func() error { _, err := PlanMigration(old, new, loads[:5], defaults); return err },
		"negative load":  func() error { _, err := PlanMigration(old, new, negative, defaults); return err },
		"bytes 0":        func() error { _, err := PlanMigration(old, new, loads, bad); return err },
		"relabel 7":      func() error { _, err := PlanMigration(old, new, loads, badRelabel); return err },
		"nil migration":  func() error { _, err := (*Migration)(nil).Summary(); return err },
		"nil migration2": func() error { _, err := (*Migration)(nil).GPUMap(); return err },
	} {
		if err := call(); StatusOf(err) != StatusInvalidArgument {
			t.Errorf("%s: %v, want invalid argument", name, err)
		}
	}
	m, err := PlanMigration(old, new, loads, defaults)
	if err != nil {
		t.Fatal(err)
	}
	for name, step := range map[string]int{"past the end": m.Steps, "negative": -2, "huge": 1 << 40} {
		if _, err := m.Transfers(step); StatusOf(err) != StatusInvalidArgument {
			t.Errorf("Transfers(%s): %v", name, err)
		}
		if _, err := m.StepPlacement(step); StatusOf(err) != StatusInvalidArgument {
			t.Errorf("StepPlacement(%s): %v", name, err)
		}
	}
	// The migration keeps what it needs: the placements may go first.
	old.Close()
	if _, err := PlanMigration(old, new, loads, defaults); err != ErrClosed {
		t.Fatalf("closed placement: %v", err)
	}
	if target, err := m.Target(); err != nil {
		t.Fatalf("target after the placements closed: %v", err)
	} else {
		target.Close()
	}
	m.Close()
	m.Close()
	if _, err := m.Summary(); err != ErrClosed {
		t.Fatalf("Summary after Close: %v", err)
	}
	if _, err := m.Transfers(AllSteps); err != ErrClosed {
		t.Fatalf("Transfers after Close: %v", err)
	}
	if _, err := m.GPUMap(); err != ErrClosed {
		t.Fatalf("GPUMap after Close: %v", err)
	}
	if _, err := m.Target(); err != ErrClosed {
		t.Fatalf("Target after Close: %v", err)
	}
	if _, err := m.StepPlacement(0); err != ErrClosed {
		t.Fatalf("StepPlacement after Close: %v", err)
	}
}

// A larger instance from the simulator (4 layers, 64 experts on 16 GPUs of 4 nodes, 6 slots
// each), every option combination replayed.
func TestMigrationSimulatedLoads(t *testing.T) {
	o := DefaultWorkloadOptions()
	o.Layers, o.Experts, o.TopK, o.Groups, o.TopKGroups, o.Seed = 4, 64, 6, 8, 4, 3
	o.DriftRho = 0.5 // the load moves between batches
	workload, _ := NewWorkload(o)
	defer workload.Close()
	loadsOf := func() []float64 {
		ids, _ := workload.NextBatch(512)
		loads := make([]float64, 4*64)
		for i, id := range ids {
			loads[(i/(512*6))*64+int(id)]++
		}
		return loads
	}
	before, after := loadsOf(), loadsOf()
	shape := PlannerOptions{Layers: 4, LogicalExperts: 64, PhysicalExperts: 96, Groups: 8, Nodes: 4, GPUs: 16}
	shape.Algorithm = "deepseek"
	deepseek, _ := NewPlanner(shape)
	defer deepseek.Close()
	shape.Algorithm = "balanced-relaxed"
	shape.CrossNodeBudget = 4
	relaxed, _ := NewPlanner(shape)
	defer relaxed.Close()
	old, err := deepseek.Plan(before)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	new, err := relaxed.Plan(after)
	if err != nil {
		t.Fatal(err)
	}
	defer new.Close()
	for _, relabel := range []MigrationRelabel{RelabelNodesAndGPUs, RelabelGPUsInNode, RelabelNone, RelabelRepackInNode} {
		for _, budget := range [][3]uint64{{0, 0, 0}, {0, 7, 1}, {40, 0, 0}, {25, 5, 2}} {
			opts := DefaultMigrationOptions()
			opts.Relabel = relabel
			opts.BytesPerExpert = 1 << 20
			opts.MaxTotalBytes, opts.MaxBytesPerStep = budget[0]<<20, budget[1]<<20
			opts.MaxLayersPerStep = uint32(budget[2])
			m, err := PlanMigration(old, new, after, opts)
			if err != nil {
				t.Fatal(err)
			}
			final, _, s := replay(t, m, old, 1<<20)
			target, _ := m.Target()
			want, _ := target.Phy2Log()
			target.Close()
			m.Close()
			if !reflect.DeepEqual(final, want) || budget[0] == 0 && !s.Complete ||
				budget[0] > 0 && (s.MovedBytes > budget[0]<<20 || budget[0] < s.FullMigrationExperts && s.Complete) {
				t.Fatalf("relabel %d budget %v: %+v", relabel, budget, s)
			}
		}
	}
}

// Goroutines planning migrations between two placements each way round, reading a shared
// migration, while the placements and the migration are closed (go test -race runs this).
func TestMigrationConcurrentUseAndClose(t *testing.T) {
	for round := 0; round < 10; round++ {
		a, b, loads := planBoth(t)
		shared, err := PlanMigration(a, b, loads, DefaultMigrationOptions())
		if err != nil {
			t.Fatal(err)
		}
		want, _ := shared.Transfers(AllSteps)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					from, to := a, b
					if g%2 == 1 {
						from, to = b, a
					}
					if m, err := PlanMigration(from, to, loads, DefaultMigrationOptions()); err == nil {
						m.Close()
					} else if err != ErrClosed {
						errs <- err
						return
					}
					got, err := shared.Transfers(AllSteps)
					if err == ErrClosed {
						continue
					}
					if err != nil || !reflect.DeepEqual(got, want) {
						errs <- fmt.Errorf("shared transfers: %v", err)
						return
					}
				}
			}(g)
		}
		a.Close()
		shared.Close()
		b.Close()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}
