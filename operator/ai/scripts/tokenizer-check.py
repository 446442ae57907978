#!/usr/bin/env python3
"""Cross-check the token estimator against real tokenizers.

Usage: tokenizer-check.py FILE...   (files written by the `measure` test with FW_AI_DUMP_DIR)

Needs `tiktoken` and `tokenizers` (pip) and the encodings available offline: point
TIKTOKEN_CACHE_DIR at a directory holding the cl100k_base / o200k_base files, and
CLAUDE_TOKENIZER at Anthropic's legacy `tokenizer.json` (shipped by the `anthropic` Python SDK
before 0.39 and by `litellm`). Prints, per file, the estimator's count and each tokenizer's.
"""
import os
import re
import sys


def estimate(text: str) -> int:
    """Same rule as ai/src/tokens.rs."""
    n = 0
    for m in re.finditer(r"[A-Za-z]+|[0-9]+|\n|[^\sA-Za-z0-9]|\s", text):
        t = m.group(0)
        if t.isascii() and t.isalpha():
            n += -(-len(t) // 4)
        elif t.isdigit() and t.isascii():
            n += -(-len(t) // 3)
        elif t == "\n":
            n += 1
        elif not t.isspace():
            n += 1
    return n


def main() -> None:
    import tiktoken
    from tokenizers import Tokenizer

    encs = {name: tiktoken.get_encoding(name) for name in ("cl100k_base", "o200k_base")}
    claude = None
    if os.environ.get("CLAUDE_TOKENIZER"):
        claude = Tokenizer.from_file(os.environ["CLAUDE_TOKENIZER"])
    print("| file | chars | estimator | cl100k_base | o200k_base | claude (legacy) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for path in sys.argv[1:]:
        text = open(path, encoding="utf-8").read()
        row = [os.path.basename(path), str(len(text)), str(estimate(text))]
        row += [str(len(e.encode(text, disallowed_special=()))) for e in encs.values()]
        row.append(str(len(claude.encode(text).ids)) if claude else "-")
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
