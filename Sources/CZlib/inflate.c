// zlib's inflate for compressed gRPC messages (Debian zlib1g-dev); the calls are in CZlib.h.
#include "CZlib.h"
