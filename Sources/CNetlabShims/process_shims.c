#include "process_shims.h"
