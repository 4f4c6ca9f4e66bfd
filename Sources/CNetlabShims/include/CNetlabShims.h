// C helpers for what Swift cannot import or cannot do safely: system calls glibc hides
// without _GNU_SOURCE, and process creation (what must happen between clone and exec).
// Every symbol is prefixed `netlab_`. Only SystemKit (system_shims.h) and Runtime
// (process_shims.h) import this module.
#ifndef CNETLABSHIMS_H
#define CNETLABSHIMS_H

#include "system_shims.h"
#include "process_shims.h"

#endif
