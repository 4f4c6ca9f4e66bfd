#ifndef NETLAB_PROCESS_SHIMS_H
#define NETLAB_PROCESS_SHIMS_H

#include <stdint.h>
#include <sys/types.h>

#endif
