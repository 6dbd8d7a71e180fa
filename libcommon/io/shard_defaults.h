// shard_defaults.h — the defaults of every tool that writes shards (tok encode, fwd-acts,
// quant-acts) and of the shard writers given 0, one constant each, so that a default is the same
// in every tool and its --help prints it from here (SHARD_STR).
#pragma once

// zstd level of token and activation shards: level 1 keeps the compression of an activation
// shard (byte planes of bf16/int8, the bulk of the bytes) ahead of the forward pass on one core;
// higher levels gain a few percent at several times the time.
#define SHARD_ZSTD_LEVEL 1
// Tokens per chunk, a unit of compression and of reading. The two formats differ on purpose: a
// token shard's token is 4 bytes, an activation shard's one is 2 x layers x d_model values (a
// 4096-token chunk of SmolLM2's 30 layers is ~1.5 GB of fp32 decoded), so each has its own size.
#define TOKSHARD_CHUNK_TOKENS 65536
#define ACTSHARD_CHUNK_TOKENS 4096

#define SHARD_STR_(x) #x
#define SHARD_STR(x) SHARD_STR_(x)  // a default as text for a --help string
