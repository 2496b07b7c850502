#ifndef QUIVER_TEXT_H
#define QUIVER_TEXT_H

#include <stddef.h>
#include <stdint.h>

/// Finds the words of UTF-16 `text` by ICU's word-break rules, which use dictionaries for scripts
/// written without spaces (Chinese, Japanese, Thai, Lao, Khmer, Burmese). Writes each word's
/// [start, end) UTF-16 offsets as a pair into `bounds` (room for `capacity` offsets, so
/// `capacity / 2` words) and returns the number of words, or -1 when ICU fails. Punctuation and
/// spaces are not words; numbers are.
long quiver_word_bounds(const uint16_t *text, int32_t length, int32_t *bounds, long capacity);

#endif
