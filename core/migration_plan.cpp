#include "migration_plan.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <queue>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "assignment.hpp"
#include "error.hpp"
#include "loads.hpp"
#include "metrics.hpp"

namespace eplb {

namespace {

using Row = std::span<const std::int32_t>;

// Sorted experts of each GPU of a layer: [gpus][slots_per_gpu].
std::vector<std::int32_t> sorted_gpu_contents(const Topology& topology, Row row) {
  std::vector<std::int32_t> sorted(row.begin(), row.end());
  const std::size_t per_gpu = topology.slots_per_gpu();
  for (std::size_t gpu = 0; gpu < topology.num_gpus; ++gpu) {
    const auto first = sorted.begin() + static_cast<std::ptrdiff_t>(gpu * per_gpu);
    std::sort(first, first + static_cast<std::ptrdiff_t>(per_gpu));
  }
  return sorted;
}

// Size of the multiset intersection of two sorted ranges.
std::int64_t common_count(const std::int32_t* a, const std::int32_t* b, std::size_t n) {
  std::size_t i = 0, j = 0;
  std::int64_t common = 0;
  while (i < n && j < n) {
    if (a[i] < b[j]) {
      ++i;
    } else if (b[j] < a[i]) {
      ++j;
    } else {
      ++common, ++i, ++j;
    }
  }
  return common;
}

// Best assignment of new GPUs [new_first, +count) to old GPUs [old_first, +count); writes the old
// GPU of each new GPU into map and returns the experts kept.
std::int64_t assign_block(const std::vector<std::int32_t>& old_sorted,
                          const std::vector<std::int32_t>& new_sorted, std::size_t per_gpu,
                          std::size_t new_first, std::size_t old_first, std::size_t count,
                          std::uint32_t* map) {
  std::vector<std::int64_t> weights(count * count);
  for (std::size_t b = 0; b < count; ++b) {
    for (std::size_t a = 0; a < count; ++a) {
      weights[b * count + a] = common_count(new_sorted.data() + (new_first + b) * per_gpu,
                                            old_sorted.data() + (old_first + a) * per_gpu, per_gpu);
    }
  }
  const auto columns = max_weight_assignment(weights, count);
  std::int64_t kept = 0;
  for (std::size_t b = 0; b < count; ++b) {
    map[b] = static_cast<std::uint32_t>(old_first + columns[b]);
    kept += weights[b * count + columns[b]];
  }
  return kept;
}

// One slot change of a layer: `slot` must end up holding `expert`.
struct Change {
  std::uint32_t slot = 0;
  std::int32_t expert = 0;
};

// Changes applied together (a cycle of single-replica experts, or one change), in layer order.
struct Group {
  std::uint32_t layer = 0;
  std::uint32_t first = 0;  // index into the layer's ordered changes
  std::uint32_t count = 0;
  double gain = 0;  // balancedness gain of the layer (not yet divided by the layer count)
};

// The evolving content of one layer: phy2log, replica counts and the slots of each expert.
class LayerState {
 public:
  // With `gpu_counts`, also the replicas of each expert on each GPU, where that table is small.
  LayerState(const Topology& topology, Row row, bool gpu_counts = false)
      : topology_(topology),
        row_(row.begin(), row.end()),
        counts_(topology.num_logical, 0),
        slots_(topology.num_logical) {
    const std::uint64_t cells = std::uint64_t{topology.num_logical} * topology.num_gpus;
    if (gpu_counts && cells <= kMaxGpuCountCells) gpu_counts_.assign(cells, 0);
    for (std::uint32_t slot = 0; slot < row_.size(); ++slot) {
      const auto expert = static_cast<std::size_t>(row_[slot]);
      ++counts_[expert];
      slots_[expert].push_back(slot);
      if (has_gpu_counts()) ++gpu_counts_[cell(row_[slot], slot)];
    }
  }
  [[nodiscard]] std::int32_t at(std::uint32_t slot) const { return row_[slot]; }
  [[nodiscard]] bool has_gpu_counts() const { return !gpu_counts_.empty(); }
  // Replicas of `expert` on `gpu` (needs has_gpu_counts()).
  [[nodiscard]] std::uint32_t count_on(std::int32_t expert, std::uint32_t gpu) const {
    return gpu_counts_[static_cast<std::size_t>(expert) * topology_.num_gpus + gpu];
  }
  [[nodiscard]] std::int32_t count(std::int32_t expert) const {
    return counts_[static_cast<std::size_t>(expert)];
  }
  [[nodiscard]] const std::vector<std::uint32_t>& slots_of(std::int32_t expert) const {
    return slots_[static_cast<std::size_t>(expert)];
  }
  [[nodiscard]] const std::vector<std::int32_t>& row() const { return row_; }
  // The change keeps every expert placed when its slot's expert has another replica.
  [[nodiscard]] bool can_apply_alone(const Change& change) const {
    return count(row_[change.slot]) >= 2;
  }
  void apply(const Change& change) {
    const std::int32_t old_expert = row_[change.slot];
    auto& old_slots = slots_[static_cast<std::size_t>(old_expert)];
    old_slots.erase(std::find(old_slots.begin(), old_slots.end(), change.slot));
    --counts_[static_cast<std::size_t>(old_expert)];
    ++counts_[static_cast<std::size_t>(change.expert)];
    slots_[static_cast<std::size_t>(change.expert)].push_back(change.slot);
    row_[change.slot] = change.expert;
    if (has_gpu_counts()) {
      --gpu_counts_[cell(old_expert, change.slot)];
      ++gpu_counts_[cell(change.expert, change.slot)];
    }
  }
  void gpu_loads(std::span<const double> loads, std::vector<double>& out) const {
    // Each replica's share once per expert, then one pass over the slots in GPU order.
    shares_.resize(counts_.size());
    for (std::size_t e = 0; e < counts_.size(); ++e) {
      shares_[e] = counts_[e] > 0 ? loads[e] / counts_[e] : 0.0;
    }
    out.assign(topology_.num_gpus, 0.0);
    const std::uint32_t per_gpu = topology_.slots_per_gpu();
    for (std::uint32_t gpu = 0, slot = 0; gpu < topology_.num_gpus; ++gpu) {
      double& load = out[gpu];
      for (const std::uint32_t end = slot + per_gpu; slot < end; ++slot) {
        load += shares_[static_cast<std::size_t>(row_[slot])];
      }
    }
  }

 private:
  static constexpr std::uint64_t kMaxGpuCountCells = std::uint64_t{1} << 22;  // 16 MiB
  [[nodiscard]] std::size_t cell(std::int32_t expert, std::uint32_t slot) const {
    return static_cast<std::size_t>(expert) * topology_.num_gpus + topology_.gpu_of_slot(slot);
  }

  const Topology& topology_;
  std::vector<std::int32_t> row_;
  std::vector<std::int32_t> counts_;
  std::vector<std::vector<std::uint32_t>> slots_;
  std::vector<std::uint32_t> gpu_counts_;  // [expert][gpu] when has_gpu_counts()
  mutable std::vector<double> shares_;     // gpu_loads' scratch: load / replicas per expert
};

double max_of(const std::vector<double>& values) {
  return values.empty() ? 0.0 : *std::max_element(values.begin(), values.end());
}

// Scores single changes under the load model: the busiest GPU and the sum of squared GPU loads
// after the change, computed from the GPUs the change touches only.
class ChangeScorer {
 public:
  ChangeScorer(const Topology& topology, std::span<const double> loads)
      : topology_(topology),
        loads_(loads),
        gpu_of_(topology.num_physical),
        stamp_(topology.num_gpus, 0),
        delta_(topology.num_gpus) {
    for (std::uint32_t slot = 0; slot < topology.num_physical; ++slot) {
      gpu_of_[slot] = topology.gpu_of_slot(slot);  // a table: no division on the hot path
    }
  }
  [[nodiscard]] std::uint32_t gpu_of(std::uint32_t slot) const { return gpu_of_[slot]; }

  void refresh(const LayerState& state) {
    state.gpu_loads(loads_, gpu_loads_);
    order_.resize(gpu_loads_.size());
    for (std::uint32_t g = 0; g < order_.size(); ++g) order_[g] = g;
    std::sort(order_.begin(), order_.end(), [&](std::uint32_t a, std::uint32_t b) {
      return gpu_loads_[a] > gpu_loads_[b] || (gpu_loads_[a] == gpu_loads_[b] && a < b);
    });
  }
  [[nodiscard]] double current_max() const { return gpu_loads_[order_.front()]; }
  [[nodiscard]] std::uint32_t busiest() const { return order_.front(); }
  [[nodiscard]] const std::vector<std::uint32_t>& gpus_by_load() const { return order_; }
  [[nodiscard]] double load_of(std::uint32_t gpu) const { return gpu_loads_[gpu]; }

  // The GPUs the change last scored or staged (score, score_swap or stage) touched.
  [[nodiscard]] std::size_t touched_gpus() const { return touched_.size(); }
  // The change of sum over GPUs of max(0, load - target)^2 by the change last scored or staged
  // (score, score_swap or stage): only the GPUs it touched change.
  [[nodiscard]] double excess_change(double target) const {
    double change = 0;
    for (std::uint32_t gpu : touched_) {
      const double before = std::max(0.0, gpu_loads_[gpu] - target);
      const double after = std::max(0.0, gpu_loads_[gpu] + delta_[gpu] - target);
      change += after * after - before * before;
    }
    return change;
  }

  // (max GPU load, change in the sum of squares) after two changes that trade experts a and b
  // between two slots: replica counts stay, only the two GPUs change.
  std::pair<double, double> score_swap(const LayerState& state, const Change& first,
                                       const Change& second) {
    ++epoch_;
    touched_.clear();
    const std::int32_t a = state.at(first.slot), b = first.expert;
    const double weight_a = loads_[static_cast<std::size_t>(a)] / state.count(a);
    const double weight_b = loads_[static_cast<std::size_t>(b)] / state.count(b);
    add(gpu_of_[first.slot], weight_b - weight_a);
    add(gpu_of_[second.slot], weight_a - weight_b);
    return finish();
  }
  // What excess_change would return after score_swap of a trade between slots of two different
  // GPUs (the same sums in the same order), without its bookkeeping: it touches 2 GPUs.
  [[nodiscard]] double swap_excess_change(const LayerState& state, const Change& first,
                                          const Change& second, double target) const {
    const std::int32_t a = state.at(first.slot), b = first.expert;
    const double weight_a = loads_[static_cast<std::size_t>(a)] / state.count(a);
    const double weight_b = loads_[static_cast<std::size_t>(b)] / state.count(b);
    const auto change_at = [&](std::uint32_t gpu, double delta) {
      const double before = std::max(0.0, gpu_loads_[gpu] - target);
      const double after = std::max(0.0, gpu_loads_[gpu] + delta - target);
      return after * after - before * before;
    };
    double change = 0;
    change += change_at(gpu_of_[first.slot], weight_b - weight_a);
    change += change_at(gpu_of_[second.slot], weight_a - weight_b);
    return change;
  }

  // Sums, for every expert, the loads of the GPUs of its slots (for score_bounds).
  void sum_expert_gpu_loads(const LayerState& state) {
    expert_gpu_loads_.assign(topology_.num_logical, 0.0);
    for (std::uint32_t slot = 0; slot < state.row().size(); ++slot) {
      expert_gpu_loads_[static_cast<std::size_t>(state.at(slot))] += gpu_loads_[gpu_of_[slot]];
    }
  }

  // Bounds, up to rounding, on score(state, change) in O(1) (needs state.has_gpu_counts() and
  // sum_expert_gpu_loads): (a lower bound on the max GPU load, a lower bound on the change in
  // the sum of squares). The max is at least the load after the change of the changed slot's
  // GPU and of the busiest GPUs. The change in the sum of squares is sum(2 L d + d^2) over the
  // GPUs, with L a GPU's load and d its change: the linear part follows from the experts' summed
  // GPU loads, and of the d^2 (all >= 0) only the changed slot's GPU's is kept.
  [[nodiscard]] std::pair<double, double> score_bounds(const LayerState& state,
                                                       const Change& change) const {
    const std::int32_t a = state.at(change.slot);
    const std::int32_t b = change.expert;
    const double load_a = loads_[static_cast<std::size_t>(a)];
    const double load_b = loads_[static_cast<std::size_t>(b)];
    const double count_a = state.count(a), count_b = state.count(b);
    const double raise_a = load_a / (count_a - 1) - load_a / count_a;  // on a's other slots
    const double lower_b = load_b / (count_b + 1) - load_b / count_b;  // on b's slots
    const double slot_change = load_b / (count_b + 1) - load_a / count_a;
    const std::uint32_t gpu = gpu_of_[change.slot];
    const auto change_of = [&](std::uint32_t g) {
      const double others_of_a = state.count_on(a, g) - (g == gpu ? 1.0 : 0.0);
      return others_of_a * raise_a + state.count_on(b, g) * lower_b +
             (g == gpu ? slot_change : 0.0);
    };
    const double at_gpu = gpu_loads_[gpu];
    const double change_at_gpu = change_of(gpu);
    double max_load = at_gpu + change_at_gpu;
    for (std::size_t k = 0; k < std::min<std::size_t>(kBoundGpus, order_.size()); ++k) {
      max_load = std::max(max_load, gpu_loads_[order_[k]] + change_of(order_[k]));
    }
    const double linear = raise_a * (expert_gpu_loads_[static_cast<std::size_t>(a)] - at_gpu) -
                          load_a / count_a * at_gpu +
                          lower_b * expert_gpu_loads_[static_cast<std::size_t>(b)] +
                          load_b / (count_b + 1) * at_gpu;
    return {max_load, 2 * linear + change_at_gpu * change_at_gpu};
  }

  // An upper bound on the gain (current max - max, -change in the sum of squares) of a single
  // change, from score_bounds with room for rounding.
  [[nodiscard]] std::pair<double, double> gain_upper_bound(const LayerState& state,
                                                           const Change& change) const {
    const auto [max_load, squares] = score_bounds(state, change);
    const double current = current_max();
    double first = current - max_load + 1e-9 * current;
    // A change that leaves the busiest GPU alone keeps it in the max: its gain there is <= 0
    // exactly, which lets the second part decide against a best that keeps the max too.
    const std::uint32_t top = order_.front();
    if (gpu_of_[change.slot] != top && state.count_on(state.at(change.slot), top) == 0 &&
        state.count_on(change.expert, top) == 0) {
      first = std::min(first, 0.0);
    }
    // The rounding room never below the smallest normal square (subnormal loads squared).
    const double square_scale = std::max(current * current, std::numeric_limits<double>::min());
    const double second = -squares + 1e-9 * square_scale * static_cast<double>(gpu_loads_.size());
    // Loads so large that the squares overflow bound nothing.
    const double inf = std::numeric_limits<double>::infinity();
    return {std::isfinite(first) ? first : inf, std::isfinite(second) ? second : inf};
  }

  // (max GPU load, change in the sum of squares) after the change.
  std::pair<double, double> score(const LayerState& state, const Change& change) {
    stage(state, change);
    return finish();
  }
  // The GPU load changes of the change, for excess_change and touched_gpus only. They depend on
  // the counts and slots of the slot's expert and the new one, and on the slot's GPU.
  void stage(const LayerState& state, const Change& change) {
    ++epoch_;
    touched_.clear();
    const std::int32_t a = state.at(change.slot);
    const std::int32_t b = change.expert;
    const double load_a = loads_[static_cast<std::size_t>(a)];
    const double load_b = loads_[static_cast<std::size_t>(b)];
    const double count_a = state.count(a), count_b = state.count(b);
    const double raise_a = load_a / (count_a - 1) - load_a / count_a;
    for (std::uint32_t slot : state.slots_of(a)) {
      add(gpu_of_[slot], slot == change.slot ? -load_a / count_a : raise_a);
    }
    const double lower_b = load_b / (count_b + 1) - load_b / count_b;
    for (std::uint32_t slot : state.slots_of(b)) add(gpu_of_[slot], lower_b);
    add(gpu_of_[change.slot], load_b / (count_b + 1));
  }

 private:
  std::pair<double, double> finish() {
    double max_load = 0, squares = 0;
    for (std::uint32_t gpu : touched_) {
      const double before = gpu_loads_[gpu], after = before + delta_[gpu];
      max_load = std::max(max_load, after);
      squares += after * after - before * before;
    }
    for (std::uint32_t gpu : order_) {
      if (stamp_[gpu] != epoch_) {
        max_load = std::max(max_load, gpu_loads_[gpu]);
        break;
      }
    }
    return {max_load, squares};
  }

  void add(std::uint32_t gpu, double delta) {
    if (stamp_[gpu] != epoch_) {
      stamp_[gpu] = epoch_;
      delta_[gpu] = 0;
      touched_.push_back(gpu);
    }
    delta_[gpu] += delta;
  }

  static constexpr std::size_t kBoundGpus = 3;  // busiest GPUs in score_bounds' max

  const Topology& topology_;
  std::span<const double> loads_;
  std::vector<std::uint32_t> gpu_of_;
  std::vector<double> gpu_loads_;
  std::vector<double> expert_gpu_loads_;
  std::vector<std::uint32_t> order_;
  std::vector<std::uint64_t> stamp_;
  std::vector<double> delta_;
  std::vector<std::uint32_t> touched_;
  std::uint64_t epoch_ = 0;
};

// What plan_near's excess descent (rebalance_layer) knows of its copies' scores from earlier
// steps. A copy of expert x onto slot s, over its expert y, changes the loads of the GPUs of x's
// and y's slots (s's GPU among them) by amounts set by the replica counts of x and y: its excess
// change stays exactly the same (the same doubles summed in the same order) until a step
// changes the replicas of x or y or the load of one of those GPUs. A step can change the loads
// only of the GPUs that hold, after it, an expert it writes or overwrites (a copy changes those
// experts' shares; a trade, only its two slots' GPUs); forget stamps every expert on those GPUs
// (the written and overwritten experts among them: each keeps a replica), and a score is kept
// while neither of its experts is stamped after it. The table is made per layer that reaches
// the descent, up to 16 MiB.
class CopyScoreCache {
 public:
  struct Score {
    double excess_change = 0;
    std::uint32_t touched_gpus = 0;
  };
  // Whether the table (an entry per expert and slot, 16 bytes each) is small enough to make.
  static bool fits(const Topology& topology) {
    return std::uint64_t{topology.num_logical} * topology.num_physical <= kMaxEntries;
  }
  explicit CopyScoreCache(const Topology& topology)
      : slots_(topology.num_physical),
        per_gpu_(topology.slots_per_gpu()),
        entries_(std::size_t{topology.num_logical} * topology.num_physical),
        expert_stamp_(topology.num_logical, 0),
        gpu_seen_(topology.num_gpus, 0) {}

  // The score of copying `x` onto `slot`, if stored since the last step that changed it.
  [[nodiscard]] std::optional<Score> find(const LayerState& state, std::int32_t x,
                                          std::uint32_t slot) const {
    const Entry& entry = entries_[index(x, slot)];
    const std::uint32_t since = std::max(expert_stamp_[static_cast<std::size_t>(x)],
                                         expert_stamp_[static_cast<std::size_t>(state.at(slot))]);
    if (entry.version == 0 || entry.version < since) return std::nullopt;
    return Score{entry.excess_change, entry.touched_gpus};
  }
  void store(std::int32_t x, std::uint32_t slot, Score score) {
    entries_[index(x, slot)] = {score.excess_change, score.touched_gpus, version_};
  }
  // After a step (already applied to `state`) that wrote or overwrote `experts`.
  void forget(const LayerState& state, std::span<const std::int32_t> experts,
              const ChangeScorer& scorer) {
    ++version_;
    for (const std::int32_t expert : experts) {
      for (const std::uint32_t slot : state.slots_of(expert)) {
        const std::uint32_t gpu = scorer.gpu_of(slot);
        if (gpu_seen_[gpu] == version_) continue;
        gpu_seen_[gpu] = version_;
        for (std::uint32_t j = 0; j < per_gpu_; ++j) {
          expert_stamp_[static_cast<std::size_t>(state.at(gpu * per_gpu_ + j))] = version_;
        }
      }
    }
  }

 private:
  static constexpr std::uint64_t kMaxEntries = std::uint64_t{1} << 20;  // 256 experts x 4096
  struct Entry {
    double excess_change = 0;
    std::uint32_t touched_gpus = 0;
    std::uint32_t version = 0;  // 0: never scored
  };
  static_assert(sizeof(Entry) == 16);
  [[nodiscard]] std::size_t index(std::int32_t x, std::uint32_t slot) const {
    return static_cast<std::size_t>(x) * slots_ + slot;
  }

  std::size_t slots_;
  std::uint32_t per_gpu_;
  std::vector<Entry> entries_;
  std::vector<std::uint32_t> expert_stamp_;  // the last step that changed a GPU of the expert
  std::vector<std::uint32_t> gpu_seen_;      // forget's marks
  std::uint32_t version_ = 1;
};

// Whether to bound changes (ChangeScorer::score_bounds) before scoring them: it pays where
// experts have two or more replicas on average, since a score walks all of them; with about one
// replica per expert a score costs no more than its bound.
bool worth_bounding(const Topology& topology) {
  return topology.num_physical >= 2 * std::uint64_t{topology.num_logical};
}

// Whether a change whose gain is at most `bound` (as ChangeScorer::gain_upper_bound, part by
// part) may beat `best` (compared as pairs).
bool may_beat(std::pair<double, double> bound, std::pair<double, double> best) {
  return bound.first > best.first || (bound.first >= best.first && bound.second > best.second);
}

// Orders a layer's changes into groups, each leaving every expert with a replica. Appends the
// ordered changes to `ordered` and the groups to `groups`. `bound_changes`: bound single changes
// before scoring them where worth_bounding (the same choices, faster).
void order_layer(const Topology& topology, std::uint32_t layer, Row old_row,
                 std::span<const std::int32_t> target_row, std::span<const double> layer_loads,
                 bool bound_changes, std::vector<Change>& ordered, std::vector<Group>& groups) {
  LayerState state(topology, old_row,
                   bound_changes && !layer_loads.empty() && worth_bounding(topology));
  std::vector<Change> remaining;
  for (std::uint32_t slot = 0; slot < old_row.size(); ++slot) {
    if (old_row[slot] != target_row[slot]) remaining.push_back({slot, target_row[slot]});
  }
  const bool with_loads = !layer_loads.empty();
  double total = 0;
  for (double load : layer_loads) total += load;
  ChangeScorer scorer(topology, layer_loads);
  std::vector<double> gpu_loads;
  double max_before = 0;
  if (with_loads) {
    state.gpu_loads(layer_loads, gpu_loads);
    max_before = max_of(gpu_loads);
  }
  const std::uint32_t base = static_cast<std::uint32_t>(ordered.size());
  std::vector<Change> group;
  // (from, to) -> the first remaining change from expert `from` to expert `to`
  std::unordered_map<std::uint64_t, std::size_t> swap_index;
  const auto swap_key = [](std::int32_t from, std::int32_t to) {
    return std::uint64_t{static_cast<std::uint32_t>(from)} << 32 | static_cast<std::uint32_t>(to);
  };
  while (!remaining.empty()) {
    group.clear();
    std::size_t best = remaining.size(), partner = remaining.size();
    // Improvement per expert moved: of the busiest GPU, then of the sum of squared loads.
    std::pair<double, double> best_gain{0, 0};
    if (with_loads) {
      scorer.refresh(state);
      const double current = scorer.current_max();
      const auto consider = [&](std::pair<double, double> score, double experts, std::size_t i,
                                std::size_t j) {
        const std::pair<double, double> gain{(current - score.first) / experts,
                                             -score.second / experts};
        if (best == remaining.size() || gain > best_gain) {
          best = i;
          partner = j;
          best_gain = gain;
        }
      };
      // Trades of two experts between two slots (often the last replica of both) score as a
      // unit, so that they are not all left for the end.
      swap_index.clear();
      swap_index.reserve(remaining.size());
      for (std::size_t i = 0; i < remaining.size(); ++i) {
        swap_index.emplace(swap_key(state.at(remaining[i].slot), remaining[i].expert), i);
      }
      // With the replica table, a single change is scored only if its score bounds show it may
      // beat the best so far (which it must strictly, so the choice is the full scan's).
      if (state.has_gpu_counts()) scorer.sum_expert_gpu_loads(state);
      for (std::size_t i = 0; i < remaining.size(); ++i) {
        if (state.can_apply_alone(remaining[i]) &&
            (best == remaining.size() || !state.has_gpu_counts() ||
             may_beat(scorer.gain_upper_bound(state, remaining[i]), best_gain))) {
          consider(scorer.score(state, remaining[i]), 1.0, i, remaining.size());
        }
        const auto match =
            swap_index.find(swap_key(remaining[i].expert, state.at(remaining[i].slot)));
        if (match != swap_index.end() && match->second > i) {
          consider(scorer.score_swap(state, remaining[i], remaining[match->second]), 2.0, i,
                   match->second);
        }
      }
    } else {
      for (std::size_t i = 0; i < remaining.size(); ++i) {
        if (state.can_apply_alone(remaining[i])) {
          best = i;
          break;
        }
      }
    }
    if (best < remaining.size()) {
      group.push_back(remaining[best]);
      if (partner < remaining.size()) {
        group.push_back(remaining[partner]);
        remaining.erase(remaining.begin() + static_cast<std::ptrdiff_t>(partner));
      }
      remaining.erase(remaining.begin() + static_cast<std::ptrdiff_t>(best));
    } else {
      // Every remaining change overwrites the last replica of its expert. That expert must be
      // written elsewhere by another remaining change; following these links closes a cycle,
      // which keeps every replica count when applied at once.
      std::vector<std::size_t> path{0};
      std::vector<std::size_t> position(remaining.size(), remaining.size());
      position[0] = 0;
      while (true) {
        const std::int32_t needed = state.at(remaining[path.back()].slot);
        std::size_t next = remaining.size();
        for (std::size_t i = 0; i < remaining.size(); ++i) {
          if (remaining[i].expert == needed) {
            next = i;
            break;
          }
        }
        EPLB_ASSERT(next < remaining.size());
        if (position[next] != remaining.size()) {
          path.erase(path.begin(), path.begin() + static_cast<std::ptrdiff_t>(position[next]));
          break;
        }
        position[next] = path.size();
        path.push_back(next);
      }
      for (std::size_t i : path) group.push_back(remaining[i]);
      std::sort(path.begin(), path.end(), std::greater<>());
      for (std::size_t i : path)
        remaining.erase(remaining.begin() + static_cast<std::ptrdiff_t>(i));
    }
    for (const Change& change : group) state.apply(change);
    Group record;
    record.layer = layer;
    record.first = static_cast<std::uint32_t>(ordered.size()) - base;
    record.count = static_cast<std::uint32_t>(group.size());
    if (with_loads) {
      state.gpu_loads(layer_loads, gpu_loads);
      const double max_after = max_of(gpu_loads);
      record.gain = balancedness_of(total, topology.num_gpus, max_after) -
                    balancedness_of(total, topology.num_gpus, max_before);
      max_before = max_after;
    }
    ordered.insert(ordered.end(), group.begin(), group.end());
    groups.push_back(record);
  }
}

// The most (slot, slot) pairs the rebalance of one layer looks at (a second or two where moves
// touch many GPUs): a DeepSeek-V3 layer (9 slots per GPU, 288 slots) would need 6 400 moves to
// reach it, more than it has slots; layouts with very many slots per GPU (256 experts on 4096
// slots, 128 per GPU) stop after 32 moves.
constexpr std::uint64_t kMaxRebalancePairsPerLayer = std::uint64_t{1} << 25;

// The most work plan_near's excess descent does per layer, in GPUs touched by the moves it
// scores, within the cap above. Each of its steps scores every move from every GPU above the
// target, without bounds, and a move touches every GPU holding either expert, so on layouts
// with many replicas per expert the descent used to fill the whole cap on a layer that then fell
// back to the fresh plan anyway (2.6 s per layer for 32 experts on 1536 slots, 48 replicas
// each). The most any layer of the 132 pairs of DeepSeek-V3 recordings needs is 4.6e7 (2^26 is
// 6.7e7).
constexpr std::uint64_t kMaxExcessWorkPerLayer = std::uint64_t{1} << 26;

// The alternative for a small budget: rebalance the old placement itself, one move at a time,
// each the best for the busiest GPU per expert moved: a replica of one of its experts onto a
// slot of another GPU whose expert keeps another replica, or a trade of one of its experts with
// an expert of another GPU (of the same node when `same_node_only`, for hierarchical plans, and
// then a replica is copied only onto its group's node, `home_node`, so no replica leaves its
// node). No slot is written twice. Stops when no move lowers the busiest GPU, when the busiest GPU
// is at most `stop_at_max`, after `max_changes` slot changes, before its pairs pass
// kMaxRebalancePairsPerLayer, or (in plan_near's excess descent) once its work has passed
// kMaxExcessWorkPerLayer (counted as if every score were computed, cached or not).
// `bound_changes` as for order_layer, and also whether the excess descent keeps its copies'
// scores between steps (CopyScoreCache) and scores trades in place (the same choices, faster).
void rebalance_layer(const Topology& topology, std::uint32_t layer, Row old_row,
                     std::span<const double> layer_loads, std::size_t max_changes,
                     bool same_node_only, bool bound_changes, std::vector<Change>& ordered,
                     std::vector<Group>& groups, double stop_at_max = -1.0,
                     bool rewrite_slots = false) {
  // (The budgeted migration keeps its moves as they were: its old placement may be of another
  // policy than the new plan, with groups split across nodes.)
  const std::vector<std::uint32_t> home_node = same_node_only && rewrite_slots
                                                   ? group_home_nodes(topology, old_row)
                                                   : std::vector<std::uint32_t>{};
  LayerState state(topology, old_row, bound_changes && worth_bounding(topology));
  ChangeScorer scorer(topology, layer_loads);
  const std::uint32_t per_gpu = topology.slots_per_gpu();
  const auto num_slots = static_cast<std::uint32_t>(old_row.size());
  std::vector<char> used(num_slots, 0);
  double total = 0;
  for (double load : layer_loads) total += load;
  // Which experts the GPU that moves leave holds, and which GPUs hold the expert that moves (a
  // mark each, set per source GPU and per source slot of a scan: the state does not change
  // during one).
  std::vector<std::uint64_t> on_source(topology.num_logical, 0), on_gpu(topology.num_gpus, 0);
  std::uint64_t source_mark = 0, expert_mark = 0;
  const auto mark_source = [&](std::uint32_t gpu) {
    ++source_mark;
    for (std::uint32_t j = 0; j < per_gpu; ++j) {
      on_source[static_cast<std::size_t>(state.at(gpu * per_gpu + j))] = source_mark;
    }
  };
  const auto source_holds = [&](std::int32_t expert) {
    return on_source[static_cast<std::size_t>(expert)] == source_mark;
  };
  const auto mark_expert = [&](std::int32_t expert) {
    ++expert_mark;
    for (const std::uint32_t slot : state.slots_of(expert))
      on_gpu[scorer.gpu_of(slot)] = expert_mark;
  };
  const auto holds_marked_expert = [&](std::uint32_t gpu) { return on_gpu[gpu] == expert_mark; };
  // With `rewrite_slots` a slot may be written again, and a move costs the slots it changes
  // from `old_row` that were not changed yet (writing a slot's old expert back earns one); a
  // move that costs nothing or earns counts as half an expert per slot it earns back.
  const auto slot_cost = [&](std::uint32_t slot, std::int32_t expert) {
    return int{expert != old_row[slot]} - int{state.at(slot) != old_row[slot]};
  };
  const auto move_cost = [&](int changes_count, int cost) {
    if (!rewrite_slots) return static_cast<double>(changes_count);
    return cost > 0 ? static_cast<double>(cost) : std::ldexp(0.5, cost);
  };
  const auto base = static_cast<std::uint32_t>(ordered.size());
  std::size_t changes = 0;
  // Each move looks at every (slot of the busiest GPU, other slot) pair, twice with the seed.
  const std::uint64_t pairs_per_move = std::uint64_t{per_gpu} * num_slots * 2;
  std::uint64_t pairs_seen = 0;
  // Whether a move that newly changes `cost` slots fits: without rewrites a single change always
  // does (the loop stops at max_changes), a trade needs two; with rewrites `changes` is the
  // slots that differ from the old row, and a move that changes none costs nothing.
  const auto fits = [&](int size, int cost) {
    if (!rewrite_slots) return size == 1 || changes + 2 <= max_changes;
    return changes + static_cast<std::size_t>(std::max(cost, 0)) <= max_changes;
  };
  bool excess_phase = false;
  std::uint64_t excess_work = 0;
  std::unique_ptr<CopyScoreCache> copy_scores;  // in the excess descent, where it fits
  while ((rewrite_slots ? changes <= max_changes : changes < max_changes) &&
         pairs_seen + pairs_per_move <= kMaxRebalancePairsPerLayer) {
    pairs_seen += pairs_per_move;
    scorer.refresh(state);
    const double current = scorer.current_max();
    if (current <= 0 || current <= stop_at_max) break;
    if (state.has_gpu_counts()) scorer.sum_expert_gpu_loads(state);
    const std::uint32_t busiest = scorer.busiest();
    // A copy of x onto another GPU of the busiest's node (same_node_only) must stay home.
    const auto may_copy_from = [&](std::int32_t x, std::uint32_t gpu) {
      return home_node.empty() ||
             home_node[static_cast<std::size_t>(x)] == topology.node_of_gpu(gpu);
    };
    const auto may_copy = [&](std::int32_t x) { return may_copy_from(x, busiest); };
    std::pair<double, double> best_gain{0, 0};
    Change first{}, second{};
    int best_size = 0;
    const auto consider = [&](std::pair<double, double> score, int size, double cost, Change a,
                              Change b) {
      const std::pair<double, double> gain{(current - score.first) / cost, -score.second / cost};
      if (gain.first > current * 1e-12 && (best_size == 0 || gain > best_gain)) {
        best_gain = gain;
        best_size = size;
        first = a;
        second = b;
      }
    };
    // Moves of expert x (on slot s1 of the busiest GPU) onto slot s: `visit(s1, s)` for each.
    // (This scan and its two visits are the planner's hot loop; inlined by force, as GCC 12
    // makes out-of-line calls of them in a function this size, 17-25 % slower.)
    const auto for_each_move = [&](const auto& visit) __attribute__((always_inline)) {
      mark_source(busiest);
      for (std::uint32_t i = 0; i < per_gpu; ++i) {
        const std::uint32_t s1 = busiest * per_gpu + i;
        const std::int32_t x = state.at(s1);
        mark_expert(x);
        for (std::uint32_t s = 0; s < num_slots; ++s) {
          const std::uint32_t gpu = scorer.gpu_of(s);
          if (gpu == busiest || (used[s] && !rewrite_slots)) continue;
          if (same_node_only && topology.node_of_gpu(gpu) != topology.node_of_gpu(busiest)) {
            continue;
          }
          const std::int32_t y = state.at(s);
          if (y == x || holds_marked_expert(gpu)) continue;
          visit(s1, s);
        }
      }
    };
    // Single moves are bounded first (state.has_gpu_counts()), and the one with the highest
    // bound is scored: the scan below skips every single move whose bound is below its gain,
    // so it still takes the first of the best moves in its order.
    if (!excess_phase) {
      // Gains and their bounds are per unit of cost (1 per change without rewrites).
      const auto per_cost = [](std::pair<double, double> gain, double cost) {
        return std::pair<double, double>{gain.first / cost, gain.second / cost};
      };
      std::pair<double, double> seed_gain{-std::numeric_limits<double>::infinity(), 0};
      if (state.has_gpu_counts()) {
        std::pair<double, double> top_bound{-std::numeric_limits<double>::infinity(), 0};
        Change top{};
        double top_cost = 1;
        for_each_move([&](std::uint32_t s1, std::uint32_t s) __attribute__((always_inline)) {
          if (state.count(state.at(s)) < 2 || !may_copy(state.at(s1))) return;
          const Change change{s, state.at(s1)};
          if (!fits(1, slot_cost(s, change.expert))) return;
          const double cost = move_cost(1, slot_cost(s, change.expert));
          const auto bound = per_cost(scorer.gain_upper_bound(state, change), cost);
          if (bound > top_bound) {
            top_bound = bound;
            top = change;
            top_cost = cost;
          }
        });
        if (top_bound.first > current * 1e-12) {
          const auto score = scorer.score(state, top);
          seed_gain = per_cost({current - score.first, -score.second}, top_cost);
        }
      }
      for_each_move([&](std::uint32_t s1, std::uint32_t s) __attribute__((always_inline)) {
        const std::int32_t x = state.at(s1), y = state.at(s);
        const double cost = move_cost(1, slot_cost(s, x));
        // Scored unless its gain bound shows it cannot lower the busiest GPU or beat the best.
        if (state.count(y) >= 2 && may_copy(x) && fits(1, slot_cost(s, x)) &&
            (!state.has_gpu_counts() || [&] {
              const auto bound = per_cost(scorer.gain_upper_bound(state, {s, x}), cost);
              return bound.first > current * 1e-12 && !(bound < seed_gain) &&
                     (best_size == 0 || may_beat(bound, best_gain));
            }())) {
          consider(scorer.score(state, {s, x}), 1, cost, {s, x}, {});
        }
        if ((!used[s1] || rewrite_slots) && !source_holds(y)) {
          const int trade_cost = slot_cost(s1, y) + slot_cost(s, x);
          if (fits(2, trade_cost)) {
            consider(scorer.score_swap(state, {s1, y}, {s, x}), 2, move_cost(2, trade_cost),
                     {s1, y}, {s, x});
          }
        }
      });
    }
    // Stuck: no move lowers the busiest GPU. With a target (plan_near), descend instead on the
    // excess over it, sum of max(0, load - target)^2, by moves from every GPU above it; the excess
    // falls strictly, so this ends, and at 0 every GPU meets the target.
    if (best_size == 0 && rewrite_slots && stop_at_max > 0) excess_phase = true;
    if (excess_phase) {
      const double target = stop_at_max;
      const double floor = 1e-12 * target * target;
      double best_excess = 0;
      // Each scored move costs the GPUs it touches (all replicas of both experts for a copy, two
      // for a trade); the descent stops, choosing nothing, once they pass the layer's budget.
      // (A copy's score found in the cache counts as if scored again: the cache saves time,
      // and the budget, and so the plan, stay as they were without it.)
      bool within_budget = true;
      const auto consider_excess = [&](int size, double cost, CopyScoreCache::Score score, Change a,
                                       Change b) {
        excess_work += score.touched_gpus;
        if (excess_work > kMaxExcessWorkPerLayer) within_budget = false;
        const double excess = score.excess_change;
        if (excess < -floor && -excess / cost > best_excess) {
          best_excess = -excess / cost;
          best_size = size;
          first = a;
          second = b;
        }
      };
      if (!copy_scores && bound_changes && CopyScoreCache::fits(topology)) {
        copy_scores = std::make_unique<CopyScoreCache>(topology);
      }
      for (const std::uint32_t gpu : scorer.gpus_by_load()) {
        if (scorer.load_of(gpu) <= target || !within_budget) break;
        pairs_seen += std::uint64_t{per_gpu} * num_slots;
        mark_source(gpu);
        for (std::uint32_t i = 0; i < per_gpu && within_budget; ++i) {
          const std::uint32_t s1 = gpu * per_gpu + i;
          const std::int32_t x = state.at(s1);
          mark_expert(x);
          for (std::uint32_t s = 0; s < num_slots && within_budget; ++s) {
            const std::uint32_t other = scorer.gpu_of(s);
            if (other == gpu) continue;
            if (same_node_only && topology.node_of_gpu(other) != topology.node_of_gpu(gpu)) {
              continue;
            }
            const std::int32_t y = state.at(s);
            if (y == x || holds_marked_expert(other)) continue;
            if (state.count(y) >= 2 && may_copy_from(x, gpu) && fits(1, slot_cost(s, x))) {
              const std::optional<CopyScoreCache::Score> known =
                  copy_scores ? copy_scores->find(state, x, s) : std::nullopt;
              CopyScoreCache::Score score;
              if (known) {
                score = *known;
              } else {
                scorer.stage(state, {s, x});
                score = {scorer.excess_change(target),
                         static_cast<std::uint32_t>(scorer.touched_gpus())};
                if (copy_scores) copy_scores->store(x, s, score);
              }
              consider_excess(1, move_cost(1, slot_cost(s, x)), score, {s, x}, {});
            }
            const int trade_cost = slot_cost(s1, y) + slot_cost(s, x);
            if (!source_holds(y) && fits(2, trade_cost)) {
              // (Without bound_changes, as scored before swap_excess_change: its reference.)
              double excess = 0;
              if (bound_changes) {
                excess = scorer.swap_excess_change(state, {s1, y}, {s, x}, target);
              } else {
                (void)scorer.score_swap(state, {s1, y}, {s, x});
                excess = scorer.excess_change(target);
              }
              consider_excess(2, move_cost(2, trade_cost), {excess, 2}, {s1, y}, {s, x});
            }
          }
        }
      }
      if (!within_budget) break;
    }
    if (best_size == 0) break;
    std::vector<double> gpu_loads;
    state.gpu_loads(layer_loads, gpu_loads);
    const double max_before = max_of(gpu_loads);
    Group record;
    record.layer = layer;
    record.first = static_cast<std::uint32_t>(ordered.size()) - base;
    record.count = static_cast<std::uint32_t>(best_size);
    // With rewrites, `changes` counts the slots that differ from the old row.
    const int cost = slot_cost(first.slot, first.expert) +
                     (best_size == 2 ? slot_cost(second.slot, second.expert) : 0);
    // Both changes of a trade are read before either is written (one step), so apply them
    // together; the replica counts do not change.
    const std::array<std::int32_t, 4> written{state.at(first.slot), first.expert,
                                              state.at(second.slot), second.expert};
    state.apply(first);
    ordered.push_back(first);
    if (best_size == 2) {
      state.apply(second);
      ordered.push_back(second);
    }
    if (copy_scores) {
      copy_scores->forget(state, std::span(written).first(best_size == 2 ? 4 : 2), scorer);
    }
    used[first.slot] = 1;
    if (best_size == 2) used[second.slot] = 1;
    changes = rewrite_slots ? static_cast<std::size_t>(static_cast<std::ptrdiff_t>(changes) + cost)
                            : changes + static_cast<std::size_t>(best_size);
    state.gpu_loads(layer_loads, gpu_loads);
    record.gain = balancedness_of(total, topology.num_gpus, max_of(gpu_loads)) -
                  balancedness_of(total, topology.num_gpus, max_before);
    groups.push_back(record);
  }
}

// A run of consecutive groups of one layer on the upper concave hull of (bytes, gain).
struct Chunk {
  std::uint32_t layer = 0;
  std::size_t first_group = 0, end_group = 0;  // indices into the layer's groups
  double ratio = 0;                            // gain per expert moved
};

std::vector<Chunk> hull_chunks(std::uint32_t layer, std::span<const Group> groups) {
  std::vector<Chunk> chunks;
  std::size_t start = 0;
  while (start < groups.size()) {
    double gain = 0, experts = 0, best_ratio = -std::numeric_limits<double>::infinity();
    std::size_t best_end = start + 1;
    for (std::size_t end = start; end < groups.size(); ++end) {
      gain += groups[end].gain;
      experts += groups[end].count;
      const double ratio = gain / experts;
      if (ratio >= best_ratio - 1e-15) {  // the farthest end among the best ratios
        best_ratio = std::max(best_ratio, ratio);
        best_end = end + 1;
      }
    }
    chunks.push_back({layer, start, best_end, best_ratio});
    start = best_end;
  }
  return chunks;
}

TransferKind kind_of(const Topology& topology, std::uint32_t src_slot, std::uint32_t dst_slot) {
  const std::uint32_t src_gpu = topology.gpu_of_slot(src_slot);
  const std::uint32_t dst_gpu = topology.gpu_of_slot(dst_slot);
  if (src_gpu == dst_gpu) return TransferKind::same_gpu;
  return topology.node_of_gpu(src_gpu) == topology.node_of_gpu(dst_gpu) ? TransferKind::intra_node
                                                                        : TransferKind::cross_node;
}

// Placement of `rows` with replica ranks in ascending slot order.
Placement ascending_placement(const Topology& topology, std::vector<std::int32_t> rows,
                              const Provenance& provenance) {
  std::vector<std::int32_t> ranks(rows.size());
  std::vector<std::int32_t> seen(topology.num_logical);
  for (std::size_t layer = 0; layer < topology.num_layers; ++layer) {
    std::fill(seen.begin(), seen.end(), 0);
    for (std::size_t slot = 0; slot < topology.num_physical; ++slot) {
      const std::size_t i = layer * topology.num_physical + slot;
      ranks[i] = seen[static_cast<std::size_t>(rows[i])]++;
    }
  }
  return Placement::from_ranked_slots(topology, std::move(rows), ranks, provenance);
}

double mean_balancedness(const Placement& placement, std::span<const double> loads) {
  return compute_metrics(placement, loads).balancedness;
}

void check_same_shape(const Topology& a, const Topology& b) {
  const auto check = [](const char* field, std::uint32_t old_value, std::uint32_t new_value) {
    if (old_value != new_value) {
      fail_invalid("new_placement ", field, " (", new_value, ") differs from old_placement's (",
                   old_value, ")");
    }
  };
  check("num_layers", a.num_layers, b.num_layers);
  check("num_logical_experts", a.num_logical, b.num_logical);
  check("num_physical_experts", a.num_physical, b.num_physical);
  check("num_gpus", a.num_gpus, b.num_gpus);
  check("num_nodes", a.num_nodes, b.num_nodes);
}

void check_options(const MigrationOptions& options, const Topology& topology) {
  if (static_cast<std::uint32_t>(options.relabel) > 3) {
    fail_invalid("options->relabel (", static_cast<std::uint32_t>(options.relabel),
                 ") is not an eplb_migration_relabel value (0..3)");
  }
  if (options.bytes_per_expert == 0) fail_invalid("options->bytes_per_expert is 0");
  // Every byte count is at most a full reload's, slots x bytes_per_expert: it must fit.
  const std::uint64_t slots = std::uint64_t{topology.num_layers} * topology.num_physical;
  if (options.bytes_per_expert > std::numeric_limits<std::uint64_t>::max() / slots) {
    fail_invalid("options->bytes_per_expert (", options.bytes_per_expert, ") x the ", slots,
                 " slots of all layers overflows a 64-bit byte count");
  }
  if (!std::isfinite(options.min_gain)) {
    fail_invalid("options->min_gain (", options.min_gain, ") is not finite");
  }
  if (!std::isfinite(options.min_gain_per_gib) || options.min_gain_per_gib < 0) {
    fail_invalid("options->min_gain_per_gib (", options.min_gain_per_gib,
                 ") must be finite and >= 0");
  }
}

// A replica of the new plan: its expert and its replica rank (kept through relabeling).
struct Replica {
  std::int32_t expert = 0;
  std::int32_t rank = 0;
};

// Re-packs each node's replicas onto the node's GPUs to keep more experts where they are:
// pairwise exchanges of replicas between two GPUs of a node that raise the number of replicas
// already on their GPU, never taking a GPU above the layer's busiest GPU and never putting two
// replicas of one expert on a GPU. The node's replicas, hence node loads, replica counts and
// off-node replicas, do not change, and the busiest GPU does not get busier. `content` is
// [gpus][slots_per_gpu], the replicas each physical GPU will hold.
void repack_layer(const Topology& topology, Row old_row, std::span<const double> layer_loads,
                  std::vector<Replica>& content) {
  const std::uint32_t per_gpu = topology.slots_per_gpu(), per_node = topology.gpus_per_node();
  std::vector<std::int32_t> counts(topology.num_logical, 0);
  for (const Replica& r : content) ++counts[static_cast<std::size_t>(r.expert)];
  const auto weight = [&](std::int32_t e) {
    return layer_loads[static_cast<std::size_t>(e)] / counts[static_cast<std::size_t>(e)];
  };
  std::vector<double> gpu_load(topology.num_gpus, 0.0);
  for (std::uint32_t slot = 0; slot < content.size(); ++slot) {
    gpu_load[slot / per_gpu] += weight(content[slot].expert);
  }
  const double cap = *std::max_element(gpu_load.begin(), gpu_load.end());
  const auto had = [&](std::uint32_t gpu, std::int32_t e) {
    const auto first = old_row.begin() + std::ptrdiff_t{gpu} * per_gpu;
    return std::find(first, first + per_gpu, e) != first + per_gpu ? 1 : 0;
  };
  const auto holds = [&](std::uint32_t gpu, std::int32_t e) {
    for (std::uint32_t j = 0; j < per_gpu; ++j) {
      if (content[gpu * per_gpu + j].expert == e) return true;
    }
    return false;
  };
  for (std::uint32_t node = 0; node < topology.num_nodes; ++node) {
    const std::uint32_t first_gpu = node * per_node;
    bool duplicates = false;
    for (std::uint32_t g = first_gpu; g < first_gpu + per_node && !duplicates; ++g) {
      for (std::uint32_t i = 0; i < per_gpu && !duplicates; ++i) {
        for (std::uint32_t j = i + 1; j < per_gpu; ++j) {
          duplicates =
              duplicates || content[g * per_gpu + i].expert == content[g * per_gpu + j].expert;
        }
      }
    }
    if (duplicates) continue;  // keep the plan's own packing of such a node
    for (int pass = 0; pass < 64; ++pass) {
      bool improved = false;
      for (std::uint32_t g1 = first_gpu; g1 < first_gpu + per_node; ++g1) {
        for (std::uint32_t i = 0; i < per_gpu; ++i) {
          const std::int32_t x = content[g1 * per_gpu + i].expert;
          if (had(g1, x)) continue;  // already in place
          // Best exchange of x with a replica y of another GPU g2 that held x.
          int best_gain = 0;
          std::uint32_t best_g2 = 0, best_j = 0;
          for (std::uint32_t g2 = first_gpu; g2 < first_gpu + per_node; ++g2) {
            if (g2 == g1 || !had(g2, x) || holds(g2, x)) continue;
            for (std::uint32_t j = 0; j < per_gpu; ++j) {
              const std::int32_t y = content[g2 * per_gpu + j].expert;
              if (holds(g1, y)) continue;
              const int gain = 1 + had(g1, y) - had(g2, y);
              if (gain <= best_gain) continue;
              const double delta = weight(y) - weight(x);
              if (gpu_load[g1] + delta > cap || gpu_load[g2] - delta > cap) continue;
              best_gain = gain;
              best_g2 = g2;
              best_j = j;
            }
          }
          if (best_gain > 0) {
            const std::int32_t y = content[best_g2 * per_gpu + best_j].expert;
            const double delta = weight(y) - weight(x);
            gpu_load[g1] += delta;
            gpu_load[best_g2] -= delta;
            std::swap(content[g1 * per_gpu + i], content[best_g2 * per_gpu + best_j]);
            improved = true;
          }
        }
      }
      if (!improved) break;
    }
  }
}

struct Selection {
  std::vector<const Group*> chosen;  // in schedule order
  double gain = 0;                   // summed layer balancedness gains of the chosen groups
  bool complete = true;              // every group chosen
};

// Orders the groups of all layers (by gain per expert moved along each layer's concave hull when
// `by_gain`, else layer by layer) and keeps those that fit `max_total_bytes` (0: all); a layer
// whose next group does not fit stops there.
Selection select_groups(const std::vector<std::vector<Group>>& groups, bool by_gain,
                        std::uint64_t max_total_bytes, std::uint64_t bytes) {
  const auto layers = static_cast<std::uint32_t>(groups.size());
  std::vector<Chunk> chunk_order;
  if (by_gain) {
    std::vector<std::vector<Chunk>> per_layer(layers);
    const auto worse = [](const Chunk& a, const Chunk& b) {
      return a.ratio < b.ratio || (a.ratio == b.ratio && a.layer > b.layer);
    };
    std::priority_queue<Chunk, std::vector<Chunk>, decltype(worse)> queue(worse);
    std::vector<std::size_t> next_chunk(layers, 1);
    for (std::uint32_t layer = 0; layer < layers; ++layer) {
      per_layer[layer] = hull_chunks(layer, groups[layer]);
      if (!per_layer[layer].empty()) queue.push(per_layer[layer][0]);
    }
    while (!queue.empty()) {
      const Chunk chunk = queue.top();
      queue.pop();
      chunk_order.push_back(chunk);
      auto& next = next_chunk[chunk.layer];
      if (next < per_layer[chunk.layer].size()) queue.push(per_layer[chunk.layer][next++]);
    }
  } else {
    for (std::uint32_t layer = 0; layer < layers; ++layer) {
      if (!groups[layer].empty()) chunk_order.push_back({layer, 0, groups[layer].size(), 0});
    }
  }
  Selection selection;
  std::vector<char> closed(layers, 0);
  std::uint64_t total_bytes = 0;
  for (const Chunk& chunk : chunk_order) {
    for (std::size_t g = chunk.first_group; g < chunk.end_group; ++g) {
      const Group& group = groups[chunk.layer][g];
      if (closed[chunk.layer]) break;
      const std::uint64_t group_bytes = group.count * bytes;
      if (max_total_bytes != 0 && total_bytes + group_bytes > max_total_bytes) {
        closed[chunk.layer] = 1;
        selection.complete = false;
        break;
      }
      total_bytes += group_bytes;
      selection.gain += group.gain;
      selection.chosen.push_back(&group);
    }
  }
  return selection;
}

}  // namespace

std::vector<std::uint32_t> relabel_gpus(const Topology& topology, Row old_row, Row new_row,
                                        MigrationRelabel relabel) {
  const std::uint32_t gpus = topology.num_gpus, nodes = topology.num_nodes;
  const std::uint32_t per_node = topology.gpus_per_node();
  const std::size_t per_gpu = topology.slots_per_gpu();
  std::vector<std::uint32_t> map(gpus);
  if (relabel == MigrationRelabel::none) {
    for (std::uint32_t g = 0; g < gpus; ++g) map[g] = g;
    return map;
  }
  const auto old_sorted = sorted_gpu_contents(topology, old_row);
  const auto new_sorted = sorted_gpu_contents(topology, new_row);
  if (relabel == MigrationRelabel::gpus_in_node || nodes == 1) {
    for (std::uint32_t node = 0; node < nodes; ++node) {
      assign_block(old_sorted, new_sorted, per_gpu, std::size_t{node} * per_node,
                   std::size_t{node} * per_node, per_node,
                   map.data() + std::size_t{node} * per_node);
    }
    return map;
  }
  // Nodes and GPUs: the best GPU assignment for every (new node, old node) pair, then the best
  // node assignment over those values. Optimal: for a fixed node permutation the GPU
  // assignments of different nodes are independent.
  std::vector<std::int64_t> node_weights(std::size_t{nodes} * nodes);
  std::vector<std::uint32_t> pair_maps(std::size_t{nodes} * nodes * per_node);
  for (std::uint32_t new_node = 0; new_node < nodes; ++new_node) {
    for (std::uint32_t old_node = 0; old_node < nodes; ++old_node) {
      const std::size_t pair = std::size_t{new_node} * nodes + old_node;
      node_weights[pair] =
          assign_block(old_sorted, new_sorted, per_gpu, std::size_t{new_node} * per_node,
                       std::size_t{old_node} * per_node, per_node, &pair_maps[pair * per_node]);
    }
  }
  const auto node_map = max_weight_assignment(node_weights, nodes);
  for (std::uint32_t new_node = 0; new_node < nodes; ++new_node) {
    const std::size_t pair = std::size_t{new_node} * nodes + node_map[new_node];
    std::copy_n(&pair_maps[pair * per_node], per_node,
                map.data() + std::size_t{new_node} * per_node);
  }
  return map;
}

std::vector<std::uint32_t> experts_kept_per_gpu(const Topology& topology, Row old_row, Row new_row,
                                                std::span<const std::uint32_t> gpu_map) {
  const auto old_sorted = sorted_gpu_contents(topology, old_row);
  const auto new_sorted = sorted_gpu_contents(topology, new_row);
  const std::size_t per_gpu = topology.slots_per_gpu();
  std::vector<std::uint32_t> kept(topology.num_gpus);
  for (std::size_t b = 0; b < topology.num_gpus; ++b) {
    kept[b] = static_cast<std::uint32_t>(common_count(
        new_sorted.data() + b * per_gpu, old_sorted.data() + gpu_map[b] * per_gpu, per_gpu));
  }
  return kept;
}

std::uint64_t experts_kept(const Topology& topology, Row old_row, Row new_row,
                           std::span<const std::uint32_t> gpu_map) {
  std::uint64_t kept = 0;
  for (std::uint32_t on_gpu : experts_kept_per_gpu(topology, old_row, new_row, gpu_map)) {
    kept += on_gpu;
  }
  return kept;
}

std::vector<std::uint32_t> group_home_nodes(const Topology& topology, Row row) {
  const std::uint32_t groups = topology.num_groups, nodes = topology.num_nodes;
  const std::uint32_t per_group = topology.num_logical / groups;
  std::vector<std::uint32_t> replicas(std::size_t{groups} * nodes, 0);
  for (std::uint32_t slot = 0; slot < row.size(); ++slot) {
    const auto group = static_cast<std::uint32_t>(row[slot]) / per_group;
    ++replicas[std::size_t{group} * nodes + topology.node_of_gpu(topology.gpu_of_slot(slot))];
  }
  std::vector<std::uint32_t> home(topology.num_logical, 0);
  for (std::uint32_t e = 0; e < topology.num_logical; ++e) {
    const auto first = replicas.begin() + static_cast<std::ptrdiff_t>(e / per_group * nodes);
    home[e] = static_cast<std::uint32_t>(std::max_element(first, first + nodes) - first);
  }
  return home;
}

bool rebalance_layer_toward(const Topology& topology, std::span<std::int32_t> row,
                            std::span<const double> loads, double target_max, bool keep_locality,
                            std::size_t max_changed_slots, bool bound_changes) {
  std::vector<Change> ordered;
  std::vector<Group> groups;
  // Slots may be rewritten: only the final row counts.
  rebalance_layer(topology, 0, row, loads, max_changed_slots, keep_locality, bound_changes, ordered,
                  groups, target_max, /*rewrite_slots=*/true);
  for (const Change& change : ordered) row[change.slot] = change.expert;
  std::vector<double> gpu_loads;
  LayerState(topology, row).gpu_loads(loads, gpu_loads);
  return max_of(gpu_loads) <= target_max;
}

MigrationPlan MigrationPlan::make(const Placement& old_placement, const Placement& new_placement,
                                  std::span<const double> loads, const MigrationOptions& options) {
  const Topology topology = old_placement.topology();
  check_same_shape(topology, new_placement.topology());
  check_options(options, topology);
  const bool with_loads = !loads.empty();
  if (with_loads) validate_loads(loads, topology, "loads");

  const std::uint32_t layers = topology.num_layers, gpus = topology.num_gpus;
  const std::size_t num_physical = topology.num_physical, per_gpu = topology.slots_per_gpu();
  const std::size_t num_logical = topology.num_logical;

  // 1. Relabel every layer.
  std::vector<std::uint32_t> gpu_map(std::size_t{layers} * gpus);
  std::vector<std::int32_t> relabeled_rows(topology.slot_count());
  std::vector<std::int32_t> relabeled_ranks(topology.slot_count());
  {
    // replica rank of every slot of the new plan, from its log2phy
    std::vector<std::int32_t> new_ranks(topology.slot_count());
    const auto log2phy = new_placement.log2phy();
    const std::size_t width = new_placement.log2phy_width();
    for (std::size_t layer = 0; layer < layers; ++layer) {
      for (std::size_t e = 0; e < num_logical; ++e) {
        for (std::size_t r = 0; r < width; ++r) {
          const std::int32_t slot = log2phy[(layer * num_logical + e) * width + r];
          if (slot >= 0) {
            new_ranks[layer * num_physical + static_cast<std::size_t>(slot)] =
                static_cast<std::int32_t>(r);
          }
        }
      }
    }
    std::vector<char> taken(per_gpu), filled(per_gpu);
    std::vector<Replica> content(num_physical);
    for (std::uint32_t layer = 0; layer < layers; ++layer) {
      const Row old_row = old_placement.phy2log_layer(layer);
      const Row new_row = new_placement.phy2log_layer(layer);
      const auto map = relabel_gpus(topology, old_row, new_row, options.relabel);
      std::copy(map.begin(), map.end(), gpu_map.begin() + std::ptrdiff_t{layer} * gpus);
      const std::size_t row_base = std::size_t{layer} * num_physical;
      // The replicas each physical GPU will hold.
      for (std::uint32_t b = 0; b < gpus; ++b) {
        for (std::size_t j = 0; j < per_gpu; ++j) {
          content[map[b] * per_gpu + j] = {new_row[b * per_gpu + j],
                                           new_ranks[row_base + b * per_gpu + j]};
        }
      }
      if (options.relabel == MigrationRelabel::repack_in_node && with_loads) {
        repack_layer(topology, old_row,
                     loads.subspan(std::size_t{layer} * num_logical, num_logical), content);
      }
      for (std::uint32_t a = 0; a < gpus; ++a) {
        const std::size_t first = std::size_t{a} * per_gpu;
        std::fill(taken.begin(), taken.end(), 0);    // replicas of the GPU already placed
        std::fill(filled.begin(), filled.end(), 0);  // slots already filled
        // Experts already on the GPU keep their slot.
        for (std::size_t i = 0; i < per_gpu; ++i) {
          for (std::size_t j = 0; j < per_gpu; ++j) {
            if (!taken[j] && content[first + j].expert == old_row[first + i]) {
              taken[j] = 1;
              filled[i] = 1;
              relabeled_rows[row_base + first + i] = content[first + j].expert;
              relabeled_ranks[row_base + first + i] = content[first + j].rank;
              break;
            }
          }
        }
        std::size_t next = 0;
        for (std::size_t j = 0; j < per_gpu; ++j) {
          if (taken[j]) continue;
          while (filled[next]) ++next;
          filled[next] = 1;
          relabeled_rows[row_base + first + next] = content[first + j].expert;
          relabeled_ranks[row_base + first + next] = content[first + j].rank;
        }
      }
    }
  }
  Placement relabeled = Placement::from_ranked_slots(topology, relabeled_rows, relabeled_ranks,
                                                     new_placement.provenance());

  // 2. Order each layer's changes into groups.
  std::vector<std::vector<Change>> ordered(layers);
  std::vector<std::vector<Group>> groups(layers);
  std::uint64_t full_changes = 0;
  for (std::uint32_t layer = 0; layer < layers; ++layer) {
    const auto layer_loads = with_loads
                                 ? loads.subspan(std::size_t{layer} * num_logical, num_logical)
                                 : std::span<const double>();
    order_layer(topology, layer, old_placement.phy2log_layer(layer), relabeled.phy2log_layer(layer),
                layer_loads, options.bound_changes, ordered[layer], groups[layer]);
    full_changes += ordered[layer].size();
  }

  // 3. Merge layers (by gain per expert with loads, else in layer order) and apply the total
  // budget. With loads and a budget, a rebalance of the old placement competes with the prefix
  // of the migration to the new plan; the one with more predicted gain is scheduled.
  const std::uint64_t bytes = options.bytes_per_expert;
  auto selection = select_groups(groups, with_loads, options.max_total_bytes, bytes);
  if (with_loads && !selection.complete) {
    std::vector<std::vector<Change>> alt_ordered(layers);
    std::vector<std::vector<Group>> alt_groups(layers);
    // No layer can use more changes than the whole budget holds.
    const std::uint64_t budget_experts = options.max_total_bytes / bytes;
    for (std::uint32_t layer = 0; layer < layers; ++layer) {
      const auto max_changes =
          static_cast<std::size_t>(std::min<std::uint64_t>(ordered[layer].size(), budget_experts));
      rebalance_layer(topology, layer, old_placement.phy2log_layer(layer),
                      loads.subspan(std::size_t{layer} * num_logical, num_logical), max_changes,
                      new_placement.provenance().hierarchical, options.bound_changes,
                      alt_ordered[layer], alt_groups[layer]);
    }
    auto alternative = select_groups(alt_groups, true, options.max_total_bytes, bytes);
    if (alternative.gain > selection.gain) {
      ordered = std::move(alt_ordered);
      groups = std::move(alt_groups);
      selection = select_groups(groups, true, options.max_total_bytes, bytes);
      selection.complete = false;
    }
  }
  const std::vector<const Group*>& chosen = selection.chosen;
  const bool complete = selection.complete;

  // 4. Cut into steps and choose sources from the placement in force before each step.
  MigrationPlan plan(old_placement, relabeled,
                     relabeled);  // target_ replaced below when incomplete
  plan.options_ = options;
  plan.gpu_map_ = std::move(gpu_map);
  std::vector<LayerState> states;
  states.reserve(layers);
  for (std::uint32_t layer = 0; layer < layers; ++layer) {
    states.emplace_back(topology, old_placement.phy2log_layer(layer));
  }
  MigrationSummary& summary = plan.summary_;
  std::vector<std::uint32_t> sent(gpus, 0), received(gpus, 0);
  std::vector<char> layer_in_step(layers, 0);
  std::vector<std::pair<std::uint32_t, Change>> step_changes;
  plan.step_offsets_.push_back(0);
  const auto flush_step = [&] {
    if (step_changes.empty()) return;
    const auto step = static_cast<std::uint32_t>(plan.step_offsets_.size() - 1);
    std::sort(step_changes.begin(), step_changes.end(), [](const auto& a, const auto& b) {
      return a.first < b.first || (a.first == b.first && a.second.slot < b.second.slot);
    });
    std::fill(sent.begin(), sent.end(), 0);
    std::fill(received.begin(), received.end(), 0);
    for (const auto& [layer, change] : step_changes) {
      const std::uint32_t dst_gpu = topology.gpu_of_slot(change.slot);
      std::uint32_t best = 0;
      std::tuple<int, std::uint32_t, std::uint32_t> best_key{3, 0, 0};
      for (std::uint32_t slot : states[layer].slots_of(change.expert)) {
        const auto kind = static_cast<int>(kind_of(topology, slot, change.slot));
        const std::tuple<int, std::uint32_t, std::uint32_t> key{
            kind, sent[topology.gpu_of_slot(slot)], slot};
        if (key < best_key) {
          best_key = key;
          best = slot;
        }
      }
      EPLB_ASSERT(std::get<0>(best_key) < 3);
      ++sent[topology.gpu_of_slot(best)];
      ++received[dst_gpu];
      Transfer transfer;
      transfer.step = step;
      transfer.layer = layer;
      transfer.expert = static_cast<std::uint32_t>(change.expert);
      transfer.src_slot = best;
      transfer.dst_slot = change.slot;
      transfer.kind = kind_of(topology, best, change.slot);
      plan.transfers_.push_back(transfer);
    }
    for (const auto& [layer, change] : step_changes) states[layer].apply(change);
    summary.max_staging_slots =
        std::max(summary.max_staging_slots, *std::max_element(received.begin(), received.end()));
    summary.max_step_bytes =
        std::max<std::uint64_t>(summary.max_step_bytes, step_changes.size() * bytes);
    plan.step_offsets_.push_back(plan.transfers_.size());
    step_changes.clear();
    std::fill(layer_in_step.begin(), layer_in_step.end(), 0);
  };
  std::uint64_t step_bytes = 0;
  std::uint32_t step_layers = 0;
  for (const Group* group : chosen) {
    const std::uint64_t group_bytes = group->count * bytes;
    const bool over_bytes =
        options.max_bytes_per_step != 0 && step_bytes + group_bytes > options.max_bytes_per_step;
    const bool over_layers = options.max_layers_per_step != 0 && !layer_in_step[group->layer] &&
                             step_layers == options.max_layers_per_step;
    if (!step_changes.empty() && (over_bytes || over_layers)) {
      flush_step();
      step_bytes = 0;
      step_layers = 0;
    }
    if (!layer_in_step[group->layer]) {
      layer_in_step[group->layer] = 1;
      ++step_layers;
    }
    step_bytes += group_bytes;
    const auto& changes = ordered[group->layer];
    for (std::uint32_t i = group->first; i < group->first + group->count; ++i) {
      step_changes.emplace_back(group->layer, changes[i]);
    }
  }
  flush_step();

  // 5. Summary and target.
  if (!complete) {
    std::vector<std::int32_t> rows(topology.slot_count());
    for (std::uint32_t layer = 0; layer < layers; ++layer) {
      std::copy(states[layer].row().begin(), states[layer].row().end(),
                rows.begin() + static_cast<std::ptrdiff_t>(std::size_t{layer} * num_physical));
    }
    plan.target_ = ascending_placement(topology, std::move(rows), new_placement.provenance());
  }
  summary.num_steps = static_cast<std::uint32_t>(plan.step_offsets_.size() - 1);
  summary.complete = complete;
  summary.has_loads = with_loads;
  for (const Transfer& t : plan.transfers_) {
    ++summary.moved_experts;
    if (t.kind == TransferKind::same_gpu) ++summary.same_gpu_experts;
    if (t.kind == TransferKind::intra_node) ++summary.intra_node_experts;
    if (t.kind == TransferKind::cross_node) ++summary.cross_node_experts;
  }
  summary.moved_bytes = summary.moved_experts * bytes;
  summary.same_gpu_bytes = summary.same_gpu_experts * bytes;
  summary.intra_node_bytes = summary.intra_node_experts * bytes;
  summary.cross_node_bytes = summary.cross_node_experts * bytes;
  summary.full_migration_experts = full_changes;
  summary.naive_experts = topology.slot_count();
  {
    std::vector<std::uint32_t> identity(gpus);
    for (std::uint32_t g = 0; g < gpus; ++g) identity[g] = g;
    for (std::uint32_t layer = 0; layer < layers; ++layer) {
      summary.same_gpu_rule_experts +=
          num_physical - experts_kept(topology, old_placement.phy2log_layer(layer),
                                      new_placement.phy2log_layer(layer), identity);
    }
  }
  if (with_loads) {
    summary.old_balancedness = mean_balancedness(old_placement, loads);
    summary.new_balancedness = mean_balancedness(relabeled, loads);
    summary.target_balancedness =
        complete ? summary.new_balancedness : mean_balancedness(plan.target_, loads);
    summary.gain = summary.target_balancedness - summary.old_balancedness;
    const double gib = static_cast<double>(summary.moved_bytes) / (1024.0 * 1024.0 * 1024.0);
    summary.worth_it = summary.moved_experts > 0 && summary.gain > 0 &&
                       summary.gain >= options.min_gain &&
                       summary.gain >= options.min_gain_per_gib * gib;
  } else {
    summary.worth_it = summary.moved_experts > 0;
  }
  return plan;
}

std::span<const Transfer> MigrationPlan::step_transfers(std::uint32_t step) const {
  if (step >= summary_.num_steps) {
    fail_invalid("step (", step, ") is out of range: the schedule has ", summary_.num_steps,
                 " steps");
  }
  return std::span(transfers_)
      .subspan(step_offsets_[step], step_offsets_[step + 1] - step_offsets_[step]);
}

Placement MigrationPlan::placement_after_step(std::uint32_t step) const {
  const auto steps = step_transfers(step);  // validates step
  if (summary_.complete && step + 1 == summary_.num_steps) return relabeled_;
  const Topology& topology = old_.topology();
  std::vector<std::int32_t> rows(old_.phy2log().begin(), old_.phy2log().end());
  const auto end = static_cast<std::size_t>(steps.data() + steps.size() - transfers_.data());
  for (std::size_t i = 0; i < end; ++i) {
    const Transfer& t = transfers_[i];
    rows[std::size_t{t.layer} * topology.num_physical + t.dst_slot] =
        static_cast<std::int32_t>(t.expert);
  }
  return ascending_placement(topology, std::move(rows), relabeled_.provenance());
}

}  // namespace eplb
