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

// A path, as opposed to a model's name: it has a '/' or starts with '.' (., .., ./x, a hidden dir).
static int is_path(const char *name) { return strchr(name, '/') || name[0] == '.'; }

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// $CLTKIT_CACHE, else ~/.cache/cltkit.
static void cache_dir(char *out, size_t n) {
    const char *env = getenv("CLTKIT_CACHE"), *home = getenv("HOME");
    if (env && *env) snprintf(out, n, "%s", env);
    else snprintf(out, n, "%s/.cache/cltkit", home ? home : ".");
}

// NAME in the cache: <cache>/NAME or <cache>/NAME/hf holding config.json, or <cache>/NAME holding
// one GGUF, converted once into <cache>/NAME/hf. 0 with *dir set; 0 with *dir NULL when the cache
// has no such model; -1 on a failed conversion.
static int resolve_cached(const char *cache, const char *name, char **dir, Error *e) {
    char c[4000], p[4096];
    snprintf(c, sizeof c, "%s/%s", cache, name);
    if (is_model_dir(c)) {
        *dir = xstrdup(c);
        return 0;
    }
    snprintf(p, sizeof p, "%s/hf", c);
    if (is_model_dir(p)) {
        *dir = xstrdup(p);
        return 0;
    }
    char *gguf;
    if (find_gguf(c, &gguf, e)) return -1;
    if (!gguf) return 0;
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

int model_resolve_note(const char *name, char **dir, char *note, size_t note_len, Error *e) {
    *dir = NULL;
    if (note && note_len) note[0] = 0;
    if (!*name) return err_set(e, "empty model name");
    if (is_path(name)) {
        if (!is_dir(name)) return err_set(e, "%s: no such directory", name);
        if (!is_model_dir(name)) return err_set(e, "%s: not a model directory (it has no config.json)", name);
        *dir = xstrdup(name);
        return 0;
    }
    char cache[3800];
    cache_dir(cache, sizeof cache);
    if (resolve_cached(cache, name, dir, e)) return -1;
    int local = is_model_dir(name);
    if (*dir) {
        if (note)
            snprintf(note, note_len, "the cache%s%s", local ? "; for the directory here write ./" : "",
                     local ? name : "");
        return 0;
    }
    if (local) {
        if (note) snprintf(note, note_len, "a directory here; no model of that name in %s", cache);
        *dir = xstrdup(name);
        return 0;
    }
    if (!strcmp(name, "smollm2"))
        return err_set(e, "model 'smollm2': not in %s: fetch it with scripts/fetch_smollm2.sh", cache);
    return err_set(e, "model '%s': no model directory of that name here or in %s", name, cache);
}

int model_resolve(const char *name, char **dir, Error *e) { return model_resolve_note(name, dir, NULL, 0, e); }

char *model_resolve_cli(const char *tool, const char *name) {
    char *dir, note[300];
    Error e;
    if (model_resolve_note(name, &dir, note, sizeof note, &e)) fatal_err(&e);
    if (note[0]) {
        fprintf(stderr, "%s: model '%s': %s (%s)\n", tool, name, dir, note);
    }
    return dir;
}

char *tokenizer_resolve_cli(const char *tool, const char *arg) {
    struct stat st;
    if (stat(arg, &st) == 0 && !S_ISDIR(st.st_mode)) return xstrdup(arg);  // a tokenizer.json file
    char *dir = NULL;
    if (is_path(arg)) {
        if (!is_dir(arg)) fatal("%s: no such file or directory", arg);
        dir = xstrdup(arg);  // a model's directory, or one holding just a tokenizer
    } else {
        char note[300];
        Error e;
        if (model_resolve_note(arg, &dir, note, sizeof note, &e)) {
            if (!is_dir(arg)) fatal_err(&e);
            dir = xstrdup(arg);  // not a model, but a directory here (a tokenizer alone)
        } else if (note[0]) {
            fprintf(stderr, "%s: model '%s': %s (%s)\n", tool, arg, dir, note);
        }
    }
    char *path = xmalloc(strlen(dir) + 16);
    sprintf(path, "%s/tokenizer.json", dir);
    if (stat(path, &st) != 0) fatal("%s: no tokenizer.json in this directory", dir);
    free(dir);
    return path;
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
