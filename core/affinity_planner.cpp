#include "affinity_planner.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

#include "error.hpp"

namespace eplb {

namespace {

// A round stops after this many candidates in a row that do not improve the exact metric.
constexpr std::uint32_t kMaxMissesPerRound = 1024;
// Candidates kept per round, best proxy first.
constexpr std::size_t kCandidatesPerRound = 32768;
// Layers with at most this many slots try every swap between nodes, whatever the proxy says.
constexpr std::uint32_t kAllPairsSlots = 64;
// Layers with at most this many slots also try pairs of swaps as one move, among this many
// candidate swaps (best proxy first).
constexpr std::uint32_t kPairMoveSlots = 16;
constexpr std::size_t kPairMoveCandidates = 40;
// Large layers pack a node again (when a swap fits no other way) for this many best candidates
// of each round of the first phase (the estimate phase may for every candidate).
constexpr std::size_t kRepackCandidates = 256;
// The estimate phase stops a round after this many swaps that lower the metric but fit on no
// GPU of their nodes, even packed again or with a second swap (each costs a few packings), and
// the layer after this many. Layers of the real-routing benchmark meet at most 123 in a round
// and 770 in all; uncorrelated routing on skewed loads meets thousands in every round.
constexpr std::uint32_t kMaxUnfitSwapsPerRound = 256;
constexpr std::uint32_t kMaxUnfitSwapsPerLayer = 2048;
// Swaps between a packed node's busiest GPU and the others, at most (a packing rarely leaves
// more than a few GPUs over the bound).
constexpr std::uint32_t kMaxRefineSteps = 16;
// Relative slack on the balance bound, for rounding.
constexpr double kCapSlack = 1e-12;
// Second swaps tried per over-bound candidate of the estimate phase, best estimate first.
constexpr std::size_t kCompensateTries = 8;

// A set of integers below a bound, emptied in O(1): an element is in it while its mark equals
// the current stamp.
class StampedSet {
 public:
  // Empties the set and makes its elements range over [0, universe).
  void reset(std::size_t universe) {
    if (mark_.size() != universe) {
      mark_.assign(universe, 0);
      stamp_ = 0;
    }
    if (++stamp_ == 0) {  // wrapped: no stale mark may equal a new stamp
      std::fill(mark_.begin(), mark_.end(), 0);
      stamp_ = 1;
    }
  }
  void insert(std::size_t i) { mark_[i] = stamp_; }
  void erase(std::size_t i) { mark_[i] = 0; }
  bool contains(std::size_t i) const { return mark_[i] == stamp_; }

 private:
  std::vector<std::uint32_t> mark_;
  std::uint32_t stamp_ = 0;
};

// Sorts the best `limit` candidates (highest proxy, then lowest slots) to the front; returns how
// many that is.
template <typename Candidate>
std::size_t keep_best(std::vector<Candidate>& candidates, std::size_t limit) {
  const std::size_t keep = std::min(candidates.size(), limit);
  const auto better = [](const Candidate& l, const Candidate& r) {
    if (l.proxy != r.proxy) return l.proxy > r.proxy;
    if (l.s1 != r.s1) return l.s1 < r.s1;
    return l.s2 < r.s2;
  };
  // A strict total order (slots break ties), so both sorts give the same front.
  if (keep == candidates.size()) {
    std::sort(candidates.begin(), candidates.end(), better);
  } else {
    std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(keep),
                      candidates.end(), better);
  }
  return keep;
}

// Nodes in a mask: few bits are set, and this loop beats the library popcount a baseline x86-64
// build calls.
std::int32_t node_count(std::uint64_t mask) {
  std::int32_t n = 0;
  for (; mask != 0; mask &= mask - 1) ++n;
  return n;
}

std::uint32_t lowest_node(std::uint64_t mask) {
  return static_cast<std::uint32_t>(std::countr_zero(mask));
}

// Whether `gpu` holds `expert` in a slot other than `except` (pass a slot off the GPU, e.g. the
// default, to check every slot).
bool gpu_holds(std::span<const std::int32_t> phy2log, std::uint32_t per_gpu, std::uint32_t gpu,
               std::int32_t expert,
               std::uint32_t except = std::numeric_limits<std::uint32_t>::max()) {
  for (std::uint32_t s = gpu * per_gpu; s < (gpu + 1) * per_gpu; ++s) {
    if (s != except && phy2log[s] == expert) return true;
  }
  return false;
}

}  // namespace

void AffinityPlanner::load_rows(std::uint32_t num_experts, std::span<const std::int32_t> rows,
                                std::size_t num_rows, std::uint32_t top_k) {
  row_off_.assign(1, 0);
  row_ids_.clear();
  constant_rows_ = 0;
  std::vector<std::uint32_t> seen(num_experts, 0);
  std::uint32_t seen_stamp = 0;
  for (std::size_t r = 0; r < num_rows; ++r) {
    ++seen_stamp;
    const std::size_t start = row_ids_.size();
    for (std::uint32_t j = 0; j < top_k; ++j) {
      const std::int32_t v = rows[r * top_k + j];
      if (v < 0) continue;
      const auto e = static_cast<std::uint32_t>(v);
      if (seen[e] == seen_stamp) continue;
      seen[e] = seen_stamp;
      row_ids_.push_back(e);
    }
    const std::size_t distinct = row_ids_.size() - start;
    if (distinct < 2) {
      // No valid id: not a token of the metric. One expert: always one node, whatever the plan.
      if (distinct == 1) ++constant_rows_;
      row_ids_.resize(start);
      continue;
    }
    row_off_.push_back(static_cast<std::uint32_t>(row_ids_.size()));
  }
  const std::size_t n = row_off_.size() - 1;
  rows_of_off_.assign(std::size_t{num_experts} + 1, 0);
  for (const std::uint32_t e : row_ids_) ++rows_of_off_[e + 1];
  std::partial_sum(rows_of_off_.begin(), rows_of_off_.end(), rows_of_off_.begin());
  rows_of_.assign(row_ids_.size(), 0);
  std::vector<std::uint32_t> fill(rows_of_off_.begin(), rows_of_off_.end() - 1);
  for (std::size_t r = 0; r < n; ++r) {
    for (std::uint32_t i = row_off_[r]; i < row_off_[r + 1]; ++i) {
      rows_of_[fill[row_ids_[i]]++] = static_cast<std::uint32_t>(r);
    }
  }
  std::uint32_t longest = 0;
  for (std::size_t r = 0; r < n; ++r) longest = std::max(longest, row_off_[r + 1] - row_off_[r]);
  uncovered_.assign(longest, 0);
  chosen_.assign(n, 0);
  row_stamp_.assign(n, 0);
  stamp_ = 0;
}

std::uint64_t AffinityPlanner::row_nodes(std::size_t r) {
  // The rule of traffic.hpp on node masks: single-node experts fix their node; experts with a
  // replica on a chosen node use it; otherwise the node serving the most uncovered experts
  // (lowest index on ties) is chosen.
  std::uint64_t chosen = 0;
  const std::uint32_t begin = row_off_[r];
  const std::uint32_t end = row_off_[r + 1];
  for (std::uint32_t i = begin; i < end; ++i) {
    const std::uint64_t m = mask_[row_ids_[i]];
    if ((m & (m - 1)) == 0) chosen |= m;
  }
  std::uint64_t* const uncovered = uncovered_.data();  // sized for the longest row
  std::size_t open = 0;
  for (std::uint32_t i = begin; i < end; ++i) {
    const std::uint64_t m = mask_[row_ids_[i]];
    if ((m & chosen) == 0) uncovered[open++] = m;
  }
  while (open > 0) {
    std::uint64_t any = 0;
    for (std::size_t i = 0; i < open; ++i) any |= uncovered[i];
    std::uint32_t best = 0;
    std::uint32_t best_votes = 0;
    for (std::uint64_t bits = any; bits != 0; bits &= bits - 1) {
      const std::uint32_t node = lowest_node(bits);
      const std::uint64_t bit = std::uint64_t{1} << node;
      std::uint32_t votes = 0;
      for (std::size_t i = 0; i < open; ++i) votes += (uncovered[i] & bit) != 0 ? 1U : 0U;
      if (votes > best_votes) {  // ascending node order: ties keep the lowest index
        best = node;
        best_votes = votes;
      }
    }
    chosen |= std::uint64_t{1} << best;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < open; ++i) {
      if ((uncovered[i] & chosen) == 0) uncovered[kept++] = uncovered[i];
    }
    open = kept;
  }
  return chosen;
}

template <typename Visit>
void AffinityPlanner::for_each_row_of(std::span<const std::uint32_t> experts, Visit&& visit) {
  ++stamp_;
  for (const std::uint32_t e : experts) {
    for (std::uint32_t k = rows_of_off_[e]; k < rows_of_off_[e + 1]; ++k) {
      const std::uint32_t r = rows_of_[k];
      if (row_stamp_[r] == stamp_) continue;
      row_stamp_[r] = stamp_;
      visit(r);
    }
  }
}

double AffinityPlanner::mean_nodes_touched() {
  const std::size_t n = chosen_.size();
  const std::size_t total = n + constant_rows_;
  if (total == 0) return 0.0;
  double sum = static_cast<double>(constant_rows_);
  for (std::size_t r = 0; r < n; ++r) {
    chosen_[r] = row_nodes(r);
    sum += node_count(chosen_[r]);
  }
  return sum / static_cast<double>(total);
}

void AffinityPlanner::add_row_gains(std::size_t r, std::int32_t sign) {
  // The estimate for one replica of member e moving from `from` to `to`: the row keeps its
  // chosen nodes, adds `to` when e's new nodes miss them all, and drops `from` when every member
  // is still served without it. Other reshuffles of the rule are left to the exact evaluation.
  const std::uint64_t chosen = chosen_[r];
  const std::uint32_t begin = row_off_[r];
  const std::uint32_t end = row_off_[r + 1];
  // sole[i]: the one chosen node serving member i, 0 when several do (one always does); `once`
  // and `twice`: the nodes that are the sole node of at least one and two members.
  std::uint64_t* const sole = uncovered_.data();
  std::uint64_t once = 0;
  std::uint64_t twice = 0;
  for (std::uint32_t i = begin; i < end; ++i) {
    const std::uint64_t m = mask_[row_ids_[i]] & chosen;
    sole[i - begin] = (m & (m - 1)) == 0 ? m : 0;
    twice |= once & sole[i - begin];
    once |= sole[i - begin];
  }
  for (std::uint32_t i = begin; i < end; ++i) {
    const std::uint32_t e = row_ids_[i];
    for (std::uint64_t bits = mask_[e]; bits != 0; bits &= bits - 1) {
      const std::uint32_t from = lowest_node(bits);
      const std::uint64_t from_bit = std::uint64_t{1} << from;
      const std::uint64_t kept =
          cnt_[std::size_t{e} * nodes_ + from] == 1 ? mask_[e] & ~from_bit : mask_[e];
      // The other members only `from` serves, and the nodes all of them have.
      const bool others_need_from = ((sole[i - begin] == from_bit ? twice : once) & from_bit) != 0;
      std::uint64_t common = ~std::uint64_t{0};
      if (others_need_from) {
        for (std::uint32_t j = begin; j < end; ++j) {
          if (j != i && sole[j - begin] == from_bit) common &= mask_[row_ids_[j]];
        }
      }
      std::int32_t* const gains = &gain_[(std::size_t{e} * nodes_ + from) * nodes_];
      for (std::uint32_t to = 0; to < nodes_; ++to) {
        if (to == from) continue;
        const std::uint64_t to_bit = std::uint64_t{1} << to;
        std::int32_t estimate = 0;
        const std::uint64_t moved = kept | to_bit;
        if ((moved & chosen) != 0) {  // e stays served by a chosen node
          if ((chosen & from_bit) != 0 && (moved & chosen & ~from_bit) != 0 && !others_need_from) {
            estimate = -1;
          }
        } else {  // `to` is added; `from` goes if the others it alone served have `to` too
          estimate = (chosen & from_bit) != 0 && (common & to_bit) != 0 ? 0 : 1;
        }
        gains[to] += sign * estimate;
      }
    }
  }
}

void AffinityPlanner::update_pull(std::uint32_t e, std::uint32_t node, std::int32_t sign) {
  for (std::uint32_t i = rows_of_off_[e]; i < rows_of_off_[e + 1]; ++i) {
    const std::uint32_t r = rows_of_[i];
    for (std::uint32_t j = row_off_[r]; j < row_off_[r + 1]; ++j) {
      const std::uint32_t f = row_ids_[j];
      if (f != e) pull_[std::size_t{f} * nodes_ + node] += sign;
    }
  }
}

void AffinityPlanner::move_replica(std::uint32_t e, std::uint32_t from, std::uint32_t to,
                                   bool track_pull) {
  std::int32_t& c_from = cnt_[std::size_t{e} * nodes_ + from];
  std::int32_t& c_to = cnt_[std::size_t{e} * nodes_ + to];
  if (--c_from == 0) {
    mask_[e] &= ~(std::uint64_t{1} << from);
    if (track_pull) update_pull(e, from, -1);
  }
  if (c_to++ == 0) {
    mask_[e] |= std::uint64_t{1} << to;
    if (track_pull) update_pull(e, to, +1);
  }
}

AffinityLayerResult AffinityPlanner::improve_layer(
    const Topology& topology, const AffinitySettings& settings, std::span<const double> loads,
    std::span<const std::int32_t> rows, std::size_t num_rows, std::uint32_t top_k,
    std::span<std::int32_t> phy2log, std::span<std::int32_t> replica_rank) {
  if (topology.num_nodes > 64) {
    fail_invalid("affinity planning supports at most 64 nodes (num_nodes = ", topology.num_nodes,
                 ")");
  }
  nodes_ = topology.num_nodes;
  experts_ = topology.num_logical;
  load_rows(experts_, rows, num_rows, top_k);
  const std::uint32_t slots_per_node = topology.num_physical / nodes_;
  const auto set_masks = [&] {
    cnt_.assign(std::size_t{experts_} * nodes_, 0);
    mask_.assign(experts_, 0);
    for (std::uint32_t s = 0; s < topology.num_physical; ++s) {
      const auto e = static_cast<std::uint32_t>(phy2log[s]);
      const std::uint32_t node = s / slots_per_node;
      ++cnt_[std::size_t{e} * nodes_ + node];
      mask_[e] |= std::uint64_t{1} << node;
    }
  };
  set_masks();
  AffinityLayerResult result;
  result.nodes_touched_before = mean_nodes_touched();
  result.nodes_touched_after = result.nodes_touched_before;
  if (nodes_ == 1 || chosen_.empty()) return result;

  result.moves = settings.scope == AffinityScope::hierarchical
                     ? exchange_groups(topology, settings, loads, phy2log, replica_rank)
                     : swap_replicas(topology, settings, loads, phy2log, replica_rank);
  set_masks();
  result.nodes_touched_after = mean_nodes_touched();
  return result;
}

std::uint32_t AffinityPlanner::swap_replicas(const Topology& topology,
                                             const AffinitySettings& settings,
                                             std::span<const double> loads,
                                             std::span<std::int32_t> phy2log,
                                             std::span<std::int32_t> replica_rank) {
  const std::uint32_t num_slots = topology.num_physical;
  const std::uint32_t per_gpu = topology.slots_per_gpu();
  const std::uint32_t slots_per_node = num_slots / nodes_;
  std::vector<std::int32_t> count(experts_, 0);
  for (const std::int32_t e : phy2log) ++count[static_cast<std::size_t>(e)];
  std::vector<double> share(experts_, 0.0);  // load of one replica
  for (std::uint32_t e = 0; e < experts_; ++e) {
    if (count[e] > 0) share[e] = loads[e] / count[e];
  }
  std::vector<double> gpu_load(topology.num_gpus, 0.0);
  for (std::uint32_t s = 0; s < num_slots; ++s) {
    gpu_load[s / per_gpu] += share[static_cast<std::size_t>(phy2log[s])];
  }
  const double base_max = *std::max_element(gpu_load.begin(), gpu_load.end());
  if (!(base_max > 0.0)) return 0;
  const double cap = base_max / settings.min_balance_ratio * (1 + kCapSlack);

  // Relaxed: an expert's home node is where its group keeps most replicas.
  const bool relaxed = settings.scope == AffinityScope::relaxed;
  std::vector<std::uint32_t> home(experts_, 0);
  std::int64_t off_home = 0;
  if (relaxed) {
    const std::uint32_t group_size = experts_ / topology.num_groups;
    for (std::uint32_t g = 0; g < topology.num_groups; ++g) {
      std::vector<std::int64_t> per_node(nodes_, 0);
      for (std::uint32_t e = g * group_size; e < (g + 1) * group_size; ++e) {
        for (std::uint32_t n = 0; n < nodes_; ++n) per_node[n] += cnt_[std::size_t{e} * nodes_ + n];
      }
      const auto node = static_cast<std::uint32_t>(
          std::max_element(per_node.begin(), per_node.end()) - per_node.begin());
      for (std::uint32_t e = g * group_size; e < (g + 1) * group_size; ++e) {
        home[e] = node;
        off_home += count[e] - cnt_[std::size_t{e} * nodes_ + node];
      }
    }
  }

  pull_.assign(std::size_t{experts_} * nodes_, 0);
  for (std::uint32_t e = 0; e < experts_; ++e) {
    for (std::uint64_t bits = mask_[e]; bits != 0; bits &= bits - 1) {
      update_pull(e, lowest_node(bits), +1);
    }
  }

  // The estimated change of the metric when the replicas in s1 and s2 trade nodes.
  const auto estimate_swap = [&](std::uint32_t s1, std::uint32_t s2) {
    const auto a = static_cast<std::size_t>(phy2log[s1]);
    const auto b = static_cast<std::size_t>(phy2log[s2]);
    const std::uint32_t x = s1 / slots_per_node;
    const std::uint32_t y = s2 / slots_per_node;
    return gain_[(a * nodes_ + x) * nodes_ + y] + gain_[(b * nodes_ + y) * nodes_ + x];
  };

  // Whether `gpu` holds `expert` in a slot other than `except`.
  const auto holds = [&](std::uint32_t gpu, std::uint32_t expert, std::uint32_t except) {
    return gpu_holds(phy2log, per_gpu, gpu, static_cast<std::int32_t>(expert), except);
  };
  std::vector<char> used(num_slots, 0);
  StampedSet on_v_gpu;  // landing: the experts on the GPU of the vacated slot
  StampedSet placed;    // repack_node: (GPU of the node) x expert, what each GPU holds
  // Packs the node of slot `v` again, largest replica first onto its least loaded GPU without a
  // replica of the same expert, with `in` (rank `rank`) in place of v's replica (then, with
  // refine_repack, swaps replicas between its busiest GPU and the others). Returns whether the
  // result keeps the balance bound; writes it (and marks the node's slots used) if `write`.
  std::vector<std::uint32_t> order;
  std::vector<std::int32_t> items_e, items_r, placed_e, placed_r;
  std::vector<std::uint32_t> fill;
  std::vector<double> node_load;
  std::vector<std::pair<double, std::uint32_t>> open_gpus, skipped_gpus;  // (load, GPU)
  bool refine_repack = false;  // polish an over-bound packing by swaps between its GPUs
  const auto repack_node = [&](std::uint32_t v, std::uint32_t in, std::int32_t rank, bool write) {
    const std::uint32_t first = v / slots_per_node * slots_per_node;
    const std::uint32_t first_gpu = first / per_gpu;
    const std::uint32_t gpus = slots_per_node / per_gpu;
    items_e.assign(phy2log.begin() + first, phy2log.begin() + first + slots_per_node);
    items_r.assign(replica_rank.begin() + first, replica_rank.begin() + first + slots_per_node);
    items_e[v - first] = static_cast<std::int32_t>(in);
    items_r[v - first] = rank;
    double total = 0;
    for (const std::int32_t e : items_e) total += share[static_cast<std::size_t>(e)];
    if (total > cap * gpus) return false;  // no packing can fit
    order.resize(slots_per_node);
    std::iota(order.begin(), order.end(), 0U);
    std::sort(order.begin(), order.end(), [&](std::uint32_t l, std::uint32_t r) {
      const double sl = share[static_cast<std::size_t>(items_e[l])];
      const double sr = share[static_cast<std::size_t>(items_e[r])];
      if (sl != sr) return sl > sr;
      if (items_e[l] != items_e[r]) return items_e[l] < items_e[r];
      return items_r[l] < items_r[r];
    });
    placed_e.assign(slots_per_node, -1);
    placed_r.assign(slots_per_node, -1);
    fill.assign(gpus, 0);
    node_load.assign(gpus, 0.0);
    // The GPUs with a free slot, least loaded first (lowest index on ties): ascending order is
    // a valid heap for this order.
    open_gpus.clear();
    for (std::uint32_t g = 0; g < gpus; ++g) open_gpus.emplace_back(0.0, g);
    placed.reset(std::size_t{gpus} * experts_);
    const auto holds_placed = [&](std::uint32_t g, std::int32_t e) {
      return placed.contains(std::size_t{g} * experts_ + static_cast<std::size_t>(e));
    };
    for (const std::uint32_t i : order) {
      const std::int32_t e = items_e[i];
      std::uint32_t pick = gpus;
      skipped_gpus.clear();
      while (!open_gpus.empty()) {
        std::pop_heap(open_gpus.begin(), open_gpus.end(), std::greater<>());
        const auto top = open_gpus.back();
        open_gpus.pop_back();
        if (!holds_placed(top.second, e)) {
          pick = top.second;
          break;
        }
        skipped_gpus.push_back(top);
      }
      for (const auto& g : skipped_gpus) {
        open_gpus.push_back(g);
        std::push_heap(open_gpus.begin(), open_gpus.end(), std::greater<>());
      }
      if (pick == gpus) return false;
      placed_e[pick * per_gpu + fill[pick]] = e;
      placed_r[pick * per_gpu + fill[pick]] = items_r[i];
      placed.insert(std::size_t{pick} * experts_ + static_cast<std::size_t>(e));
      ++fill[pick];
      node_load[pick] += share[static_cast<std::size_t>(e)];
      if (!refine_repack && node_load[pick] > cap) return false;
      if (fill[pick] < per_gpu) {
        open_gpus.emplace_back(node_load[pick], pick);
        std::push_heap(open_gpus.begin(), open_gpus.end(), std::greater<>());
      }
    }
    if (refine_repack) {
      // Pairwise swaps between the busiest GPU and the others while that lowers the pair's peak
      // (the two replicas differ: their loads do).
      for (std::uint32_t step = 0; step < std::min(4 * gpus, kMaxRefineSteps); ++step) {
        std::uint32_t h = 0;
        for (std::uint32_t g = 1; g < gpus; ++g) {
          if (node_load[g] > node_load[h]) h = g;
        }
        if (node_load[h] <= cap) break;
        double best_peak = node_load[h];
        std::uint32_t best_i = slots_per_node, best_j = 0;
        for (std::uint32_t o = 0; o < gpus; ++o) {
          if (o == h) continue;
          for (std::uint32_t i = h * per_gpu; i < (h + 1) * per_gpu; ++i) {
            const double si = share[static_cast<std::size_t>(placed_e[i])];
            for (std::uint32_t j = o * per_gpu; j < (o + 1) * per_gpu; ++j) {
              const double d = si - share[static_cast<std::size_t>(placed_e[j])];
              if (d <= 0) continue;
              const double peak = std::max(node_load[h] - d, node_load[o] + d);
              if (peak >= best_peak || holds_placed(o, placed_e[i]) ||
                  holds_placed(h, placed_e[j])) {
                continue;
              }
              best_peak = peak;
              best_i = i;
              best_j = j;
            }
          }
        }
        if (best_i == slots_per_node) break;
        const double d = share[static_cast<std::size_t>(placed_e[best_i])] -
                         share[static_cast<std::size_t>(placed_e[best_j])];
        node_load[best_i / per_gpu] -= d;
        node_load[best_j / per_gpu] += d;
        const std::size_t row_i = std::size_t{best_i / per_gpu} * experts_;
        const std::size_t row_j = std::size_t{best_j / per_gpu} * experts_;
        placed.erase(row_i + static_cast<std::size_t>(placed_e[best_i]));
        placed.erase(row_j + static_cast<std::size_t>(placed_e[best_j]));
        placed.insert(row_i + static_cast<std::size_t>(placed_e[best_j]));
        placed.insert(row_j + static_cast<std::size_t>(placed_e[best_i]));
        std::swap(placed_e[best_i], placed_e[best_j]);
        std::swap(placed_r[best_i], placed_r[best_j]);
      }
      if (*std::max_element(node_load.begin(), node_load.end()) > cap) return false;
    }
    if (write) {
      std::copy(placed_e.begin(), placed_e.end(), phy2log.begin() + first);
      std::copy(placed_r.begin(), placed_r.end(), replica_rank.begin() + first);
      for (std::uint32_t g = 0; g < gpus; ++g) gpu_load[first_gpu + g] = node_load[g];
      std::fill(used.begin() + first, used.begin() + first + slots_per_node, 1);
    }
    return true;
  };
  std::vector<char> in_on_gpu;
  bool allow_repack = num_slots <= kPairMoveSlots;
  bool lock_used = true;  // three-way moves avoid slots already changed this round
  // Where expert `in` lands on the node of slot `v`, whose expert `out` leaves the node: `v`
  // itself, or a slot t on another GPU of that node whose expert moves into `v` (a three-way
  // move with the same effect on the node's experts, for when `in` does not fit on v's GPU), or
  // (num_slots + 1, when allow_repack) the node packed again. Returns num_slots when no such
  // arrangement keeps the balance bound and the no-duplicate rule.
  const auto landing = [&](std::uint32_t v, std::uint32_t out, std::uint32_t in) {
    const std::uint32_t gv = v / per_gpu;
    if (gpu_load[gv] - share[out] + share[in] <= cap && !holds(gv, in, v)) return v;
    const std::uint32_t first = v / slots_per_node * slots_per_node;
    const std::uint32_t first_gpu = first / per_gpu;
    // Which GPUs of the node hold `in`, and which experts v's GPU holds (c != out below, so
    // v's own slot may count): one pass over the node instead of a GPU's slots per t.
    in_on_gpu.assign(slots_per_node / per_gpu, 0);
    for (std::uint32_t t = first; t < first + slots_per_node; ++t) {
      if (phy2log[t] == static_cast<std::int32_t>(in)) in_on_gpu[t / per_gpu - first_gpu] = 1;
    }
    on_v_gpu.reset(experts_);
    for (std::uint32_t t = gv * per_gpu; t < (gv + 1) * per_gpu; ++t) {
      on_v_gpu.insert(static_cast<std::size_t>(phy2log[t]));
    }
    std::uint32_t best = num_slots;
    double best_peak = 0;
    for (std::uint32_t t = first; t < first + slots_per_node; ++t) {
      const std::uint32_t gt = t / per_gpu;
      const auto c = static_cast<std::uint32_t>(phy2log[t]);
      if (gt == gv || (lock_used && used[t] != 0) || c == in || c == out) continue;
      const double load_v = gpu_load[gv] - share[out] + share[c];
      const double load_t = gpu_load[gt] - share[c] + share[in];
      const double peak = std::max(load_v, load_t);
      if (peak > cap || (best != num_slots && peak >= best_peak)) continue;
      if (on_v_gpu.contains(c) || in_on_gpu[gt - first_gpu] != 0) continue;
      best = t;
      best_peak = peak;
    }
    // Packing the whole node again costs ~100x a landing check: small layers, or the best
    // candidates of a round.
    if (best == num_slots && allow_repack && repack_node(v, in, 0, false)) {
      best = num_slots + 1;
    }
    return best;
  };
  // Puts `in` (replica rank `rank`) into the node of the vacated slot `v` through `t`.
  const auto land = [&](std::uint32_t v, std::uint32_t t, std::uint32_t out, std::uint32_t in,
                        std::int32_t rank) {
    const std::uint32_t gv = v / per_gpu;
    if (t == num_slots + 1) {
      (void)out;
      (void)repack_node(v, in, rank, true);
      return;
    }
    if (t == v) {
      phy2log[v] = static_cast<std::int32_t>(in);
      replica_rank[v] = rank;
      gpu_load[gv] += share[in] - share[out];
      return;
    }
    const auto c = static_cast<std::uint32_t>(phy2log[t]);
    phy2log[v] = static_cast<std::int32_t>(c);
    replica_rank[v] = replica_rank[t];
    phy2log[t] = static_cast<std::int32_t>(in);
    replica_rank[t] = rank;
    gpu_load[gv] += share[c] - share[out];
    gpu_load[t / per_gpu] += share[in] - share[c];
    used[t] = 1;
  };
  const auto proxy = [&](std::uint32_t e, std::uint32_t from, std::uint32_t to) {
    const std::size_t base = std::size_t{e} * nodes_;
    double p = 0;
    if (cnt_[base + to] == 0) p += static_cast<double>(pull_[base + to]);
    if (cnt_[base + from] == 1) p -= static_cast<double>(pull_[base + from]);
    return p;
  };

  std::vector<char> first_on_node(num_slots, 0);
  StampedSet seen_on_node;
  // Every swap of two replicas on different nodes that `rank(a, b, x, y, s1, s2, key)` keeps,
  // with the key it sets (highest first). Of several replicas of an expert on a node, only the
  // lowest slot is listed: the others would leave the same experts on each node (a three-way
  // landing may still move the replica to another GPU of the node).
  const auto list_swaps = [&](std::vector<Candidate>& out, const auto& rank) {
    out.clear();
    for (std::uint32_t s = 0; s < num_slots; ++s) {
      if (s % slots_per_node == 0) seen_on_node.reset(experts_);
      const auto e = static_cast<std::size_t>(phy2log[s]);
      first_on_node[s] = seen_on_node.contains(e) ? 0 : 1;
      seen_on_node.insert(e);
    }
    for (std::uint32_t s1 = 0; s1 < num_slots; ++s1) {
      if (first_on_node[s1] == 0) continue;
      const auto a = static_cast<std::uint32_t>(phy2log[s1]);
      const std::uint32_t x = s1 / slots_per_node;
      for (std::uint32_t s2 = (x + 1) * slots_per_node; s2 < num_slots; ++s2) {
        const auto b = static_cast<std::uint32_t>(phy2log[s2]);
        if (a == b || first_on_node[s2] == 0) continue;
        double key = 0;
        if (rank(a, b, x, s2 / slots_per_node, s1, s2, key)) out.push_back({key, s1, s2});
      }
    }
  };
  const auto by_proxy = [&](bool all) {
    return [&, all](std::uint32_t a, std::uint32_t b, std::uint32_t x, std::uint32_t y,
                    std::uint32_t, std::uint32_t, double& key) {
      key = proxy(a, x, y) + proxy(b, y, x);
      return all || key > 0;
    };
  };

  // Whether the relaxed scope lets a (on node x) and b (on node y) trade nodes: no expert loses
  // its last replica at home, and the off-home count (changing by `off_delta`) stays in budget.
  const auto relaxed_allows = [&](std::uint32_t a, std::uint32_t b, std::uint32_t x,
                                  std::uint32_t y, std::int64_t& off_delta) {
    off_delta = 0;
    if (!relaxed) return true;
    if ((x == home[a] && cnt_[std::size_t{a} * nodes_ + x] == 1) ||
        (y == home[b] && cnt_[std::size_t{b} * nodes_ + y] == 1)) {
      return false;
    }
    off_delta = std::int64_t{y != home[a]} - std::int64_t{x != home[a]} +
                std::int64_t{x != home[b]} - std::int64_t{y != home[b]};
    return off_home + off_delta <= settings.cross_node_budget;
  };
  // The exact change of the metric over the sampled rows if a (on node x) and b (on node y)
  // traded nodes; `changed` receives each affected row's new nodes.
  std::vector<std::pair<std::uint32_t, std::uint64_t>> changed;
  const auto swap_delta = [&](std::uint32_t a, std::uint32_t b, std::uint32_t x, std::uint32_t y) {
    move_replica(a, x, y, false);
    move_replica(b, y, x, false);
    changed.clear();
    std::int64_t delta = 0;
    const std::array<std::uint32_t, 2> pair = {a, b};
    for_each_row_of(pair, [&](std::uint32_t r) {
      const std::uint64_t nodes = row_nodes(r);
      delta += node_count(nodes) - node_count(chosen_[r]);
      changed.emplace_back(r, nodes);
    });
    move_replica(b, x, y, false);
    move_replica(a, y, x, false);
    return delta;
  };
  bool gains_live = false;  // gain_ is kept in step with the moves (the estimate phase)
  // Applies the swap swap_delta just measured: the experts of s1 and s2 trade nodes, landing
  // through t1 and t2 (see landing).
  const auto commit_swap = [&](std::uint32_t s1, std::uint32_t s2, std::uint32_t t1,
                               std::uint32_t t2, std::int64_t off_delta) {
    const auto a = static_cast<std::uint32_t>(phy2log[s1]);
    const auto b = static_cast<std::uint32_t>(phy2log[s2]);
    const std::uint32_t x = s1 / slots_per_node;
    const std::uint32_t y = s2 / slots_per_node;
    if (gains_live) {
      for (const auto& [r, nodes] : changed) add_row_gains(r, -1);
    }
    move_replica(a, x, y, true);
    move_replica(b, y, x, true);
    for (const auto& [r, nodes] : changed) {
      chosen_[r] = nodes;
      if (gains_live) add_row_gains(r, +1);
    }
    const std::int32_t rank_a = replica_rank[s1];
    const std::int32_t rank_b = replica_rank[s2];
    land(s1, t1, a, b, rank_b);
    land(s2, t2, b, a, rank_a);
    off_home += off_delta;
  };

  // Joint moves (several swaps applied together, the nodes they touch packed again) are tried
  // on the plan itself and undone from a log of what they changed: slots (expert and rank), GPU
  // loads and replica moves between nodes, restored in reverse order.
  std::vector<std::uint32_t> touched_nodes;
  std::vector<std::uint32_t> moved;  // experts whose nodes the move changes
  struct SlotEdit {
    std::uint32_t slot;
    std::int32_t expert, rank;
  };
  std::vector<SlotEdit> slot_log;
  std::vector<std::pair<std::uint32_t, double>> load_log;  // (gpu, load before)
  std::vector<std::array<std::uint32_t, 3>> replica_log;   // (expert, from node, to node)
  std::int64_t off_home_before = 0;
  const auto log_slot = [&](std::uint32_t s) {
    slot_log.push_back({s, phy2log[s], replica_rank[s]});
  };
  const auto begin_move = [&] {
    slot_log.clear();
    load_log.clear();
    replica_log.clear();
    moved.clear();
    touched_nodes.clear();
    off_home_before = off_home;
  };
  const auto undo_move = [&] {
    for (auto it = slot_log.rbegin(); it != slot_log.rend(); ++it) {
      phy2log[it->slot] = it->expert;
      replica_rank[it->slot] = it->rank;
    }
    for (auto it = load_log.rbegin(); it != load_log.rend(); ++it) gpu_load[it->first] = it->second;
    for (auto it = replica_log.rbegin(); it != replica_log.rend(); ++it) {
      move_replica((*it)[0], (*it)[2], (*it)[1], false);
    }
    off_home = off_home_before;
  };
  // One swap of a joint move, unchecked for balance (settle does that); false if not allowed.
  const auto raw_swap = [&](std::uint32_t s1, std::uint32_t s2, bool track_pull) {
    const auto a = static_cast<std::uint32_t>(phy2log[s1]);
    const auto b = static_cast<std::uint32_t>(phy2log[s2]);
    const std::uint32_t x = s1 / slots_per_node;
    const std::uint32_t y = s2 / slots_per_node;
    std::int64_t off_delta = 0;
    if (a == b || x == y || !relaxed_allows(a, b, x, y, off_delta)) return false;
    off_home += off_delta;
    move_replica(a, x, y, track_pull);
    move_replica(b, y, x, track_pull);
    replica_log.push_back({a, x, y});
    replica_log.push_back({b, y, x});
    load_log.emplace_back(s1 / per_gpu, gpu_load[s1 / per_gpu]);
    gpu_load[s1 / per_gpu] += share[b] - share[a];
    load_log.emplace_back(s2 / per_gpu, gpu_load[s2 / per_gpu]);
    gpu_load[s2 / per_gpu] += share[a] - share[b];
    log_slot(s1);
    log_slot(s2);
    std::swap(phy2log[s1], phy2log[s2]);
    std::swap(replica_rank[s1], replica_rank[s2]);
    moved.push_back(a);
    moved.push_back(b);
    touched_nodes.push_back(x);
    touched_nodes.push_back(y);
    return true;
  };
  // Whether every touched node fits (as it is, or packed again).
  const auto settle = [&] {
    for (const std::uint32_t node : touched_nodes) {
      const std::uint32_t first = node * slots_per_node;
      bool fits = true;
      for (std::uint32_t s = first; s < first + slots_per_node && fits; ++s) {
        const std::uint32_t g = s / per_gpu;
        fits = gpu_load[g] <= cap && !holds(g, static_cast<std::uint32_t>(phy2log[s]), s);
      }
      if (fits) continue;
      for (std::uint32_t s = first; s < first + slots_per_node; ++s) log_slot(s);
      for (std::uint32_t g = first / per_gpu; g < (first + slots_per_node) / per_gpu; ++g) {
        load_log.emplace_back(g, gpu_load[g]);
      }
      if (!repack_node(first, static_cast<std::uint32_t>(phy2log[first]), replica_rank[first],
                       true)) {
        return false;
      }
    }
    return true;
  };
  const auto delta_of_moved = [&] {
    std::int64_t delta = 0;
    for_each_row_of(moved, [&](std::uint32_t r) {
      delta += node_count(row_nodes(r)) - node_count(chosen_[r]);
    });
    return delta;
  };
  // Applies a joint move for good: `apply(track_pull)` applies it (it was found legal); the
  // affected rows' estimates go out under the old state and back under the new.
  const auto commit_joint = [&](const auto& apply) {
    (void)apply(false);
    const std::vector<std::uint32_t> experts = moved;
    undo_move();
    if (gains_live) for_each_row_of(experts, [&](std::uint32_t r) { add_row_gains(r, -1); });
    (void)apply(true);
    for_each_row_of(experts, [&](std::uint32_t r) {
      chosen_[r] = row_nodes(r);
      if (gains_live) add_row_gains(r, +1);
    });
  };

  // Rounds of single swaps, best proxy first; small layers try every swap (the proxy misses
  // moves that pay off only together). A slot changed in a round is not used again in it.
  std::uint32_t moves = 0;
  for (std::uint32_t round = 0; round < settings.max_rounds; ++round) {
    list_swaps(candidates_, by_proxy(num_slots <= kAllPairsSlots));
    if (candidates_.empty()) break;
    const std::size_t keep = keep_best(candidates_, kCandidatesPerRound);
    std::fill(used.begin(), used.end(), 0);
    std::uint32_t applied = 0;
    std::uint32_t misses = 0;
    for (std::size_t i = 0; i < keep && misses < kMaxMissesPerRound; ++i) {
      const Candidate c = candidates_[i];
      if (used[c.s1] != 0 || used[c.s2] != 0) continue;
      allow_repack = num_slots <= kPairMoveSlots || i < kRepackCandidates;
      const auto a = static_cast<std::uint32_t>(phy2log[c.s1]);
      const auto b = static_cast<std::uint32_t>(phy2log[c.s2]);
      const std::uint32_t x = c.s1 / slots_per_node;
      const std::uint32_t y = c.s2 / slots_per_node;
      const std::uint32_t t1 = landing(c.s1, a, b);
      if (t1 == num_slots) continue;
      const std::uint32_t t2 = landing(c.s2, b, a);
      if (t2 == num_slots) continue;
      std::int64_t off_delta = 0;
      if (!relaxed_allows(a, b, x, y, off_delta)) continue;
      if (swap_delta(a, b, x, y) >= 0) {
        ++misses;
        continue;
      }
      misses = 0;
      commit_swap(c.s1, c.s2, t1, t2, off_delta);
      used[c.s1] = used[c.s2] = 1;
      ++applied;
    }
    moves += applied;
    if (applied == 0) break;
    rebalance_nodes(topology, share, gpu_load, phy2log, replica_rank);
  }

  if (num_slots > kAllPairsSlots) {
    // Large layers, once the proxy's candidates are spent (it ranks only a part of the swaps):
    // every swap whose estimate (gain_) lowers the metric, best estimate first, checked exactly.
    // No slot is locked, a node that does not take a swap as it is may be packed again, and a
    // swap that leaves a node over the balance bound may bring a second swap along to take the
    // load back (compensate).
    lock_used = false;
    allow_repack = true;
    refine_repack = true;
    gains_live = true;
    gain_.assign(std::size_t{experts_} * nodes_ * nodes_, 0);
    for (std::size_t r = 0; r < chosen_.size(); ++r) add_row_gains(r, +1);
    const std::uint32_t gpus_per_node = slots_per_node / per_gpu;
    const double node_cap = cap * gpus_per_node;  // a node's load can never exceed this
    std::vector<double> node_total(nodes_);
    std::vector<Candidate> fixes;
    std::uint32_t unfit_in_layer = 0;
    StampedSet tried_on_heavy;  // compensate: experts of the heavy node already tried
    StampedSet listed_on_node;  // building by_load: experts of the node already listed
    std::uint64_t version = 1;  // changes with every change of the plan's slots
    // Each node's experts by their replica's load, with their lowest two slots on the node (the
    // second stands in when the first is one of the swap's own; rebuilt when the plan changes).
    struct SlotsByLoad {
      double load;
      std::uint32_t slot, second;  // second: num_slots when the expert has one slot there
    };
    std::vector<std::vector<SlotsByLoad>> by_load(nodes_);
    std::vector<std::uint32_t> entry_of(experts_);  // while building: the expert's entry
    std::uint64_t by_load_version = 0;
    // The swap of s1 and s2 lowers the metric by -delta but leaves its heavier node over the
    // bound: looks for a second swap between that node and another which takes enough load
    // back at an estimated cost below -delta; the pair is checked exactly and packed as one
    // move. Returns whether a pair was applied.
    const auto compensate = [&](std::uint32_t s1, std::uint32_t s2, std::int64_t delta) {
      for (std::uint32_t n = 0; n < nodes_; ++n) {
        node_total[n] = std::accumulate(gpu_load.begin() + n * gpus_per_node,
                                        gpu_load.begin() + (n + 1) * gpus_per_node, 0.0);
      }
      const auto a = static_cast<std::size_t>(phy2log[s1]);
      const auto b = static_cast<std::size_t>(phy2log[s2]);
      const std::uint32_t x = s1 / slots_per_node;
      const std::uint32_t y = s2 / slots_per_node;
      node_total[x] += share[b] - share[a];
      node_total[y] += share[a] - share[b];
      const std::uint32_t heavy = node_total[x] > node_total[y] ? x : y;
      const double excess = node_total[heavy] - node_cap;
      if (by_load_version != version) {
        for (std::uint32_t n = 0; n < nodes_; ++n) {
          auto& list = by_load[n];
          list.clear();
          listed_on_node.reset(experts_);
          for (std::uint32_t s = n * slots_per_node; s < (n + 1) * slots_per_node; ++s) {
            const auto e = static_cast<std::size_t>(phy2log[s]);
            if (!listed_on_node.contains(e)) {
              listed_on_node.insert(e);
              entry_of[e] = static_cast<std::uint32_t>(list.size());
              list.push_back({share[e], s, num_slots});
            } else if (list[entry_of[e]].second == num_slots) {
              list[entry_of[e]].second = s;
            }
          }
          std::sort(list.begin(), list.end(), [](const SlotsByLoad& l, const SlotsByLoad& r) {
            return l.load < r.load || (l.load == r.load && l.slot < r.slot);
          });
        }
        by_load_version = version;
      }
      fixes.clear();
      // One slot per expert and node is tried (the lowest other than s1 and s2, which wins
      // keep_best's ties): the others leave the same experts on each node.
      tried_on_heavy.reset(experts_);
      for (std::uint32_t s3 = heavy * slots_per_node; s3 < (heavy + 1) * slots_per_node; ++s3) {
        if (s3 == s1 || s3 == s2) continue;
        const auto d = static_cast<std::size_t>(phy2log[s3]);
        if (tried_on_heavy.contains(d)) continue;
        tried_on_heavy.insert(d);
        for (std::uint32_t z = 0; z < nodes_; ++z) {
          if (z == heavy) continue;
          // The loads that fit, excess <= share[d] - share[f] <= room on z, widened for rounding
          // (the exact test follows).
          const double room = node_cap - node_total[z];
          const double pad = 1e-9 * (std::abs(share[d]) + std::abs(room) + std::abs(excess));
          const auto& list = by_load[z];
          auto it = std::lower_bound(
              list.begin(), list.end(), share[d] - room - pad,
              [](const SlotsByLoad& entry, double load) { return entry.load < load; });
          for (; it != list.end() && it->load <= share[d] - excess + pad; ++it) {
            std::uint32_t s4 = it->slot;
            if (s4 == s1 || s4 == s2) s4 = it->second;
            if (s4 == num_slots || s4 == s1 || s4 == s2) continue;
            const auto f = static_cast<std::size_t>(phy2log[s4]);
            const double shift = share[d] - share[f];
            if (f == d || shift < excess || node_total[z] + shift > node_cap) continue;
            const std::int32_t estimate =
                gain_[(d * nodes_ + heavy) * nodes_ + z] + gain_[(f * nodes_ + z) * nodes_ + heavy];
            if (estimate + delta < 0) fixes.push_back({-static_cast<double>(estimate), s3, s4});
          }
        }
      }
      const std::size_t tries = keep_best(fixes, kCompensateTries);
      for (std::size_t i = 0; i < tries; ++i) {
        const auto swaps = [&](bool track_pull) {
          begin_move();
          return raw_swap(s1, s2, track_pull) && raw_swap(fixes[i].s1, fixes[i].s2, track_pull);
        };
        const bool better = swaps(false) && settle() && delta_of_moved() < 0;
        undo_move();
        if (!better) continue;
        commit_joint([&](bool track_pull) { return swaps(track_pull) && settle(); });
        ++version;
        return true;
      }
      return false;
    };
    const auto by_estimate = [&](std::uint32_t, std::uint32_t, std::uint32_t, std::uint32_t,
                                 std::uint32_t s1, std::uint32_t s2, double& key) {
      const std::int32_t estimate = estimate_swap(s1, s2);
      key = -static_cast<double>(estimate);
      return estimate < 0;
    };
    for (std::uint32_t round = 0;
         round < settings.max_rounds && unfit_in_layer < kMaxUnfitSwapsPerLayer; ++round) {
      list_swaps(candidates_, by_estimate);
      const std::size_t keep = keep_best(candidates_, kCandidatesPerRound);
      std::uint32_t applied = 0;
      std::uint32_t misses = 0;  // swaps that lower the metric but do not fit
      for (std::size_t i = 0;
           i < keep && misses < kMaxUnfitSwapsPerRound && unfit_in_layer < kMaxUnfitSwapsPerLayer;
           ++i) {
        const Candidate c = candidates_[i];
        const auto a = static_cast<std::uint32_t>(phy2log[c.s1]);
        const auto b = static_cast<std::uint32_t>(phy2log[c.s2]);
        // Earlier moves of the round change slots and estimates.
        if (a == b || estimate_swap(c.s1, c.s2) >= 0) continue;
        const std::uint32_t x = c.s1 / slots_per_node;
        const std::uint32_t y = c.s2 / slots_per_node;
        std::int64_t off_delta = 0;
        if (!relaxed_allows(a, b, x, y, off_delta)) continue;
        const std::int64_t delta = swap_delta(a, b, x, y);
        if (delta >= 0) continue;
        const std::uint32_t t1 = landing(c.s1, a, b);
        const std::uint32_t t2 = t1 == num_slots ? num_slots : landing(c.s2, b, a);
        if (t2 != num_slots) {
          commit_swap(c.s1, c.s2, t1, t2, off_delta);
          ++version;
          ++applied;
        } else if (compensate(c.s1, c.s2, delta)) {
          applied += 2;
        } else {
          ++misses;
          ++unfit_in_layer;
        }
      }
      moves += applied;
      if (applied == 0) break;
      rebalance_nodes(topology, share, gpu_load, phy2log, replica_rank);
      ++version;
    }
  }
  if (num_slots > kPairMoveSlots) return moves;

  // Small layers, once no single swap helps: joint moves of one or two swaps between nodes
  // (some pay off, or fit under the balance bound, only together, e.g. two experts trading
  // places with two others); the nodes they touch are packed again (largest replica first, see
  // repack_node) unless their GPUs already fit. The best move over the top candidates is
  // applied, until none improves the exact metric.
  std::vector<Candidate> singles;
  for (std::uint32_t round = 0; round < settings.max_rounds; ++round) {
    list_swaps(singles, by_proxy(true));
    const std::size_t keep = keep_best(singles, kPairMoveCandidates);
    // A move: singles[i], then singles[j] unless j == i (both orders are tried: the first swap
    // can change what the second's slots hold). Returns whether it is legal.
    const auto apply_pair = [&](std::size_t i, std::size_t j, bool track_pull) {
      begin_move();
      return raw_swap(singles[i].s1, singles[i].s2, track_pull) &&
             (j == i || raw_swap(singles[j].s1, singles[j].s2, track_pull)) && settle();
    };
    std::int64_t best_delta = 0;
    std::size_t best_i = 0, best_j = 0;
    for (std::size_t i = 0; i < keep; ++i) {
      for (std::size_t j = 0; j < keep; ++j) {
        // Packing small nodes (settle) costs less than the metric over their many rows.
        const std::int64_t delta = apply_pair(i, j, false) ? delta_of_moved() : 0;
        undo_move();
        if (delta < best_delta) {
          best_delta = delta;
          best_i = i;
          best_j = j;
        }
      }
    }
    if (best_delta >= 0) break;
    commit_joint([&](bool track_pull) { return apply_pair(best_i, best_j, track_pull); });
    moves += best_j != best_i ? 2 : 1;
  }
  return moves;
}

void AffinityPlanner::rebalance_nodes(const Topology& topology, std::span<const double> share,
                                      std::span<double> gpu_load, std::span<std::int32_t> phy2log,
                                      std::span<std::int32_t> replica_rank) {
  // Swaps within a node change no node's experts, so the metric stays; lowering each node's
  // busiest GPU leaves room under the balance bound for the next swaps between nodes.
  const std::uint32_t per_gpu = topology.slots_per_gpu();
  const std::uint32_t gpus_per_node = topology.gpus_per_node();
  for (std::uint32_t node = 0; node < nodes_; ++node) {
    const std::uint32_t first_gpu = node * gpus_per_node;
    for (std::uint32_t step = 0; step < 4 * gpus_per_node; ++step) {
      std::uint32_t h = first_gpu;
      for (std::uint32_t g = first_gpu; g < first_gpu + gpus_per_node; ++g) {
        if (gpu_load[g] > gpu_load[h]) h = g;
      }
      double best_peak = gpu_load[h] * (1 - 1e-9);
      std::uint32_t best_a = 0, best_b = 0;
      bool found = false;
      for (std::uint32_t o = first_gpu; o < first_gpu + gpus_per_node; ++o) {
        if (o == h) continue;
        for (std::uint32_t sa = h * per_gpu; sa < (h + 1) * per_gpu; ++sa) {
          const std::int32_t x = phy2log[sa];
          for (std::uint32_t sb = o * per_gpu; sb < (o + 1) * per_gpu; ++sb) {
            const std::int32_t y = phy2log[sb];
            if (x == y) continue;
            const double dx = share[static_cast<std::size_t>(x)];
            const double dy = share[static_cast<std::size_t>(y)];
            const double peak = std::max(gpu_load[h] - dx + dy, gpu_load[o] - dy + dx);
            if (peak >= best_peak || gpu_holds(phy2log, per_gpu, o, x) ||
                gpu_holds(phy2log, per_gpu, h, y)) {
              continue;
            }
            best_peak = peak;
            best_a = sa;
            best_b = sb;
            found = true;
          }
        }
      }
      if (!found) break;
      const double dx = share[static_cast<std::size_t>(phy2log[best_a])];
      const double dy = share[static_cast<std::size_t>(phy2log[best_b])];
      gpu_load[best_a / per_gpu] += dy - dx;
      gpu_load[best_b / per_gpu] += dx - dy;
      std::swap(phy2log[best_a], phy2log[best_b]);
      std::swap(replica_rank[best_a], replica_rank[best_b]);
    }
  }
}

std::uint32_t AffinityPlanner::exchange_groups(const Topology& topology,
                                               const AffinitySettings& settings,
                                               std::span<const double> loads,
                                               std::span<std::int32_t> phy2log,
                                               std::span<std::int32_t> replica_rank) {
  const std::uint32_t groups = topology.num_groups;
  if (groups % nodes_ != 0 || groups == nodes_) return 0;  // one group per node: nothing to gain
  const std::uint32_t group_size = experts_ / groups;
  const std::uint32_t num_slots = topology.num_physical;
  const std::uint32_t slots_per_node = num_slots / nodes_;
  const std::uint32_t gpus_per_node = topology.gpus_per_node();

  // The plan must keep every group on one node; otherwise there is no group to move.
  std::vector<std::uint32_t> node_of_group(groups, nodes_);
  for (std::uint32_t s = 0; s < num_slots; ++s) {
    const auto g = static_cast<std::uint32_t>(phy2log[s]) / group_size;
    const std::uint32_t node = s / slots_per_node;
    if (node_of_group[g] == nodes_) node_of_group[g] = node;
    if (node_of_group[g] != node) return 0;
  }

  // Rows as sets of groups: with whole groups per node a row touches exactly its groups' nodes.
  std::vector<std::uint32_t> group_off(1, 0);
  std::vector<std::uint32_t> group_ids;
  std::vector<std::uint32_t> stamp(groups, 0);
  std::uint32_t next = 0;
  for (std::size_t r = 0; r + 1 < row_off_.size(); ++r) {
    ++next;
    for (std::uint32_t i = row_off_[r]; i < row_off_[r + 1]; ++i) {
      const std::uint32_t g = row_ids_[i] / group_size;
      if (stamp[g] == next) continue;
      stamp[g] = next;
      group_ids.push_back(g);
    }
    group_off.push_back(static_cast<std::uint32_t>(group_ids.size()));
  }
  const auto metric = [&](const std::vector<std::uint32_t>& where) {
    std::uint64_t total = 0;
    for (std::size_t r = 0; r + 1 < group_off.size(); ++r) {
      std::uint64_t nodes = 0;
      for (std::uint32_t i = group_off[r]; i < group_off[r + 1]; ++i) {
        nodes |= std::uint64_t{1} << where[group_ids[i]];
      }
      total += static_cast<std::uint64_t>(std::popcount(nodes));
    }
    return total;
  };

  const double base_max = max_gpu_load(topology, loads, phy2log);
  if (!(base_max > 0.0)) return 0;
  const double cap = base_max / settings.min_balance_ratio * (1 + kCapSlack);

  // Plans one node's slots for a set of groups with the balanced planner (global within it).
  Topology sub;
  sub.num_layers = 1;
  sub.num_logical = group_size * (groups / nodes_);
  sub.num_physical = slots_per_node;
  sub.num_nodes = 1;
  sub.num_gpus = gpus_per_node;
  sub.num_groups = 1;
  std::vector<double> local_loads(sub.num_logical);
  std::vector<std::int32_t> local_map(slots_per_node), local_rank(slots_per_node);
  const auto plan_node = [&](std::uint32_t node, const std::vector<std::uint32_t>& where,
                             std::span<std::int32_t> map, std::span<std::int32_t> rank) {
    std::vector<std::int32_t> experts;
    for (std::uint32_t g = 0; g < groups; ++g) {
      if (where[g] != node) continue;
      for (std::uint32_t e = g * group_size; e < (g + 1) * group_size; ++e) {
        experts.push_back(static_cast<std::int32_t>(e));
      }
    }
    for (std::size_t i = 0; i < experts.size(); ++i) {
      local_loads[i] = loads[static_cast<std::size_t>(experts[i])];
    }
    node_planner_.plan_layer(sub, BalancedSettings{}, local_loads, local_map, local_rank);
    for (std::uint32_t s = 0; s < slots_per_node; ++s) {
      map[std::size_t{node} * slots_per_node + s] = experts[static_cast<std::size_t>(local_map[s])];
      rank[std::size_t{node} * slots_per_node + s] = local_rank[s];
    }
  };

  std::vector<std::int32_t> trial_map(phy2log.begin(), phy2log.end());
  std::vector<std::int32_t> trial_rank(replica_rank.begin(), replica_rank.end());
  struct Exchange {
    std::uint64_t metric;
    std::uint32_t g1, g2;
  };
  std::vector<Exchange> exchanges;
  std::uint32_t moves = 0;
  for (std::uint32_t round = 0; round < settings.max_rounds; ++round) {
    const std::uint64_t current = metric(node_of_group);
    exchanges.clear();
    for (std::uint32_t g1 = 0; g1 < groups; ++g1) {
      for (std::uint32_t g2 = g1 + 1; g2 < groups; ++g2) {
        if (node_of_group[g1] == node_of_group[g2]) continue;
        std::vector<std::uint32_t> where = node_of_group;
        std::swap(where[g1], where[g2]);
        const std::uint64_t m = metric(where);
        if (m < current) exchanges.push_back({m, g1, g2});
      }
    }
    std::sort(exchanges.begin(), exchanges.end(), [](const Exchange& l, const Exchange& r) {
      if (l.metric != r.metric) return l.metric < r.metric;
      if (l.g1 != r.g1) return l.g1 < r.g1;
      return l.g2 < r.g2;
    });
    bool applied = false;
    for (const Exchange& x : exchanges) {
      std::vector<std::uint32_t> where = node_of_group;
      std::swap(where[x.g1], where[x.g2]);
      std::copy(phy2log.begin(), phy2log.end(), trial_map.begin());
      std::copy(replica_rank.begin(), replica_rank.end(), trial_rank.begin());
      plan_node(node_of_group[x.g1], where, trial_map, trial_rank);
      plan_node(node_of_group[x.g2], where, trial_map, trial_rank);
      if (max_gpu_load(topology, loads, trial_map) > cap) continue;
      std::copy(trial_map.begin(), trial_map.end(), phy2log.begin());
      std::copy(trial_rank.begin(), trial_rank.end(), replica_rank.begin());
      node_of_group = where;
      ++moves;
      applied = true;
      break;
    }
    if (!applied) break;
  }
  return moves;
}

}  // namespace eplb
