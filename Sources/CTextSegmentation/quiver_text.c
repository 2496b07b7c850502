#include "quiver_text.h"

#include <unicode/ubrk.h>

long quiver_word_bounds(const uint16_t *text, int32_t length, int32_t *bounds, long capacity) {
    UErrorCode status = U_ZERO_ERROR;
    UBreakIterator *iterator = ubrk_open(UBRK_WORD, "", (const UChar *)text, length, &status);
    if (U_FAILURE(status)) return -1;
    long count = 0;
    int32_t start = ubrk_first(iterator);
    for (int32_t end = ubrk_next(iterator); end != UBRK_DONE; start = end, end = ubrk_next(iterator)) {
        if (ubrk_getRuleStatus(iterator) < UBRK_WORD_NONE_LIMIT) continue;
        if (2 * (count + 1) > capacity) break;
        bounds[2 * count] = start;
        bounds[2 * count + 1] = end;
        count += 1;
    }
    ubrk_close(iterator);
    return count;
}
