/* A libeplb consumer written against the 0.1.0 API. It is compiled three ways: against the
 * committed 0.1.0 header (packaging/abi/eplb-0.1.0.h) and run against the new library (the ABI
 * compatibility test), and against an installed copy through pkg-config and find_package
 * (scripts/test-install.sh). It plans DeepSeek's README example, checks the published result,
 * measures it, saves and reloads a snapshot, and records routing into a tracker, all with the
 * options and info structs of the header it was compiled against (their struct_size).
 * Usage: consumer [snapshot path]; prints "consumer ok" and exits 0 on success. */
#include <eplb/eplb.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int failures = 0;

static void check(int condition, const char* what) {
  if (!condition) {
    fprintf(stderr, "consumer: FAILED: %s (last error: %s)\n", what, eplb_last_error_message());
    ++failures;
  }
}

int main(int argc, char** argv) {
  /* deepseek-ai/EPLB's README example and the reference's phy2log for layer 0. */
  static const double loads[2 * 12] = {90, 132, 40,  61, 104, 165, 39,  4,   73,  56, 183, 86,
                                       20, 107, 104, 64, 19,  197, 187, 157, 172, 86, 16,  27};
  static const int32_t expected_layer0[16] = {5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1};
  const char* path = argc > 1 ? argv[1] : "consumer.eplb";
  eplb_planner_options options;
  eplb_planner* planner = NULL;
  eplb_placement* placement = NULL;
  eplb_placement_info info;
  eplb_metrics metrics;
  eplb_snapshot_options save_options;
  eplb_snapshot* snapshot = NULL;
  eplb_snapshot_info snapshot_info;
  eplb_placement* loaded = NULL;
  eplb_tracker_options tracker_options;
  eplb_tracker* tracker = NULL;
  int32_t phy2log[2 * 16];
  int32_t reloaded[2 * 16];
  int32_t topk[3 * 2] = {0, 1, 5, 5, 11, -1};
  double tracked[2 * 12];
  uint32_t algorithm = 0;

  printf("compiled against libeplb %d.%d.%d, running %s\n", EPLB_VERSION_MAJOR, EPLB_VERSION_MINOR,
         EPLB_VERSION_PATCH, eplb_version_string());
  check(eplb_version_number() >= EPLB_VERSION_NUMBER,
        "the library is at least the header's version");
  check(eplb_version_number() / 10000 == EPLB_VERSION_MAJOR, "same major version");
  check(strcmp(eplb_status_string(EPLB_OK), "") != 0, "eplb_status_string");
  check(eplb_algorithm_from_name("deepseek", &algorithm) == EPLB_OK &&
            algorithm == EPLB_ALGORITHM_DEEPSEEK,
        "eplb_algorithm_from_name");

  eplb_planner_options_init(&options);
  options.algorithm = EPLB_ALGORITHM_DEEPSEEK;
  options.num_layers = 2;
  options.num_logical_experts = 12;
  options.num_physical_experts = 16;
  options.num_groups = 4;
  options.num_nodes = 2;
  options.num_gpus = 8;
  check(eplb_planner_create(&options, &planner) == EPLB_OK, "eplb_planner_create");
  check(eplb_planner_plan(planner, loads, 2 * 12, &placement) == EPLB_OK, "eplb_planner_plan");
  if (failures) {
    return 1;
  }
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  check(eplb_placement_get_info(placement, &info) == EPLB_OK && info.num_physical_experts == 16 &&
            info.slots_per_gpu == 2,
        "eplb_placement_get_info");
  check(eplb_placement_get_phy2log(placement, phy2log, 2 * 16) == EPLB_OK &&
            memcmp(phy2log, expected_layer0, sizeof expected_layer0) == 0,
        "phy2log equals DeepSeek's published example");
  memset(&metrics, 0, sizeof metrics);
  metrics.struct_size = sizeof metrics;
  check(eplb_metrics_compute(placement, loads, 2 * 12, &metrics) == EPLB_OK &&
            metrics.balancedness > 0.5 && metrics.balancedness <= 1.0,
        "eplb_metrics_compute");

  /* Errors: a bad value is reported with a message naming it. */
  options.num_gpus = 7;
  check(eplb_planner_create(&options, &(eplb_planner*){NULL}) == EPLB_ERR_INVALID_ARGUMENT &&
            strstr(eplb_last_error_message(), "num_gpus") != NULL,
        "bad options give EPLB_ERR_INVALID_ARGUMENT naming the field");

  eplb_snapshot_options_init(&save_options);
  save_options.loads = loads;
  save_options.loads_len = 2 * 12;
  save_options.label = "consumer";
  check(eplb_snapshot_save(placement, &save_options, path) == EPLB_OK, "eplb_snapshot_save");
  check(eplb_snapshot_load(path, &snapshot) == EPLB_OK, "eplb_snapshot_load");
  if (snapshot) {
    memset(&snapshot_info, 0, sizeof snapshot_info);
    snapshot_info.struct_size = sizeof snapshot_info;
    check(eplb_snapshot_get_info(snapshot, &snapshot_info) == EPLB_OK &&
              strcmp(snapshot_info.label, "consumer") == 0 && snapshot_info.has_loads == 1,
          "eplb_snapshot_get_info");
    check(eplb_snapshot_get_placement(snapshot, &loaded) == EPLB_OK &&
              eplb_placement_get_phy2log(loaded, reloaded, 2 * 16) == EPLB_OK &&
              memcmp(reloaded, phy2log, sizeof phy2log) == 0,
          "the reloaded placement equals the saved one");
  }

  eplb_tracker_options_init(&tracker_options);
  tracker_options.num_layers = 2;
  tracker_options.num_logical_experts = 12;
  tracker_options.top_k = 2;
  check(eplb_tracker_create(&tracker_options, &tracker) == EPLB_OK, "eplb_tracker_create");
  check(eplb_tracker_record(tracker, 1, topk, 3, 2) == EPLB_OK, "eplb_tracker_record");
  check(eplb_tracker_get_loads(tracker, tracked, 2 * 12) == EPLB_OK && tracked[12 + 5] == 2.0 &&
            tracked[12 + 11] == 1.0 && tracked[0] == 0.0,
        "eplb_tracker_get_loads counts the recorded ids");

  eplb_tracker_destroy(tracker);
  eplb_placement_destroy(loaded);
  eplb_snapshot_destroy(snapshot);
  eplb_placement_destroy(placement);
  eplb_planner_destroy(planner);
  if (failures) {
    return 1;
  }
  printf("consumer ok\n");
  return 0;
}
