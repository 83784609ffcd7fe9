package eplb

import (
	"context"
	"errors"
	"math"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

// nearShape is the C tests' shape for plan_near: two nodes, four groups, replicas to move.
func nearShape(algorithm string) PlannerOptions {
	return PlannerOptions{Algorithm: algorithm, Layers: 4, LogicalExperts: 32, PhysicalExperts: 48,
		Groups: 4, Nodes: 2, GPUs: 8}
}

var nearAlgorithms = []string{"balanced", "balanced-hierarchical", "deepseek"}

// drifted returns loads each multiplied by a lognormal factor (sigma 0.4).
func drifted(loads []float64, rng *rand.Rand) []float64 {
	out := make([]float64, len(loads))
	for i, load := range loads {
		out[i] = load * math.Exp(0.4*rng.NormFloat64())
	}
	return out
}

func movedExperts(t *testing.T, old, new *Placement, loads []float64) uint64 {
	t.Helper()
	m, err := PlanMigration(old, new, loads, DefaultMigrationOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	summary, err := m.Summary()
	if err != nil {
		t.Fatal(err)
	}
	return summary.MovedExperts
}

func balancednessOf(t *testing.T, p *Placement, loads []float64) float64 {
	t.Helper()
	b, err := p.Balancedness(loads)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Re-planning the loads the current placement was planned for keeps every layer as it is.
func TestPlanNearKeepsThePlanOfTheSameLoads(t *testing.T) {
	if got := DefaultNearOptions().MinBalance; got != 0.998 { // the header's documented default
		t.Fatalf("DefaultNearOptions().MinBalance = %v, want 0.998", got)
	}
	for _, algorithm := range nearAlgorithms {
		o := nearShape(algorithm)
		planner := newTestPlanner(t, o)
		loads := skewedLoads(o, 1)
		current, err := planner.Plan(loads)
		if err != nil {
			t.Fatal(err)
		}
		defer current.Close()
		near, report, err := planner.PlanNear(loads, current, DefaultNearOptions())
		if err != nil {
			t.Fatalf("%s: %v", algorithm, err)
		}
		if want := (NearReport{LayersKept: int(o.Layers)}); report != want {
			t.Errorf("%s: report %+v, want %+v", algorithm, report, want)
		}
		want := phy2logOf(t)(current, nil)
		if got := phy2logOf(t)(near, nil); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the near plan of the same loads differs from the current placement", algorithm)
		}
	}
}

// With drifted loads the near plan stays within MinBalance of the fresh plan's balancedness and
// its migration moves fewer experts than the migration to the fresh plan.
func TestPlanNearStaysBalancedAndMovesFewerExperts(t *testing.T) {
	for _, algorithm := range nearAlgorithms {
		o := nearShape(algorithm)
		planner := newTestPlanner(t, o)
		rng := rand.New(rand.NewSource(5))
		oldLoads := skewedLoads(o, 5)
		current, err := planner.Plan(oldLoads)
		if err != nil {
			t.Fatal(err)
		}
		defer current.Close()
		var movedNear, movedFresh uint64
		for _, minBalance := range []float64{0.99, 0.995, 0.998, 1} {
			loads := drifted(oldLoads, rng)
			near, report, err := planner.PlanNear(loads, current, NearOptions{MinBalance: minBalance})
			if err != nil {
				t.Fatalf("%s, MinBalance %v: %v", algorithm, minBalance, err)
			}
			fresh, err := planner.Plan(loads)
			if err != nil {
				t.Fatal(err)
			}
			if sum := report.LayersKept + report.LayersRebalanced + report.LayersReplanned + report.LayersPartlyReplanned; sum != int(o.Layers) {
				t.Errorf("%s: report %+v counts %d layers, want %d", algorithm, report, sum, o.Layers)
			}
			// Per layer the target holds, so the mean balancedness does too.
			if got, floor := balancednessOf(t, near, loads), minBalance*balancednessOf(t, fresh, loads); got < floor-1e-12 {
				t.Errorf("%s, MinBalance %v: balancedness %v below %v", algorithm, minBalance, got, floor)
			}
			movedNear += movedExperts(t, current, near, loads)
			movedFresh += movedExperts(t, current, fresh, loads)
			near.Close()
			fresh.Close()
		}
		if movedNear >= movedFresh {
			t.Errorf("%s: the near plans move %d experts, the fresh plans %d", algorithm, movedNear, movedFresh)
		}
	}
}

// Bad arguments are invalid arguments naming the value; the planner plans on afterwards.
func TestPlanNearErrors(t *testing.T) {
	o := nearShape("balanced")
	planner := newTestPlanner(t, o)
	loads := skewedLoads(o, 2)
	current, err := planner.Plan(loads)
	if err != nil {
		t.Fatal(err)
	}
	defer current.Close()
	oneNode, err := PlacementFromPhy2Log(o.Layers, o.LogicalExperts, o.PhysicalExperts, 1, o.GPUs,
		phy2logOf(t)(planner.Plan(loads)))
	if err != nil {
		t.Fatal(err)
	}
	defer oneNode.Close()
	affine := newTestPlanner(t, PlannerOptions{Layers: o.Layers, LogicalExperts: o.LogicalExperts,
		PhysicalExperts: o.PhysicalExperts, Nodes: o.Nodes, GPUs: o.GPUs, Affinity: true})
	negative := append([]float64(nil), loads...)
	negative[5] = -2
	defaults := DefaultNearOptions()
	for name, call := range map[string]func() (*Placement, NearReport, error){
		"min_balance (0)": func() (*Placement, NearReport, error) { return planner.PlanNear(loads, current, NearOptions{}) },
		"min_balance (1.5)": func() (*Placement, NearReport, error) {
			return planner.PlanNear(loads, current, NearOptions{MinBalance: 1.5})
		},
		"min_balance (-0.5)": func() (*Placement, NearReport, error) {
			return planner.PlanNear(loads, current, NearOptions{MinBalance: -0.5})
		},
		"min_balance (nan)": func() (*Placement, NearReport, error) {
			return planner.PlanNear(loads, current, NearOptions{MinBalance: math.NaN()})
		},
		"num_nodes (1)":  func() (*Placement, NearReport, error) { return planner.PlanNear(loads, oneNode, defaults) },
		"current is nil": func() (*Placement, NearReport, error) { return planner.PlanNear(loads, nil, defaults) },
		"loads":          func() (*Placement, NearReport, error) { return planner.PlanNear(loads[:7], current, defaults) },
		"-2":             func() (*Placement, NearReport, error) { return planner.PlanNear(negative, current, defaults) },
		"affinity":       func() (*Placement, NearReport, error) { return affine.PlanNear(loads, current, defaults) },
		"planner is nil": func() (*Placement, NearReport, error) { return (*Planner)(nil).PlanNear(loads, current, defaults) },
		"ctx is nil":     func() (*Placement, NearReport, error) { return planner.PlanNearContext(nil, loads, current, defaults) },
	} {
		placement, report, err := call()
		if placement != nil || report != (NearReport{}) || !errors.Is(err, ErrInvalidArgument) ||
			!strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, %+v, %v; want an invalid argument naming it", name, placement, report, err)
		}
	}
	gone, err := planner.Plan(loads)
	if err != nil {
		t.Fatal(err)
	}
	gone.Close()
	if _, _, err := planner.PlanNear(loads, gone, defaults); err != ErrClosed {
		t.Errorf("closed current: %v, want ErrClosed", err)
	}
	near, report, err := planner.PlanNear(loads, current, defaults)
	if err != nil || report.LayersKept != int(o.Layers) {
		t.Fatalf("after the refusals: %+v, %v", report, err)
	}
	near.Close()
}

// PlanNear counts two steps per layer in the planner's control; PlanNearContext with a done
// context does not start, and with a live one plans as PlanNear does.
func TestPlanNearContext(t *testing.T) {
	o := nearShape("balanced-hierarchical")
	planner := newTestPlanner(t, o)
	control := newTestControl(t)
	if err := planner.SetControl(control); err != nil {
		t.Fatal(err)
	}
	loads := skewedLoads(o, 3)
	current, err := planner.Plan(loads)
	if err != nil {
		t.Fatal(err)
	}
	defer current.Close()
	moved := drifted(loads, rand.New(rand.NewSource(3)))
	before := progressOf(t, control)
	near, report, err := planner.PlanNear(moved, current, DefaultNearOptions())
	if err != nil {
		t.Fatal(err)
	}
	if got := progressOf(t, control); got.StepsTotal-before.StepsTotal != 2*uint64(o.Layers) ||
		got.StepsDone != got.StepsTotal {
		t.Errorf("progress %+v after %+v, want %d more steps, all done", got, before, 2*o.Layers)
	}
	want := phy2logOf(t)(near, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	withContext, contextReport, err := planner.PlanNearContext(ctx, moved, current, DefaultNearOptions())
	if got := phy2logOf(t)(withContext, err); !reflect.DeepEqual(got, want) || contextReport != report {
		t.Errorf("PlanNearContext plans %+v differently from PlanNear (%+v)", contextReport, report)
	}
	cancel()
	placement, report, err := planner.PlanNearContext(ctx, moved, current, DefaultNearOptions())
	if placement != nil || report != (NearReport{}) || !isCancelledBy(err, context.Canceled) {
		t.Errorf("a done context: %v, %+v, %v", placement, report, err)
	}
}
