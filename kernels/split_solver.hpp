// The per-batch replica-split solver shared by the CPU reference and the CUDA kernel: the same
// source, compiled for the host (split_kernels_cpu.cpp) and for the device (split_kernels.cu,
// where one thread runs it on block-shared state), so integer outputs are bit-identical.
//
// The problem: movable experts (>= 2 replicas on >= 2 distinct GPUs) have `count` tokens each to
// spread over the GPUs holding their replicas; every other expert's tokens sit on its (first)
// slot. GPU g's load is w[g] * (x[g] + movable tokens on g), x[g] = extra[g] + fixed tokens.
// Minimise the busiest GPU's load, in integers. The solver:
//   1. warm start: each movable expert, in index order, is water-filled over its GPUs;
//   2. search on the bottleneck T over the exact candidate values w[g] * (x[g] + n): halving
//      while the bracket is wider than the smallest weight, then walking the few remaining
//      candidates one by one;
//   3. each check is incremental: tokens above a GPU's capacity at T are taken off (its edges in
//      order), then shortest augmenting paths (BFS in a fixed order) reroute them; a failed check
//      restores the last feasible flow.
// Every floating-point expression is a plain add, divide or a multiply of a sum (no a*b+c), and
// the files compiling it disable contraction, so host and device round identically.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define EPLB_HD __host__ __device__
#else
#define EPLB_HD
#endif

namespace eplb::kernels {

// Packed tables: one int32 array, uploaded once. Header, then per layer a block of offsets.
namespace split_layout {
inline constexpr int kHeader = 8;  // magic, first_layer, num_layers, E, P, G, slots_per_gpu, _
inline constexpr int kLayerHeader = 12;
inline constexpr std::int32_t kMagic = 0x53504c54;  // "SPLT"
// Slot roles (slot_role[s]): >= 0 the movable edge whose flow the slot takes.
inline constexpr std::int32_t kWholeCount = -1;  // the expert's only GPU: its whole count
inline constexpr std::int32_t kZero = -2;        // another replica on the same GPU: 0 tokens
}  // namespace split_layout

// A view of one layer of the packed tables.
struct SplitLayerView {
  std::int32_t num_experts = 0;                  // E
  std::int32_t num_slots = 0;                    // P
  std::int32_t num_gpus = 0;                     // G
  std::int32_t slots_per_gpu = 0;                // P / G
  std::int32_t num_movable = 0;                  // M
  std::int32_t num_edges = 0;                    // K: distinct (movable expert, GPU) pairs
  const std::int32_t* slot_expert = nullptr;     // [P]
  const std::int32_t* slot_role = nullptr;       // [P]
  const std::int32_t* mov_edge_begin = nullptr;  // [M + 1]; edges of a movable expert by GPU
  const std::int32_t* edge_gpu = nullptr;        // [K]
  const std::int32_t* edge_mov = nullptr;        // [K]
  const std::int32_t* edge_expert = nullptr;     // [K] logical expert of the edge
  const std::int32_t* gpu_edge_begin = nullptr;  // [G + 1]
  const std::int32_t* gpu_edges = nullptr;       // [K] edges of each GPU, by movable index
};

// Layer `layer` (absolute) of packed tables; the caller checked that the set holds it.
EPLB_HD inline SplitLayerView split_layer_view(const std::int32_t* packed, std::int32_t layer) {
  SplitLayerView v;
  v.num_experts = packed[3];
  v.num_slots = packed[4];
  v.num_gpus = packed[5];
  v.slots_per_gpu = packed[6];
  const std::int32_t* h =
      packed + split_layout::kHeader + split_layout::kLayerHeader * (layer - packed[1]);
  v.num_movable = h[0];
  v.num_edges = h[1];
  v.slot_expert = packed + h[2];
  v.slot_role = packed + h[3];
  v.mov_edge_begin = packed + h[4];
  v.edge_gpu = packed + h[5];
  v.edge_mov = packed + h[6];
  v.edge_expert = packed + h[7];
  v.gpu_edge_begin = packed + h[8];
  v.gpu_edges = packed + h[9];
  return v;
}

// The solver's scratch, carved from one byte buffer (the workspace, or shared memory).
struct SplitState {
  std::int32_t* flow;        // [K]
  std::int32_t* saved_flow;  // [K]
  std::int64_t* deficit;     // [M] tokens of a movable expert not routed
  std::int64_t* gpu_flow;    // [G] movable tokens on each GPU
  std::int64_t* saved_gpu;   // [G]
  std::int64_t* cap;         // [G] movable tokens each GPU may take at the checked bound
  double* x;                 // [G] extra + fixed tokens
  double* w;                 // [G] weights
  std::int32_t* mov_parent;  // [M] BFS: -2 unseen, -1 a source, else the edge it came by
  std::int32_t* gpu_parent;  // [G] BFS: -2 unseen, else the edge it came by
  std::int32_t* queue;       // [M + G]
};

EPLB_HD inline std::size_t split_align8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

// Bytes of SplitState for the largest layer of a set (max_movable, max_edges) and G GPUs.
EPLB_HD inline std::size_t split_state_bytes(std::int32_t max_movable, std::int32_t max_edges,
                                             std::int32_t gpus) {
  const auto m = static_cast<std::size_t>(max_movable);
  const auto k = static_cast<std::size_t>(max_edges);
  const auto g = static_cast<std::size_t>(gpus);
  return 2 * split_align8(4 * k) + 8 * m + 3 * 8 * g + 2 * 8 * g + split_align8(4 * m) +
         split_align8(4 * g) + split_align8(4 * (m + g));
}

EPLB_HD inline SplitState split_state_carve(void* base, std::int32_t max_movable,
                                            std::int32_t max_edges, std::int32_t gpus) {
  const auto m = static_cast<std::size_t>(max_movable);
  const auto k = static_cast<std::size_t>(max_edges);
  const auto g = static_cast<std::size_t>(gpus);
  auto* p = static_cast<unsigned char*>(base);
  auto take = [&p](std::size_t bytes) {
    unsigned char* at = p;
    p += split_align8(bytes);
    return at;
  };
  SplitState s{};
  // 8-byte fields first so that every one stays aligned.
  s.deficit = reinterpret_cast<std::int64_t*>(take(8 * m));
  s.gpu_flow = reinterpret_cast<std::int64_t*>(take(8 * g));
  s.saved_gpu = reinterpret_cast<std::int64_t*>(take(8 * g));
  s.cap = reinterpret_cast<std::int64_t*>(take(8 * g));
  s.x = reinterpret_cast<double*>(take(8 * g));
  s.w = reinterpret_cast<double*>(take(8 * g));
  s.flow = reinterpret_cast<std::int32_t*>(take(4 * k));
  s.saved_flow = reinterpret_cast<std::int32_t*>(take(4 * k));
  s.mov_parent = reinterpret_cast<std::int32_t*>(take(4 * m));
  s.gpu_parent = reinterpret_cast<std::int32_t*>(take(4 * g));
  s.queue = reinterpret_cast<std::int32_t*>(take(4 * (m + g)));
  return s;
}

// How the solver's loops run. SerialExec: one thread, in index order (the CPU reference).
// WarpExec (device only): the 32 lanes of one warp; `each` splits independent iterations over the
// lanes (writes of different iterations never touch the same element) and ends with __syncwarp so
// that the next step sees them; reductions are exact whatever the order (min / max of doubles,
// sums of integers), so both give identical results; `single` runs the inherently sequential
// steps (augmenting paths, floating-point sums) on lane 0 and `broadcast` hands lane 0's value to
// every lane. Every branch of the solver depends only on broadcast or reduced values, so the lanes
// never diverge at a __syncwarp.
struct SerialExec {
  template <typename F>
  EPLB_HD void each(std::int32_t n, F&& f) const {
    for (std::int32_t i = 0; i < n; ++i) f(i);
  }
  template <typename F>
  EPLB_HD double min_of(std::int32_t n, F&& f) const {
    double m = INFINITY;
    for (std::int32_t i = 0; i < n; ++i) {
      const double v = f(i);
      m = v < m ? v : m;
    }
    return m;
  }
  template <typename F>
  EPLB_HD double max_of(std::int32_t n, F&& f) const {  // of values >= 0
    double m = 0.0;
    for (std::int32_t i = 0; i < n; ++i) {
      const double v = f(i);
      m = v > m ? v : m;
    }
    return m;
  }
  template <typename F>
  EPLB_HD std::int64_t sum_of(std::int32_t n, F&& f) const {
    std::int64_t sum = 0;
    for (std::int32_t i = 0; i < n; ++i) sum += f(i);
    return sum;
  }
  // Writes the indices i < n with pred(i) to out in ascending order; returns how many.
  template <typename F>
  EPLB_HD std::int32_t compact(std::int32_t n, F&& pred, std::int32_t* out) const {
    std::int32_t count = 0;
    for (std::int32_t i = 0; i < n; ++i) {
      if (pred(i)) out[count++] = i;
    }
    return count;
  }
  template <typename F>
  EPLB_HD void single(F&& f) const {
    f();
  }
  template <typename T>
  EPLB_HD T broadcast(T value) const {
    return value;
  }
};

#if defined(__CUDACC__)
struct WarpExec {
  static constexpr unsigned kFull = 0xffffffffu;
  unsigned lane;  // 0..31; all 32 lanes of the warp call every member together

  template <typename F>
  __device__ void each(std::int32_t n, F&& f) const {
    for (std::int32_t i = static_cast<std::int32_t>(lane); i < n; i += 32) f(i);
    __syncwarp();
  }
  // fmin / fmax: symmetric even with a NaN operand (they return the other one), so every lane
  // ends the butterfly with the same value and the lanes cannot diverge. For the values the solver
  // reduces without NaN (no -0 either: x = extra + fixed is never -0, w > 0), they equal
  // SerialExec's comparisons, so GPU and CPU results stay identical.
  template <typename F>
  __device__ double min_of(std::int32_t n, F&& f) const {
    double m = INFINITY;
    for (std::int32_t i = static_cast<std::int32_t>(lane); i < n; i += 32) m = fmin(m, f(i));
    for (int offset = 16; offset > 0; offset /= 2) m = fmin(m, __shfl_xor_sync(kFull, m, offset));
    return m;
  }
  template <typename F>
  __device__ double max_of(std::int32_t n, F&& f) const {
    double m = 0.0;
    for (std::int32_t i = static_cast<std::int32_t>(lane); i < n; i += 32) m = fmax(m, f(i));
    for (int offset = 16; offset > 0; offset /= 2) m = fmax(m, __shfl_xor_sync(kFull, m, offset));
    return m;
  }
  template <typename F>
  __device__ std::int64_t sum_of(std::int32_t n, F&& f) const {
    long long sum = 0;
    for (std::int32_t i = static_cast<std::int32_t>(lane); i < n; i += 32) sum += f(i);
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(kFull, sum, offset);
    return sum;
  }
  template <typename F>
  __device__ std::int32_t compact(std::int32_t n, F&& pred, std::int32_t* out) const {
    std::int32_t count = 0;
    for (std::int32_t base = 0; base < n; base += 32) {
      const std::int32_t i = base + static_cast<std::int32_t>(lane);
      const bool take = i < n && pred(i);
      const unsigned mask = __ballot_sync(kFull, take);
      if (take) out[count + __popc(mask & ((1u << lane) - 1u))] = i;
      count += __popc(mask);
    }
    __syncwarp();
    return count;
  }
  template <typename F>
  __device__ void single(F&& f) const {
    __syncwarp();
    if (lane == 0) f();
    __syncwarp();
  }
  __device__ double broadcast(double value) const { return __shfl_sync(kFull, value, 0); }
  __device__ std::int64_t broadcast(std::int64_t value) const {
    return static_cast<std::int64_t>(__shfl_sync(kFull, static_cast<long long>(value), 0));
  }
};
#endif

// The solver over a prepared state (x and w filled for every GPU).
template <typename Exec>
class SplitSolver {
 public:
  EPLB_HD SplitSolver(const SplitLayerView& v, const std::int32_t* counts, SplitState s, Exec exec)
      : v_(v), counts_(counts), s_(s), ex_(exec) {}

  // Runs steps 1-3; the flows are left in s.flow; returns the optimal max load.
  EPLB_HD double run() {
    const std::int32_t gpus = v_.num_gpus;
    const std::int32_t movable = v_.num_movable;
    SplitState& s = s_;
    total_ = ex_.sum_of(movable, [&](std::int32_t m) { return count_of(m); });
    ex_.each(v_.num_edges, [&](std::int32_t k) { s.flow[k] = 0; });
    ex_.each(gpus, [&](std::int32_t g) { s.gpu_flow[g] = 0; });
    if (total_ == 0) return achieved();  // nothing to split: the counts decide everything
    // The average bound: sum_g (x[g] + tokens on g) = sum x + total <= T * sum 1 / w[g] for any
    // T >= the optimum (a sequential floating-point sum, so that every execution rounds alike).
    double average = 0.0;
    ex_.single([&] {
      double sum_inv = 0.0;
      double sum_x = 0.0;
      for (std::int32_t g = 0; g < gpus; ++g) {
        sum_inv += 1.0 / s.w[g];
        sum_x += s.x[g];
      }
      average = (static_cast<double>(total_) + sum_x) / sum_inv;
    });
    average = ex_.broadcast(average);
    warm_start(average);
    double hi = achieved();
    // Shaded down so that rounding never puts the average bound above the optimum.
    double lo = ex_.max_of(gpus, [&](std::int32_t g) { return s.w[g] * s.x[g]; });
    lo = lo > average * (1.0 - 1e-9) ? lo : average * (1.0 - 1e-9);
    const double min_w = ex_.min_of(gpus, [&](std::int32_t g) { return s.w[g]; });
    // Each pass either lowers hi to a candidate below T or raises lo above T: it terminates
    // (halving while hi - lo > min_w, then at most two candidates per GPU remain).
    for (int pass = 0; pass < 100000; ++pass) {
      const double next = next_candidate(lo, false);
      if (!(next < hi)) break;
      const double bound = hi - lo > min_w ? lo + (hi - lo) / 2 : next;
      if (feasible(bound)) {
        hi = achieved();
      } else {
        lo = next_candidate(bound, true);
      }
    }
    return hi;
  }

 private:
  EPLB_HD std::int64_t count_of(std::int32_t m) const {
    const std::int32_t c = counts_[v_.edge_expert[v_.mov_edge_begin[m]]];
    return c > 0 ? c : 0;  // the kernel cannot reject a negative count: it counts as 0
  }
  EPLB_HD double load_of(std::int32_t g, std::int64_t movable) const {
    return s_.w[g] * (s_.x[g] + static_cast<double>(movable));
  }
  EPLB_HD double achieved() const {
    return ex_.max_of(v_.num_gpus, [&](std::int32_t g) { return load_of(g, s_.gpu_flow[g]); });
  }

  // The smallest load value w[g] * (x[g] + n), n >= 0 integer, over all GPUs that is >= bound
  // (> bound when strict).
  EPLB_HD double next_candidate(double bound, bool strict) const {
    return ex_.min_of(v_.num_gpus, [&](std::int32_t g) {
      const double w = s_.w[g];
      const double x = s_.x[g];
      double n = std::ceil(bound / w - x);
      n = n > 0.0 ? n : 0.0;
      if (n > 9.0e15) return static_cast<double>(INFINITY);  // beyond any reachable load
      auto below = [&](double nn) {
        const double l = w * (x + nn);
        return strict ? !(l > bound) : l < bound;
      };
      // ceil() lands within a step or two of the answer; the caps only stop a bad weight (the
      // kernel cannot reject one) from looping.
      for (int i = 0; i < 64 && n > 0.0 && !below(n - 1.0); ++i) n -= 1.0;
      for (int i = 0; i < 64 && below(n); ++i) n += 1.0;
      return w * (x + n);
    });
  }

  // Movable tokens GPU g may hold with load <= bound; -1 if even its fixed load exceeds it.
  EPLB_HD std::int64_t capacity(std::int32_t g, double bound) const {
    const double w = s_.w[g];
    const double x = s_.x[g];
    if (w * x > bound) return -1;
    double n = std::floor(bound / w - x);
    n = n > 0.0 ? n : 0.0;
    const auto total = static_cast<double>(total_);
    if (n >= total) return total_;
    for (int i = 0; i < 64 && n > 0.0 && w * (x + n) > bound; ++i) n -= 1.0;
    for (int i = 0; i < 64 && n < total && w * (x + (n + 1.0)) <= bound; ++i) n += 1.0;
    return static_cast<std::int64_t>(n);
  }

  // Step 1, every movable expert independently: its tokens split over its GPUs in proportion to
  // their room below the average level, floor(level / w - x) (evenly when none has room), the
  // remainder one token each to its first GPUs. A warm start only: the search makes it exact.
  EPLB_HD void warm_start(double level) {
    SplitState& s = s_;
    ex_.each(v_.num_movable, [&](std::int32_t m) {
      const std::int64_t c = count_of(m);
      const std::int32_t b = v_.mov_edge_begin[m];
      const std::int32_t d = v_.mov_edge_begin[m + 1] - b;
      double room_sum = 0.0;
      for (std::int32_t e = b; e < b + d; ++e) room_sum += room(v_.edge_gpu[e], level);
      std::int64_t left = c;
      for (std::int32_t e = b; e < b + d; ++e) {
        const double share =
            room_sum > 0.0
                ? std::floor(static_cast<double>(c) * room(v_.edge_gpu[e], level) / room_sum)
                : std::floor(static_cast<double>(c) / static_cast<double>(d));
        std::int64_t take = share > 0.0 ? static_cast<std::int64_t>(share) : 0;
        take = take < left ? take : left;
        s.flow[e] = static_cast<std::int32_t>(take);
        left -= take;
      }
      const std::int64_t all = left / d;  // 0 unless rounding went wrong (a bad weight)
      for (std::int32_t e = b; e < b + d; ++e) s.flow[e] += static_cast<std::int32_t>(all);
      left -= all * d;
      for (std::int32_t e = b; left > 0; ++e, --left) s.flow[e] += 1;  // fewer than d left
    });
    ex_.each(v_.num_gpus, [&](std::int32_t g) {
      std::int64_t sum = 0;
      for (std::int32_t i = v_.gpu_edge_begin[g]; i < v_.gpu_edge_begin[g + 1]; ++i) {
        sum += s.flow[v_.gpu_edges[i]];
      }
      s.gpu_flow[g] = sum;
    });
  }
  EPLB_HD double room(std::int32_t g, double level) const {
    const double r = std::floor(level / s_.w[g] - s_.x[g]);
    return r > 0.0 ? r : 0.0;
  }

  // Step 3: can every movable token be placed with each GPU's load <= bound? On success the new
  // flow is kept; on failure the previous one is restored.
  EPLB_HD bool feasible(double bound) {
    SplitState& s = s_;
    const std::int32_t gpus = v_.num_gpus;
    const std::int32_t edges = v_.num_edges;
    ex_.each(gpus, [&](std::int32_t g) { s.cap[g] = capacity(g, bound); });
    if (ex_.sum_of(gpus, [&](std::int32_t g) { return s.cap[g] < 0 ? 1 : 0; }) > 0) return false;
    ex_.each(edges, [&](std::int32_t k) { s.saved_flow[k] = s.flow[k]; });
    ex_.each(gpus, [&](std::int32_t g) { s.saved_gpu[g] = s.gpu_flow[g]; });
    // Each GPU above its capacity sheds the excess from its own edges, in order.
    ex_.each(gpus, [&](std::int32_t g) {
      std::int64_t excess = s.gpu_flow[g] - s.cap[g];
      for (std::int32_t i = v_.gpu_edge_begin[g]; i < v_.gpu_edge_begin[g + 1] && excess > 0; ++i) {
        const std::int32_t e = v_.gpu_edges[i];
        const std::int64_t take = s.flow[e] < excess ? s.flow[e] : excess;
        s.flow[e] -= static_cast<std::int32_t>(take);
        s.gpu_flow[g] -= take;
        excess -= take;
      }
    });
    ex_.each(v_.num_movable, [&](std::int32_t m) {
      std::int64_t routed = 0;
      for (std::int32_t e = v_.mov_edge_begin[m]; e < v_.mov_edge_begin[m + 1]; ++e) {
        routed += s.flow[e];
      }
      s.deficit[m] = count_of(m) - routed;
    });
    std::int64_t missing = ex_.sum_of(v_.num_movable, [&](std::int32_t m) { return s.deficit[m]; });
    while (missing > 0) {
      const std::int64_t moved = augment();
      if (moved == 0) {
        ex_.each(edges, [&](std::int32_t k) { s.flow[k] = s.saved_flow[k]; });
        ex_.each(gpus, [&](std::int32_t g) { s.gpu_flow[g] = s.saved_gpu[g]; });
        return false;
      }
      missing -= moved;
    }
    return true;
  }

  // One shortest augmenting path from the experts with a deficit to a GPU below its capacity;
  // returns the tokens moved (0: none exists, the flow is maximal).
  EPLB_HD std::int64_t augment() {
    SplitState& s = s_;
    const std::int32_t movable = v_.num_movable;
    ex_.each(movable, [&](std::int32_t m) { s.mov_parent[m] = s.deficit[m] > 0 ? -1 : -2; });
    ex_.each(v_.num_gpus, [&](std::int32_t g) { s.gpu_parent[g] = -2; });
    const std::int32_t sources = ex_.compact(
        movable, [&](std::int32_t m) { return s.deficit[m] > 0; }, s.queue);
    std::int64_t moved = 0;
    ex_.single([&] { moved = bfs_and_augment(sources); });
    return ex_.broadcast(moved);
  }

  EPLB_HD std::int64_t bfs_and_augment(std::int32_t sources) {
    SplitState& s = s_;
    const std::int32_t movable = v_.num_movable;
    std::int32_t head = 0;
    std::int32_t tail = sources;
    std::int32_t found = -1;
    while (head < tail && found < 0) {
      const std::int32_t node = s.queue[head++];
      if (node < movable) {
        for (std::int32_t e = v_.mov_edge_begin[node]; e < v_.mov_edge_begin[node + 1]; ++e) {
          const std::int32_t g = v_.edge_gpu[e];
          if (s.gpu_parent[g] != -2) continue;
          s.gpu_parent[g] = e;
          if (s.gpu_flow[g] < s.cap[g]) {
            found = g;
            break;
          }
          s.queue[tail++] = movable + g;
        }
      } else {
        const std::int32_t g = node - movable;
        for (std::int32_t i = v_.gpu_edge_begin[g]; i < v_.gpu_edge_begin[g + 1]; ++i) {
          const std::int32_t e = v_.gpu_edges[i];
          const std::int32_t m = v_.edge_mov[e];
          if (s.flow[e] <= 0 || s.mov_parent[m] != -2) continue;
          s.mov_parent[m] = e;
          s.queue[tail++] = m;
        }
      }
    }
    if (found < 0) return 0;
    std::int64_t amount = s.cap[found] - s.gpu_flow[found];
    for (std::int32_t g = found;;) {
      const std::int32_t m = v_.edge_mov[s.gpu_parent[g]];
      const std::int32_t back = s.mov_parent[m];
      if (back == -1) {
        amount = amount < s.deficit[m] ? amount : s.deficit[m];
        break;
      }
      amount = amount < s.flow[back] ? amount : s.flow[back];
      g = v_.edge_gpu[back];
    }
    s.gpu_flow[found] += amount;
    for (std::int32_t g = found;;) {
      const std::int32_t e = s.gpu_parent[g];
      const std::int32_t m = v_.edge_mov[e];
      s.flow[e] += static_cast<std::int32_t>(amount);
      const std::int32_t back = s.mov_parent[m];
      if (back == -1) {
        s.deficit[m] -= amount;
        break;
      }
      s.flow[back] -= static_cast<std::int32_t>(amount);
      g = v_.edge_gpu[back];
    }
    return amount;
  }

  SplitLayerView v_;
  const std::int32_t* counts_;
  SplitState s_;
  Exec ex_;
  std::int64_t total_ = 0;
};

}  // namespace eplb::kernels
