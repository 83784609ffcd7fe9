/*
 * eplb.h — the public C API of libeplb, expert-parallel load balancing for Mixture-of-Experts
 * serving. This header is the reference manual: every declaration says what it does, who owns
 * what, how NULL is treated, what may run concurrently and which statuses it returns.
 *
 * Conventions that hold for every function unless its comment says otherwise
 * ---------------------------------------------------------------------------
 * - Fallible functions return an `eplb_status`; outputs are the last parameters and are written
 *   only on EPLB_OK. On failure `eplb_last_error_message()` holds a message naming the offending
 *   argument and value, for the calling thread, until that thread's next call that returns a
 *   status (see eplb_last_error_message).
 * - No C++ exception, abort or signal ever leaves the library because of bad input.
 * - Arrays are row-major with explicit lengths in elements (never bytes). Ids are int32_t,
 *   loads are double. The library never keeps a caller's pointer after a call returns. The GPU
 *   kernels and their CPU references are the exception to explicit lengths: device pointers carry
 *   none, so each array's size follows from the shape arguments, as each kernel's comment says.
 * - Handles returned through an `out_*` parameter are owned by the caller and released with the
 *   matching `_destroy`, which accepts NULL.
 * - Structs start with `struct_size`, between the size of the struct's first release and 4096
 *   (no libeplb struct will ever be larger; a bigger value is refused as an uninitialised struct
 *   before anything past the known fields is read or written).
 *   Options (input) structs: initialise them with their `_init` function. The library reads only
 *   the fields the caller's `struct_size` covers (older callers get defaults for newer fields); a
 *   larger size is accepted only if the bytes it does not know are zero.
 *   Output structs (info, metrics, summaries): set `struct_size = sizeof(the struct)` before the
 *   call. The library writes the fields it knows within that size, zeroes the bytes from its own
 *   size up to `struct_size` (fields a newer header added read 0 from an older library) and
 *   keeps `struct_size` as set. So `struct_size` must never exceed the memory the caller owns.
 * - Threading: functions taking a `const` handle may run concurrently on the same handle; a
 *   function taking a non-const handle needs the caller to serialise calls on that handle.
 *   Different handles are independent. There is no global initialisation.
 *
 * Versioning: EPLB_VERSION_NUMBER is MAJOR*10000 + MINOR*100 + PATCH. The SONAME carries the
 * major version (MAJOR.MINOR while MAJOR is 0); within it, functions, statuses, algorithms and
 * struct fields are only ever added, and a release that adds any raises PATCH. Check
 * eplb_version_number() (the library actually loaded) before using what a release added:
 * - 0.1.0: placements, planners, metrics, snapshots, the SGLang / vLLM-Ascend JSON formats and
 *   the co-activation tracker (the header as released: packaging/abi/eplb-0.1.0.h).
 * - 0.1.1: affinity-aware planning (eplb_planner_options.affinity*, eplb_planner_plan_tracked),
 *   eplb_algorithm_default, statistics snapshots (eplb_snapshot_save_statistics*,
 *   eplb_snapshot_get_tracker, eplb_snapshot_options.tracker),
 *   eplb_tracker_get_options / get_layer_counts / clone, eplb_metrics_relaxed_bound, the workload
 *   simulator (eplb_workload_*), migration (eplb_migration_*), per-batch balancing (eplb_split_*,
 *   eplb_shared_expert_waterfill), the GPU kernels (eplb_device_*, eplb_kernel_*) and NCCL
 *   (eplb_nccl_version, eplb_comm_*, eplb_token_exchange_*); eplb_metrics.loaded_layers, and
 *   eplb_metrics leaves layers without load out of its means and counts; cancelling plans and
 *   watching their progress (eplb_plan_control_*, eplb_planner_set_control,
 *   EPLB_ERR_CANCELLED).
 */
#ifndef EPLB_EPLB_H
#define EPLB_EPLB_H

#include <stddef.h>
#include <stdint.h>

#define EPLB_VERSION_MAJOR 0
#define EPLB_VERSION_MINOR 1
#define EPLB_VERSION_PATCH 1
#define EPLB_VERSION_NUMBER \
  (EPLB_VERSION_MAJOR * 10000 + EPLB_VERSION_MINOR * 100 + EPLB_VERSION_PATCH)
#define EPLB_VERSION_STRING "0.1.1"

#if defined(__GNUC__) || defined(__clang__)
#define EPLB_API __attribute__((visibility("default")))
#else
#define EPLB_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ============================================================================================ */
/* Section: status codes and errors                                                             */
/* ============================================================================================ */

/* Result of every fallible call. Values are stable; new ones are only appended. */
typedef enum {
  EPLB_OK = 0,
  /* An argument is NULL, zero, out of range, inconsistent with another, or a load is negative,
   * NaN or infinite. The message names the argument and its value. */
  EPLB_ERR_INVALID_ARGUMENT = 1,
  /* An allocation failed, or a requested size overflows size_t. */
  EPLB_ERR_OUT_OF_MEMORY = 2,
  /* A caller-provided output buffer is shorter than required; the message gives the size. */
  EPLB_ERR_BUFFER_TOO_SMALL = 3,
  /* A bug in libeplb (an internal invariant failed). Please report it with the message. */
  EPLB_ERR_INTERNAL = 4,
  /* A file could not be opened, read, written, flushed or renamed; the message names the path
   * and the system's reason. A failed write leaves any existing file untouched. */
  EPLB_ERR_IO = 5,
  /* Input data (a snapshot, a JSON document) is damaged or inconsistent: a checksum mismatch, an
   * impossible size or offset, a placement that does not hold together. */
  EPLB_ERR_CORRUPT = 6,
  /* Input data ends before its declared size. */
  EPLB_ERR_TRUNCATED = 7,
  /* A snapshot of a format major version this library does not read, or one that requires a
   * feature this library does not have. */
  EPLB_ERR_UNSUPPORTED_VERSION = 8,
  /* No usable CUDA device: the library was built without CUDA, or this machine has no NVIDIA
   * driver or GPU (the message says which). Only GPU entry points return it; every CPU feature
   * works without a GPU. */
  EPLB_ERR_NO_DEVICE = 9,
  /* A CUDA call failed; the message names the call and CUDA's error string. An asynchronous
   * error from earlier work on the device may surface here too (CUDA reports it late). */
  EPLB_ERR_DEVICE = 10,
  /* NCCL could not be loaded at run time (no libnccl.so.2, or one without a needed symbol), or
   * the library was built without NCCL support. */
  EPLB_ERR_NO_NCCL = 11,
  /* An NCCL call failed; the message names the call and NCCL's error string. */
  EPLB_ERR_NCCL = 12,
  /* A plan stopped early because its plan control was cancelled (eplb_plan_control_cancel);
   * nothing was returned and the planner stays usable. Since 0.1.1. */
  EPLB_ERR_CANCELLED = 13
} eplb_status;

/* Static English text for a status ("ok", "invalid argument", ...); never NULL, also for values
 * this version does not know ("unknown status"). Thread-safe. */
EPLB_API const char* eplb_status_string(eplb_status status);

/* The detailed message of the calling thread's most recent failed call, or "" if its most recent
 * call that returns an eplb_status succeeded. Never NULL. Calls that return no status (the
 * _destroy and _init functions, eplb_buffer_free, eplb_status_string, the version and algorithm
 * name functions) leave it as it is, so `cleanup: destroy everything, then print the message`
 * works; any call returning a status replaces or clears it. The pointer stays valid until the
 * thread's next call that returns a status; copy it before calling one. Bindings must read it in
 * the same native call as the failing function (Go moves goroutines between threads between two
 * cgo calls). */
EPLB_API const char* eplb_last_error_message(void);

/* ============================================================================================ */
/* Section: version                                                                             */
/* ============================================================================================ */

/* EPLB_VERSION_NUMBER of the library actually loaded (compare with the header's macro). */
EPLB_API uint32_t eplb_version_number(void);
/* EPLB_VERSION_STRING of the library actually loaded; static, never NULL. */
EPLB_API const char* eplb_version_string(void);

/* ============================================================================================ */
/* Section: algorithms                                                                          */
/* ============================================================================================ */

/* Placement algorithms. Stored in `uint32_t` fields; ids are stable and only appended. */
typedef enum {
  /* The library's recommended planner for this version (today: EPLB_ALGORITHM_BALANCED). */
  EPLB_ALGORITHM_DEFAULT = 0,
  /* DeepSeek's hierarchical EPLB (deepseek-ai/EPLB `rebalance_experts`), reproduced exactly:
   * groups packed to nodes, replicas by water-filling inside each node, replicas packed to GPUs.
   * When num_groups % num_nodes != 0 it is the global policy (one group, one node), as in the
   * reference. Loads are rounded to float32 and packed sums accumulate in float32 like the
   * reference; on equal weights the lowest index wins. */
  EPLB_ALGORITHM_DEEPSEEK = 1,
  /* No balancing: physical slot p holds logical expert p % E (SGLang's `trivial` location).
   * With num_physical_experts == num_logical_experts this is contiguous blocks per GPU. */
  EPLB_ALGORITHM_TRIVIAL = 2,
  /* libeplb's planner, replicas anywhere (global policy): replica counts and packing chosen
   * together (water-filling, LPT, swaps from the busiest GPU, replica exchanges between experts),
   * never a busier GPU than EPLB_ALGORITHM_DEEPSEEK's global plan of the same layer, and never
   * two replicas of one expert on a GPU unless every plan without one would be busier than that
   * (rare, small layers; checked by an exhaustive search over replica counts and packings). */
  EPLB_ALGORITHM_BALANCED = 3,
  /* EPLB_ALGORITHM_BALANCED under DeepSeek's locality: whole expert groups per node and every
   * replica on its group's node (needs num_groups % num_nodes == 0 and num_nodes > 1, else it is
   * the global policy, as DeepSeek falls back). Its ceiling is node balance: see
   * eplb_layer_metrics.node_bound. Never busier than DeepSeek's hierarchical plan. */
  EPLB_ALGORITHM_BALANCED_HIERARCHICAL = 4,
  /* EPLB_ALGORITHM_BALANCED_HIERARCHICAL plus up to options.cross_node_budget replicas per layer
   * of hot experts on nodes other than their group's, placed where they lift the node ceiling. */
  EPLB_ALGORITHM_BALANCED_RELAXED = 5
} eplb_algorithm;

/* Number of the highest algorithm id; ids 1..eplb_algorithm_count() are all valid. */
EPLB_API uint32_t eplb_algorithm_count(void);
/* Short name of an algorithm id ("deepseek", "trivial", "default" for 0); NULL for an unknown
 * id. Static string. Thread-safe. */
EPLB_API const char* eplb_algorithm_name(uint32_t algorithm);
/* One-line description of an algorithm id; NULL for an unknown id. Static string. */
EPLB_API const char* eplb_algorithm_description(uint32_t algorithm);
/* The concrete algorithm EPLB_ALGORITHM_DEFAULT stands for in the library actually loaded
 * (today EPLB_ALGORITHM_BALANCED), e.g. to show users what "default" means. Since 0.1.1. */
EPLB_API uint32_t eplb_algorithm_default(void);
/* Looks an algorithm up by its name (case-sensitive, as eplb_algorithm_name prints it).
 * EPLB_ERR_INVALID_ARGUMENT: name or out_algorithm is NULL, or the name is unknown (the message
 * lists the known names). */
EPLB_API eplb_status eplb_algorithm_from_name(const char* name, uint32_t* out_algorithm);

/* ============================================================================================ */
/* Section: placement — an immutable expert placement for all layers                            */
/* ============================================================================================ */

/* A placement maps, for every MoE layer, each physical expert slot to the logical expert whose
 * weights it holds. Slot p of a layer lives on GPU p / (num_physical_experts / num_gpus); GPU g
 * lives on node g / (num_gpus / num_nodes). A placement is immutable once made, so a server can
 * swap in a new one by pointer while readers still use the old; all `const` functions may run
 * concurrently. */
struct eplb_placement;
typedef struct eplb_placement eplb_placement;

/* Shape, topology and provenance of a placement. */
typedef struct eplb_placement_info {
  uint32_t struct_size;          /* in: sizeof(eplb_placement_info) */
  uint32_t num_layers;           /* MoE layers (rows) */
  uint32_t num_logical_experts;  /* E */
  uint32_t num_physical_experts; /* R: slots per layer, summed over all GPUs */
  uint32_t num_nodes;
  uint32_t num_gpus;
  uint32_t num_groups;    /* expert groups the planner was given (1 if none) */
  uint32_t slots_per_gpu; /* R / num_gpus */
  uint32_t log2phy_width; /* X: max replicas of any expert in any layer */
  uint32_t algorithm;     /* eplb_algorithm that made it; 0 if imported from a map */
  uint32_t hierarchical;  /* 1 if replicas were kept on their group's node, else 0 */
  uint32_t reserved0;     /* 0 */
  double plan_seconds;    /* wall time the planner spent (0 for imported placements) */
} eplb_placement_info;

/* Fills `*out_info`; the caller sets out_info->struct_size first.
 * EPLB_ERR_INVALID_ARGUMENT: placement or out_info is NULL, or struct_size is invalid. */
EPLB_API eplb_status eplb_placement_get_info(const eplb_placement* placement,
                                             eplb_placement_info* out_info);

/* Copies phy2log, int32 [num_layers][num_physical_experts]: the logical expert of each slot.
 * `out_len` is the capacity of `out` in elements.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer. EPLB_ERR_BUFFER_TOO_SMALL: out_len too small. */
EPLB_API eplb_status eplb_placement_get_phy2log(const eplb_placement* placement, int32_t* out,
                                                size_t out_len);

/* Copies the replica counts, int32 [num_layers][num_logical_experts]: the number of slots
 * holding each logical expert (>= 1, each row sums to num_physical_experts).
 * Errors as eplb_placement_get_phy2log. */
EPLB_API eplb_status eplb_placement_get_replica_counts(const eplb_placement* placement,
                                                       int32_t* out, size_t out_len);

/* Copies log2phy, int32 [num_layers][num_logical_experts][log2phy_width]: the slots of each
 * expert's replicas in replica-rank order, padded with -1. For placements from a planner the
 * order is the planner's replica rank (DeepSeek: rank 0 is the expert's original slot, then the
 * order replicas were added); for imported maps it is ascending slot index.
 * Errors as eplb_placement_get_phy2log. */
EPLB_API eplb_status eplb_placement_get_log2phy(const eplb_placement* placement, int32_t* out,
                                                size_t out_len);

/* Builds a placement from a phy2log map (e.g. SGLang's `physical_to_logical_map`), int32
 * [num_layers][num_physical_experts] with values in [0, num_logical_experts); every expert must
 * appear in every layer. log2phy lists replicas in ascending slot order, and info.algorithm is 0
 * (imported).
 * EPLB_ERR_INVALID_ARGUMENT: NULL pointers, zero or inconsistent sizes (num_physical_experts %
 * num_gpus, num_gpus % num_nodes, R < E), phy2log_len != num_layers * num_physical_experts, an id
 * out of range or an expert missing from a layer (the message names layer, slot and value).
 * EPLB_ERR_OUT_OF_MEMORY: allocation failure or size overflow. */
EPLB_API eplb_status eplb_placement_create_from_phy2log(uint32_t num_layers,
                                                        uint32_t num_logical_experts,
                                                        uint32_t num_physical_experts,
                                                        uint32_t num_nodes, uint32_t num_gpus,
                                                        const int32_t* phy2log, size_t phy2log_len,
                                                        eplb_placement** out_placement);

/* Releases a placement. NULL is a no-op. Not concurrently with other calls on the same handle. */
EPLB_API void eplb_placement_destroy(eplb_placement* placement);

/* ============================================================================================ */
/* Section: planner — turns a load matrix into a placement                                      */
/* ============================================================================================ */

/* A planner holds the model shape, topology and algorithm, plus scratch space reused across
 * plans. One thread at a time per planner; use one planner per thread to plan concurrently. */
struct eplb_planner;
typedef struct eplb_planner eplb_planner;

typedef struct eplb_planner_options {
  uint32_t struct_size;          /* sizeof(eplb_planner_options) */
  uint32_t algorithm;            /* eplb_algorithm; default EPLB_ALGORITHM_DEFAULT */
  uint32_t num_layers;           /* MoE layers per plan, >= 1 (no default) */
  uint32_t num_logical_experts;  /* E >= 1, a multiple of num_groups (no default) */
  uint32_t num_physical_experts; /* R >= E, a multiple of num_gpus (no default) */
  uint32_t num_groups;           /* expert groups (DeepSeek-V3: 8); default 1 */
  uint32_t num_nodes;            /* nodes; num_gpus must be a multiple; default 1 */
  uint32_t num_gpus;             /* GPUs in the expert-parallel group (no default) */
  uint32_t cross_node_budget;    /* balanced-relaxed: replicas per layer allowed outside their
                                    group's node, <= num_physical_experts; default 0 (other
                                    algorithms refuse any other value) */
  uint32_t num_threads;          /* threads to split layers across, 1..256; 0 or 1 = the caller's
                                    thread only. The plan does not depend on it. Default 1 */
  /* Fields below were added in 0.1.1; a caller built against 0.1.0 gets their defaults. */
  uint32_t affinity;           /* 1: eplb_planner_plan_tracked also keeps experts that tokens
                                  pick together on one node (fewer nodes touched per token);
                                  eplb_planner_plan then refuses. 0 or 1; default 0 */
  uint32_t reserved0;          /* 0 */
  double affinity_min_balance; /* affinity: the plan's balancedness stays >= this x that of the
                                  balance-only plan of the same algorithm; (0, 1]; default 0.99
                                  (without affinity it must stay 0.99) */
} eplb_planner_options;

/* Sets struct_size and every default; fields without a default are 0 and must be set.
 * NULL is a no-op. */
EPLB_API void eplb_planner_options_init(eplb_planner_options* options);

/* Validates the options and creates a planner.
 * EPLB_ERR_INVALID_ARGUMENT: options or out_planner is NULL; bad struct_size; an unknown
 * algorithm; a zero count; E % num_groups != 0; R % num_gpus != 0; num_gpus % num_nodes != 0;
 * R < E; a count above INT32_MAX; cross_node_budget > R, or > 0 with another algorithm than
 * balanced-relaxed; num_threads > 256; affinity_min_balance outside (0, 1] with affinity, or
 * not its default without. The message names
 * the field and value.
 * EPLB_ERR_OUT_OF_MEMORY: allocation failure or an array size overflowing size_t. */
EPLB_API eplb_status eplb_planner_create(const eplb_planner_options* options,
                                         eplb_planner** out_planner);

/* Releases a planner. NULL is a no-op. */
EPLB_API void eplb_planner_destroy(eplb_planner* planner);

/* Plans a placement from `loads`, double [num_layers][num_logical_experts]: the load (e.g. token
 * count) of each logical expert in each layer, finite and >= 0; each layer's total at most 1e150
 * (the limit of every call that takes loads; deepseek: FLT_MAX / 2, it sums in float32). A
 * layer whose loads are all zero (e.g. a dense layer) gets the trivial placement. The new
 * placement is owned by the caller.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer; loads_len != num_layers * num_logical_experts; a
 * negative, NaN or infinite load, or (deepseek) one above FLT_MAX (the message names layer,
 * expert and value); a layer whose loads add up to more than that; options.affinity is set
 * (affinity needs statistics: use eplb_planner_plan_tracked). EPLB_ERR_OUT_OF_MEMORY.
 * EPLB_ERR_CANCELLED: the planner's plan control (eplb_planner_set_control) was cancelled. Not
 * concurrently on the same planner. */
EPLB_API eplb_status eplb_planner_plan(eplb_planner* planner, const double* loads, size_t loads_len,
                                       eplb_placement** out_placement);

/* Plans one placement from several load matrices ("windows": consecutive recording intervals,
 * SGLang's [steps][layers][experts] dump, or several workloads), double
 * [num_windows][num_layers][num_logical_experts]. The balanced algorithms minimise the expected
 * per-window peak (the mean over windows of each window's busiest GPU) instead of the peak of the
 * summed load, so the plan holds up when the load moves between windows (the idea of SGLang's
 * deepseek_vec); the other algorithms plan on the sum of the windows. A layer whose windows are
 * all zero gets the trivial placement. With one window this is eplb_planner_plan.
 * EPLB_ERR_INVALID_ARGUMENT: as eplb_planner_plan, num_windows == 0, or loads_len !=
 * num_windows * num_layers * num_logical_experts (the message names window, layer and expert of
 * a bad value), a layer whose loads over all windows add up to more than 1e150.
 * EPLB_ERR_OUT_OF_MEMORY. EPLB_ERR_CANCELLED (as eplb_planner_plan). Not concurrently on the
 * same planner. */
EPLB_API eplb_status eplb_planner_plan_windows(eplb_planner* planner, const double* loads,
                                               size_t num_windows, size_t loads_len,
                                               eplb_placement** out_placement);

/* Options of eplb_planner_plan_near. Since 0.1.1. */
typedef struct eplb_plan_near_options {
  uint32_t struct_size; /* sizeof(eplb_plan_near_options) */
  uint32_t reserved0;   /* 0 */
  double min_balance;   /* per layer, the plan's balancedness stays >= this x that of the
                           planner's own plan of the loads; (0, 1]; default 0.998. 1 asks for a
                           busiest GPU no higher than the planner's own plan */
} eplb_plan_near_options;

/* Sets struct_size and every default. NULL is a no-op. Thread-safe. Since 0.1.1. */
EPLB_API void eplb_plan_near_options_init(eplb_plan_near_options* options);

/* What eplb_planner_plan_near did with each layer; every layer is counted once. Since 0.1.1. */
typedef struct eplb_plan_near_report {
  uint32_t struct_size;       /* in: sizeof(eplb_plan_near_report) */
  uint32_t layers_kept;       /* balanced enough already: the current layout, nothing moves */
  uint32_t layers_rebalanced; /* the current layout with some replicas moved */
  uint32_t layers_replanned;  /* the planner's own plan: rebalancing fell short of the target,
                                 or the current layout breaks the algorithm's locality; with a
                                 struct_size without the next field, partly re-planned layers
                                 too, so every layer is still counted once */
  /* Since 0.1.1 (a struct_size without it is accepted): hierarchical and relaxed plans only,
     some nodes rebalanced and the others the planner's own plan, step (3) below */
  uint32_t layers_partly_replanned;
} eplb_plan_near_report;

/* Re-plans for `loads` near `current`, the placement the GPUs hold now (a "warm start"): a plan
 * whose migration (eplb_migration_plan from `current`) moves few experts. A fresh plan of new
 * loads usually shares few (GPU, expert) pairs with the old one, so even the best relabeling
 * moves most of its slots; yet the old layout often needs only a few replicas moved to be about
 * as balanced. Per layer, the planner's own plan of `loads` sets the target (a busiest GPU at
 * most its own / min_balance, under even splitting of each expert's load over its replicas),
 * then the layer is (1) kept as it is when it meets the target; else (2) rebalanced: replicas
 * of the busiest GPU's experts copied onto other GPUs' slots whose expert keeps another replica,
 * or traded with another GPU's expert, each time the move that lowers the busiest GPU most per
 * slot it newly changes from `current` (a move that changes no new slot, or writes a slot's
 * current expert back, is preferred), no expert given a second replica on a GPU, and when no
 * such move lowers the busiest GPU, the same moves from every GPU above the target, each lowering
 * the sum of squared excesses over the target most, until the target is met; else (3) for
 * hierarchical and relaxed plans, partly re-planned: the planner's own plan, its nodes and GPUs
 * relabeled to keep the most experts on their GPU (as eplb_migration_plan does), and the
 * rebalanced layout divide the nodes into the smallest sets that hold every replica of their
 * experts in both (nodes that trade expert groups among themselves); each set keeps the
 * rebalanced layout where all its GPUs meet the target and it keeps at least as many experts on
 * their GPU, and takes the planner's plan otherwise (layers_partly_replanned when some sets do
 * each and the GPUs do not hold just what the planner's plan's do); else (4) replaced by the
 * planner's own plan, also when the rebalance would change as many slots as that plan (without
 * relabeling). The algorithm's locality holds: for hierarchical plans (balanced-hierarchical
 * and hierarchical deepseek) moves stay inside a node and every replica on its group's node (the
 * node holding most of the group's replicas); balanced-relaxed adds no replica off its group's
 * node and keeps that count within cross_node_budget; a current layer that breaks this locality
 * gets step (4). Kept, rebalanced and partly re-planned layers keep `current`'s replica ranks
 * for the replicas that stay in their slot (new replicas follow in ascending slot
 * order), so a kept layer is `current`'s exactly. Deterministic for
 * any num_threads. `options` may be NULL for the defaults; `out_report` may be NULL. The new
 * placement is owned by the caller; `current` is only read. Plan controls see two passes per
 * layer (the planner's own plan, then this one).
 * EPLB_ERR_INVALID_ARGUMENT: a NULL planner, loads, current or out_placement; bad loads (as
 * eplb_planner_plan); `current` of another shape than the planner's (num_layers,
 * num_logical_experts, num_physical_experts, num_gpus or num_nodes; the message names it);
 * min_balance outside (0, 1] or not a number; reserved0 != 0; a bad struct_size;
 * options.affinity set on the planner. EPLB_ERR_OUT_OF_MEMORY. EPLB_ERR_CANCELLED (as
 * eplb_planner_plan). Not concurrently on the same planner. Since 0.1.1. */
EPLB_API eplb_status eplb_planner_plan_near(eplb_planner* planner, const double* loads,
                                            size_t loads_len, const eplb_placement* current,
                                            const eplb_plan_near_options* options,
                                            eplb_placement** out_placement,
                                            eplb_plan_near_report* out_report);

/* ============================================================================================ */
/* Section: plan control — cancel a plan from another thread and watch its progress             */
/* ============================================================================================ */

/* A plan of a whole model can take seconds (affinity planning on one core). A plan control lets
 * any thread cancel the plans of the planners it is attached to and read how far they are, e.g. a
 * server's deadline, a Go context or a progress bar. Attach it with eplb_planner_set_control.
 * Progress is counted in steps: one per layer and pass (affinity planning on more than one node
 * makes two passes, the balance-only plan and the traffic improvement; every other plan one). A
 * plan announces its steps when it starts (after its arguments are checked), so the steps of
 * every plan that used the control add up. Cancelling is sticky: plans in progress stop at their
 * next layer boundary (a layer takes milliseconds; an affinity layer, or a plan_near layer
 * where experts have dozens of replicas, up to about a second on one core) and later plans
 * stop before they start, all with EPLB_ERR_CANCELLED; use a new control for new work. A cancel
 * that comes after a plan's last layer began does not fail that plan: it returns EPLB_OK and its
 * placement, so a deadline check looks at the status, not at progress.cancelled. Every plan control
 * function except eplb_plan_control_destroy is thread-safe and may run concurrently with any other
 * call on the same control and with the plans that use it; destroy, like every _destroy, must not
 * overlap another call on the same handle (plans using the control are unaffected). Since 0.1.1. */
struct eplb_plan_control;
typedef struct eplb_plan_control eplb_plan_control;

/* What eplb_plan_control_get_progress reports. Output struct (see the conventions). */
typedef struct eplb_plan_progress {
  uint32_t struct_size; /* in: sizeof(eplb_plan_progress) */
  uint32_t cancelled;   /* 1 once eplb_plan_control_cancel was called, else 0 */
  uint64_t steps_done;  /* steps finished by the plans that use the control */
  uint64_t steps_total; /* steps announced by those plans; steps_done <= steps_total, equal when
                           every plan finished (a failed or cancelled plan leaves a gap) */
} eplb_plan_progress;

/* Creates a plan control: not cancelled, no steps. Owned by the caller.
 * EPLB_ERR_INVALID_ARGUMENT: out_control is NULL. EPLB_ERR_OUT_OF_MEMORY. */
EPLB_API eplb_status eplb_plan_control_create(eplb_plan_control** out_control);

/* Releases the caller's reference. The planners it is attached to keep it alive until they are
 * destroyed or detach it, so destroying a control while a plan uses it is safe. NULL is a
 * no-op. */
EPLB_API void eplb_plan_control_destroy(eplb_plan_control* control);

/* Cancels: every plan using the control stops at its next layer boundary with
 * EPLB_ERR_CANCELLED, and so does every later one. Idempotent. Any thread, any time.
 * EPLB_ERR_INVALID_ARGUMENT: control is NULL. */
EPLB_API eplb_status eplb_plan_control_cancel(eplb_plan_control* control);

/* Writes the progress and whether the control is cancelled to *out_progress. Any thread, any
 * time; lock-free, cheap enough to poll.
 * EPLB_ERR_INVALID_ARGUMENT: control or out_progress is NULL; bad struct_size. */
EPLB_API eplb_status eplb_plan_control_get_progress(const eplb_plan_control* control,
                                                    eplb_plan_progress* out_progress);

/* Attaches `control` to the planner: its plans (eplb_planner_plan, _plan_windows and
 * _plan_tracked) from now on count their steps in it and stop when it is cancelled. NULL
 * detaches. The planner holds a reference to the control (see eplb_plan_control_destroy); one
 * control may serve several planners, which then stop together. Not concurrently with a plan on
 * the same planner.
 * EPLB_ERR_INVALID_ARGUMENT: planner is NULL. */
EPLB_API eplb_status eplb_planner_set_control(eplb_planner* planner, eplb_plan_control* control);

/* ============================================================================================ */
/* Section: snapshots — placements on disk (.eplb files)                                        */
/* ============================================================================================ */

/* A snapshot file holds a placement, how it was made, optionally the load statistics it was
 * planned from, and its metrics: zstd-compressed sections, each checksummed, behind a versioned
 * header (docs/SNAPSHOT_FORMAT.md). Readers accept any file of the same format major version and
 * skip optional sections they do not know. A loaded snapshot is immutable and thread-safe. */
struct eplb_snapshot;
typedef struct eplb_snapshot eplb_snapshot;

#define EPLB_SNAPSHOT_FORMAT_MAJOR 1
#define EPLB_SNAPSHOT_FORMAT_MINOR 2

struct eplb_tracker; /* the tracker section below: statistics snapshots hold one */

typedef struct eplb_snapshot_options {
  uint32_t struct_size;       /* sizeof(eplb_snapshot_options) */
  uint32_t compression_level; /* zstd level 1..19; default 3 */
  const double* loads;        /* optional: the load statistics, [num_layers][num_logical_experts]
                                 (or NULL); stored with the placement and used for its metrics */
  size_t loads_len;           /* elements in loads (0 when loads is NULL) */
  const char* label;          /* optional: a user label, UTF-8, at most 255 bytes (or NULL) */
  /* Added in 0.1.1 with snapshot format 1.2 (callers built against 0.1.0 pass a smaller
     struct_size and store no statistics). */
  const struct eplb_tracker* tracker; /* optional: co-activation statistics stored with the
                                         placement (its shape must match), or NULL; only read
                                         during the call. Its loads are not the snapshot's
                                         `loads`: without `loads` the file stores no metrics
                                         (for metrics of the tracked load, pass
                                         eplb_tracker_get_loads' output as `loads`) */
} eplb_snapshot_options;

/* Sets struct_size and the defaults. NULL is a no-op. */
EPLB_API void eplb_snapshot_options_init(eplb_snapshot_options* options);

/* What a snapshot holds, read from its header and small sections only. A statistics snapshot
 * (eplb_snapshot_save_statistics: co-activation statistics, no placement) reports
 * num_physical_experts = num_nodes = num_gpus = num_groups = 0, algorithm 0, has_loads 0 and
 * has_coactivation 1; num_layers and num_logical_experts are the tracker's. */
typedef struct eplb_snapshot_info {
  uint32_t struct_size; /* in: sizeof(eplb_snapshot_info) */
  uint32_t format_major;
  uint32_t format_minor;
  uint32_t num_layers;
  uint32_t num_logical_experts;
  uint32_t num_physical_experts;
  uint32_t num_nodes;
  uint32_t num_gpus;
  uint32_t num_groups;
  uint32_t algorithm;        /* eplb_algorithm that made the placement; 0 if imported */
  uint32_t has_loads;        /* 1 if the load statistics are stored */
  uint32_t has_coactivation; /* 1 if co-activation statistics are stored */
  uint64_t created_unix_seconds;
  uint64_t file_size; /* bytes */
  double plan_seconds;
  double balancedness;      /* stored metrics under the stored loads; -1 when no metrics
                               are stored (no statistics, or a format 1.0 file) */
  char library_version[16]; /* libeplb version that wrote it, NUL-terminated */
  char label[256];          /* NUL-terminated, "" if none */
} eplb_snapshot_info;

/* Writes `placement` (and the options' statistics and label) to `path` atomically: a temporary
 * file in the same directory, fsync, rename over `path`, fsync of the directory. A crash or a
 * full disk leaves the previous file intact. A `path` that is a symbolic link is written through
 * (the file it points to is replaced, the link stays), unless the kernel would refuse to follow
 * it (fs.protected_symlinks: another user's link in /tmp; EPLB_ERR_IO). /dev/stdout, /dev/fd/N
 * and the like are written to that descriptor (keeping a redirect's append mode); a pipe or a
 * device is written to directly. A replaced file keeps its permissions; a new one gets 0666
 * minus the umask. `options` may be NULL (defaults).
 * EPLB_ERR_INVALID_ARGUMENT: NULL placement or path, bad options (struct_size, loads_len not
 * num_layers * num_logical_experts, a bad load, a label over 255 bytes, a compression level
 * outside 1..19). EPLB_ERR_IO: the message names the path and the system's reason. */
EPLB_API eplb_status eplb_snapshot_save(const eplb_placement* placement,
                                        const eplb_snapshot_options* options, const char* path);

/* As eplb_snapshot_save, into a new buffer owned by the caller and released with
 * eplb_buffer_free. */
EPLB_API eplb_status eplb_snapshot_save_to_buffer(const eplb_placement* placement,
                                                  const eplb_snapshot_options* options,
                                                  void** out_buffer, size_t* out_size);

/* Releases a buffer returned by libeplb. NULL is a no-op. */
EPLB_API void eplb_buffer_free(void* buffer);

/* Reads and validates a whole snapshot file (every size checked before allocation, every
 * checksum, the placement's consistency). A pipe or a device is read to its end (or refused after
 * its first bytes when they are not a snapshot's). The snapshot is owned by the caller.
 * EPLB_ERR_IO (cannot open or read), EPLB_ERR_TRUNCATED, EPLB_ERR_CORRUPT,
 * EPLB_ERR_UNSUPPORTED_VERSION, EPLB_ERR_INVALID_ARGUMENT (NULL), EPLB_ERR_OUT_OF_MEMORY. */
EPLB_API eplb_status eplb_snapshot_load(const char* path, eplb_snapshot** out_snapshot);

/* As eplb_snapshot_load, from `size` bytes at `data` (not retained after the call). */
EPLB_API eplb_status eplb_snapshot_load_from_buffer(const void* data, size_t size,
                                                    eplb_snapshot** out_snapshot);

/* Reads what a snapshot file holds from its header and small sections, without decoding the
 * placement or statistics; a statistics snapshot (no placement) has its statistics decoded, for
 * its shape (num_layers, num_logical_experts). Errors as eplb_snapshot_load. */
EPLB_API eplb_status eplb_snapshot_inspect(const char* path, eplb_snapshot_info* out_info);

/* Fills `*out_info` (caller sets struct_size). EPLB_ERR_INVALID_ARGUMENT on NULL or a bad
 * struct_size. */
EPLB_API eplb_status eplb_snapshot_get_info(const eplb_snapshot* snapshot,
                                            eplb_snapshot_info* out_info);

/* A new placement equal to the stored one (phy2log, counts, log2phy in the stored replica-rank
 * order, provenance), owned by the caller. EPLB_ERR_INVALID_ARGUMENT on NULL, or for a
 * statistics snapshot (no placement; info.num_physical_experts == 0). */
EPLB_API eplb_status eplb_snapshot_get_placement(const eplb_snapshot* snapshot,
                                                 eplb_placement** out_placement);

/* Copies the stored load statistics, double [num_layers][num_logical_experts].
 * EPLB_ERR_INVALID_ARGUMENT: NULL, or the snapshot has no statistics (info.has_loads == 0).
 * EPLB_ERR_BUFFER_TOO_SMALL: out_len too small. */
EPLB_API eplb_status eplb_snapshot_get_loads(const eplb_snapshot* snapshot, double* out,
                                             size_t out_len);

/* Releases a snapshot. NULL is a no-op. */
EPLB_API void eplb_snapshot_destroy(eplb_snapshot* snapshot);

/* Writes a statistics snapshot to `path` atomically (as eplb_snapshot_save): `tracker`'s whole
 * state (options, loads, co-activation counts, sliding-window deltas, reservoir rows and RNG
 * state; enough to resume recording exactly) and the provenance, without a placement. It
 * requires format 1.2 to read (older readers answer EPLB_ERR_UNSUPPORTED_VERSION). `options`
 * may be NULL; its loads and tracker fields must be NULL (the loads are the tracker's). The
 * tracker is only read during the call (not concurrently with calls that change it).
 * EPLB_ERR_INVALID_ARGUMENT: NULL tracker or path, bad options (as eplb_snapshot_save, or loads
 * or tracker set). EPLB_ERR_IO: the message names the path and the system's reason. */
EPLB_API eplb_status eplb_snapshot_save_statistics(const struct eplb_tracker* tracker,
                                                   const eplb_snapshot_options* options,
                                                   const char* path);

/* As eplb_snapshot_save_statistics, into a new buffer owned by the caller and released with
 * eplb_buffer_free. EPLB_ERR_INVALID_ARGUMENT also when out_buffer or out_size is NULL. */
EPLB_API eplb_status eplb_snapshot_save_statistics_to_buffer(const struct eplb_tracker* tracker,
                                                             const eplb_snapshot_options* options,
                                                             void** out_buffer, size_t* out_size);

/* A new tracker equal to the stored statistics (same options, counts, window state, samples and
 * RNG state: recording into it continues exactly as the saved tracker would), owned by the
 * caller (eplb_tracker_destroy). Works for statistics snapshots and for placement snapshots
 * saved with options.tracker. The statistics were validated when the snapshot was loaded.
 * EPLB_ERR_INVALID_ARGUMENT: NULL, or the snapshot holds no co-activation statistics
 * (info.has_coactivation == 0). EPLB_ERR_OUT_OF_MEMORY. */
EPLB_API eplb_status eplb_snapshot_get_tracker(const eplb_snapshot* snapshot,
                                               struct eplb_tracker** out_tracker);

/* ============================================================================================ */
/* Section: interop — the JSON formats of SGLang and vLLM-Ascend                                */
/* ============================================================================================ */

/* SGLang's placement file: {"physical_to_logical_map": [[...], ...]}, exactly one key, one row
 * per layer (--init-expert-location). `num_dense_layers` all-trivial rows (slot p holds expert
 * p % E) are emitted first so that rows equal the model's hidden layers (DeepSeek-V3: 3 dense
 * layers before 58 MoE layers, 61 rows). Writes a new NUL-terminated UTF-8 string owned by the
 * caller (eplb_buffer_free); *out_len excludes the NUL. EPLB_ERR_INVALID_ARGUMENT on NULL, or
 * when num_layers + num_dense_layers exceeds INT32_MAX. */
EPLB_API eplb_status eplb_placement_to_sglang_json(const eplb_placement* placement,
                                                   uint32_t num_dense_layers, char** out_json,
                                                   size_t* out_len);

/* Reads SGLang's placement file (`json`, `json_len` bytes, need not be NUL-terminated) for a
 * deployment of num_nodes nodes and num_gpus GPUs, skipping the first `num_dense_layers` rows.
 * Rows must all have the same width R (a multiple of num_gpus) and hold ids in
 * [0, num_logical_experts); num_logical_experts 0 means one more than the largest id.
 * EPLB_ERR_CORRUPT: not JSON, not exactly the documented object, ragged rows, an id out of
 * range, an expert missing from a row (the message names row, column and value).
 * EPLB_ERR_INVALID_ARGUMENT: NULL pointers, inconsistent topology, num_dense_layers >= the
 * number of rows, or num_logical_experts greater than the row width. */
EPLB_API eplb_status eplb_placement_from_sglang_json(const char* json, size_t json_len,
                                                     uint32_t num_logical_experts,
                                                     uint32_t num_nodes, uint32_t num_gpus,
                                                     uint32_t num_dense_layers,
                                                     eplb_placement** out_placement);

/* vLLM-Ascend's expert map file: {"moe_layer_count": L, "layer_list": [{"layer_id": l,
 * "device_count": G, "device_list": [{"device_id": g, "device_expert": [logical ids]}]}]}.
 * Writes a new NUL-terminated string owned by the caller (eplb_buffer_free).
 * EPLB_ERR_INVALID_ARGUMENT on NULL. */
EPLB_API eplb_status eplb_placement_to_vllm_ascend_json(const eplb_placement* placement,
                                                        char** out_json, size_t* out_len);

/* Reads vLLM-Ascend's expert map file. Every device must list the same number of experts.
 * num_logical_experts 0 means: one more than the largest id. `layer_id`, `device_count` and
 * `device_id` may be omitted (vLLM-Ascend's own examples omit them) but are checked when present;
 * other keys are ignored. Errors as eplb_placement_from_sglang_json. */
EPLB_API eplb_status eplb_placement_from_vllm_ascend_json(const char* json, size_t json_len,
                                                          uint32_t num_logical_experts,
                                                          uint32_t num_nodes,
                                                          eplb_placement** out_placement);

/* Reads SGLang's expert load file: {"logical_count": [layers][E]} or [steps][layers][E]
 * (steps summed); other keys ignored. Writes a new array double [*out_num_layers][*out_num_experts]
 * owned by the caller (eplb_buffer_free). EPLB_ERR_CORRUPT names the key, indices and value of
 * a bad entry (negative, not a number, ragged). */
EPLB_API eplb_status eplb_loads_from_sglang_json(const char* json, size_t json_len,
                                                 double** out_loads, uint32_t* out_num_layers,
                                                 uint32_t* out_num_experts);

/* ============================================================================================ */
/* Section: tracker — load and co-activation statistics recorded online                         */
/* ============================================================================================ */

/* A tracker is fed the top-k expert ids of every batch, per layer, and keeps per layer:
 * - expert load: each valid slot counts once for its expert (a token listing an expert twice
 *   adds 2, as SGLang's recorder does);
 * - co-activation: for each token, 1 for every pair of *distinct* valid experts it lists
 *   (repeated ids and masked slots add no pair), kept as a packed upper triangle;
 * - a reservoir: a uniform random sample (Algorithm R, seeded) of up to reservoir_capacity full
 *   top-k rows among the tokens with at least one valid slot recorded since creation or reset —
 *   the input of eplb_metrics_nodes_touched.
 * A *batch* is one eplb_tracker_record call for one layer; windows count batches per layer.
 * Masked slots are -1.
 * Threading: a tracker is NOT internally synchronised. Record into one tracker from one thread
 * at a time (e.g. one tracker per thread or per rank) and merge them with eplb_tracker_merge
 * before planning. The `const` getters may run concurrently with each other. */
struct eplb_tracker;
typedef struct eplb_tracker eplb_tracker;

/* How a tracker forgets. Stored in a `uint32_t` field; values are stable and only appended. */
typedef enum {
  /* Everything since creation or the last reset; exact counts. */
  EPLB_WINDOW_CUMULATIVE = 0,
  /* The last `window_batches` batches of each layer; exact counts. Keeps each batch, allocated
   * as batches arrive: a small one (num_tokens * (top_k + top_k*(top_k-1)/2) at most half of
   * E + E*(E-1)/2: up to 456 tokens for E = 256, top-8) as its rows, num_tokens * top_k * 4
   * bytes, taken out of the window by counting them again; a larger one as its counts,
   * (E + E*(E-1)/2) * 4 bytes, taken out by an extra O(E^2) pass. E.g. W = 64 batches of 128
   * tokens, E = 256, top-8: 256 KB per layer (8.4 MB if every batch were large). A loaded
   * statistics snapshot or an all-reduce holds the counts of every batch. An empty slot for each
   * of the W batches of each layer is made at creation (about 64 bytes each: W = 10^6 is 64 MB per
   * layer before any batch). A batch may hold at most 2^32-1 slots. */
  EPLB_WINDOW_SLIDING = 1,
  /* Exponential decay: before each batch of a layer, its statistics are multiplied by `decay`
   * (so a batch b batches old weighs decay^b). O(1) per batch (a scale factor). */
  EPLB_WINDOW_DECAY = 2
} eplb_window;

typedef struct eplb_tracker_options {
  uint32_t struct_size;         /* sizeof(eplb_tracker_options) */
  uint32_t num_layers;          /* MoE layers, >= 1 (no default) */
  uint32_t num_logical_experts; /* E >= 1 (no default) */
  uint32_t top_k;               /* slots per token, 1..1024 (no default) */
  uint32_t window;              /* eplb_window; default EPLB_WINDOW_CUMULATIVE */
  uint32_t window_batches;      /* sliding: W >= 1; default 64 (ignored by other windows) */
  double decay;                 /* decay: factor per batch in (0, 1]; default 0.99 (ignored by
                                   other windows) */
  uint32_t reservoir_capacity;  /* rows sampled per layer; 0 = none; default 4096. A layer's
                                   reservoir (up to reservoir_capacity x top_k int32) grows with
                                   the rows it keeps */
  uint32_t reserved0;           /* 0 */
  uint64_t seed;                /* reservoir RNG seed; default 0 */
} eplb_tracker_options;

/* Sets struct_size and every default; fields without a default are 0 and must be set.
 * NULL is a no-op. */
EPLB_API void eplb_tracker_options_init(eplb_tracker_options* options);

/* Validates the options and creates an empty tracker, owned by the caller.
 * EPLB_ERR_INVALID_ARGUMENT: options or out_tracker is NULL; bad struct_size; a zero count;
 * top_k > 1024; an unknown window; window_batches == 0 (sliding); decay outside (0, 1] (decay).
 * The message names the field and value.
 * EPLB_ERR_OUT_OF_MEMORY: allocation failure or a size overflowing size_t. */
EPLB_API eplb_status eplb_tracker_create(const eplb_tracker_options* options,
                                         eplb_tracker** out_tracker);

/* Releases a tracker. NULL is a no-op. */
EPLB_API void eplb_tracker_destroy(eplb_tracker* tracker);

/* A new tracker with `tracker`'s whole state (options, counts, window, reservoir rows and RNG),
 * owned by the caller: recording the same batches into both gives the same statistics. E.g.
 * plan in the background from a clone (eplb_planner_plan_tracked) while serving keeps recording
 * into the original. `tracker` is only read, so clones may be taken concurrently with other
 * const calls on it, not with a record, merge or reset. Since 0.1.1.
 * EPLB_ERR_INVALID_ARGUMENT: tracker or out_tracker is NULL. EPLB_ERR_OUT_OF_MEMORY. */
EPLB_API eplb_status eplb_tracker_clone(const eplb_tracker* tracker, eplb_tracker** out_tracker);

/* Records one batch of `layer`: `topk_ids` holds int32 [num_tokens][top_k] logical expert ids
 * in [0, E), or -1 for a masked slot. num_tokens may be 0 (an empty batch still advances the
 * window). Everything is validated before anything is recorded, so a failed call changes
 * nothing. Not concurrently with any other call on the same tracker.
 * EPLB_ERR_INVALID_ARGUMENT: tracker NULL; topk_ids NULL with num_tokens > 0; layer >=
 * num_layers; top_k differs from the tracker's; an id outside [-1, E) (the message names layer,
 * token, slot and value); more than 2^32-1 slots in one batch of a sliding window.
 * EPLB_ERR_OUT_OF_MEMORY: num_tokens * top_k overflows size_t; or the layer's reservoir (while
 * it fills), the batch's scratch or its sliding-window delta cannot be allocated (the message
 * names reservoir_capacity and top_k when it is the reservoir); nothing of the batch is
 * recorded. */
EPLB_API eplb_status eplb_tracker_record(eplb_tracker* tracker, uint32_t layer,
                                         const int32_t* topk_ids, size_t num_tokens,
                                         uint32_t top_k);

/* As eplb_tracker_record, with physical slot ids in [0, num_physical_experts) of `placement`
 * (or -1), as a dispatch after logical-to-physical mapping sees them; each is folded to the
 * logical expert its slot holds. Pass the placement the ids were mapped with (during a
 * migration, the step placement in force); any placement of the same shape is accepted, and
 * another one folds the ids to the wrong experts without an error. The placement must have the
 * tracker's num_layers and num_logical_experts; it is only read during the call.
 * EPLB_ERR_INVALID_ARGUMENT: as eplb_tracker_record (the message says "physical id"), placement
 * NULL, or a placement of another shape. EPLB_ERR_OUT_OF_MEMORY: as eplb_tracker_record. */
EPLB_API eplb_status eplb_tracker_record_physical(eplb_tracker* tracker,
                                                  const eplb_placement* placement, uint32_t layer,
                                                  const int32_t* topk_ids, size_t num_tokens,
                                                  uint32_t top_k);

/* Adds `src`'s statistics into `dst`: the result equals one tracker that recorded both streams
 * (exactly for loads and pair counts). Sliding windows are aligned by age (the i-th most recent
 * batch of each layer is summed); decayed statistics add at their current weights; the reservoir
 * becomes a uniform sample of both histories (weighted by the tokens each saw), drawn with
 * `dst`'s RNG. `src` is unchanged; dst == src is allowed (doubles the counts). Not concurrently
 * with other calls on `dst`; `src` may be read concurrently.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL tracker, or options that differ in anything but the seed.
 * EPLB_ERR_OUT_OF_MEMORY (`dst` unchanged). */
EPLB_API eplb_status eplb_tracker_merge(eplb_tracker* dst, const eplb_tracker* src);

/* Forgets all statistics, windows and samples; the reservoir RNG restarts from the seed.
 * EPLB_ERR_INVALID_ARGUMENT: tracker NULL. */
EPLB_API eplb_status eplb_tracker_reset(eplb_tracker* tracker);

/* Copies the expert loads, double [num_layers][num_logical_experts], at current weights:
 * ready for eplb_planner_plan. EPLB_ERR_INVALID_ARGUMENT: a NULL pointer.
 * EPLB_ERR_BUFFER_TOO_SMALL: out_len < num_layers * num_logical_experts. */
EPLB_API eplb_status eplb_tracker_get_loads(const eplb_tracker* tracker, double* out,
                                            size_t out_len);

/* Copies one layer's co-activation counts as a packed upper triangle, double [E*(E-1)/2]: the
 * count of pair (a, b), a < b, is at index a*(2E-a-1)/2 + (b-a-1) (row a's pairs (a, a+1) ..
 * (a, E-1), then row a+1's, ...). A dense [E][E] matrix is the triangle mirrored, with the
 * diagonal left to the caller (e.g. the loads).
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer, layer >= num_layers.
 * EPLB_ERR_BUFFER_TOO_SMALL: out_len < E*(E-1)/2 (the message gives the size). */
EPLB_API eplb_status eplb_tracker_get_coactivation(const eplb_tracker* tracker, uint32_t layer,
                                                   double* out, size_t out_len);

/* Copies one layer's sampled rows, int32 [rows][top_k] logical ids as recorded (masked slots
 * stay -1), into `out` (capacity `out_len` elements) and writes the row count to *out_rows.
 * Size query: with out == NULL and out_len == 0 only *out_rows is written. At most
 * reservoir_capacity rows.
 * EPLB_ERR_INVALID_ARGUMENT: tracker or out_rows NULL, out NULL with out_len > 0, layer >=
 * num_layers. EPLB_ERR_BUFFER_TOO_SMALL: out_len < rows * top_k (the message gives the size;
 * *out_rows is left as it was: ask with the size query first). */
EPLB_API eplb_status eplb_tracker_get_samples(const eplb_tracker* tracker, uint32_t layer,
                                              int32_t* out, size_t out_len, size_t* out_rows);

/* Plans from a tracker's statistics: the loads are `loads` (double [num_layers][num_logical_
 * experts], as eplb_planner_plan) or, when `loads` is NULL (loads_len 0), the tracker's current
 * loads. With options.affinity set, the balance-only plan of the planner's algorithm is then
 * improved for traffic: replicas move between nodes so that the experts the tracker's sampled
 * top-k rows pick together share a node, lowering the nodes touched per token
 * (eplb_metrics_nodes_touched) while the busiest GPU stays within 1 / affinity_min_balance of the
 * balance-only plan's. Replica counts, per-GPU slot counts and the no-duplicate rule are kept;
 * balanced-relaxed keeps every expert's home-node replica and the cross-node budget;
 * balanced-hierarchical (and hierarchical deepseek) exchanges whole groups between nodes and
 * re-plans those nodes, so with one group per node it keeps the balance-only plan. Without
 * options.affinity this is eplb_planner_plan on the chosen loads. Deterministic for any
 * num_threads. The new placement is owned by the caller; the tracker is only read.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL planner, tracker or out_placement; loads NULL with
 * loads_len > 0; the tracker's layers or experts differ from the planner's; bad loads (as
 * eplb_planner_plan); options.affinity with a tracker that keeps no samples
 * (reservoir_capacity 0). EPLB_ERR_OUT_OF_MEMORY. EPLB_ERR_CANCELLED (as eplb_planner_plan).
 * Not concurrently on the same planner; the tracker must not be recorded into meanwhile. */
EPLB_API eplb_status eplb_planner_plan_tracked(eplb_planner* planner, const double* loads,
                                               size_t loads_len, const eplb_tracker* tracker,
                                               eplb_placement** out_placement);

/* ============================================================================================ */
/* Section: workload simulator — synthetic top-k routing for demos, tests and benchmarks         */
/* ============================================================================================ */

/* Generates top-k expert ids per layer per token with lognormal expert popularity, latent topics
 * that make experts co-activate, temporal locality and drift (the model of the research notes,
 * calibrated to real DeepSeek-V3 recordings):
 *   score(token, layer, e) = ln p[layer][e] + (boost if e is one of the token's topic's experts)
 *                            + noise_scale * Gumbel noise,
 * and the token takes the top_k scores; with num_groups > 1 and topk_groups > 0 DeepSeek's
 * group-limited routing first keeps the topk_groups groups with the largest sum of their two best
 * scores. ln p[layer] ~ Normal(0, sigma_layer), sigma_layer uniform in [sigma_min, sigma_max];
 * a token keeps the previous token's topic with probability topic_persistence (topics have Zipf
 * weights); after each batch ln p <- drift_rho * ln p + sqrt(1 - drift_rho^2) * sigma * N(0, 1).
 * Deterministic for a seed on every platform. One thread at a time per simulator. */
struct eplb_workload;
typedef struct eplb_workload eplb_workload;

typedef struct eplb_workload_options {
  uint32_t struct_size;     /* sizeof(eplb_workload_options) */
  uint32_t num_layers;      /* >= 1; default 1 */
  uint32_t num_experts;     /* logical experts per layer, >= top_k; default 256 */
  uint32_t top_k;           /* experts per token, >= 1; default 8 */
  uint32_t num_groups;      /* expert groups (DeepSeek-V3: 8); default 1 */
  uint32_t topk_groups;     /* groups a token may use (DeepSeek-V3: 4); 0 = all; default 0 */
  uint32_t num_topics;      /* latent topics; 0 = none; default 32 */
  uint32_t topic_experts;   /* experts boosted per topic and layer; 0 = 2 * top_k; default 0 */
  double sigma_min;         /* ln-popularity sigma range; default 0.5 */
  double sigma_max;         /* default 0.9 */
  double topic_zipf;        /* topic z has weight 1 / (z + 1)^topic_zipf; default 1.0 */
  double boost;             /* log-score boost of a topic's experts; default 1.0 */
  double topic_persistence; /* P(a token keeps the previous token's topic); default 0.8 */
  double drift_rho;         /* per-batch correlation of ln popularity, [0, 1]; default 1 */
  double noise_scale;       /* scale of the Gumbel noise, >= 0; default 1.0 */
  uint64_t seed;            /* default 0 */
} eplb_workload_options;

/* Sets struct_size and the defaults. NULL is a no-op. */
EPLB_API void eplb_workload_options_init(eplb_workload_options* options);

/* Creates a simulator. EPLB_ERR_INVALID_ARGUMENT: a NULL pointer, bad struct_size, or a bad field
 * (the message names it and its value). EPLB_ERR_OUT_OF_MEMORY. */
EPLB_API eplb_status eplb_workload_create(const eplb_workload_options* options,
                                          eplb_workload** out_workload);

/* Releases a simulator. NULL is a no-op. */
EPLB_API void eplb_workload_destroy(eplb_workload* workload);

/* Generates the next batch of `num_tokens` tokens into `out`, int32
 * [num_layers][num_tokens][top_k] logical ids (distinct within a row, never -1), e.g. the input of
 * eplb_tracker_record per layer. Drifts the popularity afterwards.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer or num_tokens == 0. EPLB_ERR_BUFFER_TOO_SMALL: out_len
 * below num_layers * num_tokens * top_k (nothing is generated). EPLB_ERR_OUT_OF_MEMORY. */
EPLB_API eplb_status eplb_workload_next_batch(eplb_workload* workload, size_t num_tokens,
                                              int32_t* out, size_t out_len);

/* The tracker's options (caller sets out_options->struct_size, e.g. with
 * eplb_tracker_options_init). Fields a window does not use read back as stored: window_batches
 * 0 unless sliding, decay 1.0 unless decay, for a tracker loaded from a snapshot.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer or a bad struct_size. */
EPLB_API eplb_status eplb_tracker_get_options(const eplb_tracker* tracker,
                                              eplb_tracker_options* out_options);

/* How much one layer has recorded since creation or reset: *out_batches the batches (record
 * calls; after a merge, the larger of the two), *out_tokens the tokens with at least one valid
 * slot that its reservoir saw (0 when reservoir_capacity is 0). Either output may be NULL.
 * EPLB_ERR_INVALID_ARGUMENT: tracker NULL, layer >= num_layers. */
EPLB_API eplb_status eplb_tracker_get_layer_counts(const eplb_tracker* tracker, uint32_t layer,
                                                   uint64_t* out_batches, uint64_t* out_tokens);

/* ============================================================================================ */
/* Section: metrics — how balanced a placement is under a load matrix                           */
/* ============================================================================================ */

/* The load model: a logical expert's load is split evenly over its replicas, and a GPU's load is
 * the sum over its slots of load / replicas. All sums are in double precision. A layer whose
 * total load is zero counts as perfectly balanced (1.0) and has bound 0. */

/* Metrics of one layer. */
typedef struct eplb_layer_metrics {
  uint32_t struct_size;         /* in: sizeof(eplb_layer_metrics) */
  uint32_t duplicate_gpus;      /* GPUs holding two or more replicas of one expert */
  uint32_t max_replicas;        /* most replicas of one expert */
  uint32_t cross_node_replicas; /* replicas not on their expert's main node (the node holding
                                   most of its replicas, lowest index on ties) */
  double total_load;            /* sum of the layer's loads */
  double mean_gpu_load;         /* total_load / num_gpus */
  double max_gpu_load;          /* busiest GPU */
  double lower_bound;           /* no placement with this R and topology has a lower max GPU load:
                                   max(mean, min over replica counts of the max load per replica,
                                   with each expert spread over at most num_gpus GPUs) */
  double balancedness;          /* mean_gpu_load / max_gpu_load, in (0, 1] */
  double node_balancedness;     /* mean node load / max node load */
  double max_load_over_bound;   /* max_gpu_load / lower_bound, >= 1 (1 when the bound is 0) */
  double node_bound;            /* busiest node's load / GPUs per node: no packing of this
                                   placement's node contents onto GPUs does better */
} eplb_layer_metrics;

/* Metrics over the layers that carry load. A layer whose loads are all zero (a dense model's
 * leading layers, a layer nothing was routed to) has nothing to balance or send, so it is left out
 * of every field but num_layers and loaded_layers; when no layer has load, every layer counts.
 * (0.1.0 averaged over all layers, counting an idle layer as perfectly balanced.) */
typedef struct eplb_metrics {
  uint32_t struct_size; /* in: sizeof(eplb_metrics) */
  uint32_t num_layers;
  uint32_t max_replicas;    /* most replicas of one expert in a layer counted */
  uint32_t loaded_layers;   /* layers with a nonzero total load (0.1.1; 0 in 0.1.0) */
  uint64_t duplicate_pairs; /* (layer, GPU) pairs holding two replicas of one expert */
  /* Means, worst and sums below are over the layers counted (those with load; all without). */
  double balancedness;              /* mean of the layer balancedness */
  double min_balancedness;          /* worst layer */
  double node_balancedness;         /* mean */
  double max_load_over_bound;       /* mean of max_gpu_load / lower_bound */
  double worst_max_load_over_bound; /* largest */
  double max_over_mean;             /* mean of max_gpu_load / mean_gpu_load */
  double max_load_over_node_bound;  /* mean of max_gpu_load / node_bound (1 when the bound is 0):
                                       how close GPUs are to the node ceiling */
  uint64_t cross_node_replicas;     /* sum of eplb_layer_metrics.cross_node_replicas */
} eplb_metrics;

/* Computes the metrics of `placement` under `loads`, double [num_layers][num_logical_experts]
 * with the placement's shape (the load it was planned on, or any other). The caller sets
 * out_metrics->struct_size. Thread-safe for concurrent calls on one placement.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer, bad struct_size, loads_len mismatch, a negative,
 * NaN or infinite load, or a layer whose loads add up to more than 1e150 (the planners' limit;
 * beyond it GPU loads and their squares need not be finite). */
EPLB_API eplb_status eplb_metrics_compute(const eplb_placement* placement, const double* loads,
                                          size_t loads_len, eplb_metrics* out_metrics);

/* Computes the metrics of one layer; `layer_loads` holds that layer's num_logical_experts loads.
 * EPLB_ERR_INVALID_ARGUMENT: as eplb_metrics_compute, or layer >= num_layers. */
EPLB_API eplb_status eplb_metrics_compute_layer(const eplb_placement* placement, uint32_t layer,
                                                const double* layer_loads, size_t layer_loads_len,
                                                eplb_layer_metrics* out_metrics);

/* Writes the per-GPU loads, double [num_layers][num_gpus], of `placement` under `loads`.
 * EPLB_ERR_INVALID_ARGUMENT as eplb_metrics_compute; EPLB_ERR_BUFFER_TOO_SMALL if out_len <
 * num_layers * num_gpus. */
EPLB_API eplb_status eplb_metrics_gpu_loads(const eplb_placement* placement, const double* loads,
                                            size_t loads_len, double* out, size_t out_len);

/* The exact smallest possible busiest-GPU load for one layer's loads on `placement`'s topology
 * (any replica counts, any placement without two replicas of one expert on a GPU), when the
 * instance is small enough to solve exactly: one slot per GPU, or two slots per GPU with at most
 * 16 slots per layer. Writes -1 to *out_optimum when it is not. Compare with
 * eplb_layer_metrics.max_gpu_load to see how far a plan is from optimal. Costs up to a few
 * milliseconds per layer. Thread-safe.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer, layer_loads_len != num_logical_experts, a
 * negative, NaN or infinite load, or loads that add up to more than 1e150. */
EPLB_API eplb_status eplb_metrics_exact_optimum(const eplb_placement* placement,
                                                const double* layer_loads, size_t layer_loads_len,
                                                double* out_optimum);

/* A lower bound on the busiest GPU's load that any plan of one layer's loads on `placement`'s
 * topology can reach under the balanced-relaxed rules: whole expert groups per node, every
 * expert with at least one replica on its group's node, and at most `cross_node_budget`
 * replicas off their group's node (a budget above R - E counts as R - E: every expert holds a
 * slot on its home node). Minimised over every assignment of groups to nodes (when there are at
 * most 20000), and never below the global bound (eplb_layer_metrics.lower_bound). A relaxation:
 * slot limits per node and GPU granularity are ignored, so it can be optimistic.
 * Where it is above the global bound, no relaxed plan with that budget can reach the global
 * policy's balance: mean GPU load / this bound caps the layer's balancedness. Topologies without
 * locality (one node, or num_groups % num_nodes != 0) get the global bound. Thread-safe.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer, layer_loads_len != num_logical_experts, a
 * negative, NaN or infinite load, or loads that add up to more than 1e150. */
EPLB_API eplb_status eplb_metrics_relaxed_bound(const eplb_placement* placement,
                                                const double* layer_loads, size_t layer_loads_len,
                                                uint32_t cross_node_budget, double* out_bound);

/* Nodes touched per token, the cross-node traffic of a dispatch that sends a token once per
 * destination node: for each row of `rows` (int32 [num_rows][top_k] logical ids of `layer`, -1
 * masked, e.g. eplb_tracker_get_samples' output), the number of distinct nodes its experts are
 * served from when each expert's replica is chosen by this rule: experts with replicas on a
 * single node fix that node; then an expert with a replica on an already chosen node uses it;
 * otherwise the node holding replicas of the most still-uncovered experts is chosen (lowest node
 * index on ties), and the previous step repeats. Repeated ids count once; rows with no valid id
 * are left out. Writes the mean over the counted rows (0 if none) to *out_mean; its lower bound
 * is 1. Thread-safe for concurrent calls on one placement.
 * EPLB_ERR_INVALID_ARGUMENT: placement or out_mean NULL, rows NULL with num_rows > 0, top_k == 0,
 * layer >= num_layers, an id outside [-1, num_logical_experts) (the message names row, slot and
 * value). EPLB_ERR_OUT_OF_MEMORY: num_rows * top_k overflows size_t. */
EPLB_API eplb_status eplb_metrics_nodes_touched(const eplb_placement* placement, uint32_t layer,
                                                const int32_t* rows, size_t num_rows,
                                                uint32_t top_k, double* out_mean);

/* ============================================================================================ */
/* Section: migration — moving expert weights from one placement to the next                    */
/* ============================================================================================ */

/* A migration plan turns an old placement and a new plan into a schedule of weight transfers.
 * The new plan is first relabeled without changing any of its metrics (whole nodes trade places,
 * GPUs within a node trade places, slots within a GPU trade places) so that as many experts as
 * possible are already on their GPU; the node and GPU permutations are optimal (assignment
 * problems), and an expert already on its GPU keeps its slot. The remaining slot changes are
 * ordered so that after every step each expert keeps at least one replica (the placement after
 * any step can be served; eplb_migration_get_step_placement returns it) and cut into steps under
 * optional budgets. Each transfer copies one expert's weights from a slot of the placement in
 * force before its step: a source on the same GPU first, then the same node, then another node,
 * the sender with the fewest transfers in the step first. An executor runs a step as: copy
 * same-GPU sources and receive remote ones into staging, send from the current weights, wait,
 * then commit staging into the destination slots (all reads before any write, so a step may
 * swap experts between GPUs). A plan is immutable; `const` calls may run concurrently. */
struct eplb_migration;
typedef struct eplb_migration eplb_migration;

/* How the new plan may be relabeled (eplb_migration_options.relabel). */
typedef enum {
  /* Permute nodes, GPUs within a node and slots within a GPU (default). Node balance, GPU
   * balance, duplicates and off-node replica counts are unchanged. */
  EPLB_MIGRATION_RELABEL_NODES_AND_GPUS = 0,
  /* Permute GPUs within their node and slots within a GPU; nodes keep their experts. */
  EPLB_MIGRATION_RELABEL_GPUS_IN_NODE = 1,
  /* Only slots within a GPU: keep what stays on its GPU (vLLM's rule). */
  EPLB_MIGRATION_RELABEL_NONE = 2,
  /* NODES_AND_GPUS, then, when loads are given, exchanges of replicas between GPUs of one node
   * that keep more experts on their GPU. Not a pure relabeling: GPU loads change, but each node
   * keeps its replicas (node loads, replica counts and off-node replicas are unchanged), no GPU
   * goes above the layer's busiest GPU under the given loads (balancedness never drops) and no
   * GPU gets two replicas of one expert. Without loads it is NODES_AND_GPUS. */
  EPLB_MIGRATION_RELABEL_REPACK_IN_NODE = 3
} eplb_migration_relabel;

/* Where a transfer's source is relative to its destination. */
typedef enum {
  EPLB_TRANSFER_SAME_GPU = 0,
  EPLB_TRANSFER_INTRA_NODE = 1,
  EPLB_TRANSFER_CROSS_NODE = 2
} eplb_transfer_kind;

typedef struct eplb_migration_options {
  uint32_t struct_size;         /* sizeof(eplb_migration_options) */
  uint32_t relabel;             /* eplb_migration_relabel; default NODES_AND_GPUS */
  uint64_t bytes_per_expert;    /* bytes of one expert's weights, > 0; default 1 (counts experts) */
  uint64_t max_bytes_per_step;  /* 0 (default): no limit. A step holds at least one expert (or
                                 * one cycle), even when that alone exceeds it: a step that swaps
                                 * experts along a cycle (each the only replica) moves the whole
                                 * cycle at once */
  uint64_t max_total_bytes;     /* 0 (default): migrate completely. Otherwise a budget for the
                                 * whole schedule, all layers together (moved_bytes never exceeds
                                 * it): changes are taken in order (layer by layer; with loads,
                                 * most balancedness gain per byte first) and a layer whose next
                                 * change would exceed what is left takes no more; the schedule
                                 * then ends at a partial placement (summary.complete = 0). With
                                 * loads, a greedy rebalance of the old placement within the
                                 * budget (moves onto other GPUs' slots; same node only for
                                 * hierarchical plans) competes: the one with more predicted
                                 * gain is scheduled, so the target may not be on the way to
                                 * the new plan */
  uint32_t max_layers_per_step; /* 0 (default): no limit; else at most this many layers a step */
  uint32_t reserved0;           /* 0 */
  double min_gain;              /* worth-it gate (with loads): apply when something moves, the
                                 * predicted balancedness gain is > 0 and at least this;
                                 * default 0.005. Without loads: when something moves */
  double min_gain_per_gib;      /* ... and at least this gain per GiB moved; default 0 */
} eplb_migration_options;

/* Writes the defaults into *options (struct_size included). NULL is a no-op. Thread-safe. */
EPLB_API void eplb_migration_options_init(eplb_migration_options* options);

/* Plans the migration from `old_placement` (what the GPUs hold now) to `new_placement` (a new
 * plan). `loads` (double [num_layers][num_logical_experts], may be NULL with loads_len 0) is the
 * measured load: with it, the schedule moves the most useful changes first and the summary
 * predicts balancedness; without it, layers go in order and the gate only checks that something
 * moves. `options` may be NULL for the defaults. The plan copies what it needs: the caller keeps
 * ownership of every argument and may destroy them afterwards. On success *out_migration is a new
 * plan owned by the caller (eplb_migration_destroy). Thread-safe (reads its inputs only).
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer (loads NULL with loads_len > 0), placements of
 * different shape (layers, experts, slots, GPUs, nodes; the message names the field),
 * loads_len != num_layers * num_logical_experts, a negative or non-finite load, a layer whose
 * loads add up to more than 1e150, a bad option
 * (relabel > 3, bytes_per_expert 0 or so large that num_layers x num_physical_experts x
 * bytes_per_expert overflows 64 bits, reserved0 != 0, non-finite min_gain, negative
 * min_gain_per_gib) or struct_size. EPLB_ERR_OUT_OF_MEMORY: allocation failure. */
EPLB_API eplb_status eplb_migration_plan(const eplb_placement* old_placement,
                                         const eplb_placement* new_placement, const double* loads,
                                         size_t loads_len, const eplb_migration_options* options,
                                         eplb_migration** out_migration);

/* Releases a plan. NULL is a no-op. Not concurrently with other calls on the same handle. */
EPLB_API void eplb_migration_destroy(eplb_migration* migration);

/* What a plan moves and predicts. Experts count transfers; bytes are experts * bytes_per_expert. */
typedef struct eplb_migration_summary {
  uint32_t struct_size;         /* in: sizeof(eplb_migration_summary) */
  uint32_t num_steps;           /* steps of the schedule (0 if nothing moves) */
  uint32_t complete;            /* 1 if the schedule reaches the relabeled new plan */
  uint32_t worth_it;            /* 1 if the gate says apply (see eplb_migration_options) */
  uint32_t has_loads;           /* 1 if loads were given (balancedness fields are set) */
  uint32_t max_staging_experts; /* most experts one GPU stages in one step: size the
                                 * executor's staging buffer to this * bytes_per_expert */
  uint64_t moved_experts;       /* transfers of the schedule */
  uint64_t same_gpu_experts;    /* of which copied within a GPU */
  uint64_t intra_node_experts;  /* ... from another GPU of the same node */
  uint64_t cross_node_experts;  /* ... from another node */
  uint64_t moved_bytes;         /* and the same in bytes */
  uint64_t same_gpu_bytes;
  uint64_t intra_node_bytes;
  uint64_t cross_node_bytes;
  uint64_t max_step_bytes;         /* the largest step, all GPUs together */
  uint64_t full_migration_experts; /* transfers to reach the relabeled new plan */
  uint64_t same_gpu_rule_experts;  /* transfers without relabeling (vLLM's rule) */
  uint64_t naive_experts;          /* a full reload: num_layers * num_physical_experts */
  double old_balancedness;         /* eplb_metrics.balancedness under `loads` (0 without) */
  double target_balancedness;      /* of where the schedule ends */
  double new_balancedness;         /* of the new plan */
  double gain;                     /* target_balancedness - old_balancedness */
} eplb_migration_summary;

/* Fills *out_summary; the caller sets out_summary->struct_size first. Thread-safe.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer or a struct_size below the first version's. */
EPLB_API eplb_status eplb_migration_get_summary(const eplb_migration* migration,
                                                eplb_migration_summary* out_summary);

/* One transfer: copy `expert`'s weights of `layer` from slot src_slot (as it is before the step)
 * into slot dst_slot. Slots are global (GPU = slot / slots_per_gpu). Plain data: this layout
 * never changes (a new layout would come with new functions). */
typedef struct eplb_migration_transfer {
  uint32_t step;
  uint32_t layer;
  uint32_t expert;
  uint32_t src_slot;
  uint32_t dst_slot;
  uint32_t src_gpu;
  uint32_t dst_gpu;
  uint32_t kind; /* eplb_transfer_kind */
} eplb_migration_transfer;

/* Selects every step in eplb_migration_get_transfers. */
#define EPLB_MIGRATION_ALL_STEPS 0xFFFFFFFFu /* UINT32_MAX, spelled for binding generators */

/* Copies the transfers of `step` (or of every step with EPLB_MIGRATION_ALL_STEPS), ordered by
 * step, layer, destination slot, into `out` (capacity out_len) and writes their number to
 * *out_count. Size query: out NULL with out_len 0 writes only *out_count. Thread-safe.
 * EPLB_ERR_INVALID_ARGUMENT: migration or out_count NULL, out NULL with out_len > 0, step out
 * of range. EPLB_ERR_BUFFER_TOO_SMALL: out_len below the count (given in the message and
 * *out_count). */
EPLB_API eplb_status eplb_migration_get_transfers(const eplb_migration* migration, uint32_t step,
                                                  eplb_migration_transfer* out, size_t out_len,
                                                  size_t* out_count);

/* As eplb_migration_get_transfers into a new array owned by the caller (eplb_buffer_free; never
 * NULL on success, even for zero transfers). Thread-safe.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer or step out of range. */
EPLB_API eplb_status eplb_migration_copy_transfers(const eplb_migration* migration, uint32_t step,
                                                   eplb_migration_transfer** out_transfers,
                                                   size_t* out_count);

/* Copies the relabeling: uint32 [num_layers][num_gpus], the GPU each GPU of the new plan moved to.
 * With EPLB_MIGRATION_RELABEL_REPACK_IN_NODE this is the relabeling before the repack's
 * exchanges of replicas between GPUs of a node, so target GPU map[g] holds new GPU g's experts
 * up to those exchanges (eplb_migration_get_target gives the exact result). Thread-safe.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer. EPLB_ERR_BUFFER_TOO_SMALL: out_len below num_layers *
 * num_gpus. */
EPLB_API eplb_status eplb_migration_get_gpu_map(const eplb_migration* migration, uint32_t* out,
                                                size_t out_len);

/* The placement to serve once the schedule is done: the relabeled new plan (same metrics as the
 * new plan, replica ranks kept), or the partial placement when a total budget cut the schedule.
 * After the migration this, not the new plan given to eplb_migration_plan, describes the weights
 * on the GPUs: serve it, record physical ids with it, and save it as the placement the next start
 * loads (its phy2log differs from the new plan's wherever the relabeling moved something).
 * *out_placement is a new handle owned by the caller (eplb_placement_destroy). Thread-safe.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer. */
EPLB_API eplb_status eplb_migration_get_target(const eplb_migration* migration,
                                               eplb_placement** out_placement);

/* The placement in force after step `step` (0-based) has been committed; every expert has a
 * replica in it. Replica order is ascending slot, except after the last step of a complete
 * schedule, which gives the target. New handle owned by the caller. Thread-safe.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer or step >= num_steps. */
EPLB_API eplb_status eplb_migration_get_step_placement(const eplb_migration* migration,
                                                       uint32_t step,
                                                       eplb_placement** out_placement);

/* ============================================================================================ */
/* Section: per-batch balancing — replica split and shared-expert waterfill (CPU)               */
/* ============================================================================================ */

/* Scratch for eplb_split_solve: after the first solve of a given shape, a solve allocates
 * nothing. One thread at a time per workspace; separate workspaces run concurrently. */
struct eplb_split_workspace;
typedef struct eplb_split_workspace eplb_split_workspace;

/* Creates a workspace owned by the caller (eplb_split_workspace_destroy).
 * EPLB_ERR_INVALID_ARGUMENT: out_workspace is NULL. EPLB_ERR_OUT_OF_MEMORY. */
EPLB_API eplb_status eplb_split_workspace_create(eplb_split_workspace** out_workspace);

/* Releases a workspace. NULL is a no-op. */
EPLB_API void eplb_split_workspace_destroy(eplb_split_workspace* workspace);

/* Splits this batch's tokens of each logical expert of `layer` over its replicas so that the
 * busiest GPU's load is minimal (exact, in integers). `counts` int32 [num_logical_experts]:
 * tokens per expert in this batch, >= 0. GPU g's load is w[g] * (extra[g] + tokens sent to g),
 * where `gpu_weights` (NULL: all 1; finite > 0, e.g. 2 for a GPU twice as slow) and
 * `gpu_extra_load` (NULL: all 0; finite >= 0 tokens, e.g. shared-expert work) have gpu_len ==
 * num_gpus entries (gpu_len may be 0 when both are NULL). Writes `out_quotas` int32
 * [num_physical_experts]: the tokens each slot of the layer takes, integral, >= 0, summing over
 * an expert's replicas exactly to its count (a single-replica expert's slot takes its whole
 * count; when no expert has two replicas this is all the work). *out_max_load (may be NULL)
 * gets the busiest GPU's weighted load. `workspace` may be NULL (a temporary one is used).
 * Concurrent calls need distinct workspaces; the placement is only read.
 * EPLB_ERR_INVALID_ARGUMENT: placement, counts or out_quotas NULL; layer >= num_layers;
 * counts_len != num_logical_experts; out_quotas_len != num_physical_experts; a negative count;
 * gpu_len != num_gpus with a non-NULL per-GPU array; a bad weight or extra load (the message
 * names the index and value). EPLB_ERR_OUT_OF_MEMORY. Outputs are written only on success. */
EPLB_API eplb_status eplb_split_solve(eplb_split_workspace* workspace,
                                      const eplb_placement* placement, uint32_t layer,
                                      const int32_t* counts, size_t counts_len,
                                      const double* gpu_weights, const double* gpu_extra_load,
                                      size_t gpu_len, int32_t* out_quotas, size_t out_quotas_len,
                                      double* out_max_load);

/* eplb_split_solve with a per-node term, for when this batch's tokens are known by the node they
 * come from. `counts_by_node` int32 [num_logical_experts][num_nodes] (counts_len == their
 * product): tokens of each expert from each node, >= 0. Two goals, in order, both exact: the
 * busiest GPU's weighted load stays within (1 + slack) x the optimum of eplb_split_solve on the
 * summed counts (`slack` finite >= 0; 0 gives up no balance), and under that bound as few tokens
 * as possible are served on a node other than their own (a min-cost flow, one unit of cost per
 * cross-node token). Writes `out_quotas` int32 [num_physical_experts][num_nodes]: the tokens from
 * node n that slot r takes; over an expert's replicas they sum to its count from each node (each
 * node's ranks then split their node's share, e.g. with the mapping kernel's quota mode).
 * *out_max_load and *out_cross_node_tokens (each may be NULL) get the busiest GPU's weighted load
 * and the tokens served off their node (single-replica experts' included). `workspace`,
 * `gpu_weights`, `gpu_extra_load` and `gpu_len` as in eplb_split_solve.
 * EPLB_ERR_INVALID_ARGUMENT: placement, counts_by_node or out_quotas NULL; layer >= num_layers;
 * counts_len != num_logical_experts x num_nodes; out_quotas_len != num_physical_experts x
 * num_nodes; a negative count; an expert whose counts over the nodes add up to more than
 * INT32_MAX (the balance is solved on the sums, as eplb_split_solve's int32 counts); a negative,
 * NaN or infinite slack; a bad per-GPU term (the message names it). EPLB_ERR_OUT_OF_MEMORY.
 * Outputs are written only on success. */
EPLB_API eplb_status eplb_split_solve_by_node(
    eplb_split_workspace* workspace, const eplb_placement* placement, uint32_t layer,
    const int32_t* counts_by_node, size_t counts_len, const double* gpu_weights,
    const double* gpu_extra_load, size_t gpu_len, double slack, int32_t* out_quotas,
    size_t out_quotas_len, double* out_max_load, int64_t* out_cross_node_tokens);

/* One rank's share of a batch-wide split, for when every rank maps only its own tokens (the
 * mapping kernel's EPLB_MAP_QUOTA ranks an expert's entries within the tokens it is given).
 * `quotas` int32 [num_physical_experts]: the batch-wide split of `layer` (eplb_split_solve's
 * out_quotas on the counts summed over ranks); `rank_counts` int32
 * [num_ranks][num_logical_experts]: each rank's entries per expert in this batch (e.g. all-gathered
 * recorder counts). Taking the batch's entries of each expert in rank order, rank g owns ranks
 * [O_g, O_g + c_g) (O_g: the entries of lower ranks) and replica r (log2phy order) takes [Q_r, Q_r
 * + q_r); writes `out_quotas` [num_physical_experts]: the size of each intersection for rank
 * `rank`. Fed to every rank's quota mode, these make each slot take exactly its batch-wide quota.
 * Thread-safe. EPLB_ERR_INVALID_ARGUMENT: a NULL pointer; layer >= num_layers; quotas_len or
 * out_quotas_len != num_physical_experts; rank_counts_len != num_ranks x num_logical_experts;
 * num_ranks 0; rank >= num_ranks; a negative count or quota; an expert whose quotas do not sum to
 * its entries over the ranks (the message names it). Outputs are written only on success. */
EPLB_API eplb_status eplb_split_rank_quotas(const eplb_placement* placement, uint32_t layer,
                                            const int32_t* quotas, size_t quotas_len,
                                            const int32_t* rank_counts, size_t rank_counts_len,
                                            uint32_t num_ranks, uint32_t rank, int32_t* out_quotas,
                                            size_t out_quotas_len);

/* eplb_shared_expert_waterfill flag: every GPU is a candidate (adds traffic). */
#define EPLB_WATERFILL_ANY_GPU 1u

/* Gives each token's shared-expert work to one GPU, deterministically. `topk_slots` int32
 * [num_tokens][top_k]: the physical slots each token is dispatched to (-1 = unused entry).
 * Candidates: the GPUs of the token's slots plus its source GPU (`source_gpu` int32 [num_tokens],
 * NULL if unknown), or every GPU with EPLB_WATERFILL_ANY_GPU. Tokens with fewer candidates choose
 * first (then in token order); each takes the candidate with the smallest weighted load after
 * taking it, ties to its source GPU, then the lowest GPU id. `gpu_loads` double [gpu_len ==
 * num_gpus], in/out: the work each GPU already has (NULL: one per valid (token, slot) entry of
 * topk_slots on the slot's GPU, so a token with two slots on one GPU counts twice), plus the
 * shared tokens assigned. `gpu_weights` as in eplb_split_solve (NULL: all 1). Writes `out_topk`
 * int32 [num_tokens][top_k + 1]: each input row followed by the shared expert's slot
 * num_physical_experts + g of the chosen GPU g, or -1 for a token without any valid entry
 * (padding); eplb_kernel_dispatch_layout and eplb_token_exchange_dispatch send a token to GPU g
 * for that slot. The slots of the placement's layer do not matter, only its topology.
 * Thread-safe.
 * EPLB_ERR_INVALID_ARGUMENT: placement, topk_slots (with num_tokens > 0) or out_topk NULL;
 * top_k == 0; an unknown flag; out_topk_len != num_tokens * (top_k + 1); gpu_len != num_gpus
 * with a non-NULL per-GPU array; a slot outside [-1, num_physical_experts), a source GPU, load or
 * weight out of range (the message names the index and value). EPLB_ERR_OUT_OF_MEMORY.
 * Outputs are written only on success. */
EPLB_API eplb_status eplb_shared_expert_waterfill(const eplb_placement* placement,
                                                  const int32_t* topk_slots, size_t num_tokens,
                                                  uint32_t top_k, const int32_t* source_gpu,
                                                  const double* gpu_weights, double* gpu_loads,
                                                  size_t gpu_len, uint32_t flags, int32_t* out_topk,
                                                  size_t out_topk_len);

/* ============================================================================================ */
/* Section: GPU device and kernels — conventions                                                */
/* ============================================================================================ */

/* The CUDA kernels run on every MoE layer of every serving step. Every kernel entry point
 * (eplb_kernel_*) follows these rules, in addition to the conventions at the top:
 * - Device arrays are typed pointers documented as device memory (cudaMalloc'd, managed, or
 *   mapped pinned host memory); the CUDA stream is a `void*` (NULL = the legacy default stream).
 *   This header includes no CUDA header.
 * - A kernel allocates nothing and never synchronises with the host: scratch space comes from a
 *   caller-provided device workspace whose size eplb_kernel_*_workspace_size reports. So every
 *   kernel can be captured in a CUDA graph; work is only enqueued on the stream, and the status
 *   says whether the launch was accepted (errors during execution surface on later CUDA calls).
 * - Each kernel has a CPU reference, eplb_kernel_*_cpu, with the same parameters and semantics
 *   on host memory (the stream is ignored; the workspace is host memory of the same size). It
 *   needs no GPU, and integer outputs are bit-exact between the two; results are deterministic
 *   run to run.
 * - With no usable GPU (built without CUDA, no driver, no device) the GPU entry points return
 *   EPLB_ERR_NO_DEVICE and the CPU references keep working. Before launching, the GPU entry
 *   points check their arguments like every other function, including that the pointers are
 *   device memory (EPLB_ERR_INVALID_ARGUMENT naming the pointer otherwise). */

/* Number of CUDA devices visible to this process, > 0. Thread-safe.
 * EPLB_ERR_NO_DEVICE: built without CUDA, no NVIDIA driver, or no GPU (the message says which).
 * EPLB_ERR_INVALID_ARGUMENT: out_count is NULL. */
EPLB_API eplb_status eplb_device_count(int32_t* out_count);

/* ============================================================================================ */
/* Section: NCCL — communicator, statistics all-reduce, migration executor                      */
/* ============================================================================================ */

/* libeplb loads NCCL at run time: dlopen of $EPLB_NCCL_LIBRARY when that is set and not empty,
 * else of "libnccl.so.2" (the dynamic loader's search; a libnccl.so.2 already loaded in the
 * process, e.g. by PyTorch, is the one used). libeplb.so has no link-time dependency on NCCL and
 * loads without it. Every function of this section, except those taking only host-checkable
 * bad arguments, first loads NCCL (once per path; a path that failed is tried again on the next
 * call, so the variable may be set or fixed at any time before the first successful load):
 * - EPLB_ERR_NO_NCCL: the library cannot be loaded or lacks a needed symbol (the message names
 *   the path and dlerror's reason), it is older than NCCL 2.7, or this libeplb was built
 *   without NCCL support (EPLB_WITH_NCCL or EPLB_WITH_CUDA off at build time: then always this
 *   status).
 * - EPLB_ERR_NO_DEVICE: no NVIDIA driver or GPU (functions that need a device).
 * - EPLB_ERR_NCCL: an NCCL call failed, or the communicator has an asynchronous error (a peer
 *   died, a network error); the message names the call and NCCL's error string.
 * - EPLB_ERR_DEVICE: a CUDA call failed.
 * Arguments a host can check (NULL pointers, sizes, ranges) are checked before NCCL is loaded,
 * so those errors are EPLB_ERR_INVALID_ARGUMENT on every machine.
 *
 * Threading follows NCCL: calls on one eplb_comm must be serialised by the caller; the
 * collective functions (create, the all-reduces, the executor) must be called by every rank of
 * the group in the same order. Streams are `void*` (cudaStream_t; NULL = the legacy default
 * stream) and device buffers are device memory of the communicator's GPU, which must be the
 * calling thread's current device (memory of another device is EPLB_ERR_INVALID_ARGUMENT). */
struct eplb_comm;
typedef struct eplb_comm eplb_comm;

/* Bytes of an NCCL unique id (NCCL_UNIQUE_ID_BYTES). */
#define EPLB_COMM_UNIQUE_ID_BYTES 128

/* Element types of eplb_comm_allreduce. Stored in a `uint32_t`; values are stable. */
typedef enum {
  EPLB_COMM_INT32 = 0,
  EPLB_COMM_INT64 = 1,
  EPLB_COMM_UINT64 = 2,
  EPLB_COMM_FLOAT32 = 3,
  EPLB_COMM_FLOAT64 = 4
} eplb_comm_dtype;

/* Reductions of eplb_comm_allreduce. Stored in a `uint32_t`; values are stable. */
typedef enum { EPLB_COMM_SUM = 0, EPLB_COMM_MAX = 1, EPLB_COMM_MIN = 2 } eplb_comm_op;

/* The version code of the NCCL loaded (ncclGetVersion: 22805 for 2.28.5; NCCL's own encoding).
 * Thread-safe. EPLB_ERR_INVALID_ARGUMENT: out_version NULL. EPLB_ERR_NO_NCCL. */
EPLB_API eplb_status eplb_nccl_version(int32_t* out_version);

/* Makes a new NCCL unique id (ncclGetUniqueId) and writes its EPLB_COMM_UNIQUE_ID_BYTES bytes to
 * `out_id` (capacity out_len). These bytes are the serialised id: one rank makes it and sends
 * them to every other rank by any means (they are plain bytes), and every rank passes them to
 * eplb_comm_create. Needs no GPU in recent NCCL versions (it opens a bootstrap socket).
 * Thread-safe. EPLB_ERR_INVALID_ARGUMENT: out_id NULL. EPLB_ERR_BUFFER_TOO_SMALL: out_len below
 * EPLB_COMM_UNIQUE_ID_BYTES. EPLB_ERR_NO_NCCL, EPLB_ERR_NCCL (e.g. no network interface). */
EPLB_API eplb_status eplb_comm_get_unique_id(void* out_id, size_t out_len);

/* Creates the communicator of rank `rank` in a group of `nranks` (ncclCommInitRank) from the
 * unique id's bytes (unique_id_len must be EPLB_COMM_UNIQUE_ID_BYTES), on CUDA device `device`
 * (-1: the calling thread's current device; the thread's current device is left as it was).
 * Collective: blocks until every rank has called it (also with NCCL_COMM_BLOCKING=0: it polls
 * until the communicator is initialised). In the migration executor, rank r is GPU r of the
 * placements. On success *out_comm is owned by the caller (eplb_comm_destroy).
 * EPLB_ERR_INVALID_ARGUMENT: unique_id or out_comm NULL, unique_id_len wrong, nranks <= 0, rank
 * outside [0, nranks), device < -1 or not below the device count. EPLB_ERR_NO_NCCL.
 * EPLB_ERR_NO_DEVICE: no driver or GPU. EPLB_ERR_NCCL: ncclCommInitRank failed. */
EPLB_API eplb_status eplb_comm_create(const void* unique_id, size_t unique_id_len, int32_t nranks,
                                      int32_t rank, int32_t device, eplb_comm** out_comm);

/* Wraps the caller's existing communicator `nccl_comm` (an ncclComm_t) without taking it over:
 * eplb_comm_destroy does not destroy it, and it must outlive the eplb_comm. It must come from the
 * same libnccl that libeplb loads (see above: normally the libnccl.so.2 already in the process).
 * Its device is the one NCCL reports for it (ncclCommCuDevice), whatever the calling thread's
 * current device. A non-blocking communicator (ncclConfig_t blocking = 0) works once it has
 * finished initialising (ncclCommGetAsyncError no longer ncclInProgress): where NCCL answers
 * ncclInProgress (ncclAllReduce,
 * ncclSend, ncclRecv, ncclGroupEnd), libeplb polls ncclCommGetAsyncError until the operation is
 * enqueued before it returns or enqueues more work, so stream order holds. *out_comm is owned by
 * the caller (eplb_comm_destroy). EPLB_ERR_INVALID_ARGUMENT: a NULL pointer. EPLB_ERR_NO_NCCL,
 * EPLB_ERR_NO_DEVICE, EPLB_ERR_NCCL (querying its rank, size and device failed). */
EPLB_API eplb_status eplb_comm_adopt(void* nccl_comm, eplb_comm** out_comm);

/* Releases a communicator and its staging buffer. One made by eplb_comm_create is destroyed
 * (ncclCommDestroy, which waits for its outstanding work; ncclCommAbort when NCCL reports an
 * asynchronous error, so a dead peer cannot hang it); an adopted one is left to its owner. NULL
 * is a no-op. Not concurrently with other calls on the same communicator. */
EPLB_API void eplb_comm_destroy(eplb_comm* comm);

/* This process's rank / the number of ranks. Thread-safe.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer. */
EPLB_API eplb_status eplb_comm_get_rank(const eplb_comm* comm, int32_t* out_rank);
EPLB_API eplb_status eplb_comm_get_size(const eplb_comm* comm, int32_t* out_size);

/* Sums the load and co-activation statistics of every rank's `local` tracker into `out_sum` on
 * every rank, so that all ranks plan from the same numbers: out_sum's statistics become those of
 * one tracker that recorded every rank's batches (as eplb_tracker_merge of all of them: sliding
 * windows aligned by age, decayed weights at their current value; batch counts are the maximum
 * over ranks). out_sum's sampled rows stay as they were (samples are not summed). `out_sum` may
 * be `local` (in place); keep recording into a separate tracker if you all-reduce repeatedly, or
 * each all-reduce counts the earlier sums again. Every rank's trackers must have the same options
 * apart from the seed (checked across ranks first). Synchronous and not for the hot path: the
 * counters (num_layers * (E + E*(E-1)/2) values, plus the window for sliding windows) go through
 * a device staging buffer the communicator allocates on first use, on a stream of its own, and
 * the call returns when the sums are in out_sum. It waits by polling the stream and
 * ncclCommGetAsyncError (yielding the thread in between), not in cudaStreamSynchronize, so a
 * peer that dies mid-call gives EPLB_ERR_NCCL instead of a hang: a communicator made by
 * eplb_comm_create is then aborted (ncclCommAbort; later calls on it fail with EPLB_ERR_NCCL,
 * destroy it); an adopted one is left to its owner, who must abort it. Collective.
 * EPLB_ERR_INVALID_ARGUMENT: local, out_sum or comm NULL; out_sum's options differ from local's;
 * the trackers of the ranks differ (every rank gets this status); a summed sliding-window batch
 * count above 2^32-1. EPLB_ERR_NO_DEVICE, EPLB_ERR_DEVICE, EPLB_ERR_NCCL, EPLB_ERR_OUT_OF_MEMORY.
 * On failure out_sum is unchanged. */
EPLB_API eplb_status eplb_comm_allreduce_tracker(eplb_comm* comm, const eplb_tracker* local,
                                                 eplb_tracker* out_sum);

/* In-place all-reduce (ncclAllReduce) of `count` elements of type `dtype` (eplb_comm_dtype) in
 * device memory `data`, with reduction `op` (eplb_comm_op), on `stream`: e.g. the int64 expert
 * counts of a GPU recorder, summed over ranks before folding them into a tracker. Asynchronous:
 * enqueued on the stream, not waited for; the buffer must not change until the stream reaches it.
 * count 0 is a no-op. Collective. EPLB_ERR_INVALID_ARGUMENT: comm NULL, data NULL with count > 0,
 * an unknown dtype or op, data not device memory, the calling thread's current device not the
 * communicator's. EPLB_ERR_NO_DEVICE, EPLB_ERR_NCCL. */
EPLB_API eplb_status eplb_comm_allreduce(eplb_comm* comm, void* data, size_t count, uint32_t dtype,
                                         uint32_t op, void* stream);

/* Runs this rank's part of step `step` of a migration over NCCL, on `stream`, and returns once it
 * is enqueued (asynchronous). The communicator's rank r is GPU r of the migration's placements
 * (its size must be num_gpus). The caller describes its weights: an expert is `num_tensors`
 * tensors (e.g. w13, w2, their scales) of tensor_bytes[t] bytes each, the same for every expert,
 * and `slot_tensors` (void* [num_layers][slots_per_gpu][num_tensors], slot_tensors_len entries)
 * gives the device address of tensor t of this rank's local slot s of layer l (global slot
 * rank * slots_per_gpu + s). Only the entries of slots the step reads or writes are used (and
 * must be device memory); the others may be NULL. `staging` is device memory of staging_bytes,
 * at least summary.max_staging_experts * sum(tensor_bytes) (a staged expert is its tensors back
 * to back); it may be NULL with staging_bytes 0 when this rank stages nothing in the step (no
 * receives and no same-GPU moves: both pass through staging).
 * The step is enqueued as: cudaMemcpyAsync of same-GPU sources into staging; one
 * ncclGroupStart/ncclGroupEnd holding an ncclSend per tensor of every expert this rank sends
 * (from the weights as they are before the step) and an ncclRecv per tensor of every expert it
 * receives (into staging); then cudaMemcpyAsync from staging into the destination slots. This is
 * the op sequence the library's CPU tests run over an in-process multi-rank transport.
 * Collective: every rank must call it for the same step, in step order. Layer-chunked serving:
 * cut the schedule with options.max_layers_per_step / max_bytes_per_step and run one step
 * between forward passes; work enqueued on `stream` after this call sees the new weights, and
 * the placement in force after the step is eplb_migration_get_step_placement(step) (switch the
 * dispatch tables at that point of the stream). Kernels on other streams that read the slots of
 * the step must be ordered with `stream` by the caller (events).
 * EPLB_ERR_INVALID_ARGUMENT: migration, comm, tensor_bytes or slot_tensors NULL; step out of
 * range; num_tensors 0 or a tensor_bytes entry 0; slot_tensors_len wrong; staging NULL with
 * staging_bytes > 0; staging too small for the step; a used address NULL or not device memory
 * (the message names the tensor, layer and slot); the communicator's size differs from num_gpus;
 * the calling thread's current device is not the communicator's.
 * EPLB_ERR_NO_DEVICE, EPLB_ERR_DEVICE, EPLB_ERR_NCCL. Nothing is enqueued when an argument is
 * bad. */
EPLB_API eplb_status eplb_migration_execute_step(const eplb_migration* migration, eplb_comm* comm,
                                                 uint32_t step, void* const* slot_tensors,
                                                 size_t slot_tensors_len,
                                                 const uint64_t* tensor_bytes, uint32_t num_tensors,
                                                 void* staging, uint64_t staging_bytes,
                                                 void* stream);

/* ============================================================================================ */
/* Section: GPU kernels — dispatch layout, expert sort, permute / unpermute                      */
/* ============================================================================================ */

/* These work on PHYSICAL expert ids (after the logical → physical mapping) with the topology
 * given as scalars: physical expert p lives on rank p / (num_physical_experts / num_ranks), and
 * rank r on node r / (num_ranks / num_nodes). An id outside [0, num_physical_experts) — -1 for a
 * masked slot, or any invalid value — is ignored (it is not an error: a kernel cannot report one
 * without a host synchronisation), except that eplb_kernel_dispatch_layout and the token
 * exchange read num_physical_experts + r (r < num_ranks) as the shared expert's slot on rank r,
 * as eplb_shared_expert_waterfill appends it. Each GPU function has a CPU reference `_cpu` with
 * the same parameters on host memory (stream ignored) and the same validation, so a bad argument
 * returns the same status with and without a GPU. The GPU functions check, in this order:
 * host-checkable arguments (EPLB_ERR_INVALID_ARGUMENT naming the value), a usable device
 * (EPLB_ERR_NO_DEVICE), that every array is device memory of the calling thread's current device
 * (EPLB_ERR_INVALID_ARGUMENT naming it, and both devices for memory of another device); then they
 * enqueue their kernels (EPLB_ERR_DEVICE if a launch is refused). They allocate
 * nothing, never synchronise with the host, use no memset, and can be captured in a CUDA graph.
 * Integer outputs are bit-exact between GPU and CPU and deterministic. An array whose length is
 * 0 may be NULL. Every array must be aligned to its element type (int64 and double 8 bytes,
 * int32 and float 4; token rows 16): a misaligned one is EPLB_ERR_INVALID_ARGUMENT naming it,
 * where a kernel would fault. This applies to every GPU function of this header (kernels, split
 * solver, waterfill, token exchange) and to their CPU references. Limits: num_tokens * top_k and
 * num_tokens * num_ranks below 2^31, num_physical_experts <= 8192, num_ranks <= 1024 (per-block
 * tables in shared memory). Threading: the functions keep no state; concurrent calls on distinct
 * outputs are fine. */

/* Element type of token rows for permute / unpermute. Passed as `uint32_t`; values are stable. */
typedef enum {
  EPLB_ROW_DTYPE_FLOAT32 = 0,
  EPLB_ROW_DTYPE_FLOAT16 = 1, /* IEEE binary16 */
  EPLB_ROW_DTYPE_BFLOAT16 = 2
} eplb_row_dtype;

/* Bytes of device workspace eplb_kernel_dispatch_layout needs for these sizes (0 when
 * num_tokens is 0): 4 * ceil(num_tokens / 128) * (num_physical_experts + 5 * num_ranks +
 * num_nodes). The CPU reference asks for the same size (and does not touch it).
 * EPLB_ERR_INVALID_ARGUMENT: out_bytes NULL, top_k 0, a topology the layout rejects (see
 * eplb_kernel_dispatch_layout), or a size over the limits. */
EPLB_API eplb_status eplb_kernel_dispatch_layout_workspace_size(size_t num_tokens, size_t top_k,
                                                                uint32_t num_physical_experts,
                                                                uint32_t num_ranks,
                                                                uint32_t num_nodes,
                                                                size_t* out_bytes);

/* Dispatch layout of one batch (DeepEP's get_dispatch_layout plus per-node counts and send
 * offsets). topk_ids: int32 [num_tokens][top_k] physical ids; an id num_physical_experts + r
 * (r < num_ranks) is the shared expert's slot on rank r, as eplb_shared_expert_waterfill appends
 * it (pass its rows with top_k + 1): it sends the token to rank r like any slot there and is no
 * physical expert's entry; -1 and other ids are left out. Outputs (device memory, overwritten
 * entirely):
 * - tokens_per_expert [num_physical_experts]: (token, slot) entries per physical expert;
 * - tokens_per_rank [num_ranks]: tokens with at least one entry on the rank (a token counts once
 *   per rank) — the rows a rank receives;
 * - tokens_per_node [num_nodes]: tokens with at least one entry on the node (counted once per
 *   node); summed over the nodes other than the sender's it is the cross-node traffic in tokens;
 * - is_token_in_rank uint8 [num_tokens][num_ranks]: 1 if the token sends to the rank, else 0;
 * - send_offsets int32 [num_tokens][num_ranks] (optional, NULL to skip): the token's row in a
 *   rank-major packed send buffer — rank r's rows start at tokens_per_rank[0] + ... +
 *   tokens_per_rank[r - 1] and hold its tokens in increasing token order — or -1 where
 *   is_token_in_rank is 0.
 * workspace: device memory of at least eplb_kernel_dispatch_layout_workspace_size bytes, 4-byte
 * aligned (used as int32 arrays); no initialisation needed, its content is scratch.
 * stream: a cudaStream_t (NULL = legacy default).
 * Three kernels (count, reduce, rows); counts are order-independent, offsets follow token order.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL array (other than send_offsets), top_k 0,
 * num_physical_experts not in [1, 8192], num_ranks not in [1, 1024] or not dividing
 * num_physical_experts, num_nodes 0 or not dividing num_ranks, a size over the limits,
 * workspace_size too small, a workspace that is not 4-byte aligned, or an array that is not
 * device memory. EPLB_ERR_NO_DEVICE, EPLB_ERR_DEVICE. */
EPLB_API eplb_status eplb_kernel_dispatch_layout(
    const int32_t* topk_ids, size_t num_tokens, size_t top_k, uint32_t num_physical_experts,
    uint32_t num_ranks, uint32_t num_nodes, int32_t* tokens_per_expert, int32_t* tokens_per_rank,
    int32_t* tokens_per_node, uint8_t* is_token_in_rank, int32_t* send_offsets, void* workspace,
    size_t workspace_size, void* stream);

/* CPU reference of eplb_kernel_dispatch_layout: same parameters and results on host memory
 * (workspace: host memory of the reported size, or NULL when that size is 0; stream ignored).
 * EPLB_ERR_INVALID_ARGUMENT as the GPU function except the device-memory checks. */
EPLB_API eplb_status eplb_kernel_dispatch_layout_cpu(
    const int32_t* topk_ids, size_t num_tokens, size_t top_k, uint32_t num_physical_experts,
    uint32_t num_ranks, uint32_t num_nodes, int32_t* tokens_per_expert, int32_t* tokens_per_rank,
    int32_t* tokens_per_node, uint8_t* is_token_in_rank, int32_t* send_offsets, void* workspace,
    size_t workspace_size, void* stream);

/* The worst-case padded length of eplb_kernel_expert_sort for these sizes, the minimum
 * `capacity`: with n = num_tokens * top_k, round_up(n + min(n, num_experts) * (block_size - 1),
 * block_size). A graph captured with this capacity serves every routing of the batch.
 * EPLB_ERR_INVALID_ARGUMENT: out_capacity NULL, top_k 0, num_experts not in [1, 8192],
 * block_size not in [1, 65536], or a result of 2^31 or more. */
EPLB_API eplb_status eplb_kernel_expert_sort_capacity(size_t num_tokens, size_t top_k,
                                                      uint32_t num_experts, uint32_t block_size,
                                                      size_t* out_capacity);

/* Bytes of device workspace eplb_kernel_expert_sort needs: 4 * (ceil(num_tokens * top_k / 1024)
 * + 1) * num_experts. EPLB_ERR_INVALID_ARGUMENT: out_bytes NULL, top_k 0, num_experts not in
 * [1, 8192], or num_tokens * top_k of 2^31 or more. */
EPLB_API eplb_status eplb_kernel_expert_sort_workspace_size(size_t num_tokens, size_t top_k,
                                                            uint32_t num_experts,
                                                            size_t* out_bytes);

/* Stable sort of the (token, slot) pairs by physical expert, each expert's segment padded to a
 * multiple of block_size (what moe_align_block_size computes, but deterministic: within an
 * expert, pairs are in (token, slot) order). Pair (t, k) is the flat index i = t * top_k + k.
 * Outputs (device memory, overwritten entirely):
 * - sorted_ids int32 [capacity]: the flat indices grouped by expert (experts in increasing
 *   order), each segment followed by padding up to a multiple of block_size; padding entries and
 *   every entry from *total_padded on hold num_tokens * top_k (so `id < num_tokens * top_k`
 *   tells a real pair, as with moe_align_block_size);
 * - block_experts int32 [capacity / block_size]: the expert of each block of block_size
 *   entries, -1 for blocks from *total_padded on;
 * - expert_offsets int32 [num_experts + 1]: start of each expert's padded segment; the last
 *   entry is the total;
 * - inverse int32 [num_tokens][top_k]: the position of each pair in sorted_ids (its row in the
 *   permuted buffer), -1 for a masked or invalid id;
 * - total_padded int32 [1]: the padded length actually used, <= capacity.
 * capacity: at least eplb_kernel_expert_sort_capacity(...) and a multiple of block_size.
 * workspace: at least eplb_kernel_expert_sort_workspace_size bytes, 4-byte aligned (used as int32
 * arrays), no initialisation needed.
 * Three kernels (count, prefix, scatter). Ids outside [0, num_experts) are left out (on a rank
 * of a token exchange, pass num_experts = slots_per_rank + 1 so that the shared expert's local
 * slot slots_per_rank gets its own segment).
 * EPLB_ERR_INVALID_ARGUMENT: a NULL array, top_k 0, num_experts not in [1, 8192], block_size
 * not in [1, 65536], capacity too small or not a multiple of block_size, workspace_size too
 * small, a workspace that is not 4-byte aligned, a size over the limits, or an array that is not
 * device memory.
 * EPLB_ERR_NO_DEVICE, EPLB_ERR_DEVICE. */
EPLB_API eplb_status eplb_kernel_expert_sort(const int32_t* topk_ids, size_t num_tokens,
                                             size_t top_k, uint32_t num_experts,
                                             uint32_t block_size, size_t capacity,
                                             int32_t* sorted_ids, int32_t* block_experts,
                                             int32_t* expert_offsets, int32_t* inverse,
                                             int32_t* total_padded, void* workspace,
                                             size_t workspace_size, void* stream);

/* CPU reference of eplb_kernel_expert_sort (host memory, stream ignored; bit-exact). */
EPLB_API eplb_status eplb_kernel_expert_sort_cpu(const int32_t* topk_ids, size_t num_tokens,
                                                 size_t top_k, uint32_t num_experts,
                                                 uint32_t block_size, size_t capacity,
                                                 int32_t* sorted_ids, int32_t* block_experts,
                                                 int32_t* expert_offsets, int32_t* inverse,
                                                 int32_t* total_padded, void* workspace,
                                                 size_t workspace_size, void* stream);

/* Permute: copies token t's row of `input` [num_tokens][hidden] to row inverse[t][k] of
 * `output` [output_rows][hidden] for every slot k with 0 <= inverse[t][k] < output_rows (others
 * are skipped), i.e. gathers tokens into the expert-contiguous order of eplb_kernel_expert_sort
 * (output_rows = its capacity). Two slots must not map to one row (expert_sort's inverse never
 * does); if they do, the CPU keeps the last slot's row and the GPU an unspecified one. Rows no
 * pair maps to — the padding and everything from *total_padded on — are NOT written (they keep
 * whatever the buffer held; a grouped GEMM's results for them are never read by
 * eplb_kernel_unpermute). dtype: an eplb_row_dtype; the copy is bit-exact, so the dtype only sets
 * the row size. hidden: a positive multiple of 8, at most 2^24; input and output 16-byte aligned
 * (rows move as 16-byte vectors). Each token row is read once.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL array, unknown dtype, hidden 0, above 2^24 or not a multiple
 * of 8, top_k 0, a misaligned pointer, sizes over the limits, or an array that is not device
 * memory. EPLB_ERR_NO_DEVICE, EPLB_ERR_DEVICE. */
EPLB_API eplb_status eplb_kernel_permute(const void* input, uint32_t dtype, size_t num_tokens,
                                         size_t top_k, size_t hidden, const int32_t* inverse,
                                         size_t output_rows, void* output, void* stream);

/* CPU reference of eplb_kernel_permute (host memory, stream ignored; bit-exact). */
EPLB_API eplb_status eplb_kernel_permute_cpu(const void* input, uint32_t dtype, size_t num_tokens,
                                             size_t top_k, size_t hidden, const int32_t* inverse,
                                             size_t output_rows, void* output, void* stream);

/* Unpermute with the weighted top-k sum: output[t] = sum over k = 0 .. top_k - 1, in that order,
 * of weights[t][k] * permuted[inverse[t][k]], skipping slots with inverse outside
 * [0, permuted_rows). Accumulates in float32 starting from -0 (the additive identity, so a single
 * slot with weight 1 reproduces its row bit for bit), each term as one rounded multiply then one
 * rounded add (no fused multiply-add), and rounds once to dtype (round to nearest even), so GPU
 * and CPU results are bit-exact except for NaN payloads: where a term or the sum is NaN, the NaN's
 * payload (and sign) may differ between GPU and CPU, for float32 output too (IEEE arithmetic
 * leaves the payload of a NaN result to the hardware). A token with no valid slot gets +0.
 * permuted [permuted_rows][hidden], weights float32 [num_tokens][top_k], output
 * [num_tokens][hidden]; hidden a positive multiple of 8, at most 2^24; permuted and output
 * 16-byte aligned.
 * EPLB_ERR_INVALID_ARGUMENT, EPLB_ERR_NO_DEVICE, EPLB_ERR_DEVICE as eplb_kernel_permute. */
EPLB_API eplb_status eplb_kernel_unpermute(const void* permuted, uint32_t dtype, size_t num_tokens,
                                           size_t top_k, size_t hidden, const int32_t* inverse,
                                           const float* weights, size_t permuted_rows, void* output,
                                           void* stream);

/* CPU reference of eplb_kernel_unpermute (host memory, stream ignored; bit-exact). */
EPLB_API eplb_status eplb_kernel_unpermute_cpu(const void* permuted, uint32_t dtype,
                                               size_t num_tokens, size_t top_k, size_t hidden,
                                               const int32_t* inverse, const float* weights,
                                               size_t permuted_rows, void* output, void* stream);

/* ============================================================================================ */
/* Section: GPU kernels — device tables, load recorder, replica mapping, co-activation          */
/* ============================================================================================ */

/* The per-layer routing kernels of a serving step: the router's top-k LOGICAL expert ids go in,
 * physical slot ids come out (one launch, which also records the load), and a co-activation
 * counter feeds the tracker. They follow the conventions of "GPU device and kernels" above. The
 * GPU functions check, in this order: host-checkable arguments (EPLB_ERR_INVALID_ARGUMENT naming
 * the value), a usable device (EPLB_ERR_NO_DEVICE), that every array is device memory of the
 * calling thread's current device (EPLB_ERR_INVALID_ARGUMENT naming it, and both devices for
 * memory of another device); then they enqueue one kernel (EPLB_ERR_DEVICE if the launch is
 * refused). None needs a workspace. Each has a CPU reference `_cpu` with the same
 * parameters on host memory (stream ignored) and the same validation, without the device checks.
 * Ids: `topk_ids` is int32 or int64 [num_tokens][top_k] (id_type); an id outside [0, E) — -1 for
 * a masked slot, or any other value — is ignored (it is not an error: a kernel cannot report one
 * without a host synchronisation). Limits: 1 <= top_k <= 1024, num_tokens * top_k < 2^31.
 * Counts are int64 and are ADDED to (never reset): zero them with cudaMemsetAsync when a
 * recording window starts. The result of integer atomics does not depend on their order, so
 * every output is deterministic and bit-exact between GPU and CPU.
 * Enable flag: `enable_flag` is an int32 in device memory (host memory for `_cpu`) read by the
 * kernel, or NULL (= enabled); 0 turns recording off without touching the captured graph. Each
 * thread block reads the flag once; a flag changed while a kernel runs may take effect in some
 * of its blocks only.
 * Threading: calls with a const eplb_device_tables may run concurrently; outputs must differ. */

/* Element type of `topk_ids`. Passed as `uint32_t`; values are stable. */
typedef enum { EPLB_IDS_INT32 = 0, EPLB_IDS_INT64 = 1 } eplb_id_type;

/* A placement's lookup tables for one rank, in device memory (plus a host copy that the CPU
 * references read). Arrays, all for every layer: phy2log int32 [L][P]; replica counts int32
 * [L][E]; log2phy int32 [L][E][max_replicas] (log2phy order, -1 padded); the rank's static map
 * int32 [L][E] (below); node masks uint64 [L][E] (bit n: the expert has a replica on node n;
 * only with <= 64 nodes). Static map of expert e for rank g: its replica on GPU g if any (the
 * first in log2phy order), else the (g % m)-th of its m replicas on g's node, else the
 * (g % count)-th of all its replicas — each replica then serves floor or ceil of num_gpus /
 * count ranks. */
struct eplb_device_tables;
typedef struct eplb_device_tables eplb_device_tables;

/* eplb_device_tables_create flag: build the host copy only (no GPU needed; the GPU kernels then
 * refuse the tables, the CPU references accept them). */
#define EPLB_DEVICE_TABLES_HOST_ONLY 1u

/* Builds the tables of `placement` for rank `gpu` (0 <= gpu < num_gpus) and, unless
 * EPLB_DEVICE_TABLES_HOST_ONLY, allocates one device buffer on the CUDA device current on the
 * calling thread, uploads them with cudaMemcpyAsync on `stream` and waits for that stream
 * (cudaStreamSynchronize: a setup call), so the tables are ready for kernels on any stream when
 * it returns; do not call it during graph capture.
 * `max_replicas` is the log2phy row capacity: 0 = the placement's log2phy width; pass the
 * largest width later placements may have so that eplb_device_tables_update can reuse the
 * buffer. No placement of the shape has more than num_physical_experts - num_logical_experts + 1
 * replicas of one expert, so that value always suffices (the tables then hold L x E x that many
 * int32). The placement is only read during the call. Owned by the caller.
 * EPLB_ERR_INVALID_ARGUMENT: placement or out_tables NULL, gpu >= num_gpus, an unknown flag,
 * max_replicas below the placement's width or above num_physical_experts.
 * EPLB_ERR_NO_DEVICE (device tables without a GPU). EPLB_ERR_DEVICE (allocation or copy failed).
 * EPLB_ERR_OUT_OF_MEMORY. */
EPLB_API eplb_status eplb_device_tables_create(const eplb_placement* placement, uint32_t gpu,
                                               uint32_t max_replicas, uint32_t flags, void* stream,
                                               eplb_device_tables** out_tables);

/* Rewrites the tables with a new placement of the same shape (layers, experts, slots, GPUs,
 * nodes) and a log2phy width within the capacity, in the SAME device buffer, enqueued on
 * `stream`: kernels enqueued before it on that stream read the old tables, later ones the new,
 * and CUDA graphs captured on the tables need no re-capture. Same rank. Not during graph capture;
 * not concurrently with other calls on `tables`. On failure the tables are unchanged.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer, another shape, a width above the capacity.
 * EPLB_ERR_DEVICE. EPLB_ERR_OUT_OF_MEMORY. */
EPLB_API eplb_status eplb_device_tables_update(eplb_device_tables* tables,
                                               const eplb_placement* placement, void* stream);

/* Releases the tables (cudaFree, which waits for the device's pending work). NULL is a no-op.
 * No kernel may still be reading them. */
EPLB_API void eplb_device_tables_destroy(eplb_device_tables* tables);

typedef struct eplb_device_tables_info {
  uint32_t struct_size;          /* in: sizeof(eplb_device_tables_info) */
  uint32_t num_layers;           /* L */
  uint32_t num_logical_experts;  /* E */
  uint32_t num_physical_experts; /* P: slots per layer */
  uint32_t max_replicas;         /* log2phy row capacity */
  uint32_t num_nodes;
  uint32_t num_gpus;
  uint32_t slots_per_gpu;
  uint32_t gpus_per_node;
  uint32_t gpu;          /* the rank the static map is for */
  uint32_t flags;        /* as created */
  int32_t device;        /* CUDA device holding the tables, -1 for host-only tables */
  uint64_t device_bytes; /* size of the device buffer (0 for host-only tables) */
} eplb_device_tables_info;

/* Fills `*out_info`; the caller sets out_info->struct_size first. Thread-safe.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer or a bad struct_size. */
EPLB_API eplb_status eplb_device_tables_get_info(const eplb_device_tables* tables,
                                                 eplb_device_tables_info* out_info);

/* Copies the rank's static map (host copy), int32 [num_layers][num_logical_experts].
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer. EPLB_ERR_BUFFER_TOO_SMALL: out_len < L * E. */
EPLB_API eplb_status eplb_device_tables_get_static_map(const eplb_device_tables* tables,
                                                       int32_t* out, size_t out_len);

/* Load recorder: adds, for each valid id of `topk_ids` (ids in [0, num_experts)), 1 to
 * counts[layer][id]; counts is int64 [num_layers][num_experts]. Nothing when *enable_flag is 0.
 * One kernel (per-block shared-memory histograms when num_experts <= 12288, then one global
 * atomic per non-zero bin).
 * EPLB_ERR_INVALID_ARGUMENT: counts NULL, topk_ids NULL with num_tokens > 0, an unknown id_type,
 * top_k outside [1, 1024], num_tokens * top_k >= 2^31, num_experts or num_layers 0, layer >=
 * num_layers. */
EPLB_API eplb_status eplb_kernel_record_load(const void* topk_ids, uint32_t id_type,
                                             size_t num_tokens, uint32_t top_k,
                                             uint32_t num_experts, uint32_t num_layers,
                                             uint32_t layer, const int32_t* enable_flag,
                                             int64_t* counts, void* stream);
/* CPU reference of eplb_kernel_record_load (host memory). */
EPLB_API eplb_status eplb_kernel_record_load_cpu(const void* topk_ids, uint32_t id_type,
                                                 size_t num_tokens, uint32_t top_k,
                                                 uint32_t num_experts, uint32_t num_layers,
                                                 uint32_t layer, const int32_t* enable_flag,
                                                 int64_t* counts, void* stream);

/* Replica choice of eplb_kernel_map_record. Passed as `uint32_t`; values are stable. "Entry
 * position" is token * top_k + slot. */
typedef enum {
  /* The tables' static map of the rank: zero per-batch cost, blind to the batch. */
  EPLB_MAP_STATIC = 0,
  /* Replica (position % count) in log2phy order (vLLM's rule). */
  EPLB_MAP_ROUND_ROBIN = 1,
  /* Replica floor(hi32(h) * count / 2^32) with h = m(m(m(seed ^ layer) ^ position) ^ expert),
   * m = SplitMix64's finaliser (x += 0x9E3779B97F4A7C15, then the two xor-shift-multiply steps
   * by 0xBF58476D1CE4E5B9 and 0x94D049BB133111EB, then x ^ (x >> 31)): seeded, stateless. */
  EPLB_MAP_HASH = 2,
  /* Fewest nodes per token, by the rule of eplb_metrics_nodes_touched (so that metric predicts
   * the dispatch exactly): experts whose replicas are all on one node fix that node; while some
   * expert has no replica on a chosen node, choose the node holding replicas of the most such
   * distinct experts (lowest index on ties). Each expert then uses the node that covered it: a
   * fixed node if it has a replica on one (the rank's own node if possible, else the lowest),
   * else the first chosen node holding one. Within that node: the replica on the rank's GPU if
   * the node is the rank's and the GPU holds one, else the (position % m)-th of the expert's m
   * replicas on the node (log2phy order). Needs num_nodes <= 64. */
  EPLB_MAP_NODE_AWARE = 3,
  /* Exact per-batch shares: `quotas` int32 [num_physical_experts] of this layer (device memory)
   * gives the tokens each slot takes in this batch — e.g. eplb_split_solve's out_quotas. The
   * valid entries of expert e, in entry-position order, are ranked 0, 1, ...; replica r (log2phy
   * order) takes the ranks [Q_r, Q_r + quota_r), Q being the prefix sums of its replicas' quotas
   * (a negative quota counts as 0). Ranks beyond the expert's total go round-robin (rank %
   * count), so quotas that undercount are still safe. Needs num_logical_experts <= 1024. */
  EPLB_MAP_QUOTA = 4
} eplb_map_mode;

/* Maps this batch's logical ids of `layer` to physical slots and records the load, in ONE
 * kernel: out_physical int32 [num_tokens][top_k] gets the slot of every valid entry and -1 for
 * every masked or out-of-range one; unless counts is NULL or *enable_flag is 0, each mapped entry
 * adds 1 to counts[layer][slot], counts int64 [num_layers][num_physical_experts] (fold them with
 * eplb_kernel_fold_counts). `seed` is used by EPLB_MAP_HASH only, `quotas` by EPLB_MAP_QUOTA
 * only (else it may be NULL). out_physical is written whether or not recording is on. The tables
 * must be device tables (not host-only) on the calling thread's current device. Kernel shapes:
 * one thread per entry (per token for node-aware); quota mode uses blocks of 1024 entries, each
 * reading every earlier entry of the batch itself (no inter-block waiting), so its total work
 * grows quadratically with the entries per batch: about n^2 / 2048 id reads for n = num_tokens *
 * top_k (e.g. 2^19 entries: 2^27 reads).
 * EPLB_ERR_INVALID_ARGUMENT: tables NULL or host-only, tables on another device than the current
 * one (the message names both), layer >= num_layers, an unknown mode,
 * node-aware with more than 64 nodes, quota with more than 1024 experts or quotas NULL,
 * topk_ids or out_physical NULL with num_tokens > 0, an unknown id_type, top_k outside
 * [1, 1024], num_tokens * top_k >= 2^31. */
EPLB_API eplb_status eplb_kernel_map_record(const eplb_device_tables* tables, uint32_t layer,
                                            uint32_t mode, uint64_t seed, const int32_t* quotas,
                                            const void* topk_ids, uint32_t id_type,
                                            size_t num_tokens, uint32_t top_k,
                                            const int32_t* enable_flag, int64_t* counts,
                                            int32_t* out_physical, void* stream);
/* CPU reference of eplb_kernel_map_record (host memory; any tables, host-only included). */
EPLB_API eplb_status eplb_kernel_map_record_cpu(const eplb_device_tables* tables, uint32_t layer,
                                                uint32_t mode, uint64_t seed, const int32_t* quotas,
                                                const void* topk_ids, uint32_t id_type,
                                                size_t num_tokens, uint32_t top_k,
                                                const int32_t* enable_flag, int64_t* counts,
                                                int32_t* out_physical, void* stream);

/* Folds physical counts to logical counts for every layer: logical_counts[l][e] (int64 [L][E],
 * overwritten) = the sum of physical_counts[l][s] (int64 [L][P]) over the slots s of e's
 * replicas — ready for a planner (as double) or an all-reduce across ranks. One kernel.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer, host-only tables, tables on another device than the
 * calling thread's current one (the message names both). */
EPLB_API eplb_status eplb_kernel_fold_counts(const eplb_device_tables* tables,
                                             const int64_t* physical_counts,
                                             int64_t* logical_counts, void* stream);
/* CPU reference of eplb_kernel_fold_counts (host memory; any tables). */
EPLB_API eplb_status eplb_kernel_fold_counts_cpu(const eplb_device_tables* tables,
                                                 const int64_t* physical_counts,
                                                 int64_t* logical_counts, void* stream);

/* Co-activation counter of `layer`: for each token, adds 1 to pair_counts[layer][pair(a, b)]
 * for every pair a < b of DISTINCT valid ids in its row (repeats and masked slots add nothing —
 * the tracker's rule), pair(a, b) = a*(2E-a-1)/2 + (b-a-1), the packed upper triangle of
 * eplb_tracker_get_coactivation; pair_counts int64 [num_layers][E*(E-1)/2], or NULL to sample
 * only. One kernel: the triangle is cut into slices of at most 12288 pairs, one block each;
 * each block reads every token and counts its own slice in shared memory, then adds it to
 * global memory without atomics (no block shares a pair), so skewed routing costs only
 * shared-memory contention. Because those adds are plain read-modify-writes, not atomics,
 * concurrent launches (e.g. on two streams) that add to the same pair_counts layer lose
 * updates: serialise them, or give each its own buffer and sum them afterwards.
 * Samples (optional): with sample_capacity > 0, out_samples int32 [sample_capacity][top_k] is
 * OVERWRITTEN: row i is the ids of token sample_offset + i * sample_stride (invalid ids as -1),
 * for i < rows = min(sample_capacity, ceil((num_tokens - sample_offset) / sample_stride)) (0
 * when sample_offset >= num_tokens), and all -1 after — full top-k rows for
 * eplb_tracker_record (vary sample_offset per step to cover all positions). Nothing is written
 * when *enable_flag is 0.
 * EPLB_ERR_INVALID_ARGUMENT: topk_ids NULL with num_tokens > 0, an unknown id_type, top_k
 * outside [1, 64], num_tokens * top_k >= 2^31, num_experts outside [1, 65535], num_layers 0,
 * layer >= num_layers, sample_capacity > 0 with out_samples NULL or sample_stride 0. */
EPLB_API eplb_status eplb_kernel_coactivation(const void* topk_ids, uint32_t id_type,
                                              size_t num_tokens, uint32_t top_k,
                                              uint32_t num_experts, uint32_t num_layers,
                                              uint32_t layer, const int32_t* enable_flag,
                                              int64_t* pair_counts, uint32_t sample_stride,
                                              uint32_t sample_offset, uint32_t sample_capacity,
                                              int32_t* out_samples, void* stream);
/* CPU reference of eplb_kernel_coactivation (host memory). */
EPLB_API eplb_status eplb_kernel_coactivation_cpu(const void* topk_ids, uint32_t id_type,
                                                  size_t num_tokens, uint32_t top_k,
                                                  uint32_t num_experts, uint32_t num_layers,
                                                  uint32_t layer, const int32_t* enable_flag,
                                                  int64_t* pair_counts, uint32_t sample_stride,
                                                  uint32_t sample_offset, uint32_t sample_capacity,
                                                  int32_t* out_samples, void* stream);

/* ============================================================================================ */
/* Section: GPU kernels — per-batch replica split and shared-expert waterfill                   */
/* ============================================================================================ */

/* The GPU versions of eplb_split_solve and eplb_shared_expert_waterfill (issue #9), following the
 * kernel conventions above: no allocation, no host synchronisation, graph-capturable,
 * deterministic, and a CPU reference (`_cpu`) that runs the very same algorithm, so integer
 * outputs are bit-identical between the two. The split solver is one launch of one block; the
 * waterfill is a memset and four launches over the tokens. */

/* Device-side description of a placement's layers for eplb_kernel_split_solve: which replicas
 * each expert has on which GPU, packed into one table per layer and uploaded once (rebuild it
 * after the placement changes). */
struct eplb_split_tables;
typedef struct eplb_split_tables eplb_split_tables;

/* eplb_split_tables_create flag: keep the tables on the host only (no GPU needed; only
 * eplb_kernel_split_solve_cpu can use them). */
#define EPLB_SPLIT_TABLES_HOST_ONLY 1u

/* Builds the tables of layers [first_layer, first_layer + num_layers) of `placement` (num_layers
 * 0: through the last layer) and, unless EPLB_SPLIT_TABLES_HOST_ONLY, copies them to the current
 * CUDA device on `stream` and synchronises it (a setup call: allocates device memory, not
 * capturable). The placement is only read and not kept. The caller owns the tables
 * (eplb_split_tables_destroy); they are immutable, so concurrent solves may share them.
 * EPLB_ERR_INVALID_ARGUMENT: placement or out_tables NULL, an unknown flag, first_layer >=
 * num_layers, the range past the last layer. EPLB_ERR_NO_DEVICE: no GPU (without HOST_ONLY).
 * EPLB_ERR_OUT_OF_MEMORY. EPLB_ERR_DEVICE: the allocation or the copy failed (CUDA's message). */
EPLB_API eplb_status eplb_split_tables_create(const eplb_placement* placement, uint32_t first_layer,
                                              uint32_t num_layers, uint32_t flags, void* stream,
                                              eplb_split_tables** out_tables);

/* Releases the tables (and their device copy: cudaFree, which waits for the device). NULL is a
 * no-op. No kernel using them may still be pending. */
EPLB_API void eplb_split_tables_destroy(eplb_split_tables* tables);

/* Workspace bytes eplb_kernel_split_solve(_cpu) needs for any layer of `tables` (the solver's
 * state, about 60 bytes per GPU and 20 per replica of a multi-replica expert; 8-byte aligned).
 * Thread-safe. EPLB_ERR_INVALID_ARGUMENT: a NULL pointer. */
EPLB_API eplb_status eplb_kernel_split_solve_workspace_size(const eplb_split_tables* tables,
                                                            size_t* out_bytes);

/* The exact per-batch replica split of `layer` (absolute index, inside the tables' range), on the
 * GPU: the same problem as eplb_split_solve, whose optimum it reaches — the busiest GPU's load
 * max_g w[g] * (extra[g] + tokens on g) is minimal over all integral splits. Device arrays:
 * `counts` int32 [num_logical_experts] (this batch's tokens per expert, e.g. from the recorder),
 * `gpu_weights` and `gpu_extra_load` double [num_gpus] or NULL (all 1 / all 0; finite > 0 and
 * finite >= 0), `out_quotas` int32 [num_physical_experts]: the tokens each slot of the layer
 * takes — integral, >= 0, summing over an expert's replicas to its count — exactly the `quota`
 * input of the mapping kernel; `out_max_load` double [1] or NULL: the optimal max load.
 * Which slot takes what: an expert whose replicas all sit on one GPU gives its whole count to its
 * lowest-numbered slot there; an expert on several GPUs uses its lowest-numbered slot on each of
 * its GPUs (other replicas on the same GPU get 0). The quotas are the solver's (below); they may
 * differ from eplb_split_solve's where several splits are optimal, the max load does not (equal bit
 * for bit with integral weights and extra loads; otherwise to the last rounding of extra + tokens).
 * Algorithm (kernels/split_solver.hpp), deterministic: only experts with replicas on >= 2 GPUs
 * and a count > 0 are solved; each first splits its tokens over its GPUs in proportion to their
 * room below the average level (a warm start); then a search over the exact candidate bottleneck
 * values w[g] * (extra[g] + fixed[g] + n) — halving while the bracket is wider than the smallest
 * weight, then one candidate at a time — with an incremental max-flow check (GPUs above their
 * capacity shed tokens, shortest augmenting paths in a fixed order reroute them; a failed check
 * restores the last feasible flow). When no expert has replicas on two GPUs, no search runs: the
 * kernel only copies counts to slots. Cost: one block of 256 threads; all threads compute the
 * GPUs' fixed loads and write the quotas, one warp runs the search on block-shared state (in the
 * workspace when it exceeds 48 KiB): per-GPU and per-edge steps spread over its lanes, each
 * augmenting path on one lane. On the DeepSeek-V3 shape (256 experts, 288 slots, 32 GPUs, 8192 x 8
 * tokens) a solve takes about 12 checks and 30 augmenting paths; not yet timed on a GPU
 * (bench/split_kernels_bench.cpp).
 * The kernel cannot reject device data: a negative count counts as 0, a weight that is NaN,
 * infinite or <= 0 counts as 1, and an extra load that is NaN, infinite or negative counts as 0
 * (the CPU reference rejects all of them), so bad data gives a wrong split, never a hang.
 * `workspace` device memory of at least eplb_kernel_split_solve_workspace_size bytes; concurrent
 * launches need distinct workspaces.
 * EPLB_ERR_INVALID_ARGUMENT: tables, counts or out_quotas NULL; host-only tables; layer outside
 * the tables; workspace_bytes too small or workspace NULL; an array (the tables' device copy
 * included) that is not device memory of the calling thread's current device.
 * EPLB_ERR_NO_DEVICE: no GPU. EPLB_ERR_DEVICE: the launch was refused. */
EPLB_API eplb_status eplb_kernel_split_solve(const eplb_split_tables* tables, uint32_t layer,
                                             const int32_t* counts, const double* gpu_weights,
                                             const double* gpu_extra_load, int32_t* out_quotas,
                                             double* out_max_load, void* workspace,
                                             size_t workspace_bytes, void* stream);
/* CPU reference of eplb_kernel_split_solve (host memory, any tables; stream ignored): the same
 * algorithm and outputs. Also EPLB_ERR_INVALID_ARGUMENT for a negative count, a weight that is not
 * finite > 0 or an extra load that is not finite >= 0 (naming the index and value), a workspace
 * that is not 8-byte aligned. Outputs are written only on success. */
EPLB_API eplb_status eplb_kernel_split_solve_cpu(const eplb_split_tables* tables, uint32_t layer,
                                                 const int32_t* counts, const double* gpu_weights,
                                                 const double* gpu_extra_load, int32_t* out_quotas,
                                                 double* out_max_load, void* workspace,
                                                 size_t workspace_bytes, void* stream);

/* Workspace bytes of eplb_kernel_shared_waterfill(_cpu) for num_tokens tokens on the placement's
 * GPUs: about 8 bytes per token plus 8 per GPU per 512 tokens. Thread-safe.
 * EPLB_ERR_INVALID_ARGUMENT: a NULL pointer, num_tokens >= 2^31. */
EPLB_API eplb_status eplb_kernel_shared_waterfill_workspace_size(const eplb_placement* placement,
                                                                 size_t num_tokens,
                                                                 size_t* out_bytes);

/* Gives each token's shared-expert work to one GPU among its candidates, on the GPU,
 * deterministically (no sampling, no host synchronisation). The placement
 * (host handle) only supplies the topology: num_physical_experts P, num_gpus G (at most 256),
 * slot s on GPU s / (P / G). Device arrays: `topk_slots` int32 [num_tokens][top_k] (physical
 * slots, -1 = unused; the kernel also ignores slots outside [0, P)), `source_gpu` int32
 * [num_tokens] or NULL, `gpu_weights` double [G] or NULL (all 1), `gpu_loads` double [G] or NULL
 * (the work each GPU already has; NULL: one per valid entry of topk_slots, as
 * eplb_shared_expert_waterfill counts it), `out_topk` int32
 * [num_tokens][top_k + 1]: each input row, then slot P + g of the chosen GPU g (as
 * eplb_shared_expert_waterfill), or -1 for a token without a valid slot; `out_gpu_loads` double
 * [G] or NULL: gpu_loads plus the shared tokens given to each GPU (may alias gpu_loads).
 * Candidates (EPLB_WATERFILL_ANY_GPU: all GPUs, ascending) are the distinct GPUs of the token's
 * valid slots in order of first appearance, then its source GPU if not among them.
 * The rule (waterfill_rule.hpp; differs from the sequential greedy of eplb_shared_expert_waterfill
 * but lands within a few percent of its max load, see bench/split_bench.cpp), with L[g] the loads,
 * w[g] the weights, taken[g] the shared tokens given so far (0 at first):
 *  1. the level H that the n tokens with a valid slot, poured over all GPUs, reach:
 *     w[g] * (L[g] + x[g]) = H for every GPU with x[g] > 0 (fractional; GPUs visited in ascending
 *     w * L, ties by id, adding 1 / w and L until H no longer reaches the next GPU); each GPU's
 *     capacity is rem[g] = max(0, ceil(H / w[g] - L[g])), at most n;
 *  2. two rounds; in a round every unplaced token t proposes to one candidate: with
 *     S the sum of rem over its candidates with rem > 0 (none: no proposal) and position
 *     p = floor(h(t) * S / 2^32), h(t) = (t + 1) * 2654435769 mod 2^32 (a golden-ratio sequence:
 *     consecutive tokens spread evenly), the candidate whose running sum of rem (in candidate
 *     order) first exceeds p. GPU g accepts its proposers in token order while fewer than rem[g]
 *     were accepted in the round; then rem[g] and taken[g] are updated;
 *  3. every token still unplaced takes the candidate with the smallest w[g] * (L[g] + taken[g] +
 *     1), ties to its source GPU, then the lowest id (loads as after step 2, not updated between
 *     these tokens).
 * Execution: a 4-byte memset and four kernels on `stream` (init: rows, loads, level; round 0;
 * round 1; fallback and loads), each over ceil(num_tokens / 512) blocks of 256 threads; ranks in
 * token order come from __match_any_sync within a warp, a scan over the block's warps, and a scan
 * over blocks done by the last block to finish (integer counters only). Not yet timed on a GPU
 * (bench/split_kernels_bench.cpp). `workspace`: device memory of at least
 * eplb_kernel_shared_waterfill_workspace_size(placement, num_tokens) bytes, 8-byte aligned, any
 * content (nothing to clear); concurrent launches need distinct workspaces. The CPU reference
 * checks the size but does not use it. While the kernels run, out_topk's last column holds
 * internal marks. The kernels cannot reject device data: a weight that is NaN, infinite or <= 0
 * counts as 1 and a gpu_loads entry that is NaN, infinite or negative counts as 0 (also in
 * out_gpu_loads); the CPU reference rejects both.
 * EPLB_ERR_INVALID_ARGUMENT: placement NULL; topk_slots or out_topk NULL with num_tokens > 0;
 * top_k 0 or above 1024; an unknown flag; num_tokens >= 2^31; num_gpus > 256; workspace NULL,
 * misaligned or workspace_bytes below the query; an array that is not device memory of the
 * calling thread's current device.
 * EPLB_ERR_OUT_OF_MEMORY: num_tokens * (top_k + 1) overflows.
 * EPLB_ERR_NO_DEVICE: no GPU. EPLB_ERR_DEVICE: the launch was refused. */
EPLB_API eplb_status eplb_kernel_shared_waterfill(
    const eplb_placement* placement, const int32_t* topk_slots, size_t num_tokens, uint32_t top_k,
    const int32_t* source_gpu, const double* gpu_weights, const double* gpu_loads, uint32_t flags,
    int32_t* out_topk, double* out_gpu_loads, void* workspace, size_t workspace_bytes,
    void* stream);
/* CPU reference of eplb_kernel_shared_waterfill (host memory; stream ignored): the same rule and
 * outputs. Also EPLB_ERR_INVALID_ARGUMENT for a slot outside [-1, P), a source GPU outside
 * [0, G), a weight that is not finite > 0 or a load that is not finite >= 0 (naming the index and
 * value). Outputs are written only on success. */
EPLB_API eplb_status eplb_kernel_shared_waterfill_cpu(
    const eplb_placement* placement, const int32_t* topk_slots, size_t num_tokens, uint32_t top_k,
    const int32_t* source_gpu, const double* gpu_weights, const double* gpu_loads, uint32_t flags,
    int32_t* out_topk, double* out_gpu_loads, void* workspace, size_t workspace_bytes,
    void* stream);

/* ============================================================================================ */
/* Section: NCCL — token dispatch and combine                                                   */
/* ============================================================================================ */

/* Expert parallelism without DeepEP: each token goes once to every rank that holds one of its
 * top-k physical slots (grouped ncclSend/ncclRecv), every rank runs its experts on what it
 * received, and the outputs go back and are summed per token. The rules of the NCCL section
 * hold (loading, statuses, threading, streams, current device); in addition:
 * - Slots are physical: slot s lives on rank s / slots_per_rank, as local slot
 *   s % slots_per_rank (e.g. the output of eplb_kernel_map_record); the shared expert's slot
 *   num_ranks * slots_per_rank + r (eplb_shared_expert_waterfill's) lives on rank r as local slot
 *   slots_per_rank. Entries of -1, and ids beyond those, are not dispatched.
 * - Exact variant (capacity 0): blocks travel with their exact sizes. A dispatch reads the count
 *   matrix on the host (a host synchronisation: not capturable in a CUDA graph), and if any rank's
 *   receive buffer is too small every rank's call fails alike with EPLB_ERR_BUFFER_TOO_SMALL
 *   (naming the rank), before any token moves.
 * - Padded variant (capacity > 0): every (source, destination) pair exchanges a slab of
 *   `capacity` rows, so message sizes are fixed, nothing waits on the host and a CUDA graph can
 *   capture dispatch and combine (with a fixed num_tokens; pad with -1 slots). Tokens beyond a
 *   pair's capacity are dropped (their outputs miss that rank's experts) and counted in
 *   `dropped`. Source s's tokens are receive rows [s * capacity, s * capacity + recv_counts[s]);
 *   the other rows of its slab have all local slots -1 and weights 0.
 * Collective: every rank of the communicator calls dispatch, then combine, in the same order.
 * An exchange's buffers are reused by each call: issue its calls on one stream (or order them
 * with events), and keep at most one dispatch/combine pair in flight per exchange. */
struct eplb_token_exchange;
typedef struct eplb_token_exchange eplb_token_exchange;

typedef struct eplb_token_exchange_options {
  uint32_t struct_size;    /* sizeof(eplb_token_exchange_options) */
  uint32_t slots_per_rank; /* physical expert slots per rank, 1..8191 (no default); num_ranks *
                              slots_per_rank <= 8192 */
  uint32_t top_k;          /* slots per token, >= 1 (no default) */
  uint32_t out_dtype;      /* eplb_row_dtype of expert outputs and combined rows; default
                              EPLB_ROW_DTYPE_FLOAT32 */
  uint64_t row_bytes;      /* bytes of a dispatched token row, a positive multiple of 16 (no
                              default; e.g. hidden * 2 for bf16 activations) */
  uint64_t hidden;         /* elements of an expert output row, a positive multiple of 8, at
                              most 2^24 (no default) */
  uint32_t max_tokens;     /* most tokens one dispatch sends from this rank, >= 1 (no default);
                              may differ between ranks */
  uint32_t capacity;       /* 0 (default): exact variant; > 0: padded variant, the most tokens
                              one rank sends another per dispatch */
} eplb_token_exchange_options;

/* Fills the defaults and struct_size; the fields without a default are 0 (invalid until set). */
EPLB_API void eplb_token_exchange_options_init(eplb_token_exchange_options* options);

/* Creates this rank's token exchange over `comm` and allocates its buffers on the communicator's
 * device (the calling thread's current device), once: the pack blocks, the returned partial
 * outputs (rows x hidden x out_dtype's size, rows = num_ranks * capacity when padded, else
 * max_tokens * min(num_ranks, top_k)), and the layout and count buffers, zeroed. Collective, and
 * every rank fails alike: if any rank's options, device or allocation fail, or the ranks' options
 * differ (max_tokens aside), every rank gets an error (that rank's own reason, or one naming the
 * differing field or saying another rank failed). `comm` must outlive the exchange. On success
 * *out_exchange is owned by the caller (eplb_token_exchange_destroy).
 * EPLB_ERR_INVALID_ARGUMENT: comm, options or out_exchange NULL; a bad options field (named);
 * struct_size wrong; the current device is not the communicator's. EPLB_ERR_OUT_OF_MEMORY: the
 * buffers do not fit. EPLB_ERR_NO_DEVICE, EPLB_ERR_DEVICE, EPLB_ERR_NCCL. */
EPLB_API eplb_status eplb_token_exchange_create(eplb_comm* comm,
                                                const eplb_token_exchange_options* options,
                                                eplb_token_exchange** out_exchange);

/* Frees the exchange's buffers. Call it when no dispatch or combine of it is still running on
 * a stream (e.g. after synchronising them). NULL is a no-op. */
EPLB_API void eplb_token_exchange_destroy(eplb_token_exchange* exchange);

/* Dispatches this rank's `num_tokens` tokens (<= max_tokens) on `stream`: topk_slots and
 * topk_weights (int32 / float [num_tokens][top_k]) and rows ([num_tokens][row_bytes], 16-byte
 * aligned), all device memory. Writes, in device memory, the tokens this rank receives, ordered
 * by source rank and then by the source's token order: recv_rows [recv_capacity][row_bytes]
 * (16-byte aligned), recv_local_slots [recv_capacity][top_k] (the local slot of each of the
 * token's slots that is on this rank, else -1; a shared-expert slot num_ranks * slots_per_rank +
 * r from eplb_shared_expert_waterfill arrives on rank r as local slot slots_per_rank),
 * recv_weights [recv_capacity][top_k] (the
 * weight, or 0 where the slot is -1), recv_counts [num_ranks] (tokens from each source) and, if
 * not NULL, dropped [1] (tokens over capacity, padded variant; 0 for exact). *out_recv_rows
 * (host) is the number of receive rows in use: the tokens received (exact) or num_ranks *
 * capacity (padded). The caller then computes, for each receive row i, the weighted sum over j of
 * recv_weights[i][j] * expert[recv_local_slots[i][j]](recv_rows[i]) (e.g. eplb_kernel_expert_sort
 * and eplb_kernel_permute on recv_local_slots) and passes it to eplb_token_exchange_combine.
 * Exact variant: returns after a host synchronisation with the receives enqueued; padded:
 * returns once everything is enqueued. recv_capacity must be at least num_ranks * capacity
 * (padded) or the tokens this rank receives (exact: at most the sum of every rank's
 * max_tokens).
 * EPLB_ERR_INVALID_ARGUMENT: exchange or out_recv_rows NULL; num_tokens above max_tokens; an
 * array NULL, misaligned, or not device memory of the current device (named); recv_capacity
 * below num_ranks * capacity (padded); the current device is not the communicator's.
 * EPLB_ERR_BUFFER_TOO_SMALL: exact variant, some rank's recv_capacity is too small (on every
 * rank). EPLB_ERR_DEVICE, EPLB_ERR_NCCL. Arguments are checked before anything is enqueued, but
 * the other ranks' calls then wait for this rank's messages: treat such an error as fatal for
 * the group. */
EPLB_API eplb_status eplb_token_exchange_dispatch(eplb_token_exchange* exchange, size_t num_tokens,
                                                  const int32_t* topk_slots,
                                                  const float* topk_weights, const void* rows,
                                                  void* recv_rows, int32_t* recv_local_slots,
                                                  float* recv_weights, int32_t* recv_counts,
                                                  uint64_t recv_capacity, int32_t* dropped,
                                                  uint64_t* out_recv_rows, void* stream);

/* Combines the last dispatch on `stream`: `expert_out` (device, [expert_out_rows][hidden] of
 * out_dtype, 16-byte aligned, expert_out_rows >= that dispatch's *out_recv_rows) holds the
 * caller's output for each receive row; each row goes back to its source, and `out` (device,
 * [num_tokens of the dispatch][hidden] of out_dtype) receives, per token, the sum of the rows
 * from its destination ranks in ascending rank order, in float32 rounded once to out_dtype
 * (zero for a token with no slot, or whose every destination dropped it). Deterministic; the
 * CPU tests check it bit for bit against the kernels for NaN-free rows (a NaN's payload may
 * differ). Returns once enqueued.
 * EPLB_ERR_INVALID_ARGUMENT: exchange NULL; no dispatch before; expert_out_rows too small;
 * expert_out or out NULL, misaligned or not device memory; the current device is not the
 * communicator's. EPLB_ERR_DEVICE, EPLB_ERR_NCCL. */
EPLB_API eplb_status eplb_token_exchange_combine(eplb_token_exchange* exchange,
                                                 const void* expert_out, uint64_t expert_out_rows,
                                                 void* out, void* stream);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* EPLB_EPLB_H */
