//! A conservative token estimator, used to fit the context into `maxTokensPerRun` before
//! anything is sent.
//!
//! Claude's tokenizer is not published, so no exact offline count exists for Bedrock's
//! Anthropic models; an estimate that errs high is what keeps the budget honest. The rule
//! mirrors how byte-pair-encoding tokenizers split text (the pre-tokenizer pattern of
//! OpenAI's `cl100k_base`/`o200k_base` in `tiktoken`: letters in words, digits in groups of
//! at most 3, punctuation on its own):
//!
//! - a run of ASCII letters counts `ceil(len / 4)` tokens (English averages about 4 characters
//!   per token, per OpenAI's and Anthropic's tokenizer documentation);
//! - a run of digits counts `ceil(len / 3)`;
//! - every other visible ASCII character (punctuation, symbols) counts 1;
//! - every non-ASCII character counts 1 (tokenizers spend 1–3 tokens on those, but they are
//!   rare in this context, which is mostly ASCII);
//! - whitespace counts nothing, except a newline, which counts 1.
//!
//! The provider reports the real counts after a call; those are what the cost is charged on.

/// Estimated token count of `text` (see the module docs for the rule).
pub fn estimate(text: &str) -> u64 {
    let mut tokens = 0u64;
    let mut letters = 0u64;
    let mut digits = 0u64;
    let flush = |run: &mut u64, per: u64, tokens: &mut u64| {
        if *run > 0 {
            *tokens += run.div_ceil(per);
            *run = 0;
        }
    };
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            flush(&mut digits, 3, &mut tokens);
            letters += 1;
            continue;
        }
        if c.is_ascii_digit() {
            flush(&mut letters, 4, &mut tokens);
            digits += 1;
            continue;
        }
        flush(&mut letters, 4, &mut tokens);
        flush(&mut digits, 3, &mut tokens);
        if c == '\n' || !c.is_whitespace() {
            tokens += 1;
        }
    }
    flush(&mut letters, 4, &mut tokens);
    flush(&mut digits, 3, &mut tokens);
    tokens
}

#[cfg(test)]
mod tests {
    use super::estimate;

    #[test]
    fn counts_words_digits_and_punctuation() {
        assert_eq!(estimate(""), 0);
        assert_eq!(estimate("hello"), 2);
        assert_eq!(estimate("a b"), 2);
        assert_eq!(estimate("12345"), 2);
        // node, -, 12, 0, ., 25, newline
        assert_eq!(estimate("node-12 0.25\n"), 7);
        assert_eq!(estimate("ü"), 1);
    }

    #[test]
    fn never_below_a_quarter_of_the_characters() {
        // The usual "chars / 4" rule of thumb is a floor of this estimator for ASCII text.
        for s in [
            "The quick brown fox",
            "node-1 node-2 3.5 0.01 12",
            "{\"a\":[1,2]}",
        ] {
            assert!(estimate(s) >= (s.len() as u64).div_ceil(4), "{s}");
        }
    }
}
