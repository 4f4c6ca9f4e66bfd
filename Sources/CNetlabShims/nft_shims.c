#include "nft_shims.h"
