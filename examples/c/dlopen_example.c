/* Uses libeplb through dlopen/dlsym only (no link-time dependency, e.g. for a plugin that must
 * start without libeplb installed): plans DeepSeek's README example, saves a snapshot and loads it
 * back. Usage: dlopen_example [path/to/libeplb.so] [snapshot path]. The header is used for types
 * only; every function is looked up by name. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "eplb/eplb.h"

/* The functions this program uses, resolved at run time. */
struct eplb_functions {
  uint32_t (*version_number)(void);
  const char* (*last_error_message)(void);
  void (*planner_options_init)(eplb_planner_options*);
  eplb_status (*planner_create)(const eplb_planner_options*, eplb_planner**);
  void (*planner_destroy)(eplb_planner*);
  eplb_status (*planner_plan)(eplb_planner*, const double*, size_t, eplb_placement**);
  eplb_status (*placement_get_phy2log)(const eplb_placement*, int32_t*, size_t);
  void (*placement_destroy)(eplb_placement*);
  eplb_status (*snapshot_save)(const eplb_placement*, const eplb_snapshot_options*, const char*);
  eplb_status (*snapshot_load)(const char*, eplb_snapshot**);
  eplb_status (*snapshot_get_placement)(const eplb_snapshot*, eplb_placement**);
  void (*snapshot_destroy)(eplb_snapshot*);
};

/* dlsym returns void*; converting it to a function pointer goes through memcpy (ISO C). */
static int resolve(void* library, const char* name, void* function_pointer, size_t size) {
  void* symbol = dlsym(library, name);
  if (symbol == NULL) {
    fprintf(stderr, "dlopen_example: %s not found: %s\n", name, dlerror());
    return 0;
  }
  memcpy(function_pointer, &symbol, size);
  return 1;
}
#define RESOLVE(lib, fns, field) resolve(lib, "eplb_" #field, &(fns)->field, sizeof((fns)->field))

static int fail(const struct eplb_functions* eplb, const char* what, eplb_status status) {
  fprintf(stderr, "dlopen_example: %s failed (status %d): %s\n", what, (int)status,
          eplb->last_error_message());
  return 1;
}

int main(int argc, char** argv) {
  const char* library_path = argc > 1 ? argv[1] : "libeplb.so." EPLB_VERSION_STRING;
  const char* snapshot_path = argc > 2 ? argv[2] : "dlopen_example.eplb";
  void* library = dlopen(library_path, RTLD_NOW | RTLD_LOCAL);
  if (library == NULL) {
    fprintf(stderr, "dlopen_example: cannot load %s: %s\n", library_path, dlerror());
    return 1;
  }
  struct eplb_functions eplb;
  if (!(RESOLVE(library, &eplb, version_number) && RESOLVE(library, &eplb, last_error_message) &&
        RESOLVE(library, &eplb, planner_options_init) && RESOLVE(library, &eplb, planner_create) &&
        RESOLVE(library, &eplb, planner_destroy) && RESOLVE(library, &eplb, planner_plan) &&
        RESOLVE(library, &eplb, placement_get_phy2log) &&
        RESOLVE(library, &eplb, placement_destroy) && RESOLVE(library, &eplb, snapshot_save) &&
        RESOLVE(library, &eplb, snapshot_load) && RESOLVE(library, &eplb, snapshot_get_placement) &&
        RESOLVE(library, &eplb, snapshot_destroy))) {
    return 1;
  }
  /* The loaded library must be ABI-compatible with the header the program was compiled with. */
  uint32_t version = eplb.version_number();
  if (version / 100 != EPLB_VERSION_NUMBER / 100 || version < EPLB_VERSION_NUMBER) {
    fprintf(stderr, "dlopen_example: libeplb %u is not compatible with header %u\n", version,
            (unsigned)EPLB_VERSION_NUMBER);
    return 1;
  }

  /* DeepSeek's README example: 2 layers, 12 experts in 4 groups, 16 slots on 2 nodes x 8 GPUs. */
  static const double loads[2 * 12] = {90, 132, 40,  61, 104, 165, 39,  4,   73,  56, 183, 86,
                                       20, 107, 104, 64, 19,  197, 187, 157, 172, 86, 16,  27};
  eplb_planner_options options;
  eplb.planner_options_init(&options);
  options.algorithm = EPLB_ALGORITHM_DEEPSEEK;
  options.num_layers = 2;
  options.num_logical_experts = 12;
  options.num_physical_experts = 16;
  options.num_groups = 4;
  options.num_nodes = 2;
  options.num_gpus = 8;
  eplb_planner* planner = NULL;
  eplb_status status = eplb.planner_create(&options, &planner);
  if (status != EPLB_OK) return fail(&eplb, "eplb_planner_create", status);
  eplb_placement* placement = NULL;
  status = eplb.planner_plan(planner, loads, 2 * 12, &placement);
  eplb.planner_destroy(planner);
  if (status != EPLB_OK) return fail(&eplb, "eplb_planner_plan", status);

  status = eplb.snapshot_save(placement, NULL, snapshot_path);
  if (status != EPLB_OK) return fail(&eplb, "eplb_snapshot_save", status);
  eplb_snapshot* snapshot = NULL;
  status = eplb.snapshot_load(snapshot_path, &snapshot);
  if (status != EPLB_OK) return fail(&eplb, "eplb_snapshot_load", status);
  eplb_placement* restored = NULL;
  status = eplb.snapshot_get_placement(snapshot, &restored);
  eplb.snapshot_destroy(snapshot);
  if (status != EPLB_OK) return fail(&eplb, "eplb_snapshot_get_placement", status);

  int32_t planned[2 * 16];
  int32_t loaded[2 * 16];
  if ((status = eplb.placement_get_phy2log(placement, planned, 2 * 16)) != EPLB_OK ||
      (status = eplb.placement_get_phy2log(restored, loaded, 2 * 16)) != EPLB_OK) {
    return fail(&eplb, "eplb_placement_get_phy2log", status);
  }
  eplb.placement_destroy(placement);
  eplb.placement_destroy(restored);
  if (memcmp(planned, loaded, sizeof planned) != 0) {
    fprintf(stderr, "dlopen_example: the loaded snapshot differs from the plan\n");
    return 1;
  }
  printf("libeplb %u via dlopen: planned, saved %s, loaded it back; layer 0 phy2log:", version,
         snapshot_path);
  for (int slot = 0; slot < 16; ++slot) printf(" %d", planned[slot]);
  printf("\n");

  /* A bad input gives a status and a message naming the value. */
  options.num_physical_experts = 15;
  status = eplb.planner_create(&options, &planner);
  printf("bad input: status %d, \"%s\"\n", (int)status, eplb.last_error_message());
  dlclose(library);
  return status == EPLB_ERR_INVALID_ARGUMENT ? 0 : 1;
}
