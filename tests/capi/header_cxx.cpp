#include "eplb/eplb.h"
