// Helpers of the tests that execute migration schedules over the in-process transport with one
// thread per rank (tests/core/migration_transport_test.cpp, tests/nccl/nccl_core_test.cpp):
// small and per-trial topologies, random placements, the expert of every slot, and the threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <random>
#include <thread>
#include <vector>

#include "placement.hpp"

namespace eplb::test {

// One layer on one node: `logical` experts in `physical` slots on `gpus` GPUs.
inline Topology one_layer_topology(std::uint32_t logical, std::uint32_t physical,
                                   std::uint32_t gpus) {
  Topology t;
  t.num_layers = 1;
  t.num_logical = logical;
  t.num_physical = physical;
  t.num_gpus = gpus;
  t.validate();
  return t;
}

// The topology of trial `trial` of a randomized schedule test: 1-3 layers, 1-2 nodes of 2-4 GPUs,
// `slots_per_gpu` slots per GPU, up to two slots fewer experts.
inline Topology trial_topology(int trial, std::uint32_t slots_per_gpu) {
  Topology t;
  t.num_layers = 1 + trial % 3;
  t.num_nodes = 1 + trial % 2;
  t.num_gpus = t.num_nodes * (2 + trial % 3);
  t.num_physical = t.num_gpus * slots_per_gpu;
  t.num_logical = t.num_physical - trial % 3;
  t.validate();
  return t;
}

// A random valid placement: every expert once per layer, the remaining slots random experts
// (duplicates on one GPU included), shuffled.
inline Placement random_placement(std::mt19937_64& rng, const Topology& t) {
  std::vector<std::int32_t> rows;
  std::uniform_int_distribution<std::int32_t> pick(0, static_cast<std::int32_t>(t.num_logical) - 1);
  for (std::uint32_t l = 0; l < t.num_layers; ++l) {
    std::vector<std::int32_t> row(t.num_physical);
    for (std::uint32_t s = 0; s < t.num_physical; ++s) {
      row[s] = s < t.num_logical ? static_cast<std::int32_t>(s) : pick(rng);
    }
    std::shuffle(row.begin(), row.end(), rng);
    rows.insert(rows.end(), row.begin(), row.end());
  }
  return Placement::from_phy2log(t, rows);
}

struct SlotExpert {
  std::uint32_t gpu = 0;
  std::uint32_t layer = 0;
  std::uint32_t slot = 0;  // within the GPU
  std::int32_t expert = 0;
};

// Every slot of `placement` with the expert it holds: GPU by GPU, layer by layer, slot by slot.
inline std::vector<SlotExpert> slots_of(const Placement& placement) {
  const Topology& t = placement.topology();
  const std::uint32_t per_gpu = t.slots_per_gpu();
  std::vector<SlotExpert> slots;
  slots.reserve(std::size_t{t.num_gpus} * t.num_layers * per_gpu);
  for (std::uint32_t gpu = 0; gpu < t.num_gpus; ++gpu) {
    for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
      for (std::uint32_t s = 0; s < per_gpu; ++s) {
        slots.push_back({gpu, layer, s, placement.phy2log_layer(layer)[gpu * per_gpu + s]});
      }
    }
  }
  return slots;
}

// Runs `body(rank)` for ranks 0..ranks-1, each on its own thread, and waits for all of them; then
// rethrows the exception of the lowest rank that threw, if any.
template <typename Body>
void run_rank_threads(std::uint32_t ranks, const Body& body) {
  std::vector<std::exception_ptr> errors(ranks);
  std::vector<std::thread> threads;
  for (std::uint32_t rank = 0; rank < ranks; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        body(rank);
      } catch (...) {
        errors[rank] = std::current_exception();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

}  // namespace eplb::test
