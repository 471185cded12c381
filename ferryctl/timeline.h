/* A migration's timeline as an SVG picture (ferryctl migrate report <id> --svg <file>). */
#ifndef FERRY_FERRYCTL_TIMELINE_H
#define FERRY_FERRYCTL_TIMELINE_H

#include <stdio.h>

/* Draws the timeline of a source's migration from `migrate status <id>`'s JSON answer into out.
 * Returns 0, or -1 when the answer holds no round (a destination's, or one not begun) or the
 * write failed. */
int timeline_svg(const char *json, FILE *out);

#endif
