#include "balanced_planner.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

#include "duplicate_free_fit.hpp"
#include "error.hpp"
#include "exact_optimum.hpp"
#include "relaxed_bound.hpp"
#include "relaxed_nodes.hpp"
#include "replication.hpp"
#include "trivial_planner.hpp"

namespace eplb {

namespace {

// Count exchanges are tried only while the busiest GPU is this far above the lower bound: below
// it the packing already sits at the bound's granularity and the search would only cost time.
constexpr double kCountSearchGap = 2e-3;
constexpr int kMaxCountRounds = 48;
constexpr std::size_t kDonorCandidates = 8;
// Blocks with at most this many experts try every (donor, receiver) pair per round.
constexpr std::size_t kExhaustiveExperts = 24;
constexpr double kRelativeGain = 1e-12;
constexpr int kBisectionSteps = 12;
// Candidate experts per node considered by each relaxed move.
constexpr std::size_t kRelaxedCandidates = 16;
// Blocks with at most this many experts also get the branch and bound over replica counts,
// cut off after this many complete count vectors, or this many visited partial ones.
constexpr std::size_t kSearchExperts = 16;
constexpr std::size_t kSearchLeaves = 20000;
constexpr std::size_t kSearchNodes = std::size_t{1} << 18;
// Upward scan of bottleneck targets: 0.25 % steps, up to 60 % above the lower bound.
constexpr double kScanStep = 2.5e-3;
constexpr int kScanSteps = 190;
// Relaxed policy, node level: bisection steps for the smallest node target, and the looser
// targets (relative) also packed onto GPUs.
constexpr int kNodeTargetSteps = 30;
constexpr std::array<double, 6> kNodeTargetSlack = {0.0, 2e-3, 5e-3, 1e-2, 2e-2, 4e-2};
// Search nodes for a plan without duplicates where DeepSeek's plan wins a block with some.
constexpr std::size_t kFitSteps = std::size_t{1} << 16;

// Water-filling replica counts in double precision (each extra slot to the largest load per
// replica, lowest index on ties), at most `cap` replicas per expert while that is possible.
void waterfill_counts(std::span<const double> loads, std::uint32_t num_slots, std::uint32_t cap,
                      std::vector<std::int32_t>& counts) {
  const std::size_t n = loads.size();
  EPLB_ASSERT(num_slots >= n);
  if (std::size_t{cap} * n < num_slots) cap = static_cast<std::uint32_t>((num_slots + n - 1) / n);
  counts.assign(n, 1);
  std::vector<std::pair<double, std::int32_t>> heap;
  for (std::size_t e = 0; e < n; ++e) heap.emplace_back(loads[e], -static_cast<std::int32_t>(e));
  std::make_heap(heap.begin(), heap.end());
  for (std::size_t slot = n; slot < num_slots; ++slot) {
    std::pop_heap(heap.begin(), heap.end());
    const auto e = static_cast<std::size_t>(-heap.back().second);
    heap.pop_back();
    ++counts[e];
    if (static_cast<std::uint32_t>(counts[e]) < cap) {
      heap.emplace_back(loads[e] / counts[e], -static_cast<std::int32_t>(e));
      std::push_heap(heap.begin(), heap.end());
    } else if (heap.empty()) {
      break;
    }
  }
  EPLB_ASSERT(std::accumulate(counts.begin(), counts.end(), std::int64_t{0}) == num_slots);
}

// Partitions `weights` into `num_parts` parts of equal item count: LPT, then pairwise swaps
// between the heaviest part and the others while they lower it. Writes each item's part.
void balanced_partition(std::span<const double> weights, std::uint32_t num_parts,
                        std::vector<std::int32_t>& part_of) {
  const std::size_t n = weights.size();
  const std::size_t per_part = n / num_parts;
  std::vector<std::int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int32_t a, std::int32_t b) { return weights[a] > weights[b]; });
  std::vector<double> sum(num_parts, 0.0);
  std::vector<std::size_t> size(num_parts, 0);
  part_of.assign(n, -1);
  for (std::int32_t item : order) {
    std::uint32_t best = num_parts;
    for (std::uint32_t p = 0; p < num_parts; ++p) {
      if (size[p] < per_part && (best == num_parts || sum[p] < sum[best])) best = p;
    }
    part_of[static_cast<std::size_t>(item)] = static_cast<std::int32_t>(best);
    sum[best] += weights[static_cast<std::size_t>(item)];
    ++size[best];
  }
  for (std::size_t step = 0; step < 16 * n; ++step) {
    const auto h =
        static_cast<std::int32_t>(std::max_element(sum.begin(), sum.end()) - sum.begin());
    const double peak = sum[static_cast<std::size_t>(h)];
    double best = peak * (1 - kRelativeGain);
    std::size_t best_a = n;
    std::size_t best_b = n;
    for (std::size_t a = 0; a < n; ++a) {
      if (part_of[a] != h) continue;
      for (std::size_t b = 0; b < n; ++b) {
        const double d = weights[a] - weights[b];
        if (part_of[b] == h || d <= 0) continue;
        const double pair = std::max(peak - d, sum[static_cast<std::size_t>(part_of[b])] + d);
        if (pair < best) {
          best = pair;
          best_a = a;
          best_b = b;
        }
      }
    }
    if (best_a == n) break;
    const double d = weights[best_a] - weights[best_b];
    sum[static_cast<std::size_t>(h)] -= d;
    sum[static_cast<std::size_t>(part_of[best_b])] += d;
    std::swap(part_of[best_a], part_of[best_b]);
  }
}

// Feasibility of a bottleneck `target`: experts in decreasing load each take the fewest replicas
// that fit on distinct GPUs with a free slot and room under the target (tightest fit first),
// keeping a slot for every expert still to come; slots left at the end split the experts whose
// extra replica is lightest. On success writes counts and each GPU's experts (`gpu_expert`,
// slots_per_gpu entries per GPU, local indices).
bool fit_under(std::span<const double> w, std::span<const std::int32_t> order, double target,
               std::uint32_t num_gpus, std::uint32_t slots_per_gpu, std::uint32_t cap,
               std::vector<std::int32_t>& counts, std::vector<std::int32_t>& gpu_expert) {
  const std::size_t n = w.size();
  const double slack = target * 1e-12;
  std::vector<double> room(num_gpus, target);
  std::vector<std::uint32_t> free(num_gpus, slots_per_gpu);
  std::vector<std::uint8_t> holds(std::size_t{num_gpus} * n, 0);
  std::vector<std::uint32_t> candidates;
  counts.assign(n, 0);
  std::size_t free_slots = std::size_t{num_gpus} * slots_per_gpu;
  for (std::size_t k = 0; k < n; ++k) {
    const auto e = static_cast<std::size_t>(order[k]);
    const std::size_t still_to_place = n - k - 1;
    const auto first = static_cast<std::uint32_t>(std::max(1.0, std::ceil(w[e] / target - 1e-12)));
    bool placed = false;
    for (std::uint32_t c = first; c <= cap && c <= num_gpus; ++c) {
      if (free_slots < c + still_to_place) break;
      const double replica = w[e] / c;
      candidates.clear();
      for (std::uint32_t g = 0; g < num_gpus; ++g) {
        if (free[g] > 0 && room[g] + slack >= replica) candidates.push_back(g);
      }
      if (candidates.size() < c) continue;
      std::stable_sort(candidates.begin(), candidates.end(),
                       [&](std::uint32_t a, std::uint32_t b) { return room[a] < room[b]; });
      for (std::uint32_t i = 0; i < c; ++i) {
        const std::uint32_t g = candidates[i];
        room[g] -= replica;
        --free[g];
        holds[std::size_t{g} * n + e] = 1;
      }
      counts[e] = static_cast<std::int32_t>(c);
      free_slots -= c;
      placed = true;
      break;
    }
    if (!placed) return false;
  }
  // Fill the remaining slots by splitting experts further (which only lightens their GPUs).
  for (std::uint32_t g = 0; g < num_gpus; ++g) {
    while (free[g] > 0) {
      std::size_t best = n;
      double best_load = 0;
      for (std::size_t e = 0; e < n; ++e) {
        if (holds[std::size_t{g} * n + e] != 0 || static_cast<std::uint32_t>(counts[e]) >= cap)
          continue;
        const double load = w[e] / (counts[e] + 1);
        if (best == n || load < best_load) {
          best = e;
          best_load = load;
        }
      }
      if (best == n || room[g] + slack < best_load) return false;
      const double before = w[best] / counts[best];
      for (std::uint32_t h = 0; h < num_gpus; ++h) {
        if (holds[std::size_t{h} * n + best] != 0) room[h] += before - best_load;
      }
      ++counts[best];
      room[g] -= best_load;
      --free[g];
      holds[std::size_t{g} * n + best] = 1;
    }
  }
  gpu_expert.assign(std::size_t{num_gpus} * slots_per_gpu, -1);
  for (std::uint32_t g = 0; g < num_gpus; ++g) {
    std::uint32_t s = 0;
    for (std::size_t e = 0; e < n; ++e) {
      if (holds[std::size_t{g} * n + e] != 0)
        gpu_expert[g * slots_per_gpu + s++] = static_cast<std::int32_t>(e);
    }
    EPLB_ASSERT(s == slots_per_gpu);
  }
  return true;
}

bool has_duplicate(std::span<const std::int32_t> block, std::uint32_t slots_per_gpu) {
  for (std::size_t first = 0; first < block.size(); first += slots_per_gpu) {
    const auto gpu = block.subspan(first, slots_per_gpu);
    for (std::size_t i = 0; i < gpu.size(); ++i) {
      if (std::find(gpu.begin() + static_cast<std::ptrdiff_t>(i) + 1, gpu.end(), gpu[i]) !=
          gpu.end()) {
        return true;
      }
    }
  }
  return false;
}

void ranks_in_slot_order(std::span<const std::int32_t> phy2log, std::uint32_t num_experts,
                         std::span<std::int32_t> replica_rank) {
  std::vector<std::int32_t> next(num_experts, 0);
  for (std::size_t slot = 0; slot < phy2log.size(); ++slot) {
    replica_rank[slot] = next[static_cast<std::size_t>(phy2log[slot])]++;
  }
}

}  // namespace

bool balanced_is_hierarchical(const Topology& topology, BalancedPolicy policy) {
  return policy != BalancedPolicy::global && topology.num_nodes > 1 &&
         topology.num_groups % topology.num_nodes == 0;
}

std::vector<double> gpu_loads_of(const Topology& topology, std::span<const double> loads,
                                 std::span<const std::int32_t> phy2log) {
  std::vector<std::int32_t> counts(topology.num_logical, 0);
  for (std::int32_t e : phy2log) ++counts[static_cast<std::size_t>(e)];
  const std::uint32_t per_gpu = topology.slots_per_gpu();
  std::vector<double> gpu_loads(topology.num_gpus, 0.0);
  for (std::uint32_t g = 0; g < topology.num_gpus; ++g) {
    double load = 0;
    for (std::uint32_t s = 0; s < per_gpu; ++s) {
      const auto e = static_cast<std::size_t>(phy2log[g * per_gpu + s]);
      load += loads[e] / counts[e];
    }
    gpu_loads[g] = load;
  }
  return gpu_loads;
}

double max_gpu_load(const Topology& topology, std::span<const double> loads,
                    std::span<const std::int32_t> phy2log) {
  const std::vector<double> gpu_loads = gpu_loads_of(topology, loads, phy2log);
  return std::max(0.0, *std::max_element(gpu_loads.begin(), gpu_loads.end()));
}

double BalancedPlanner::pack_counts(std::span<const std::int32_t> experts,
                                    std::span<const double> loads,
                                    std::span<const std::int32_t> copies,
                                    std::span<const std::int32_t> counts, std::uint32_t num_gpus,
                                    std::uint32_t slots_per_gpu, std::span<std::int32_t> block) {
  replicas_.clear();
  for (std::size_t i = 0; i < experts.size(); ++i) {
    const double load = loads[static_cast<std::size_t>(experts[i])] / counts[i];
    for (std::int32_t c = 0; c < copies[i]; ++c) {
      replicas_.push_back(Replica{static_cast<std::int32_t>(i), load});
    }
  }
  EPLB_ASSERT(replicas_.size() == block.size());
  slot_replica_.resize(block.size());
  const double peak = packer_.pack(replicas_, num_gpus, slots_per_gpu,
                                   static_cast<std::uint32_t>(experts.size()), slot_replica_);
  for (std::size_t s = 0; s < block.size(); ++s) {
    block[s] = experts[static_cast<std::size_t>(
        replicas_[static_cast<std::size_t>(slot_replica_[s])].expert)];
  }
  return peak;
}

double BalancedPlanner::plan_block(std::span<const std::int32_t> experts,
                                   std::span<const double> loads, std::uint32_t num_gpus,
                                   std::uint32_t slots_per_gpu, std::span<std::int32_t> block) {
  Block b{experts, loads, {}, num_gpus, slots_per_gpu, 0, 0};
  const std::size_t n = experts.size();
  const std::uint32_t num_slots = num_gpus * slots_per_gpu;
  b.local.resize(n);
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    b.local[i] = loads[static_cast<std::size_t>(experts[i])];
    total += b.local[i];
  }
  b.bound = std::max(total / num_gpus, min_max_load_per_replica(b.local, num_slots, num_gpus));

  // Start 1: water-filled counts (DeepSeek's choice, capped so no GPU needs two copies).
  waterfill_counts(b.local, num_slots, num_gpus, counts_);
  b.cap = std::max<std::uint32_t>(num_gpus, *std::max_element(counts_.begin(), counts_.end()));
  double peak = pack_counts(experts, loads, counts_, counts_, num_gpus, slots_per_gpu, block);
  if (peak <= b.bound * (1 + kCountSearchGap)) return peak;
  peak = exchange_counts(b, counts_, block);

  // Start 2: counts and packing built together under the smallest bottleneck the fit reaches.
  alternative_.resize(block.size());
  if (peak > b.bound * (1 + kRelativeGain) && fit_bottleneck(b, peak, fit_counts_)) {
    const double other = exchange_counts(b, fit_counts_, alternative_);
    if (other < peak * (1 - kRelativeGain)) {
      peak = other;
      std::copy(alternative_.begin(), alternative_.end(), block.begin());
    }
  }
  // Start 3, small blocks: branch and bound over every vector of replica counts.
  if (peak > b.bound * (1 + kRelativeGain) && n <= kSearchExperts &&
      search_counts(b, peak, fit_counts_)) {
    const double other = exchange_counts(b, fit_counts_, alternative_);
    if (other < peak * (1 - kRelativeGain)) {
      peak = other;
      std::copy(alternative_.begin(), alternative_.end(), block.begin());
    }
  }
  // Two slots per GPU and few slots: the exact optimum is cheap, so take it where it is better.
  if (slots_per_gpu == 2 && num_slots <= kExactMaxPairedSlots &&
      peak > b.bound * (1 + kRelativeGain)) {
    const auto exact = exact_two_slot_arrangement(b.local, num_gpus, peak * (1 - kRelativeGain));
    if (exact) {
      for (std::size_t s = 0; s < block.size(); ++s) {
        block[s] = experts[static_cast<std::size_t>(exact->slots[s])];
      }
      peak = exact->peak;
    }
  }
  return peak;
}

double BalancedPlanner::exchange_counts(const Block& b, std::vector<std::int32_t>& counts,
                                        std::span<std::int32_t> block) {
  // Move one replica from one expert to another, re-pack, keep the move that lowers (busiest
  // GPU, sum of squared GPU loads) the most; repeat while one does. Small blocks try every
  // (donor, receiver) pair; large ones the experts on the busiest GPU as receivers and the
  // experts whose load per replica grows least as donors.
  const std::size_t n = b.experts.size();
  if (n > kExhaustiveExperts) return exchange_counts_incremental(b, counts, block);
  const auto spread = [&] {
    double squares = 0;
    for (double load : packer_.gpu_loads()) squares += load * load;
    return squares;
  };
  double peak = pack_counts(b.experts, b.loads, counts, counts, b.num_gpus, b.slots_per_gpu, block);
  double squares = spread();
  std::vector<std::int32_t> local_of(
      static_cast<std::size_t>(*std::max_element(b.experts.begin(), b.experts.end())) + 1, -1);
  for (std::size_t i = 0; i < n; ++i) {
    local_of[static_cast<std::size_t>(b.experts[i])] = static_cast<std::int32_t>(i);
  }
  std::vector<std::int32_t> donors;
  std::vector<std::int32_t> receivers;
  const bool exhaustive = n <= kExhaustiveExperts;
  for (int round = 0; round < kMaxCountRounds && peak > b.bound * (1 + kRelativeGain); ++round) {
    donors.clear();
    receivers.clear();
    if (exhaustive) {
      for (std::size_t i = 0; i < n; ++i) {
        if (counts[i] >= 2) donors.push_back(static_cast<std::int32_t>(i));
        if (static_cast<std::uint32_t>(counts[i]) < b.cap)
          receivers.push_back(static_cast<std::int32_t>(i));
      }
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        if (counts[i] >= 2) donors.push_back(static_cast<std::int32_t>(i));
      }
      const auto after = [&](std::int32_t i) {
        return b.local[static_cast<std::size_t>(i)] / (counts[static_cast<std::size_t>(i)] - 1);
      };
      const std::size_t keep = std::min(kDonorCandidates, donors.size());
      std::partial_sort(donors.begin(), donors.begin() + static_cast<std::ptrdiff_t>(keep),
                        donors.end(), [&](std::int32_t x, std::int32_t y) {
                          return after(x) < after(y) || (after(x) == after(y) && x < y);
                        });
      donors.resize(keep);
      const auto gpu_loads = packer_.gpu_loads();
      const auto busiest = static_cast<std::uint32_t>(
          std::max_element(gpu_loads.begin(), gpu_loads.end()) - gpu_loads.begin());
      for (std::uint32_t s = 0; s < b.slots_per_gpu; ++s) {
        const std::int32_t i =
            local_of[static_cast<std::size_t>(block[busiest * b.slots_per_gpu + s])];
        if (static_cast<std::uint32_t>(counts[static_cast<std::size_t>(i)]) < b.cap &&
            std::find(receivers.begin(), receivers.end(), i) == receivers.end()) {
          receivers.push_back(i);
        }
      }
    }
    double best_peak = peak;
    double best_squares = squares;
    std::int32_t best_donor = -1;
    std::int32_t best_receiver = -1;
    trial_block_.resize(block.size());
    for (std::int32_t receiver : receivers) {
      for (std::int32_t donor : donors) {
        if (donor == receiver) continue;
        trial_counts_ = counts;
        --trial_counts_[static_cast<std::size_t>(donor)];
        ++trial_counts_[static_cast<std::size_t>(receiver)];
        const double trial = pack_counts(b.experts, b.loads, trial_counts_, trial_counts_,
                                         b.num_gpus, b.slots_per_gpu, trial_block_);
        const double trial_squares = spread();
        const bool lower = trial < best_peak * (1 - kRelativeGain);
        const bool flatter =
            trial <= best_peak && trial_squares < best_squares * (1 - kRelativeGain);
        if (lower || flatter) {
          best_peak = trial;
          best_squares = trial_squares;
          best_donor = donor;
          best_receiver = receiver;
        }
      }
    }
    if (best_donor < 0) break;
    --counts[static_cast<std::size_t>(best_donor)];
    ++counts[static_cast<std::size_t>(best_receiver)];
    peak = pack_counts(b.experts, b.loads, counts, counts, b.num_gpus, b.slots_per_gpu, block);
    squares = spread();
  }
  return peak;
}

double BalancedPlanner::exchange_counts_incremental(const Block& b,
                                                    std::vector<std::int32_t>& counts,
                                                    std::span<std::int32_t> block) {
  // For large blocks: a move hands one slot of a donor expert to an expert on the busiest GPU.
  // Only the GPUs holding either expert change load, so each candidate (receiver, donor, slot)
  // is scored in O(GPUs); the best move is applied and the packing polished by the swap search.
  const std::size_t n = b.experts.size();
  const std::uint32_t per_gpu = b.slots_per_gpu;
  double peak = pack_counts(b.experts, b.loads, counts, counts, b.num_gpus, per_gpu, block);
  std::vector<std::int32_t> local_of(
      static_cast<std::size_t>(*std::max_element(b.experts.begin(), b.experts.end())) + 1, -1);
  for (std::size_t i = 0; i < n; ++i) {
    local_of[static_cast<std::size_t>(b.experts[i])] = static_cast<std::int32_t>(i);
  }
  std::vector<std::int32_t> slot_expert(block.size());
  std::vector<double> gpu(b.num_gpus);
  std::vector<double> trial(b.num_gpus);
  std::vector<std::uint8_t> holds(std::size_t{b.num_gpus} * n);
  std::vector<std::int32_t> donors;
  std::vector<std::int32_t> receivers;
  for (int round = 0; round < kMaxCountRounds && peak > b.bound * (1 + kRelativeGain); ++round) {
    std::fill(gpu.begin(), gpu.end(), 0.0);
    std::fill(holds.begin(), holds.end(), 0);
    for (std::size_t s = 0; s < block.size(); ++s) {
      const auto i = static_cast<std::size_t>(local_of[static_cast<std::size_t>(block[s])]);
      slot_expert[s] = static_cast<std::int32_t>(i);
      gpu[s / per_gpu] += b.local[i] / counts[i];
      holds[(s / per_gpu) * n + i] = 1;
    }
    const auto h =
        static_cast<std::uint32_t>(std::max_element(gpu.begin(), gpu.end()) - gpu.begin());
    receivers.clear();
    for (std::uint32_t k = 0; k < per_gpu; ++k) {
      const std::int32_t i = slot_expert[h * per_gpu + k];
      if (static_cast<std::uint32_t>(counts[static_cast<std::size_t>(i)]) < b.cap &&
          std::find(receivers.begin(), receivers.end(), i) == receivers.end()) {
        receivers.push_back(i);
      }
    }
    donors.clear();
    for (std::size_t i = 0; i < n; ++i) {
      if (counts[i] >= 2) donors.push_back(static_cast<std::int32_t>(i));
    }
    const auto grown = [&](std::int32_t i) {
      return b.local[static_cast<std::size_t>(i)] / (counts[static_cast<std::size_t>(i)] - 1);
    };
    const std::size_t keep = std::min<std::size_t>(2 * kDonorCandidates, donors.size());
    std::partial_sort(donors.begin(), donors.begin() + static_cast<std::ptrdiff_t>(keep),
                      donors.end(), [&](std::int32_t x, std::int32_t y) {
                        return grown(x) < grown(y) || (grown(x) == grown(y) && x < y);
                      });
    donors.resize(keep);

    double best = peak * (1 - kRelativeGain);
    std::size_t best_slot = block.size();
    std::int32_t best_receiver = -1;
    for (std::int32_t r : receivers) {
      const auto ur = static_cast<std::size_t>(r);
      const double r_gain = b.local[ur] / counts[ur] - b.local[ur] / (counts[ur] + 1);
      const double r_new = b.local[ur] / (counts[ur] + 1);
      for (std::int32_t d : donors) {
        if (d == r) continue;
        const auto ud = static_cast<std::size_t>(d);
        const double d_old = b.local[ud] / counts[ud];
        const double d_new = b.local[ud] / (counts[ud] - 1);
        for (std::size_t s = 0; s < block.size(); ++s) {
          if (slot_expert[s] != d) continue;
          const std::size_t x = s / per_gpu;
          if (holds[x * n + ur] != 0) continue;  // the receiver is already on that GPU
          double trial_peak = 0;
          for (std::uint32_t g = 0; g < b.num_gpus; ++g) {
            double load = gpu[g];
            if (holds[std::size_t{g} * n + ur] != 0) load -= r_gain;
            if (g == x) {
              load += r_new - d_old;
            } else if (holds[std::size_t{g} * n + ud] != 0) {
              load += d_new - d_old;
            }
            trial_peak = std::max(trial_peak, load);
            if (trial_peak >= best) break;
          }
          if (trial_peak < best) {
            best = trial_peak;
            best_slot = s;
            best_receiver = r;
          }
        }
      }
    }
    if (best_receiver < 0) break;
    const auto donor = static_cast<std::size_t>(slot_expert[best_slot]);
    --counts[donor];
    ++counts[static_cast<std::size_t>(best_receiver)];
    block[best_slot] = b.experts[static_cast<std::size_t>(best_receiver)];
    // Polish the new packing with the swap search.
    replicas_.clear();
    slot_replica_.resize(block.size());
    for (std::size_t s = 0; s < block.size(); ++s) {
      const auto i = static_cast<std::size_t>(local_of[static_cast<std::size_t>(block[s])]);
      replicas_.push_back(Replica{static_cast<std::int32_t>(i), b.local[i] / counts[i]});
      slot_replica_[s] = static_cast<std::int32_t>(s);
    }
    peak = packer_.improve(replicas_, b.num_gpus, per_gpu, static_cast<std::uint32_t>(n),
                           slot_replica_);
    for (std::size_t s = 0; s < block.size(); ++s) {
      block[s] = b.experts[static_cast<std::size_t>(
          replicas_[static_cast<std::size_t>(slot_replica_[s])].expert)];
    }
  }
  return peak;
}

bool BalancedPlanner::fit_bottleneck(const Block& b, double peak,
                                     std::vector<std::int32_t>& counts) {
  // The fit is not monotone in the target, so scan up from the bound in small steps to the
  // first target it reaches, then bisect between that and the last step it missed.
  const std::size_t n = b.experts.size();
  std::vector<std::int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int32_t x, std::int32_t y) {
    return b.local[static_cast<std::size_t>(x)] > b.local[static_cast<std::size_t>(y)];
  });
  std::vector<std::int32_t> trial;
  std::vector<std::int32_t> gpus;
  counts.clear();
  double lo = b.bound;
  double hi = peak;
  for (int step = 0; step < kScanSteps; ++step) {
    const double target = b.bound * std::pow(1 + kScanStep, step);
    if (target >= peak) break;
    if (fit_under(b.local, order, target, b.num_gpus, b.slots_per_gpu, b.cap, trial, gpus)) {
      hi = target;
      counts = trial;
      break;
    }
    lo = target;
  }
  for (int step = 0; step < kBisectionSteps && !counts.empty() && hi > lo * (1 + 1e-6); ++step) {
    const double mid = 0.5 * (lo + hi);
    if (fit_under(b.local, order, mid, b.num_gpus, b.slots_per_gpu, b.cap, trial, gpus)) {
      hi = mid;
      counts = trial;
    } else {
      lo = mid;
    }
  }
  return !counts.empty();
}

bool BalancedPlanner::search_counts(const Block& b, double peak,
                                    std::vector<std::int32_t>& best_counts) {
  // Depth-first over experts in decreasing load, each given 1..cap replicas; a branch dies when
  // one of its replicas alone is at least the best peak found. Leaves are scored by a fast
  // packing estimate (exact pairing with two slots per GPU, greedy LPT otherwise); the best
  // leaf's counts are returned for the full packer to polish. Every branch it enters can be
  // completed (the experts after it can take the slots left, at most cap each), and it stops
  // after kSearchLeaves leaves or kSearchNodes visits, whichever comes first.
  const std::size_t n = b.experts.size();
  const std::uint32_t num_slots = b.num_gpus * b.slots_per_gpu;
  std::vector<std::int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int32_t x, std::int32_t y) {
    return b.local[static_cast<std::size_t>(x)] > b.local[static_cast<std::size_t>(y)];
  });
  std::vector<std::int32_t> counts(n, 0);
  std::vector<std::pair<double, std::int32_t>> items;
  // Greedy LPT: a min-heap of (load, gpu), so the least loaded GPU with a free slot (the lowest
  // index among equal loads) takes the next replica; a full GPU leaves the heap.
  std::vector<std::pair<double, std::uint32_t>> heap;
  std::vector<std::uint32_t> used(b.num_gpus);
  const auto later = [](const auto& x, const auto& y) { return x > y; };
  double best = peak * (1 - kRelativeGain);
  bool found = false;
  std::size_t leaves = 0;
  std::size_t visits = 0;

  std::vector<std::pair<double, std::int32_t>> groups;  // (replica load, expert), one per expert
  const auto estimate = [&]() {
    // The replicas in decreasing load (ties by expert): sort the experts, then repeat each.
    groups.clear();
    for (std::size_t e = 0; e < n; ++e) {
      groups.emplace_back(b.local[e] / counts[e], static_cast<std::int32_t>(e));
    }
    std::sort(groups.begin(), groups.end(), [](const auto& x, const auto& y) {
      return x.first > y.first || (x.first == y.first && x.second < y.second);
    });
    items.clear();
    for (const auto& group : groups) {
      items.insert(items.end(), static_cast<std::size_t>(counts[group.second]), group);
    }
    double worst = 0;
    if (b.slots_per_gpu == 2) {
      for (std::size_t k = 0; k < items.size() / 2; ++k) {
        const auto& large = items[k];
        const auto& small = items[items.size() - 1 - k];
        if (large.second == small.second) return std::numeric_limits<double>::infinity();
        worst = std::max(worst, large.first + small.first);
      }
      return worst;
    }
    heap.clear();
    for (std::uint32_t g = 0; g < b.num_gpus; ++g) heap.emplace_back(0.0, g);  // a valid heap
    std::fill(used.begin(), used.end(), 0U);
    for (const auto& item : items) {
      std::pop_heap(heap.begin(), heap.end(), later);
      auto& [load, g] = heap.back();
      load += item.first;
      worst = std::max(worst, load);
      if (++used[g] < b.slots_per_gpu) {
        std::push_heap(heap.begin(), heap.end(), later);
      } else {
        heap.pop_back();
      }
    }
    return worst;
  };

  const std::function<void(std::size_t, std::uint32_t)> visit = [&](std::size_t depth,
                                                                    std::uint32_t left) {
    if (leaves >= kSearchLeaves || ++visits > kSearchNodes) return;
    const auto e = static_cast<std::size_t>(order[depth]);
    const std::size_t after = n - depth - 1;
    if (after == 0) {
      if (left < 1 || left > b.cap || b.local[e] / left >= best) return;
      counts[e] = static_cast<std::int32_t>(left);
      ++leaves;
      const double score = estimate();
      if (score < best) {
        best = score;
        best_counts = counts;
        found = true;
      }
      return;
    }
    // Fewest replicas that keep this expert's replica under the best peak and leave the experts
    // after it no more than cap slots each; most that leave one slot for each of them.
    const auto fewest = static_cast<std::uint32_t>(std::floor(b.local[e] / best)) + 1;
    const std::uint64_t absorbed = std::uint64_t{b.cap} * after;
    const auto least = static_cast<std::uint32_t>(left > absorbed ? left - absorbed : 1);
    const std::uint32_t most =
        std::min<std::uint32_t>(b.cap, left - static_cast<std::uint32_t>(after));
    for (std::uint32_t c = std::max({1U, fewest, least}); c <= most; ++c) {
      counts[e] = static_cast<std::int32_t>(c);
      visit(depth + 1, left - c);
    }
    counts[e] = 0;
  };
  visit(0, num_slots);
  return found;
}

void BalancedPlanner::plan_nodes(const Topology& topology, const BalancedSettings& settings,
                                 std::span<const double> loads, std::span<std::int32_t> phy2log) {
  const std::uint32_t nodes = topology.num_nodes;
  const std::uint32_t groups = topology.num_groups;
  const std::uint32_t group_size = topology.num_logical / groups;
  const std::uint32_t slots_per_node = topology.num_physical / nodes;
  const std::uint32_t gpus_per_node = topology.gpus_per_node();
  const std::uint32_t per_gpu = topology.slots_per_gpu();

  std::vector<double> group_loads(groups, 0.0);
  for (std::uint32_t e = 0; e < topology.num_logical; ++e) group_loads[e / group_size] += loads[e];
  std::vector<std::int32_t> node_of_group;
  balanced_partition(group_loads, nodes, node_of_group);
  std::vector<std::vector<std::int32_t>> node_experts(nodes);
  for (std::uint32_t g = 0; g < groups; ++g) {
    for (std::uint32_t i = 0; i < group_size; ++i) {
      node_experts[static_cast<std::size_t>(node_of_group[g])].push_back(
          static_cast<std::int32_t>(g * group_size + i));
    }
  }
  for (std::uint32_t n = 0; n < nodes; ++n) {
    plan_block(node_experts[n], loads, gpus_per_node, per_gpu,
               phy2log.subspan(std::size_t{n} * slots_per_node, slots_per_node));
  }
  if (settings.policy != BalancedPolicy::relaxed || settings.cross_node_budget == 0) return;

  // Relaxed: start from the hierarchical counts; copies[e][n] replicas of e on node n.
  const std::uint32_t num_experts = topology.num_logical;
  std::vector<std::int32_t> counts(num_experts, 0);
  std::vector<std::int32_t> home(num_experts, 0);
  std::vector<std::int32_t> copies(std::size_t{num_experts} * nodes, 0);
  for (std::uint32_t n = 0; n < nodes; ++n) {
    for (std::uint32_t s = 0; s < slots_per_node; ++s) {
      const auto e = static_cast<std::size_t>(phy2log[n * slots_per_node + s]);
      ++counts[e];
      ++copies[e * nodes + n];
      home[e] = static_cast<std::int32_t>(n);
    }
  }
  std::vector<double> node_load(nodes, 0.0);
  auto recompute = [&](std::vector<double>& out, const std::vector<std::int32_t>& c,
                       const std::vector<std::int32_t>& k) {
    std::fill(out.begin(), out.end(), 0.0);
    for (std::uint32_t e = 0; e < num_experts; ++e) {
      for (std::uint32_t n = 0; n < nodes; ++n) {
        out[n] += k[std::size_t{e} * nodes + n] * loads[e] / c[e];
      }
    }
  };
  recompute(node_load, counts, copies);
  std::vector<std::int32_t> candidates_in;
  std::vector<std::int32_t> candidates_out;
  // Pack each node's replicas onto its GPUs.
  std::vector<std::int32_t> present;
  std::vector<std::int32_t> present_copies;
  std::vector<std::int32_t> present_counts;
  const auto pack_nodes = [&](std::vector<std::int32_t>& out) {
    out.resize(phy2log.size());
    for (std::uint32_t n = 0; n < nodes; ++n) {
      present.clear();
      present_copies.clear();
      present_counts.clear();
      for (std::uint32_t e = 0; e < num_experts; ++e) {
        const std::int32_t k = copies[std::size_t{e} * nodes + n];
        if (k > 0) {
          present.push_back(static_cast<std::int32_t>(e));
          present_copies.push_back(k);
          present_counts.push_back(counts[e]);
        }
      }
      pack_counts(present, loads, present_copies, present_counts, gpus_per_node, per_gpu,
                  std::span(out).subspan(std::size_t{n} * slots_per_node, slots_per_node));
    }
  };
  // The node-level moves ignore GPU granularity, so the GPU plan is checked at a few points of
  // the budget and the best kept: more budget never ends busier.
  std::vector<std::int32_t> relaxed;
  double best_gpu_peak = max_gpu_load(topology, loads, phy2log);
  const auto checkpoint = [&] {
    pack_nodes(relaxed);
    const double gpu_peak = max_gpu_load(topology, loads, relaxed);
    if (gpu_peak < best_gpu_peak * (1 - kRelativeGain)) {
      best_gpu_peak = gpu_peak;
      std::copy(relaxed.begin(), relaxed.end(), phy2log.begin());
    }
  };
  const std::uint32_t budget = settings.cross_node_budget;
  std::uint32_t cross = 0;  // replicas off their home node
  std::uint32_t next_checkpoint = (budget + 3) / 4;
  const auto squares_of = [&](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x * x;
    return sum;
  };
  for (std::uint32_t step = 0; step < 4 * budget + nodes; ++step) {
    const auto h = static_cast<std::uint32_t>(std::max_element(node_load.begin(), node_load.end()) -
                                              node_load.begin());
    const double peak = node_load[h];
    double best = peak;
    double best_squares = squares_of(node_load);
    std::int32_t best_e = -1;
    std::int32_t best_f = -1;
    std::uint32_t best_m = 0;
    // Experts on the busiest node, heaviest replicas first, are the ones worth spreading.
    candidates_in.clear();
    for (std::uint32_t e = 0; e < num_experts; ++e) {
      if (copies[std::size_t{e} * nodes + h] > 0 &&
          static_cast<std::uint32_t>(counts[e]) < topology.num_gpus) {
        candidates_in.push_back(static_cast<std::int32_t>(e));
      }
    }
    const auto per_replica = [&](std::int32_t e) {
      return loads[static_cast<std::size_t>(e)] / counts[static_cast<std::size_t>(e)];
    };
    const std::size_t keep_in = std::min<std::size_t>(kRelaxedCandidates, candidates_in.size());
    std::partial_sort(
        candidates_in.begin(), candidates_in.begin() + static_cast<std::ptrdiff_t>(keep_in),
        candidates_in.end(), [&](std::int32_t a, std::int32_t b) {
          return per_replica(a) > per_replica(b) || (per_replica(a) == per_replica(b) && a < b);
        });
    candidates_in.resize(keep_in);
    for (std::uint32_t m = 0; m < nodes; ++m) {
      if (m == h || node_load[m] >= peak) continue;
      // A replica on node m that can be given up: its expert keeps a replica at home.
      candidates_out.clear();
      for (std::uint32_t f = 0; f < num_experts; ++f) {
        const std::int32_t here = copies[std::size_t{f} * nodes + m];
        const bool spare = here >= 2 || (here == 1 && home[f] != static_cast<std::int32_t>(m));
        if (spare && counts[f] >= 2) candidates_out.push_back(static_cast<std::int32_t>(f));
      }
      const auto grown = [&](std::int32_t f) {
        return loads[static_cast<std::size_t>(f)] / (counts[static_cast<std::size_t>(f)] - 1);
      };
      const std::size_t keep_out = std::min<std::size_t>(kRelaxedCandidates, candidates_out.size());
      std::partial_sort(candidates_out.begin(),
                        candidates_out.begin() + static_cast<std::ptrdiff_t>(keep_out),
                        candidates_out.end(), [&](std::int32_t a, std::int32_t b) {
                          return grown(a) < grown(b) || (grown(a) == grown(b) && a < b);
                        });
      candidates_out.resize(keep_out);
      for (std::int32_t e : candidates_in) {
        // A new replica on m counts against the budget unless m is e's home; giving up f's
        // replica on m frees budget when m is not f's home.
        const std::uint32_t added =
            home[static_cast<std::size_t>(e)] != static_cast<std::int32_t>(m) ? 1 : 0;
        for (std::int32_t f : candidates_out) {
          if (e == f) continue;
          const std::uint32_t freed =
              home[static_cast<std::size_t>(f)] != static_cast<std::int32_t>(m) ? 1 : 0;
          if (cross + added - freed > budget) continue;
          // Node loads after handing f's slot on node m to e: only e's and f's shares change.
          const auto ue = static_cast<std::size_t>(e);
          const auto uf = static_cast<std::size_t>(f);
          double trial_peak = 0;
          double trial_squares = 0;
          for (std::uint32_t n = 0; n < nodes; ++n) {
            const double ke = copies[ue * nodes + n];
            const double kf = copies[uf * nodes + n];
            const double ke_after = ke + (n == m ? 1 : 0);
            const double kf_after = kf - (n == m ? 1 : 0);
            const double load = node_load[n] - ke * loads[ue] / counts[ue] +
                                ke_after * loads[ue] / (counts[ue] + 1) -
                                kf * loads[uf] / counts[uf] +
                                kf_after * loads[uf] / (counts[uf] - 1);
            trial_peak = std::max(trial_peak, load);
            trial_squares += load * load;
          }
          const bool lower = trial_peak < best * (1 - kRelativeGain);
          const bool flatter =
              trial_peak <= best && trial_squares < best_squares * (1 - kRelativeGain);
          if (lower || flatter) {
            best = trial_peak;
            best_squares = trial_squares;
            best_e = e;
            best_f = f;
            best_m = m;
          }
        }
      }
    }
    if (best_e < 0) break;
    cross += home[static_cast<std::size_t>(best_e)] != static_cast<std::int32_t>(best_m) ? 1 : 0;
    cross -= home[static_cast<std::size_t>(best_f)] != static_cast<std::int32_t>(best_m) ? 1 : 0;
    ++counts[static_cast<std::size_t>(best_e)];
    ++copies[static_cast<std::size_t>(best_e) * nodes + best_m];
    --counts[static_cast<std::size_t>(best_f)];
    --copies[static_cast<std::size_t>(best_f) * nodes + best_m];
    recompute(node_load, counts, copies);
    if (cross >= next_checkpoint) {
      checkpoint();
      next_checkpoint = cross + (budget + 3) / 4;
    }
  }
  checkpoint();

  // Node level first: the smallest node target the shedding construction reaches (bisection
  // from the relaxed bound, which no layout can beat, up to the busiest node found so far), then
  // each node's replicas packed onto its GPUs, at that target and a few slightly looser ones
  // (GPU granularity may favour those); the best GPU plan of all is kept.
  std::vector<std::uint32_t> home_node(home.begin(), home.end());
  std::vector<double> node_load_now(nodes, 0.0);  // of the best plan so far
  {
    std::vector<std::int32_t> now(num_experts, 0);
    for (std::int32_t e : phy2log) ++now[static_cast<std::size_t>(e)];
    for (std::size_t slot = 0; slot < phy2log.size(); ++slot) {
      const auto e = static_cast<std::size_t>(phy2log[slot]);
      node_load_now[slot / slots_per_node] += loads[e] / now[e];
    }
  }
  const auto layout_under = [&](double target, RelaxedNodeLayout& out) {
    return relaxed_node_layout(loads, home_node, nodes, slots_per_node, gpus_per_node, budget,
                               target, out);
  };
  RelaxedNodeLayout layout;
  double lo = relaxed_node_bound(loads, home_node, nodes, budget);
  double hi = *std::max_element(node_load_now.begin(), node_load_now.end());
  if (!layout_under(hi, layout)) return;
  if (layout_under(lo, layout)) hi = lo;
  for (int step = 0; step < kNodeTargetSteps && hi > lo * (1 + 1e-6); ++step) {
    const double mid = 0.5 * (lo + hi);
    (layout_under(mid, layout) ? hi : lo) = mid;
  }
  for (const double slack : kNodeTargetSlack) {
    if (!layout_under(hi * (1 + slack), layout)) continue;
    copies = layout.copies;
    counts = layout.counts;
    checkpoint();
  }
}

void BalancedPlanner::keep_better_deepseek(const Topology& topology, bool hierarchical,
                                           std::span<const double> loads,
                                           std::span<std::int32_t> phy2log) {
  Topology reference = topology;
  if (!hierarchical) {
    reference.num_groups = 1;
    reference.num_nodes = 1;
  }
  for (double load : loads) {
    if (load > 3.4e38) return;  // outside float32: the DeepSeek mode cannot run on this layer
  }
  std::vector<std::int32_t> theirs(phy2log.size());
  std::vector<std::int32_t> ranks(phy2log.size());
  deepseek_plan_layer(reference, loads, theirs, ranks, deepseek_);
  const double ours = max_gpu_load(topology, loads, phy2log);
  if (!(max_gpu_load(topology, loads, theirs) < ours * (1 - kRelativeGain))) return;

  // DeepSeek won this layer. Take its plan block by block (per node when locality must be kept;
  // no expert has replicas in two blocks), each improved by the same swap search and rid of its
  // duplicates wherever that leaves no GPU busier than DeepSeek's busiest: first by moving the
  // duplicate replicas apart (the same counts), else by the search over every replica count
  // and placement without duplicates. A duplicate stays only where neither finds such a plan,
  // which, when the search completes, means none exists: the duplicate is then the price of
  // being no busier than DeepSeek.
  const double deepseek_peak = max_gpu_load(topology, loads, theirs);
  const double ceiling = deepseek_peak * (1 + kRelativeGain);
  std::copy(theirs.begin(), theirs.end(), phy2log.begin());
  const std::uint32_t blocks = hierarchical ? topology.num_nodes : 1;
  const std::size_t block_size = theirs.size() / blocks;
  const std::uint32_t block_gpus = topology.num_gpus / blocks;
  const std::uint32_t per_gpu = topology.slots_per_gpu();
  std::vector<std::int32_t> apart(block_size);
  for (std::uint32_t b = 0; b < blocks; ++b) {
    auto block = phy2log.subspan(b * block_size, block_size);
    std::copy(block.begin(), block.end(), apart.begin());
    const double apart_peak = polish_block(loads, block_gpus, per_gpu, apart, true);
    const bool fits = apart_peak <= ceiling;
    if (fits && !has_duplicate(apart, per_gpu)) {
      std::copy(apart.begin(), apart.end(), block.begin());
    } else if (!fit_block_without_duplicates(loads, block_gpus, per_gpu, deepseek_peak, block)) {
      if (fits) {
        std::copy(apart.begin(), apart.end(), block.begin());  // fewer duplicates
      } else {
        polish_block(loads, block_gpus, per_gpu, block, false);  // the swaps never add one
      }
    }
  }
  EPLB_ASSERT(max_gpu_load(topology, loads, phy2log) <= ceiling);
}

double BalancedPlanner::polish_block(std::span<const double> loads, std::uint32_t num_gpus,
                                     std::uint32_t slots_per_gpu, std::span<std::int32_t> block,
                                     bool separate_duplicates) {
  std::vector<std::int32_t> counts(loads.size(), 0);
  for (std::int32_t e : block) ++counts[static_cast<std::size_t>(e)];
  replicas_.clear();
  slot_replica_.resize(block.size());
  for (std::size_t s = 0; s < block.size(); ++s) {
    const auto e = static_cast<std::size_t>(block[s]);
    replicas_.push_back(Replica{block[s], loads[e] / counts[e]});
    slot_replica_[s] = static_cast<std::int32_t>(s);
  }
  const double peak =
      packer_.improve(replicas_, num_gpus, slots_per_gpu, static_cast<std::uint32_t>(loads.size()),
                      slot_replica_, separate_duplicates);
  for (std::size_t s = 0; s < block.size(); ++s) {
    block[s] = replicas_[static_cast<std::size_t>(slot_replica_[s])].expert;
  }
  return peak;
}

bool BalancedPlanner::fit_block_without_duplicates(std::span<const double> loads,
                                                   std::uint32_t num_gpus,
                                                   std::uint32_t slots_per_gpu, double target,
                                                   std::span<std::int32_t> block) {
  std::vector<std::int32_t> experts(block.begin(), block.end());
  std::sort(experts.begin(), experts.end());
  experts.erase(std::unique(experts.begin(), experts.end()), experts.end());
  std::vector<double> local(experts.size());
  for (std::size_t i = 0; i < experts.size(); ++i) {
    local[i] = loads[static_cast<std::size_t>(experts[i])];
  }
  std::vector<std::int32_t> gpu_expert;
  if (fit_without_duplicates(local, num_gpus, slots_per_gpu, target, kFitSteps, gpu_expert) !=
      DuplicateFreeFit::found) {
    return false;
  }
  std::vector<std::int32_t> fitted(block.size());
  for (std::size_t s = 0; s < block.size(); ++s) {
    fitted[s] = experts[static_cast<std::size_t>(gpu_expert[s])];
  }
  // The fit tolerates rounding noise; the swap search only lowers the busiest GPU.
  if (polish_block(loads, num_gpus, slots_per_gpu, fitted, true) > target * (1 + kRelativeGain)) {
    return false;
  }
  std::copy(fitted.begin(), fitted.end(), block.begin());
  return true;
}

void BalancedPlanner::plan_layer(const Topology& topology, const BalancedSettings& settings,
                                 std::span<const double> loads, std::span<std::int32_t> phy2log,
                                 std::span<std::int32_t> replica_rank) {
  double total = 0;
  for (double load : loads) total += load;
  if (total == 0) {
    trivial_plan_layer(topology, phy2log, replica_rank);
    return;
  }
  const bool hierarchical = balanced_is_hierarchical(topology, settings.policy);
  if (hierarchical) {
    plan_nodes(topology, settings, loads, phy2log);
  } else {
    std::vector<std::int32_t> all(topology.num_logical);
    std::iota(all.begin(), all.end(), 0);
    plan_block(all, loads, topology.num_gpus, topology.slots_per_gpu(), phy2log);
  }
  keep_better_deepseek(topology, hierarchical, loads, phy2log);
  ranks_in_slot_order(phy2log, topology.num_logical, replica_rank);
}

void BalancedPlanner::plan_layer_windows(const Topology& topology, const BalancedSettings& settings,
                                         std::span<const double> window_loads,
                                         std::size_t num_windows, std::span<std::int32_t> phy2log,
                                         std::span<std::int32_t> replica_rank) {
  const std::size_t num_experts = topology.num_logical;
  std::vector<double> mean(num_experts, 0.0);
  for (std::size_t w = 0; w < num_windows; ++w) {
    for (std::size_t e = 0; e < num_experts; ++e) mean[e] += window_loads[w * num_experts + e];
  }
  for (double& m : mean) m /= static_cast<double>(num_windows);
  plan_layer(topology, settings, mean, phy2log, replica_rank);
  double total = 0;
  for (double m : mean) total += m;
  if (total == 0 || num_windows == 1) return;

  std::vector<std::int32_t> counts(num_experts, 0);
  for (std::int32_t e : phy2log) ++counts[static_cast<std::size_t>(e)];
  // Locality-keeping plans move replicas only within a node.
  const bool per_node = balanced_is_hierarchical(topology, settings.policy);
  const std::uint32_t blocks = per_node ? topology.num_nodes : 1;
  const std::size_t block_slots = phy2log.size() / blocks;
  const std::uint32_t block_gpus = topology.num_gpus / blocks;
  std::vector<std::int32_t> expert_of(block_slots);
  std::vector<double> replica_loads(block_slots * num_windows);
  std::vector<std::int32_t> slot_replica(block_slots);
  for (std::uint32_t b = 0; b < blocks; ++b) {
    auto block = phy2log.subspan(b * block_slots, block_slots);
    for (std::size_t s = 0; s < block_slots; ++s) {
      const auto e = static_cast<std::size_t>(block[s]);
      expert_of[s] = block[s];
      for (std::size_t w = 0; w < num_windows; ++w) {
        replica_loads[s * num_windows + w] = window_loads[w * num_experts + e] / counts[e];
      }
      slot_replica[s] = static_cast<std::int32_t>(s);
    }
    window_packer_.improve(expert_of, replica_loads, num_windows, block_gpus,
                           topology.slots_per_gpu(), topology.num_logical, slot_replica);
    for (std::size_t s = 0; s < block_slots; ++s) {
      block[s] = expert_of[static_cast<std::size_t>(slot_replica[s])];
    }
  }
  ranks_in_slot_order(phy2log, topology.num_logical, replica_rank);
}

}  // namespace eplb
