// chat.h — chat prompts without a Jinja engine. Hugging Face chat templates are Jinja programs;
// instead of running them we recognise the one format our explainer needs, ChatML
// (`<|im_start|>{role}\n{content}<|im_end|>\n` per message, `<|im_start|>assistant\n` to prompt
// the answer), and read from the template text the default system message it inserts when the
// conversation has none (SmolLM2 and Qwen 2 do). Anything else is refused with a clear error.
#pragma once

#include "err.h"

typedef struct {
    const char *role, *content;
} ChatMessage;

typedef struct {
    char *default_system;  // inserted when the first message is not "system"; NULL if none
} ChatTemplate;

// The chat template of a Hugging Face model directory: tokenizer_config.json "chat_template" (a
// string, or a list of {name, template} of which "default" is used), else chat_template.jinja.
// 0 with *tmpl a malloc'd string, or NULL when the model has none; -1 on an unreadable file.
int chat_template_read(const char *model_dir, char **tmpl, Error *e);
// Recognises a ChatML template; -1 ("not ChatML" / unsupported variant) otherwise.
int chat_template_parse(ChatTemplate *ct, const char *tmpl, Error *e);
void chat_template_free(ChatTemplate *ct);
// The prompt text for messages, as apply_chat_template(..., tokenize=False) gives it; with
// add_generation_prompt the assistant turn is opened. malloc'd.
char *chat_format(const ChatTemplate *ct, const ChatMessage *msgs, int n, int add_generation_prompt);
