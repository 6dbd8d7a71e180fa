// model_resolve.c — see model_resolve.h.
#include "model_resolve.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf.h"
#include "gguf_llama.h"

static int is_model_dir(const char *dir) {
    char p[4096];
    struct stat st;
    if (snprintf(p, sizeof p, "%s/config.json", dir) >= (int)sizeof p) return 0;
    return stat(p, &st) == 0;
}

// The single *.gguf file in dir: 0 with *found malloc'd or NULL (none); -1 when there are several.
static int find_gguf(const char *dir, char **found, Error *e) {
    *found = NULL;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (len > 5 && !strcmp(de->d_name + len - 5, ".gguf") && n++ == 0) {
            *found = xmalloc(strlen(dir) + len + 2);
            sprintf(*found, "%s/%s", dir, de->d_name);
        }
    }
    closedir(d);
    if (n > 1) {
        free(*found);
        *found = NULL;
        return err_set(e, "%s: %d .gguf files; pass the converted model directory", dir, n);
    }
    return 0;
}

int model_resolve(const char *name, char **dir, Error *e) {
    *dir = NULL;
    if (is_model_dir(name) || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
        *dir = xstrdup(name);
        return 0;
    }
    const char *env = getenv("CLTKIT_CACHE"), *home = getenv("HOME");
    char cache[4000], p[4096];
    if (env && *env)
        snprintf(cache, sizeof cache, "%s/%s", env, name);
    else
        snprintf(cache, sizeof cache, "%s/.cache/cltkit/%s", home ? home : ".", name);
    if (is_model_dir(cache)) {
        *dir = xstrdup(cache);
        return 0;
    }
    snprintf(p, sizeof p, "%s/hf", cache);
    if (is_model_dir(p)) {
        *dir = xstrdup(p);
        return 0;
    }
    char *gguf;
    if (find_gguf(cache, &gguf, e)) return -1;
    if (!gguf) {
        if (!strcmp(name, "smollm2"))
            return err_set(e, "model 'smollm2' is not in %s: fetch it with scripts/fetch_smollm2.sh", cache);
        return err_set(e, "%s: no such model directory (no config.json), and no model '%s' in %s", name, name, cache);
    }
    fprintf(stderr, "converting %s to %s (once)\n", gguf, p);
    Gguf g;
    if (mkdir(p, 0755) && errno != EEXIST) {
        free(gguf);
        return err_set(e, "%s: cannot create: %s", p, strerror(errno));
    }
    int rc = gguf_open(&g, gguf, e);
    free(gguf);
    if (rc) return -1;
    rc = gguf_llama_write_hf(&g, p, 0, e);
    gguf_close(&g);
    if (rc) return -1;
    *dir = xstrdup(p);
    return 0;
}

static void add_eos(uint32_t *eos, int *n, int64_t id) {
    if (id < 0) return;
    for (int i = 0; i < *n; i++)
        if (eos[i] == (uint32_t)id) return;
    if (*n < 16) eos[(*n)++] = (uint32_t)id;
}

int model_eos_ids(const Model *m, const Tokenizer *tok, int chat, uint32_t *eos) {
    int n = 0;
    add_eos(eos, &n, m->cfg.eos_id);
    char path[4096];
    snprintf(path, sizeof path, "%s/generation_config.json", m->dir);
    json_t *root = json_load_file(path, 0, NULL);
    if (root) {
        json_t *v = json_object_get(root, "eos_token_id");
        if (json_is_integer(v)) add_eos(eos, &n, json_integer_value(v));
        size_t i;
        json_t *item;
        if (json_is_array(v))
            json_array_foreach(v, i, item) if (json_is_integer(item)) add_eos(eos, &n, json_integer_value(item));
        json_decref(root);
    }
    if (chat) add_eos(eos, &n, tokenizer_token_to_id(tok, "<|im_end|>", 10));
    return n;
}
