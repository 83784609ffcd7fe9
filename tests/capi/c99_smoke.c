#include "eplb/eplb.h"
int main(void) { return 0; }
