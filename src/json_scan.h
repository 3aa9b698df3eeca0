/*
 * json_scan.h: read one scalar out of a small JSON answer (IMDS, the
 * SES API's GetAccount): the value of the first member named KEY, at any
 * depth.  The whole text is checked to be JSON first, so garbage is
 * refused, never half read.  Pure.
 */
#ifndef SESRELAY_JSON_SCAN_H
#define SESRELAY_JSON_SCAN_H

#include <stddef.h>

/* A string member, unescaped into out (\uXXXX only below 0x80); 0, or
 * -1: not JSON, no such member, not a string, or too long. */
int json_scan_string(const char *js, size_t len, const char *key,
    char *out, size_t outlen);
/* A number member; 0, or -1. */
int json_scan_number(const char *js, size_t len, const char *key,
    double *out);
/* A true/false member (1/0 in *out); 0, or -1. */
int json_scan_bool(const char *js, size_t len, const char *key, int *out);

#endif
