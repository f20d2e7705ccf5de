//! Free text for a backend without tantivy (ClickHouse): an entry's words
//! as the index tokenizes them, and a user's query as the clauses the
//! index's query is built from, so that both backends read a query alike.
//!
//! An entry's words are kept as one string: each text value (a send's
//! text, a status's error, a reply) as ` word word ` (lowercased tokens,
//! each between single spaces), the values joined by `|`. A word is then
//! the substring ` word `, a phrase ` word word ` (never across two
//! values, as the index's position gap keeps it), a prefix ` pre`. Tokens
//! are letters and digits only, so neither a space nor `|` is ever in one.

use super::query::{split_query, QueryPart};
use super::schema::MAX_QUERY_TERMS;
use tantivy::tokenizer::{TextAnalyzer, TokenizerManager};

/// One clause of a free-text query; an entry matches when it meets every
/// clause of the query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextClause {
    /// A word as typed: an identifier equal to it (wamid, phone digits,
    /// correlation or conversation id), or its tokens in a row.
    Word {
        /// The word as typed.
        exact: String,
        /// Its tokens (several for `order-123`).
        tokens: Vec<String>,
    },
    /// A `"quoted phrase"`: its tokens in a row.
    Phrase(Vec<String>),
    /// A `prefix*`: every token but the last anywhere, a token starting
    /// with the last one; or an identifier starting with it as typed.
    Prefix {
        /// Tokens that must be there as words.
        words: Vec<String>,
        /// What a token must start with.
        last: String,
        /// What an identifier must start with.
        exact: String,
    },
}

/// The index's `text` field's analyzer (tantivy's "default"), made once: a
/// `TokenizerManager` builds every tokenizer it has.
fn analyzer() -> TextAnalyzer {
    static DEFAULT: std::sync::OnceLock<TextAnalyzer> = std::sync::OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            TokenizerManager::default()
                .get("default")
                .unwrap_or_else(|| {
                    TextAnalyzer::from(tantivy::tokenizer::SimpleTokenizer::default())
                })
        })
        .clone()
}

/// The tokens the index makes of `s`: lowercased words of letters and
/// digits, none longer than 40 bytes.
pub fn tokens(s: &str) -> Vec<String> {
    tokens_with(&mut analyzer(), s)
}

fn tokens_with(analyzer: &mut TextAnalyzer, s: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(s);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// The clauses of a user's free text, as the index's query reads it: a
/// text that reads as a phone number is one word of its digits.
pub fn text_clauses(text: &str) -> Vec<TextClause> {
    let text = text.trim();
    if text.is_empty() {
        return Vec::new();
    }
    if let Some(digits) = crate::phone::as_phone_number(text) {
        let tokens = tokens(&digits);
        return vec![TextClause::Word {
            exact: digits,
            tokens,
        }];
    }
    let mut out = Vec::new();
    for part in split_query(text).into_iter().take(MAX_QUERY_TERMS) {
        match part {
            QueryPart::Word(w) => {
                let tokens = tokens(&w);
                out.push(TextClause::Word { exact: w, tokens });
            }
            QueryPart::Phrase(p) => {
                let tokens = tokens(&p);
                if !tokens.is_empty() {
                    out.push(TextClause::Phrase(tokens));
                }
            }
            QueryPart::Prefix(p) => {
                let mut words = tokens(&p);
                let Some(last) = words.pop() else { continue };
                out.push(TextClause::Prefix {
                    words,
                    last,
                    exact: p,
                });
            }
        }
    }
    out
}

/// The words of an entry's text values in the form the module describes.
pub fn words_of<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut analyzer = analyzer();
    let mut out = String::new();
    for value in values {
        let toks = tokens_with(&mut analyzer, value);
        if toks.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('|');
        }
        out.push(' ');
        for t in toks {
            out.push_str(&t);
            out.push(' ');
        }
    }
    out
}

/// `tokens` as the substring that finds them in a row in [`words_of`].
pub fn in_a_row(tokens: &[String]) -> String {
    format!(" {} ", tokens.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_values_apart_so_a_phrase_cannot_span_two() {
        let words = words_of(["Pedido ENTREGUE hoje", "", "Número inválido"]);
        assert_eq!(words, " pedido entregue hoje | número inválido ");
        assert!(words.contains(&in_a_row(&["entregue".into(), "hoje".into()])));
        assert!(!words.contains(&in_a_row(&["hoje".into(), "número".into()])));
    }

    #[test]
    fn a_query_reads_as_the_index_reads_it() {
        assert_eq!(
            text_clauses(r#"Black "friday SALE" camp* order-12"#),
            vec![
                TextClause::Word {
                    exact: "Black".into(),
                    tokens: vec!["black".into()]
                },
                TextClause::Phrase(vec!["friday".into(), "sale".into()]),
                TextClause::Prefix {
                    words: vec![],
                    last: "camp".into(),
                    exact: "camp".into()
                },
                TextClause::Word {
                    exact: "order-12".into(),
                    tokens: vec!["order".into(), "12".into()]
                },
            ]
        );
        // A number however typed is its digits.
        assert_eq!(
            text_clauses("+55 (11) 98765-4321"),
            vec![TextClause::Word {
                exact: "5511987654321".into(),
                tokens: vec!["5511987654321".into()]
            }]
        );
    }
}
