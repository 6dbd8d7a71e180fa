// clt_state.c — see clt_state.h.
#include "clt_state.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>

#include "cli.h"

// A metadata value: a decimal integer string in [min, max], nothing else.
static int meta_int(const char *path, json_t *meta, const char *key, long long min, long long max, long long *out,
                    Error *e) {
    const char *sv = json_string_value(json_object_get(meta, key));
    if (!sv) return err_set(e, "%s: metadata lacks \"%s\" (a decimal string)", path, key);
    if (parse_int_strict(sv, min, max, out))
        return err_set(e, "%s: metadata \"%s\" = \"%.64s\" is not an integer in [%lld, %lld]", path, key, sv, min, max);
    return 0;
}

int clt_state_meta_parse(const char *path, const char *metadata_json, CltStateMeta *out, Error *e) {
    json_t *meta = metadata_json ? json_loads(metadata_json, 0, NULL) : NULL;
    if (!json_is_object(meta)) {
        json_decref(meta);
        return err_set(e, "%s: no training metadata", path);
    }
    static const char *const keys[7] = {"step", "epoch", "pool", "batch", "L", "d", "F"};
    long long v[7];
    int rc = 0;
    for (int i = 0; i < 7 && !rc; i++)
        rc = meta_int(path, meta, keys[i], i < 4 ? 0 : 1, i < 4 ? INT64_MAX / 4 : INT32_MAX, &v[i], e);
    const char *ts = rc ? NULL : json_string_value(json_object_get(meta, "time_s"));
    double t = 0;
    if (ts && (parse_double_strict(ts, &t) || !(t >= 0) || !isfinite(t)))
        rc = err_set(e, "%s: metadata \"time_s\" = \"%.64s\" is not a non-negative number", path, ts);
    json_decref(meta);
    if (rc) return -1;
    *out = (CltStateMeta){v[0], v[1], v[2], v[3], (int32_t)v[4], (int32_t)v[5], (int32_t)v[6], t};
    return 0;
}
