// The target only exposes libstemmer's header and links the library (see include/).
#include "quiver_stemmer.h"
