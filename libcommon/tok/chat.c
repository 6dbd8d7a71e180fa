// chat.c — see chat.h.
#include "chat.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    for (size_t got; (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n + 1 == cap) buf = xrealloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = 0;
    return buf;
}

int chat_template_read(const char *model_dir, char **tmpl, Error *e) {
    *tmpl = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", model_dir);
    FILE *probe = fopen(path, "rb");
    if (probe) {
        fclose(probe);
        json_error_t je;
        // JSON_DECODE_INT_AS_REAL: HF writes model_max_length as 1e30, past int64
        json_t *root = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
        if (!root) return err_set(e, "%s: line %d: %s", path, je.line, je.text);
        json_t *t = json_object_get(root, "chat_template");
        if (json_is_string(t)) *tmpl = xstrdup(json_string_value(t));
        else if (json_is_array(t)) {  // named templates (e.g. "default", "tool_use")
            size_t i;
            json_t *item;
            json_array_foreach(t, i, item) {
                if (json_is_string(json_object_get(item, "name")) &&
                    !strcmp(json_string_value(json_object_get(item, "name")), "default") &&
                    json_is_string(json_object_get(item, "template")))
                    *tmpl = xstrdup(json_string_value(json_object_get(item, "template")));
            }
            if (!*tmpl) {
                json_decref(root);
                return err_set(e, "%s: \"chat_template\" has no \"default\" template", path);
            }
        } else if (t && !json_is_null(t)) {
            json_decref(root);
            return err_set(e, "%s: \"chat_template\" must be a string or a list of named templates", path);
        }
        json_decref(root);
        if (*tmpl) return 0;
    }
    // transformers >= 4.43 saves the template beside the tokenizer instead
    snprintf(path, sizeof path, "%s/chat_template.jinja", model_dir);
    *tmpl = read_text(path);
    return 0;
}

// Copies a Jinja string literal's body, resolving its escapes (\n, \t, \', \", \\). Returns NULL
// if it holds template syntax: then it is not a constant message.
static char *literal_text(const char *s, size_t n) {
    char *out = xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '{' || s[i] == '}' || s[i] == '\'' || s[i] == '"') { free(out); return NULL; }
        if (s[i] == '\\' && i + 1 < n) {
            char c = s[++i];
            out[k++] = c == 'n' ? '\n' : c == 't' ? '\t' : c;
        } else {
            out[k++] = s[i];
        }
    }
    out[k] = 0;
    return out;
}

int chat_template_parse(ChatTemplate *ct, const char *tmpl, Error *e) {
    memset(ct, 0, sizeof *ct);
    if (!strstr(tmpl, "<|im_start|>"))
        return err_set(e, "unknown chat template (not ChatML: no <|im_start|>); send the prompt as is with --raw");
    if (!strstr(tmpl, "<|im_start|>assistant"))
        return err_set(e, "unsupported ChatML template: it never opens an assistant turn; use --raw");
    // A default system message: a constant `<|im_start|>system\n...<|im_end|>` emitted when the
    // first message is not a system one (`messages[0]['role'] != 'system'`).
    const char *sys = strstr(tmpl, "<|im_start|>system");
    int conditional = strstr(tmpl, "!= 'system'") || strstr(tmpl, "!= \"system\"");
    if (sys && conditional) {
        const char *body = sys + strlen("<|im_start|>system");
        if (*body == '\n') body++;
        else if (body[0] == '\\' && body[1] == 'n') body += 2;
        else
            return err_set(e,
                           "unsupported ChatML template: no newline after its default <|im_start|>system; use --raw");
        const char *end = strstr(body, "<|im_end|>");
        if (!end)
            return err_set(e, "unsupported ChatML template: default system message without <|im_end|>; use --raw");
        ct->default_system = literal_text(body, (size_t)(end - body));
        if (!ct->default_system)
            return err_set(e, "unsupported ChatML template: its default system message is not a constant; use --raw");
    }
    return 0;
}

void chat_template_free(ChatTemplate *ct) {
    free(ct->default_system);
    ct->default_system = NULL;
}

static void append(char **buf, size_t *len, size_t *cap, const char *s) {
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        while (*len + n + 1 > *cap) *cap = *cap ? *cap * 2 : 256;
        *buf = xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

static void append_turn(char **buf, size_t *len, size_t *cap, const char *role, const char *content) {
    append(buf, len, cap, "<|im_start|>");
    append(buf, len, cap, role);
    append(buf, len, cap, "\n");
    append(buf, len, cap, content);
    append(buf, len, cap, "<|im_end|>\n");
}

char *chat_format(const ChatTemplate *ct, const ChatMessage *msgs, int n, int add_generation_prompt) {
    char *buf = NULL;
    size_t len = 0, cap = 0;
    append(&buf, &len, &cap, "");
    // as the template, which adds it while looping over the messages: not for an empty list
    if (ct->default_system && n > 0 && strcmp(msgs[0].role, "system"))
        append_turn(&buf, &len, &cap, "system", ct->default_system);
    for (int i = 0; i < n; i++) append_turn(&buf, &len, &cap, msgs[i].role, msgs[i].content);
    if (add_generation_prompt) append(&buf, &len, &cap, "<|im_start|>assistant\n");
    return buf;
}
