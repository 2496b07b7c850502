#ifndef QUIVER_STEMMER_H
#define QUIVER_STEMMER_H

/// Snowball's stemmers (Debian libstemmer-dev): `sb_stemmer_new(language, "UTF_8")`, then
/// `sb_stemmer_stem` and `sb_stemmer_length` on one thread at a time per stemmer.
#include <libstemmer.h>

#endif
