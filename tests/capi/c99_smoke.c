/* A plain C99 program using libeplb end to end: plan the DeepSeek README example, read the
 * arrays back, compute metrics, check a few values and one error path. Exit status 0 on success. */
#include <stdio.h>
#include <string.h>

#include "eplb/eplb.h"

#define LAYERS 2
#define EXPERTS 12
#define SLOTS 16
#define GPUS 8

static int failures = 0;

static void check(int ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "c99_smoke: FAILED: %s (last error: \"%s\")\n", what,
            eplb_last_error_message());
    ++failures;
  }
}

static void fill_options(eplb_planner_options* options) {
  eplb_planner_options_init(options);
  options->algorithm = EPLB_ALGORITHM_DEEPSEEK;
  options->num_layers = LAYERS;
  options->num_logical_experts = EXPERTS;
  options->num_physical_experts = SLOTS;
  options->num_groups = 4;
  options->num_nodes = 2;
  options->num_gpus = GPUS;
}

static int contains(const char* haystack, const char* needle) {
  return strstr(haystack, needle) != NULL;
}

int main(void) {
  static const double loads[LAYERS * EXPERTS] = {90, 132, 40,  61,  104, 165, 39,  4,
                                                 73, 56,  183, 86,  20,  107, 104, 64,
                                                 19, 197, 187, 157, 172, 86,  16,  27};
  static const int32_t expected_layer0[SLOTS] = {5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1};
  eplb_planner_options options;
  eplb_planner* planner = NULL;
  eplb_placement* placement = NULL;
  eplb_placement_info info;
  eplb_metrics metrics;
  int32_t phy2log[LAYERS * SLOTS];
  int32_t counts[LAYERS * EXPERTS];
  double gpu_loads[LAYERS * GPUS];
  double total = 0.0;
  double gpu_total = 0.0;
  int i;
  int layer;
  eplb_status status;

  check(eplb_version_number() == EPLB_VERSION_NUMBER, "version number");
  check(strcmp(eplb_version_string(), EPLB_VERSION_STRING) == 0, "version string");

  fill_options(&options);
  check(eplb_planner_create(&options, &planner) == EPLB_OK, "planner_create");
  if (planner == NULL) return 1;
  check(eplb_planner_plan(planner, loads, LAYERS * EXPERTS, &placement) == EPLB_OK, "plan");
  if (placement == NULL) {
    eplb_planner_destroy(planner);
    return 1;
  }

  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  check(eplb_placement_get_info(placement, &info) == EPLB_OK, "get_info");
  check(info.slots_per_gpu == 2 && info.hierarchical == 1 && info.log2phy_width == 2, "info");

  check(eplb_placement_get_phy2log(placement, phy2log, LAYERS * SLOTS) == EPLB_OK, "phy2log");
  check(memcmp(phy2log, expected_layer0, sizeof expected_layer0) == 0, "phy2log layer 0");
  check(eplb_placement_get_replica_counts(placement, counts, LAYERS * EXPERTS) == EPLB_OK,
        "replica counts");
  for (layer = 0; layer < LAYERS; ++layer) {
    int sum = 0;
    for (i = 0; i < EXPERTS; ++i) {
      check(counts[layer * EXPERTS + i] >= 1, "every expert has a replica");
      sum += counts[layer * EXPERTS + i];
    }
    check(sum == SLOTS, "counts sum to the slot count");
  }

  check(eplb_metrics_gpu_loads(placement, loads, LAYERS * EXPERTS, gpu_loads, LAYERS * GPUS) ==
            EPLB_OK,
        "gpu_loads");
  check(gpu_loads[0] == 121.5 && gpu_loads[GPUS] == 173.0, "README GPU loads");
  for (i = 0; i < LAYERS * EXPERTS; ++i) total += loads[i];
  for (i = 0; i < LAYERS * GPUS; ++i) gpu_total += gpu_loads[i];
  check(gpu_total == total, "GPU loads add up to the total load");

  memset(&metrics, 0, sizeof metrics);
  metrics.struct_size = sizeof metrics;
  check(eplb_metrics_compute(placement, loads, LAYERS * EXPERTS, &metrics) == EPLB_OK, "metrics");
  check(metrics.num_layers == LAYERS, "metrics.num_layers");
  check(metrics.balancedness > 0.0 && metrics.balancedness <= 1.0, "balancedness in (0, 1]");
  check(metrics.min_balancedness <= metrics.balancedness, "min_balancedness");
  check(metrics.worst_max_load_over_bound >= 1.0, "bound");

  /* An error path: the status, its text and a message naming the field and value. */
  options.num_gpus = 6;
  {
    eplb_planner* not_made = planner;
    status = eplb_planner_create(&options, &not_made);
    check(status == EPLB_ERR_INVALID_ARGUMENT, "invalid options rejected");
    check(not_made == planner, "output untouched on failure");
    check(strcmp(eplb_status_string(status), "invalid argument") == 0, "status string");
    check(contains(eplb_last_error_message(), "num_gpus (6)"), "message names num_gpus");
  }
  check(eplb_placement_get_phy2log(placement, phy2log, 3) == EPLB_ERR_BUFFER_TOO_SMALL,
        "buffer too small");
  check(contains(eplb_last_error_message(), "32"), "message gives the size");

  printf("c99_smoke: %s, libeplb %s, balancedness %.4f, max/bound %.4f\n",
         failures == 0 ? "ok" : "FAILED", eplb_version_string(), metrics.balancedness,
         metrics.max_load_over_bound);
  eplb_placement_destroy(placement);
  eplb_planner_destroy(planner);
  return failures == 0 ? 0 : 1;
}
