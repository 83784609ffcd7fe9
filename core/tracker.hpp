// Routing statistics recorded online: per-layer expert load, per-layer co-activation pair counts
// and a bounded uniform sample ("reservoir") of full top-k rows, fed with the top-k expert ids of
// every batch. Cheap enough to run on every forward pass; merged across threads or ranks before
// planning.
//
// Definitions (the C API documents the same):
// - A *batch* is one record() call for one layer. Windows count batches per layer, so layers are
//   independent and may be recorded in any interleaving.
// - Load: every valid slot counts once for its expert, so a token that lists an expert twice
//   adds 2 to its load (SGLang's recorder does the same).
// - Co-activation: a token adds 1 to the pair (a, b), a < b, for every two *distinct* valid
//   experts it lists; duplicates and masked slots (-1) add no pair. Pairs are stored as a packed
//   upper triangle: pair (a, b) at index a*(2E-a-1)/2 + (b-a-1), E*(E-1)/2 entries per layer.
// - Windows: cumulative (everything since creation or reset); sliding (the last W batches of
//   each layer, a ring of W batches (window_delta.hpp): a small batch keeps its rows and leaves
//   by being counted again, negatively; a large one keeps its E + E*(E-1)/2 counts and leaves by
//   one O(E^2) pass); exponential decay (before each batch of a layer, that layer's statistics
//   are multiplied by `decay`, lazily through a scale factor).
// - Reservoir: Algorithm R over every token with at least one valid slot recorded since creation
//   or reset, whatever the window: it is a uniform sample of the whole history, not of the window.
//   The kept tokens are drawn by skipping ahead (same distribution as one draw per token).
//   Rows are stored as given (logical ids, masked slots kept as -1). Seeded per layer, so the
//   sample is a deterministic function of the seed and the recorded sequence.
// - Threading: a Tracker is not internally synchronised. Record from one thread per tracker and
//   merge() the trackers before planning.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "placement.hpp"
#include "window_delta.hpp"

namespace eplb {

enum class TrackerWindow : std::uint32_t { cumulative = 0, sliding = 1, decay = 2 };

struct TrackerOptions {
  std::uint32_t num_layers = 0;
  std::uint32_t num_experts = 0;  // logical experts E per layer
  std::uint32_t top_k = 0;        // slots per token (1..1024)
  TrackerWindow window = TrackerWindow::cumulative;
  std::uint32_t window_batches = 0;      // sliding: W >= 1
  double decay = 1.0;                    // decay: factor per batch in (0, 1]
  std::uint32_t reservoir_capacity = 0;  // sampled rows kept per layer (0 = no reservoir)
  std::uint64_t seed = 0;

  // Throws Error(invalid_argument) naming the first bad field.
  void validate() const;
};

// Number of upper-triangle pairs of E experts: E*(E-1)/2.
[[nodiscard]] std::size_t pair_count(std::uint32_t num_experts);
// Index of pair (a, b), a < b, in the packed upper triangle.
[[nodiscard]] inline std::size_t pair_index(std::uint32_t num_experts, std::uint32_t a,
                                            std::uint32_t b) {
  const std::size_t e = num_experts;
  return static_cast<std::size_t>(a) * (2 * e - a - 1) / 2 + (b - a - 1);
}

class Tracker {
 public:
  explicit Tracker(const TrackerOptions& options);

  [[nodiscard]] const TrackerOptions& options() const { return options_; }

  // Records one batch of `layer`: `ids` holds [num_tokens][top_k] logical expert ids, -1 for a
  // masked slot. top_k must equal the tracker's. Validates everything before changing anything:
  // throws Error(invalid_argument) naming the layer, token, slot and value of an id outside
  // [-1, E), or a mismatched length / top_k / layer. Nothing is recorded on error.
  void record(std::uint32_t layer, std::span<const std::int32_t> ids, std::size_t num_tokens,
              std::uint32_t top_k);

  // As record(), with physical slot ids in [0, R) (or -1) of `placement`, folded to logical ids
  // through its phy2log. The placement must have the tracker's layers and experts.
  void record_physical(const Placement& placement, std::uint32_t layer,
                       std::span<const std::int32_t> ids, std::size_t num_tokens,
                       std::uint32_t top_k);

  // Adds `other`'s statistics (same options except the seed, else Error(invalid_argument)).
  // Sliding windows are aligned by age (the i-th most recent batch of each layer is summed);
  // decayed statistics are summed at their current weights; reservoirs are merged into a uniform
  // sample of both histories (weighted by the tokens each has seen), using this tracker's RNG.
  void merge(const Tracker& other);

  // The statistics merge() adds up, flattened for a sum across ranks (an NCCL all-reduce):
  // `counts` (cumulative and sliding: per layer the load counts, the pair counts, then for
  // sliding windows the W per-batch deltas newest first), `weights` (decay: per layer the loads
  // then the pairs, at their current value) and `batches` (per layer; merged by maximum).
  struct Counters {
    std::vector<std::uint64_t> counts;
    std::vector<double> weights;
    std::vector<std::uint64_t> batches;
  };
  [[nodiscard]] Counters counters() const;
  // Replaces the statistics with `counters`, laid out as counters() lays them out for this
  // tracker's options (e.g. their element-wise sum over ranks, batches by maximum): the tracker
  // then reports them as if it had recorded them. Reservoirs and RNG states are unchanged.
  // Validates before changing anything: throws Error(invalid_argument) for a wrong length, a
  // sliding-window delta above 2^32-1, or a negative or non-finite weight.
  void set_counters(const Counters& counters);

  // Forgets everything (statistics, windows, reservoirs); the RNGs restart from the seed.
  void reset();

  // Expert loads of one layer (E values) / all layers ([layers][E]), at current weights.
  void layer_loads(std::uint32_t layer, std::span<double> out) const;
  void loads(std::span<double> out) const;
  // Packed upper-triangle pair counts of one layer (pair_count(E) values).
  void coactivation(std::uint32_t layer, std::span<double> out) const;
  // The sampled rows of a layer, [rows][top_k].
  [[nodiscard]] std::span<const std::int32_t> samples(std::uint32_t layer) const;
  [[nodiscard]] std::size_t sample_rows(std::uint32_t layer) const;
  // Tokens with at least one valid slot seen by the reservoir of a layer.
  [[nodiscard]] std::uint64_t tokens_seen(std::uint32_t layer) const;
  // Batches recorded for a layer since creation or reset.
  [[nodiscard]] std::uint64_t batches(std::uint32_t layer) const;
  // Heap bytes the sliding windows' deltas hold (0 for other windows).
  [[nodiscard]] std::size_t window_bytes() const;

 private:
  friend class TrackerStateCodec;  // snapshots: the whole state as bytes and back

  struct Layer {
    // cumulative and sliding: exact counts; decay: weights / scale.
    std::vector<std::uint64_t> load_count, pair_count;
    std::vector<double> load_weight, pair_weight;
    double scale = 1.0;  // decay: true value = stored * scale
    // sliding: ring of W deltas, each over [E + pairs], slot `ring_head` is the newest.
    std::vector<WindowDelta> ring;
    std::uint32_t ring_head = 0;
    std::uint64_t batches = 0;
    // reservoir
    std::vector<std::int32_t> sample;  // [sample_rows][top_k]
    std::uint64_t seen = 0;
    std::uint64_t rng_state = 0;
  };

  void check_layer(std::uint32_t layer, const char* what) const;
  void check_batch(std::uint32_t layer, std::span<const std::int32_t> ids, std::size_t num_tokens,
                   std::uint32_t top_k) const;
  // Throws Error(invalid_argument) naming the first id outside [-1, E), if any.
  void check_ids(std::uint32_t layer, std::span<const std::int32_t> ids) const;
  // Records a batch whose shape is checked; `checked`: its ids are known to be in [-1, E).
  void record_ids(std::uint32_t layer, std::span<const std::int32_t> ids, std::size_t num_tokens,
                  bool checked);
  // Sliding: allocates what the batch's delta needs in the ring slot it will take (before
  // anything is counted, so running out of memory records nothing); returns whether the batch
  // keeps its rows (window_delta.hpp).
  bool reserve_window_delta(std::uint32_t layer, Layer& l, std::size_t num_tokens);
  // Sliding: takes a delta's batch out of the layer's totals.
  void retire(Layer& l, const WindowDelta& d) const;
  // Sliding: a delta's counts, dense [E + pairs].
  void delta_counts(const WindowDelta& d, std::uint32_t* out) const;
  // Adds the per-batch scratch counts to the layer's window and zeroes them.
  void commit_scratch(Layer& l, bool first_chunk);
  // `empty`: how many of the rows have no valid slot.
  struct MergedSample {
    std::vector<std::int32_t> rows;
    std::uint64_t rng_state = 0;
  };
  [[nodiscard]] MergedSample merged_sample(const Layer& d, const Layer& s) const;
  void reserve_reservoir(std::uint32_t layer, Layer& l, std::size_t num_tokens);
  void sample_batch(Layer& l, const std::int32_t* ids, std::size_t num_tokens, std::size_t empty);
  void renormalise(Layer& l) const;
  // Decay: ages the layer's statistics by one batch (not before its first).
  void advance_decay(Layer& l) const;
  [[nodiscard]] std::size_t delta_size() const { return num_experts_ + num_pairs_; }
  // Sliding: the ring slot a layer's next batch takes (the oldest; the first batch takes the
  // head itself).
  [[nodiscard]] std::uint32_t next_ring_slot(const Layer& l) const {
    return l.batches > 0 ? (l.ring_head + 1) % options_.window_batches : l.ring_head;
  }
  [[nodiscard]] std::uint64_t layer_seed(std::uint32_t layer) const;

  TrackerOptions options_;
  std::size_t num_experts_ = 0;
  std::size_t num_pairs_ = 0;
  std::vector<std::size_t> row_base_;  // pair_index(a, b) = row_base_[a] + b
  std::vector<Layer> layers_;
  std::vector<std::int32_t> scratch_;  // folded physical ids
  // Per-chunk counts of large (and sliding) batches, zero between calls; 16-bit pairs keep the
  // triangle's scattered increments mostly in L1/L2 (chunks of at most 65535 tokens).
  std::vector<std::uint32_t> load_scratch_;
  std::vector<std::uint16_t> pair_scratch_;
};

}  // namespace eplb
