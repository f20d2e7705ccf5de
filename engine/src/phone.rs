//! Phone numbers as people type them: the one normaliser that ingest (a
//! send's `to`, a webhook's `from` and `recipient_id`), the query
//! parameters (`phone=`) and free-text search share, so a number is
//! stored and looked up the same way everywhere.

/// Whether `s` is written like a phone number: digits with the punctuation
/// people type (`+55 (11) 98765-4321`, `+1.415.555.0100`).
fn looks_like_phone(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '(' | ')' | '.' | ' '))
}

/// The digits of a phone number as typed (`+55 (11) 98765-4321` ->
/// `5511987654321`); anything that is not written like a phone number (a
/// business-scoped user id) is kept as it is.
pub fn normalize_phone(s: &str) -> String {
    if looks_like_phone(s) {
        s.chars().filter(char::is_ascii_digit).collect()
    } else {
        s.to_string()
    }
}

/// The digits of a free-text query that is only a phone number typed with
/// punctuation (at least six digits): it is then searched as the number.
pub(crate) fn as_phone_number(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    (looks_like_phone(text) && digits.len() >= 6 && text.chars().any(|c| !c.is_ascii_digit()))
        .then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_normalised_to_digits_and_other_ids_kept() {
        assert_eq!(normalize_phone("+55 (11) 98765-4321"), "5511987654321");
        assert_eq!(normalize_phone("BR.abc123"), "BR.abc123");
        assert_eq!(
            normalize_phone("US.13491208655302741918"),
            "US.13491208655302741918"
        );
    }

    #[test]
    fn phone_numbers_are_recognised_as_typed() {
        assert_eq!(
            as_phone_number("+55 (11) 98765-4321").as_deref(),
            Some("5511987654321")
        );
        assert_eq!(
            as_phone_number("5511987654321"),
            None,
            "plain digits are a word already"
        );
        assert_eq!(as_phone_number("order 12345"), None);
    }
}
