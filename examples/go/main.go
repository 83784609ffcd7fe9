// A serving loop with libeplb: simulated batches of top-k routing recorded into a tracker, a
// re-plan every 50 batches (with a deadline) saved as a snapshot, and a restart that loads the
// snapshot at startup.
// Usage: serving-loop [directory for placement.eplb]
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"time"

	"eplb"
)

const layers, experts, topK, tokens = 4, 64, 8, 256

// route returns one batch of top-k routing: hot experts are picked more often.
func route(rng *rand.Rand, popularity []float64) []int32 {
	ids := make([]int32, 0, tokens*topK)
	order := make([]int, experts)
	score := make([]float64, experts)
	for t := 0; t < tokens; t++ {
		for e := range order {
			order[e], score[e] = e, popularity[e]*rng.Float64()
		}
		sort.Slice(order, func(a, b int) bool { return score[order[a]] > score[order[b]] })
		for _, e := range order[:topK] {
			ids = append(ids, int32(e))
		}
	}
	return ids
}

func main() {
	dir := os.TempDir()
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	path := filepath.Join(dir, "placement.eplb")
	if err := eplb.CheckVersion(); err != nil {
		log.Fatal(err)
	}
	// readme-snippet:begin (README.md, Bindings; checked by the go_readme_snippets test)
	planner, err := eplb.NewPlanner(eplb.PlannerOptions{Layers: layers, LogicalExperts: experts,
		PhysicalExperts: 80, GPUs: 8})
	if err != nil {
		log.Fatal(err)
	}
	defer planner.Close()
	// readme-snippet:end

	// Startup: a restarted server serves the last saved placement right away. A missing snapshot
	// is the first start; an unreadable or corrupt one is reported, and the server starts anyway.
	placement, label, err := eplb.LoadSnapshot(path)
	if err == nil {
		fmt.Printf("startup: loaded %s (%s)\n", path, label)
	} else {
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Printf("startup: no snapshot yet at %s; planning from uniform load\n", path)
		} else {
			fmt.Printf("startup: cannot use the snapshot (%v); planning from uniform load\n", err)
		}
		uniform := make([]float64, layers*experts)
		for i := range uniform {
			uniform[i] = 1
		}
		if placement, err = planner.Plan(uniform); err != nil {
			log.Fatal(err)
		}
	}
	defer func() { placement.Close() }() // the placement being served when main returns

	tracker, err := eplb.NewTracker(eplb.TrackerOptions{Layers: layers, LogicalExperts: experts,
		TopK: topK, Window: "sliding", WindowBatches: 100})
	if err != nil {
		log.Fatal(err)
	}
	defer tracker.Close()
	rng := rand.New(rand.NewSource(1))
	popularity := make([]float64, experts)
	for e := range popularity {
		popularity[e] = math.Exp(-float64(e)/16) + 0.05
	}
	for batch := 1; batch <= 200; batch++ {
		for layer := 0; layer < layers; layer++ {
			if err := tracker.Record(layer, route(rng, popularity)); err != nil {
				log.Fatal(err)
			}
		}
		if batch%50 == 0 {
			loads, err := tracker.Loads()
			if err != nil {
				log.Fatal(err)
			}
			before, _ := placement.Balancedness(loads)
			// readme-snippet:begin
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			next, err := planner.PlanContext(ctx, loads)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				fmt.Printf("batch %d: re-plan too slow, still serving the current placement\n", batch)
				continue
			}
			if err != nil {
				log.Fatal(err)
			}
			placement.Close()
			placement = next
			if err := placement.Save(path, loads, fmt.Sprintf("batch %d", batch)); err != nil {
				log.Fatal(err)
			}
			// readme-snippet:end
			after, _ := placement.Balancedness(loads)
			fmt.Printf("batch %d: re-planned, balancedness %.4f -> %.4f, saved %s\n", batch, before, after, path)
		}
	}
	restarted, _, err := eplb.LoadSnapshot(path)
	if err != nil {
		log.Fatal(err)
	}
	defer restarted.Close()
	a, _ := restarted.Phy2Log()
	b, _ := placement.Phy2Log()
	for i := range a {
		if a[i] != b[i] {
			log.Fatal("the loaded snapshot differs from the last plan")
		}
	}
	fmt.Printf("restart: loaded %s with the last plan\n", path)
}
