//! Phone numbers and the other identifiers of people as they are typed:
//! the one normaliser that ingest (a send's `to`, a webhook's `from` and
//! `recipient_id`), the query parameters (`phone=`, `contact=`) and
//! free-text search share, so an identifier is stored and looked up the
//! same way everywhere; and the other forms a mobile number takes.

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

/// Whether `s` is written like a business-scoped user id: an ISO country
/// code, a period, then letters, digits and periods (`US.13491208655302741918`,
/// `US.ENT.11815799212886844830`).
pub fn is_user_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 3
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_uppercase()
        && b[2] == b'.'
        && b[3..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.')
}

/// A username as stored and looked up: without a leading `@`, lowercase.
pub fn normalize_username(s: &str) -> String {
    s.trim().trim_start_matches('@').to_lowercase()
}

/// The other forms WhatsApp may give the same mobile number, for a search
/// to try (never to join two people): Brazil with and without the ninth
/// digit (`55`, area, `9`, 8 digits; or the account's older `55`, area,
/// 8 digits), Mexico with and without the `1` after `52`, Argentina with
/// and without the `9` after `54`.
pub fn number_variants(digits: &str) -> Vec<String> {
    let mut out = Vec::new();
    if !digits.bytes().all(|c| c.is_ascii_digit()) {
        return out;
    }
    let len = digits.len();
    if let Some(rest) = digits.strip_prefix("55") {
        // rest = area (2) + number
        if len == 13 && rest.as_bytes()[2] == b'9' {
            out.push(format!("55{}{}", &rest[..2], &rest[3..]));
        } else if len == 12 && matches!(rest.as_bytes()[2], b'6'..=b'9') {
            out.push(format!("55{}9{}", &rest[..2], &rest[2..]));
        }
    } else if let Some(rest) = digits.strip_prefix("52") {
        if len == 13 && rest.starts_with('1') {
            out.push(format!("52{}", &rest[1..]));
        } else if len == 12 {
            out.push(format!("521{rest}"));
        }
    } else if let Some(rest) = digits.strip_prefix("54") {
        if len == 13 && rest.starts_with('9') {
            out.push(format!("54{}", &rest[1..]));
        } else if len == 12 {
            out.push(format!("549{rest}"));
        }
    }
    out
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
    fn mobile_numbers_have_their_other_forms() {
        assert_eq!(number_variants("5511981390501"), ["551181390501"]);
        assert_eq!(number_variants("551181390501"), ["5511981390501"]);
        assert_eq!(
            number_variants("551133334444"),
            Vec::<String>::new(),
            "a Brazilian landline has no ninth digit"
        );
        assert_eq!(number_variants("5215512345678"), ["525512345678"]);
        assert_eq!(number_variants("525512345678"), ["5215512345678"]);
        assert_eq!(number_variants("5491123456789"), ["541123456789"]);
        assert_eq!(number_variants("14155550100"), Vec::<String>::new());
    }

    #[test]
    fn user_ids_and_usernames_are_recognised() {
        assert!(is_user_id("US.13491208655302741918"));
        assert!(is_user_id("US.ENT.11815799212886844830"));
        assert!(!is_user_id("5511981390501"));
        assert!(!is_user_id("us.123"));
        assert_eq!(normalize_username("@Joao.Silva"), "joao.silva");
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
