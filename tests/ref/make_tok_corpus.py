#!/usr/bin/env python3
"""Writes tests/data/tok_corpus.jsonl, the tokenizer test corpus (one {"text": ...} per line).

    python3 tests/ref/make_tok_corpus.py            # from the repo root; stdlib only, deterministic

Hand-written hard cases (contractions, digit runs, whitespace runs, many scripts, emoji, combining
marks, odd spaces, control/private-use/unassigned code points, code, special-token look-alikes,
long words, one ~20k-char document) plus seeded random mixes of the same fragments. The output is
byte-identical on every run. JSON is written with ensure_ascii=False, except that U+0085, U+2028,
U+2029 and U+FEFF are written as \\u escapes (some line readers treat them as line breaks/BOMs).
"""
import json
import os
import random
import sys

SEED = 20250101

# ---------------------------------------------------------------------------------------------
# Fragments, grouped by what they stress.
# ---------------------------------------------------------------------------------------------
CONTRACTIONS = [
    "I'm sure it's fine, isn't it? We'll see; they've said they'd come.",
    "IT'S LOUD. WE'LL GO. THEY'VE LEFT. I'M HERE. YOU'D KNOW. DON'T. WE'RE DONE.",
    "It'S mixed: we'Re, they'LL, you'Ve, I'M, she'D, don'T, He'lL.",
    "'s 'S 't 'T 're 'RE 'Re 'rE 've 'VE 'Ve 'm 'M 'll 'LL 'Ll 'd 'D",
    "the cat's hat; the CAT'S HAT; John's and JOHN'S",
    "long s: it'\u017f here, IT'\u017f THERE, '\u017f alone, '\u017f\u017f",
    "curly: it\u2019s, we\u2019re, they\u2019ll, I\u2019ve, don\u2019t \u2018quoted\u2019",
    "''s '''t 's's 'sss 'lll 'dd 'm'm x'y 'ré 'ß 'ſt",
    "rock 'n' roll, 'tis the season, 'twas night, o'clock, y'all'd've",
    "\"She said 'hello'\" and 'goodbye' \u2014 '123 '\u00e9t\u00e9'",
    "Kelvin: 'K \u212a; dotless: 'I \u0131 '\u0130; final sigma: '\u03c3 '\u03c2",
]

DIGITS = [" ".join("1234567890123"[:n] for n in range(1, 13)),
          "".join(str(n % 10) for n in range(1, 40)),
          "a1 b22 c333 d4444 e55555 f666666 g7777777 h88888888 i999999999 j0000000000 k12345678901 l123456789012",
          "1a 22bb 333ccc 4444dddd abc123def4567ghi89 x1y2z3 0x1F 0b1010 1e10 3.14159 -42 +7 1,000,000 1.000.000,00",
          "2024-01-15T12:34:56Z 12:00 PM 555-0199 (555) 010-9999 v1.2.3 192.168.1.1 2\u00b3 \u00bd \u2155",
          "Arabic-Indic \u0660\u0661\u0662\u0663\u0664\u0665 Devanagari \u0966\u0967\u0968\u0969 fullwidth \uff10\uff11\uff12\uff13\uff14 Thai \u0e51\u0e52\u0e53",
          "Roman \u2160\u2161\u2162\u216b superscript x\u00b2 y\u00b9\u2070 subscript H\u2082O circled \u2460\u2461\u2462",
          "007 0000 00000000000000 1000000000000 99999999999999999999",
          "\u0661\u0662\u0663abc\u0664\u0665\u0666 \uff11\uff12\uff13\uff14\uff15\uff16\uff17",
          ]

WHITESPACE = [
    "one two  three   four    five     six      seven",
    "tab\there\t\ttwo tabs\t\t\tthree\t \t mixed",
    "windows\r\nline\r\nendings\r\n\r\nblank",
    "old mac\rcarriage\r\rreturns",
    "three\n\n\nnewlines and four\n\n\n\nand\n\n\n\n\n\nsix",
    "trailing spaces   ",
    "   leading spaces",
    " \n ",
    "a \n b \n\n c  \n  d",
    "space before punctuation , . ! ? ; : ) ] } and  ,  .  !",
    "\n\nstarts with newlines",
    "ends with newline\n",
    "ends with spaces and newline  \n",
    " \t \n \r\n \t\t  \n\n  x",
    "x \u000b y \u000c z \u001c\u001d\u001e\u001f w",
    "        eight spaces then text",
    "word\n    indented four\n\tindented tab\n        indented eight",
]

ODD_SPACES = [
    "nbsp\u00a0between\u00a0\u00a0words \u00a0 mixed",
    "thin\u2009space and hair\u200aspace and em\u2003space and en\u2002space",
    "ideographic\u3000space\u3000\u3000double \u3000 mixed",
    "line\u2028separator and paragraph\u2029separator",
    "next\u0085line control",
    "\ufeffbyte order mark at start and in\ufeffmiddle",
    "zero\u200bwidth\u200cnon\u200djoiner\u2060word\u2061joiner",
    "ogham\u1680space narrow\u202fnbsp math\u205fspace mongolian\u180evowel",
    "soft\u00adhyphen and left\u200eto\u200fright marks \u202aembed\u202c",
    "figure\u2007space punctuation\u2008space six-per-em\u2006space",
]

SCRIPTS = [
    "\u4eca\u5929\u5929\u6c14\u5f88\u597d\uff0c\u6211\u4eec\u53bb\u516c\u56ed\u6563\u6b65\u5427\u3002\u4e2d\u6587\u6d4b\u8bd5",
    "\u6771\u4eac\u306f\u65e5\u672c\u306e\u9996\u90fd\u3067\u3059\u3002\u3072\u3089\u304c\u306a\u3001\u30ab\u30bf\u30ab\u30ca\u3001\u6f22\u5b57\u3002\uff71\uff72\uff73 \u30fc\u30e1\u30fc\u30eb",
    "\ud55c\uad6d\uc5b4 \ud14c\uc2a4\ud2b8\uc785\ub2c8\ub2e4. \uc548\ub155\ud558\uc138\uc694! \u1100\u1161\u11a8 (conjoining jamo)",
    "\u0627\u0644\u0644\u063a\u0629 \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u062c\u0645\u064a\u0644\u0629\u060c \u0645\u064e\u0631\u0652\u062d\u064e\u0628\u064b\u0627 \u0628\u0643\u0645\u061f",
    "\u05e2\u05d1\u05e8\u05d9\u05ea \u05d4\u05d9\u05d0 \u05e9\u05e4\u05d4 \u05e9\u05de\u05d9\u05ea. \u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd",
    "\u0939\u093f\u0928\u094d\u0926\u0940 \u092d\u093e\u0937\u093e \u0926\u0947\u0935\u0928\u093e\u0917\u0930\u0940 \u0932\u093f\u092a\u093f \u092e\u0947\u0902 \u0932\u093f\u0916\u0940 \u091c\u093e\u0924\u0940 \u0939\u0948\u0964 \u0915\u094d\u0937\u0924\u094d\u0930\u093f\u092f",
    "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22\u0e44\u0e21\u0e48\u0e21\u0e35\u0e0a\u0e48\u0e2d\u0e07\u0e27\u0e48\u0e32\u0e07\u0e23\u0e30\u0e2b\u0e27\u0e48\u0e32\u0e07\u0e04\u0e33 \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a",
    "\u1797\u17b6\u179f\u17b6\u1781\u17d2\u1798\u17c2\u179a \u1787\u17b6\u1797\u17b6\u179f\u17b6\u1787\u17b6\u178f\u17b7\u179a\u1794\u179f\u17cb\u1780\u1798\u17d2\u1796\u17bb\u1787\u17b6",
    "\u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u044f\u0437\u044b\u043a: \u0421\u044a\u0435\u0448\u044c \u0436\u0435 \u0435\u0449\u0451 \u044d\u0442\u0438\u0445 \u043c\u044f\u0433\u043a\u0438\u0445 \u0444\u0440\u0430\u043d\u0446\u0443\u0437\u0441\u043a\u0438\u0445 \u0431\u0443\u043b\u043e\u043a. \u0401\u0416\u0418\u041a",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac: \u039e\u03b5\u03c3\u03ba\u03b5\u03c0\u03ac\u03b6\u03c9 \u03c4\u1f74\u03bd \u03c8\u03c5\u03c7\u03bf\u03c6\u03b8\u03cc\u03c1\u03b1 \u03b2\u03b4\u03b5\u03bb\u03c5\u03b3\u03bc\u03af\u03b1. \u03a3\u039f\u03a6\u0399\u0391 \u03c3\u03bf\u03c6\u03af\u03b1\u03c2",
    "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u: Vi\u1ec7t Nam, \u0111\u1eb9p, ph\u1edf, ng\u01b0\u1eddi",
    "Fran\u00e7ais: \u00e0 \u00e9t\u00e9 o\u00f9 \u00e7a, \u0153uvre. Deutsch: Stra\u00dfe, \u00c4rger, \u1e9e. Espa\u00f1ol: \u00bfQu\u00e9 tal? \u00a1Ol\u00e9!",
    "\u0531\u0580\u0574\u0565\u0576\u056b\u0561 \u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8 \u12a0\u121b\u122d\u129b \u0DC3\u0DD2\u0D82\u0DC4\u0DBD \u0ba4\u0bae\u0bbf\u0bb4\u0bcd \u0f56\u0f7c\u0f51\u0f0b\u0f61\u0f72\u0f42",
    "ASCII art: \u250c\u2500\u2500\u2510 \u2502ab\u2502 \u2514\u2500\u2500\u2518 \u2588\u2593\u2592\u2591 \u2190\u2191\u2192\u2193 \u2605\u2606",
    "Titlecase \u01c5 \u01c8 modifier \u02b0\u02b2 \u02bc apostrophe-letter, Lm \u3005 \u30fd, ordinal \u00aa\u00ba",
    "\U00010330\U00010331\U00010332 gothic, \U0001D400\U0001D401\U0001D402 math bold, \U00020000\U00020001 ext-B",
]

EMOJI = [
    "emoji \U0001F600\U0001F601\U0001F602 \U0001F923 hearts \u2764\ufe0f \u2764 \U0001F496",
    "ZWJ family \U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 and \U0001F469\u200d\U0001F4BB coder \U0001F3F3\ufe0f\u200d\U0001F308",
    "flags \U0001F1FA\U0001F1F8 \U0001F1EF\U0001F1F5 \U0001F1E9\U0001F1EA\U0001F1EB\U0001F1F7 subdivision \U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F",
    "skin tones \U0001F44B\U0001F3FB \U0001F44B\U0001F3FC \U0001F44B\U0001F3FD \U0001F44B\U0001F3FE \U0001F44B\U0001F3FF \U0001F9D1\U0001F3FD\u200d\U0001F680",
    "keycaps 1\ufe0f\u20e3 #\ufe0f\u20e3 *\u20e3 text-vs \u263a\ufe0e emoji-vs \u263a\ufe0f",
    "\U0001F436\U0001F431\U0001F42D\U0001F439\U0001F430\U0001F98A\U0001F43B\U0001F43C\U0001F428\U0001F42F\U0001F981\U0001F42E",
]

COMBINING = [
    "e\u0301 vs \u00e9, a\u0308 vs \u00e4, n\u0303 vs \u00f1, A\u030a vs \u00c5 vs \u212b",
    " Vi\u1ec7t and decomposed Vie\u0323\u0302t, Vie\u0302\u0323t",
    "zalgo: Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354L\u0368\u0367\u0369\u0358\u0320G\u0311\u0357\u030e\u0305\u035b\u0341\u0334\u033b\u0348\u034d\u0354\u0339O\u0342\u030c\u030c\u0358\u0328\u0335\u0339\u033b\u031d\u0333!",
    "\u0301leading combining mark, \u0308\u0308 two of them, x\u20dd enclosed",
    "ligatures \ufb01 \ufb02 \ufb00 \ufb03, compat \u2126 \u212b \u2460 \u33a1 \uff21\uff22\uff23 \u1d43",
    "Hangul NFC \uac00 vs NFD \u1100\u1161, \u1104\u1165\u11bb",
]

ODD_CODEPOINTS = [
    "private use \ue000\ue001\uf8ff and plane 15 \U000F0000 \U0010FFFD",
    "unassigned \u0378\u0379 \u0380 and noncharacters \ufdd0 \ufffe \uffff \U0001FFFE \U0010FFFF",
    "replacement char \ufffd\ufffd and object \ufffc",
    "controls \u0001\u0002\u001b[31mred\u001b[0m \u007f del \u0080\u0081\u009f c1",
    "nul\u0000inside and \u0000\u0000 two",
    "tag chars \U000E0001\U000E0041\U000E007F variation \ufe00\U000E0100",
]

CODE = [
    "def fib(n: int) -> int:\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n\nif __name__ == \"__main__\":\n    print(fib(10))  # 55\n",
    "#include <stdio.h>\n\nint main(int argc, char **argv) {\n\tfor (int i = 0; i < argc; ++i) {\n\t\tprintf(\"%d: %s\\n\", i, argv[i]);\n\t}\n\treturn 0;\n}\n",
    "{\"name\": \"cltkit\", \"version\": \"0.1.0\", \"tags\": [\"c\", \"llm\"], \"nested\": {\"a\": 1, \"b\": [true, false, null]}, \"esc\": \"\\u00e9\\n\"}",
    "<!DOCTYPE html>\n<html>\n<body>\n<h1>Title</h1>\n<p class=\"x\">Hello <b>bold</b> and <i>italic</i> &amp; &lt;tags&gt;</p>\n<table><tr><td>1</td></tr></table>\n</body>\n</html>",
    "#!/bin/sh\nset -eu\nfor f in *.txt; do\n  grep -c 'foo' \"$f\" | awk '{s+=$1} END {print s}' >> /tmp/out.log 2>&1\ndone\necho \"${HOME:-/root}\" && ls -la | head -n 3\n",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC LIMIT 10;",
    "    x = [i**2 for i in range(100) if i % 3 == 0]\n    y = {k: v for k, v in zip('abc', (1, 2, 3))}\n    z = lambda *a, **kw: (a, kw)\n",
    "fn main() { let v: Vec<u8> = (0..=255).collect(); println!(\"{:?}\", &v[..4]); } // rust",
    "if (x != y && a <= b || !c) { p->next = q; arr[i++] >>= 2; } /* comment */ #define MAX(a,b) ((a)>(b)?(a):(b))",
    "```python\nprint('hello')\n```\n\n| col1 | col2 |\n|------|------|\n| a    | b    |\n",
]

MATH_URLS = [
    "E = mc\u00b2, \u2211_{i=1}^{n} i = n(n+1)/2, \u222b\u2080\u00b9 x\u00b2 dx = \u2153, \u221a2 \u2248 1.41421, \u2200x\u2203y: x<y, \u03c0r\u00b2, \u2260 \u2264 \u2265 \u00b1 \u00d7 \u00f7 \u221e",
    "$$\\frac{\\partial L}{\\partial w} = \\sum_i (y_i - \\hat{y}_i) x_i$$ and \\(a^2+b^2=c^2\\)",
    "see https://example.com/path/to/page?query=1&x=%20y#frag and http://192.168.0.1:8080/ or ftp://ftp.example.org/pub/",
    "mail me at someone.name+tag@example.co.uk or visit www.example.org/\u00fcber?q=caf\u00e9",
    "2+2=4; 10/3=3.333...; 7*6=42; 2^10=1024; -5 % 3; a==b!=c<=d>=e; x+=1; y->z; i++; --j; ~0; &&||",
]

SPECIALS = [
    "<|begin_of_text|>Hello<|end_of_text|>",
    "text <|endoftext|> more text<|endoftext|><|endoftext|>",
    "<bos>Hi<eos> <start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\n",
    "<s> sentence </s> <unk> <pad> <mask> <unused0> <unused99> <unused6241> [multimodal]",
    "partial: <|endof <|begin_of <|end_of_text| <bos <eos <start_of_turn <s </s <unk <|",
    "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>",
    "<|reserved_special_token_0|><|reserved_special_token_250|><|finetune_right_pad_id|><|python_tag|>",
    "nested <<s>> <</s>> <<|endoftext|>> <|<|endoftext|>|> <bos><bos><eos>",
    "literal \u2581 metaspace \u2581\u2581 two \u2581\u2581\u2581three \u2581word\u2581 end\u2581",
    "byte tokens as text: <0x41> <0x0A> <0xFF> <0x00><0xE2><0x82><0xAC>",
    "html-like added tokens: <table><tr><td>x</td></tr></table> <h1>T</h1> <strong>b</strong> <code>c</code>",
    "Gemma image: <start_of_image><image_soft_token><end_of_image> done",
    "<|endoftext|>",
    "<s>",
    "<unk>",
    "</s></s>",
]

PROSE = [
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun.",
    "One day, she saw a big red ball in the park. She wanted to play with it, but it was not hers.",
    "Tom and his dog Max went to the store. They bought some milk, bread, and a shiny green apple.",
    "\"Can I have some?\" asked Ben. His mom smiled and said, \"Yes, but you have to share with your sister.\"",
    "The bird flew high in the sky. It was happy and free. Then it sang a sweet song for everyone.",
    "Sue was sad because her toy broke. Her friend Tim said, \"Don't worry, we can fix it together!\"",
    "The sun was hot, so the children went to the lake to swim. They splashed and laughed all day.",
    "At night, the moon came out and the stars twinkled. Lily said good night to her teddy bear.",
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.",
    "In 1969, Apollo 11 landed on the Moon; Neil Armstrong said: \"That's one small step for [a] man.\"",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness.",
    "The committee's report\u2014released on Tuesday\u2014recommends a 3.5% increase; critics aren't convinced.",
]

SINGLES = ["", " ", "\n", "\t", "\r\n", "  ", "a", "A", "1", "'", "'s", ".", "\u2581", "\u00e9", "\U0001F600",
           "\u3000", "\u00a0", "\ufeff", "\u200b", "\u0301", "\u4e2d", "<", ">", "\\", "\"", "\x00"]


def long_word(rng):
    letters = "abcdefghijklmnopqrstuvwxyz"
    return "".join(rng.choice(letters) for _ in range(240))


def long_document(rng):
    """~20k characters of mixed prose, mostly English with some of everything else."""
    pool_main = PROSE + CONTRACTIONS[:4]
    pool_misc = DIGITS + WHITESPACE + SCRIPTS + EMOJI + COMBINING + MATH_URLS + CODE[:3]
    parts = []
    total = 0
    while total < 20000:
        if rng.random() < 0.8:
            s = rng.choice(pool_main)
        else:
            s = rng.choice(pool_misc)
        sep = rng.choice([" ", " ", " ", "\n", "\n\n", "  "])
        parts.append(s + sep)
        total += len(s) + len(sep)
    return "".join(parts).rstrip(" ")


def random_mix(rng, pools):
    n = rng.randint(2, 8)
    seps = ["", " ", " ", "  ", "\n", "\n\n", "\t", " \n", "\u00a0", "\u3000", "\r\n", ", "]
    out = []
    for _ in range(n):
        pool = rng.choice(pools)
        frag = rng.choice(pool)
        if len(frag) > 40 and rng.random() < 0.5:  # take a random slice (may cut clusters)
            a = rng.randrange(0, len(frag) - 10)
            frag = frag[a:a + rng.randint(5, 60)]
        out.append(frag)
        out.append(rng.choice(seps))
    return "".join(out)


def build():
    rng = random.Random(SEED)
    docs = []
    docs += SINGLES
    docs += CONTRACTIONS + DIGITS + WHITESPACE + ODD_SPACES + SCRIPTS + EMOJI + COMBINING
    docs += ODD_CODEPOINTS + CODE + MATH_URLS + SPECIALS + PROSE
    # digit runs of each length 1..12, alone, space-prefixed, glued to letters
    for n in range(1, 13):
        d = "".join(str((i * 7 + n) % 10) for i in range(n))
        docs.append(d)
        docs.append(" " + d + " x" + d + "y " + d + ".")
    # space runs 1..6 before words, punctuation, newline, end
    for n in range(1, 7):
        sp = " " * n
        docs.append("a" + sp + "b" + sp + "." + sp + "\n" + sp + "c" + sp)
    docs.append(long_word(rng))
    docs.append("prefix " + long_word(rng) + " suffix " + "\u00e9" * 210 + " " + "\u4e2d" * 205)
    docs.append("x" * 300 + " " + "ab" * 150 + " " + "1" * 250 + " " + "!" * 220 + " " + "\U0001F600" * 100)
    docs.append(" " * 250 + "spaces" + "\n" * 120 + "\t" * 70 + "end")
    docs.append(long_document(rng))
    # TinyStories-like paragraphs
    for _ in range(8):
        k = rng.randint(3, 7)
        docs.append(" ".join(rng.choice(PROSE[:8]) for _ in range(k)))
    # seeded random mixes of every fragment group
    pools = [CONTRACTIONS, DIGITS, WHITESPACE, ODD_SPACES, SCRIPTS, EMOJI, COMBINING, ODD_CODEPOINTS,
             CODE, MATH_URLS, SPECIALS, PROSE, SINGLES]
    for _ in range(50):
        docs.append(random_mix(rng, pools))
    return docs


ESCAPE_RAW = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029", "\ufeff": "\\ufeff"}


def dumps(obj):
    s = json.dumps(obj, ensure_ascii=False)
    for k, v in ESCAPE_RAW.items():
        s = s.replace(k, v)
    return s


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "data", "tok_corpus.jsonl")
    docs = build()
    for d in docs:
        d.encode("utf-8")  # no lone surrogates
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        for d in docs:
            f.write(dumps({"text": d}) + "\n")
    print(f"wrote {len(docs)} documents, {sum(len(d.encode()) for d in docs)} UTF-8 bytes to {out}")


if __name__ == "__main__":
    main()
