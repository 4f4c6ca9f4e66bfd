#include "netlink_shims.h"
