/* The C snippets of README.md's "Using the C API" section, verbatim: each region marked
 * readme-snippet equals one of them (the c_readme_snippets_match test), so the README cannot drift
 * from the header. The planner, snapshot and plan-control snippets run (the c_readme_snippets
 * test); the GPU serving step and the NCCL snippets are compiled against the header, with the
 * variables they assume declared around them, but not run (they need GPUs and device buffers).
 * The regions stay flush left, as in the README, so clang-format is off for them. */
#include <eplb/eplb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int plan_snippet(const double* loads);
int load_snippet(void);
int control_snippet(eplb_planner* planner);
int near_snippet(eplb_planner* planner, const eplb_placement* current, const double* new_loads);
void broadcast_bytes(void* bytes, size_t size);

struct step_buffers {
  const void* topk_ids;
  int32_t *record_flag, *physical, *per_expert, *per_rank, *per_node, *send_offsets;
  int64_t* counts;
  uint8_t* in_rank;
  void *ws, *ws2, *recv_rows, *permuted, *expert_out, *out_rows;
  size_t ws_bytes, ws2_bytes, num_tokens, num_recv, capacity;
  int32_t *recv_local_slots, *sorted, *block_expert, *offsets, *inverse, *total;
  float* recv_weights;
};
void serving_step_snippet(const eplb_placement* placement, uint32_t my_gpu, uint32_t layer,
                          const struct step_buffers* b, void* stream);

struct migration_inputs {
  int32_t rank, world, local_gpu;
  const eplb_tracker* my_tracker;
  eplb_tracker* group_tracker;
  eplb_migration* mig;
  eplb_migration_summary summary;
  void* const* slot_tensors;
  size_t num_layers, slots_per_gpu;
  const uint64_t* tensor_bytes;
  void* staging;
  uint64_t staging_bytes;
};
void nccl_snippet(const struct migration_inputs* in, void* stream);

struct exchange_buffers {
  size_t num_tokens;
  const int32_t* topk_slots;
  const float* topk_weights;
  const void *hidden_states, *expert_out;
  void *recv_rows, *out;
  int32_t *recv_local_slots, *recv_counts, *dropped;
  float* recv_weights;
  uint64_t recv_capacity;
};
void token_exchange_snippet(eplb_comm* comm, const struct exchange_buffers* b, void* stream);

/* clang-format off */

/* A complete plan (58 MoE layers of DeepSeek-V3 on 4 nodes x 8 GPUs). */
int plan_snippet(const double* loads) {
/* readme-snippet:begin */
#include <eplb/eplb.h>

eplb_planner_options options;
eplb_planner_options_init(&options);
options.algorithm = EPLB_ALGORITHM_DEEPSEEK;
options.num_layers = 58;
options.num_logical_experts = 256;
options.num_physical_experts = 288;
options.num_groups = 8;
options.num_nodes = 4;
options.num_gpus = 32;

static int32_t phy2log[58 * 288];
eplb_planner* planner = NULL;
eplb_placement* placement = NULL;
eplb_status status = eplb_planner_create(&options, &planner);
if (status == EPLB_OK) status = eplb_planner_plan(planner, loads, 58 * 256, &placement);
if (status == EPLB_OK) status = eplb_placement_get_phy2log(placement, phy2log, 58 * 288);
eplb_placement_destroy(placement);  /* NULL is a no-op; the message survives _destroy calls */
eplb_planner_destroy(planner);
if (status != EPLB_OK) {
  fprintf(stderr, "eplb: %s\n", eplb_last_error_message());  /* names the bad value */
}
/* readme-snippet:end */
return status == EPLB_OK && phy2log[0] >= 0 ? 0 : 1;
}

/* Startup: the snapshot main() saved to placement.eplb. */
int load_snippet(void) {
/* readme-snippet:begin */
eplb_snapshot* snapshot = NULL;
eplb_placement* placement = NULL;
if (eplb_snapshot_load("placement.eplb", &snapshot) != EPLB_OK ||   /* checks every checksum */
    eplb_snapshot_get_placement(snapshot, &placement) != EPLB_OK) {
  fprintf(stderr, "eplb: %s\n", eplb_last_error_message());        /* CORRUPT, TRUNCATED, ... */
  /* ... fall back: plan afresh, or start with the trivial placement ... */
}
eplb_snapshot_destroy(snapshot);   /* the placement outlives its snapshot */
/* readme-snippet:end */
if (placement == NULL) return 1;
eplb_placement_destroy(placement);
return 0;
}

/* A re-plan near the current placement for drifted loads, then its migration. */
int near_snippet(eplb_planner* planner, const eplb_placement* current, const double* new_loads) {
/* readme-snippet:begin */
eplb_plan_near_options near;
eplb_plan_near_options_init(&near);  /* min_balance 0.998: within 0.2 % of a fresh plan */
eplb_plan_near_report report = {.struct_size = sizeof report};
eplb_placement* next = NULL;
eplb_migration* migration = NULL;
eplb_status status = eplb_planner_plan_near(planner, new_loads, 58 * 256, current, &near, &next,
                                            &report);  /* layers kept, rebalanced, re-planned */
if (status == EPLB_OK) {
  status = eplb_migration_plan(current, next, new_loads, 58 * 256, NULL, &migration);
}
/* ... run the migration (see NCCL below), then serve eplb_migration_get_target(migration) ... */
/* readme-snippet:end */
eplb_migration_summary summary = {.struct_size = sizeof summary};
if (status == EPLB_OK) status = eplb_migration_get_summary(migration, &summary);
printf("re-planned near: %u layers kept, %u rebalanced, %u re-planned; %llu experts move\n",
       report.layers_kept, report.layers_rebalanced, report.layers_replanned,
       (unsigned long long)summary.moved_experts);
eplb_migration_destroy(migration);
eplb_placement_destroy(next);
return status == EPLB_OK &&
               report.layers_kept + report.layers_rebalanced + report.layers_replanned == 58
           ? 0
           : 1;
}

/* A plan control, cancelled at once: the plan after it must say EPLB_ERR_CANCELLED. */
int control_snippet(eplb_planner* planner) {
static double loads[58 * 256];
/* readme-snippet:begin */
eplb_plan_control* control = NULL;
eplb_plan_control_create(&control);
eplb_planner_set_control(planner, control);  /* the planner keeps a reference */
/* ... on another thread, any time: */
eplb_plan_progress progress = {.struct_size = sizeof progress};
eplb_plan_control_get_progress(control, &progress);  /* steps_done / steps_total: layers */
eplb_plan_control_cancel(control);                   /* sticky: use a new control afterwards */
/* readme-snippet:end */
eplb_placement* placement = NULL;
eplb_status status = eplb_planner_plan(planner, loads, 58 * 256, &placement);
printf("plan after cancel: %s (%s); progress %llu/%llu, cancelled %u\n",
       eplb_status_string(status), eplb_last_error_message(),
       (unsigned long long)progress.steps_done, (unsigned long long)progress.steps_total,
       (unsigned)progress.cancelled);
eplb_planner_set_control(planner, NULL);
eplb_plan_control_destroy(control);
return status == EPLB_ERR_CANCELLED && placement == NULL ? 0 : 1;
}

void serving_step_snippet(const eplb_placement* placement, uint32_t my_gpu, uint32_t layer,
                          const struct step_buffers* b, void* stream) {
const void* topk_ids = b->topk_ids;
size_t num_tokens = b->num_tokens, num_recv = b->num_recv, capacity = b->capacity;
size_t ws_bytes = b->ws_bytes, ws2_bytes = b->ws2_bytes;
int32_t *d_record_flag = b->record_flag, *d_physical = b->physical;
int32_t *d_per_expert = b->per_expert, *d_per_rank = b->per_rank, *d_per_node = b->per_node;
int32_t *d_send_offsets = b->send_offsets, *d_recv_local_slots = b->recv_local_slots;
int32_t *d_sorted = b->sorted, *d_block_expert = b->block_expert, *d_offsets = b->offsets;
int32_t *d_inverse = b->inverse, *d_total = b->total;
int64_t* d_counts = b->counts;
uint8_t* d_in_rank = b->in_rank;
void *d_ws = b->ws, *d_ws2 = b->ws2, *d_recv_rows = b->recv_rows, *d_permuted = b->permuted;
void *d_expert_out = b->expert_out, *d_out_rows = b->out_rows;
float* d_recv_weights = b->recv_weights;
/* readme-snippet:begin */
/* At startup; after a re-plan, eplb_device_tables_update refills the same buffers (captured
 * graphs stay valid). */
eplb_device_tables* tables = NULL;
eplb_device_tables_create(placement, my_gpu, 0, 0, stream, &tables);

/* Per layer: logical top-k ids -> physical slots, recording the load (one launch). */
eplb_kernel_map_record(tables, layer, EPLB_MAP_NODE_AWARE, 0, NULL, topk_ids, EPLB_IDS_INT32,
                       num_tokens, 8, d_record_flag, d_counts, d_physical, stream);
/* Dispatch layout (tokens per expert, rank and node; is_token_in_rank; send offsets) for a
 * DeepEP-style dispatch; eplb_token_exchange_dispatch (see NCCL) computes its own. */
eplb_kernel_dispatch_layout(d_physical, num_tokens, 8, 288, 32, 4, d_per_expert, d_per_rank,
                            d_per_node, d_in_rank, d_send_offsets, d_ws, ws_bytes, stream);
/* ... dispatch: this GPU receives num_recv rows, each with its local slots (0..8 of its 9;
 * -1 where a slot lives elsewhere) and top-k weights ... */
/* The received rows, expert-contiguous and padded to the GEMM block, then back with the top-k
 * weights. 9 local experts (10 with the shared-expert waterfill's slot). On one GPU without
 * expert parallelism, sort d_physical over all 288 slots instead. */
eplb_kernel_expert_sort(d_recv_local_slots, num_recv, 8, 9, 64, capacity, d_sorted,
                        d_block_expert, d_offsets, d_inverse, d_total, d_ws2, ws2_bytes, stream);
eplb_kernel_permute(d_recv_rows, EPLB_ROW_DTYPE_BFLOAT16, num_recv, 8, 7168, d_inverse, capacity,
                    d_permuted, stream);
/* ... grouped expert GEMMs, block b on local expert d_block_expert[b] ... */
eplb_kernel_unpermute(d_expert_out, EPLB_ROW_DTYPE_BFLOAT16, num_recv, 8, 7168, d_inverse,
                      d_recv_weights, capacity, d_out_rows, stream);
/* d_out_rows: one weighted row per received token, sent back by the combine. */
/* readme-snippet:end */
eplb_device_tables_destroy(tables);
}

void nccl_snippet(const struct migration_inputs* in, void* stream) {
int32_t rank = in->rank, world = in->world, local_gpu = in->local_gpu;
const eplb_tracker* my_tracker = in->my_tracker;
eplb_tracker* group_tracker = in->group_tracker;
const eplb_migration* mig = in->mig;
eplb_migration_summary summary = in->summary;
void* const* slot_tensors = in->slot_tensors;
size_t num_layers = in->num_layers, slots_per_gpu = in->slots_per_gpu;
const uint64_t* tensor_bytes = in->tensor_bytes;
void* staging = in->staging;
uint64_t staging_bytes = in->staging_bytes;
/* readme-snippet:begin */
uint8_t id[EPLB_COMM_UNIQUE_ID_BYTES];
if (rank == 0) eplb_comm_get_unique_id(id, sizeof id);
broadcast_bytes(id, sizeof id);                 /* any side channel: the id is plain bytes */
eplb_comm* comm = NULL;
eplb_comm_create(id, sizeof id, world, rank, local_gpu, &comm);   /* or eplb_comm_adopt */

eplb_comm_allreduce_tracker(comm, my_tracker, group_tracker);     /* sums, synchronous */
/* ... plan from group_tracker, eplb_migration_plan(old, new, loads, n, &opts, &mig) with
 * opts.max_layers_per_step = 4 ... */
for (uint32_t step = 0; step < summary.num_steps; ++step) {        /* between forward passes */
  eplb_migration_execute_step(mig, comm, step, slot_tensors, num_layers * slots_per_gpu * 3,
                              tensor_bytes, 3, staging, staging_bytes, stream);
  /* then serve with eplb_migration_get_step_placement(mig, step) on `stream` */
}
/* Done: serve and save eplb_migration_get_target(mig), not the planner's new plan. */
eplb_comm_destroy(comm);
/* readme-snippet:end */
}

void token_exchange_snippet(eplb_comm* comm, const struct exchange_buffers* b, void* stream) {
size_t num_tokens = b->num_tokens;
const int32_t* topk_slots = b->topk_slots;
const float* topk_weights = b->topk_weights;
const void *hidden_states = b->hidden_states, *expert_out = b->expert_out;
void *recv_rows = b->recv_rows, *out = b->out;
int32_t *recv_local_slots = b->recv_local_slots, *recv_counts = b->recv_counts;
int32_t* dropped = b->dropped;
float* recv_weights = b->recv_weights;
uint64_t recv_capacity = b->recv_capacity;
/* readme-snippet:begin */
eplb_token_exchange_options xo;
eplb_token_exchange_options_init(&xo);
xo.slots_per_rank = 9; xo.top_k = 8; xo.max_tokens = 8192;
xo.row_bytes = 7168 * 2;                       /* bf16 activations */
xo.hidden = 7168; xo.out_dtype = EPLB_ROW_DTYPE_BFLOAT16;
xo.capacity = 2048;                            /* padded: graph-capturable; 0 for exact sizes */
eplb_token_exchange* x = NULL;
eplb_token_exchange_create(comm, &xo, &x);     /* collective; checks every rank agrees */
uint64_t rows = 0;                             /* receive rows in use */
eplb_token_exchange_dispatch(x, num_tokens, topk_slots, topk_weights, hidden_states,
                             recv_rows, recv_local_slots, recv_weights, recv_counts,
                             recv_capacity, dropped, &rows, stream);
/* experts: expert_out[i] = sum_j recv_weights[i][j] * expert(recv_local_slots[i][j], recv_rows[i]) */
eplb_token_exchange_combine(x, expert_out, rows, out, stream);
eplb_token_exchange_destroy(x);
/* readme-snippet:end */
}

/* clang-format on */

/* The side channel of the NCCL snippet; one process here, so nothing to send. */
void broadcast_bytes(void* bytes, size_t size) {
  (void)bytes;
  (void)size;
}

int main(void) {
  /* Skewed loads: every 7th expert hot. */
  static double loads[58 * 256];
  for (size_t i = 0; i < 58 * 256; ++i)
    loads[i] = (double)(1 + (i * 7919) % 1000) * (i % 7 ? 1 : 20);
  if (plan_snippet(loads) != 0) return 1;
  printf("planned 58 layers\n");

  eplb_planner_options options;
  eplb_planner_options_init(&options);
  options.num_layers = 58;
  options.num_logical_experts = 256;
  options.num_physical_experts = 288;
  options.num_gpus = 32;
  eplb_planner* planner = NULL;
  eplb_placement* placement = NULL;
  if (eplb_planner_create(&options, &planner) != EPLB_OK ||
      eplb_planner_plan(planner, loads, 58 * 256, &placement) != EPLB_OK ||
      eplb_snapshot_save(placement, NULL, "placement.eplb") != EPLB_OK) {
    fprintf(stderr, "eplb: %s\n", eplb_last_error_message());
    return 1;
  }
  if (load_snippet() != 0) return 1;
  printf("loaded placement.eplb\n");
  static double drifted[58 * 256];
  for (size_t i = 0; i < 58 * 256; ++i) drifted[i] = loads[i] * (double)(8 + (i * 31) % 5) / 10;
  const int near = near_snippet(planner, placement, drifted);
  eplb_placement_destroy(placement);
  if (near != 0) return 1;
  const int cancelled = control_snippet(planner);
  eplb_planner_destroy(planner);
  if (cancelled != 0) return 1;
  printf("all C snippets of the README ran\n");
  return 0;
}
