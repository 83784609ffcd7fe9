#include "eplb/eplb.h"

extern "C" {

uint32_t eplb_version_number(void) { return EPLB_VERSION_NUMBER; }

const char* eplb_version_string(void) { return EPLB_VERSION_STRING; }

}  // extern "C"
