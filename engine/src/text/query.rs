//! A user's free text as a tantivy query: words, `"phrases"`, `prefix*`,
//! and a phone number or wamid as typed.

use super::schema::{Fields, MAX_QUERY_TERMS};
use crate::error::{Error, Result};
use tantivy::query::{BooleanQuery, Occur, PhraseQuery, Query, RegexQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TokenStream;
use tantivy::{Index, Term};

/// A user's query against the index's text fields.
pub(super) struct QueryBuilder<'a> {
    pub(super) index: &'a Index,
    pub(super) fields: Fields,
}

impl QueryBuilder<'_> {
    pub(super) fn tokens(&self, s: &str) -> Result<Vec<String>> {
        let mut analyzer = self
            .index
            .tokenizer_for_field(self.fields.text)
            .map_err(|e| Error::Text(e.to_string()))?;
        let mut stream = analyzer.token_stream(s);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        Ok(out)
    }

    /// Builds the query: every clause must match. A clause is a quoted
    /// phrase, a `prefix*`, or a word that matches as a tokenized word or as
    /// a whole identifier (wamid, correlation id). A query that reads as a
    /// phone number (digits with `+ - ( ) .` and spaces) is one clause of its
    /// digits, so a number matches however it was typed.
    pub(super) fn build_query(&self, text: &str) -> Result<Option<Box<dyn Query>>> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if let Some(digits) = crate::phone::as_phone_number(text) {
            clauses.push((Occur::Must, self.word_clause(&digits)?));
            return Ok(Some(Box::new(BooleanQuery::new(clauses))));
        }
        for part in split_query(text).into_iter().take(MAX_QUERY_TERMS) {
            let clause: Box<dyn Query> = match part {
                QueryPart::Phrase(p) => {
                    let toks = self.tokens(&p)?;
                    match toks.len() {
                        0 => continue,
                        1 => term_query(f.text, &toks[0]),
                        _ => Box::new(PhraseQuery::new(
                            toks.iter()
                                .map(|t| Term::from_field_text(f.text, t))
                                .collect(),
                        )),
                    }
                }
                QueryPart::Prefix(p) => {
                    let toks = self.tokens(&p)?;
                    let Some(last) = toks.last() else { continue };
                    let mut must: Vec<(Occur, Box<dyn Query>)> = toks[..toks.len() - 1]
                        .iter()
                        .map(|t| (Occur::Must, term_query(f.text, t)))
                        .collect();
                    let pattern = format!("{}.*", regex_escape(last));
                    let re = RegexQuery::from_pattern(&pattern, f.text)?;
                    let exact_re =
                        RegexQuery::from_pattern(&format!("{}.*", regex_escape(&p)), f.exact)?;
                    must.push((
                        Occur::Must,
                        Box::new(BooleanQuery::new(vec![
                            (Occur::Should, Box::new(re) as Box<dyn Query>),
                            (Occur::Should, Box::new(exact_re)),
                        ])),
                    ));
                    Box::new(BooleanQuery::new(must))
                }
                QueryPart::Word(w) => self.word_clause(&w)?,
            };
            clauses.push((Occur::Must, clause));
        }
        if clauses.is_empty() {
            return Ok(None);
        }
        Ok(Some(Box::new(BooleanQuery::new(clauses))))
    }

    /// Whether the query matches a phrase (two or more tokens in a row):
    /// reading its postings then means reading positions, document by
    /// document, so probing the candidates pays sooner than for words.
    pub(super) fn reads_positions(&self, text: &str) -> Result<bool> {
        for part in split_query(text.trim()) {
            let (QueryPart::Word(t) | QueryPart::Phrase(t) | QueryPart::Prefix(t)) = part;
            if self.tokens(&t)?.len() > 1 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(super) fn word_clause(&self, word: &str) -> Result<Box<dyn Query>> {
        let f = self.fields;
        let toks = self.tokens(word)?;
        let mut should: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Should, term_query(f.exact, word))];
        match toks.len() {
            0 => {}
            1 => should.push((Occur::Should, term_query(f.text, &toks[0]))),
            _ => should.push((
                Occur::Should,
                Box::new(PhraseQuery::new(
                    toks.iter()
                        .map(|t| Term::from_field_text(f.text, t))
                        .collect(),
                )),
            )),
        }
        Ok(Box::new(BooleanQuery::new(should)))
    }
}

pub(super) fn term_query(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::Basic,
    ))
}

pub(super) fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out
}

#[derive(Debug, PartialEq)]
pub(super) enum QueryPart {
    Word(String),
    Phrase(String),
    Prefix(String),
}

pub(super) fn split_query(text: &str) -> Vec<QueryPart> {
    let mut parts = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' {
            chars.next();
            let phrase: String = chars.by_ref().take_while(|&c| c != '"').collect();
            if !phrase.trim().is_empty() {
                parts.push(QueryPart::Phrase(phrase));
            }
            continue;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            word.push(c);
            chars.next();
        }
        if let Some(stem) = word.strip_suffix('*') {
            if !stem.is_empty() {
                parts.push(QueryPart::Prefix(stem.to_string()));
            }
        } else {
            parts.push(QueryPart::Word(word));
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_splits_into_words_phrases_and_prefixes() {
        assert_eq!(
            split_query(r#"black "friday sale" camp* x"#),
            vec![
                QueryPart::Word("black".into()),
                QueryPart::Phrase("friday sale".into()),
                QueryPart::Prefix("camp".into()),
                QueryPart::Word("x".into()),
            ]
        );
    }
}
