//! What Meta's error codes and the HTTP codes of a send mean, and what a
//! user should do about them (`shared/CLOUD_API.md`, section 3).

use serde::Serialize;

/// The meaning of a code and the action to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CodeInfo {
    /// What happened, in a few words.
    pub meaning: &'static str,
    /// What the user does about it.
    pub action: &'static str,
}

const fn info(meaning: &'static str, action: &'static str) -> Option<CodeInfo> {
    Some(CodeInfo { meaning, action })
}

/// The meaning of a Meta error code, when it is one users meet.
pub fn meta_error_info(code: i64) -> Option<CodeInfo> {
    match code {
        0 | 190 => info("access token invalid or expired", "regenerate the token"),
        3 | 10 | 200..=299 | 131005 => {
            info("permission missing", "fix the system user's permissions")
        }
        4 | 80007 | 130429 => info("rate limit hit", "back off and retry"),
        100 | 131008 | 131009 | 135000 => info("bad or missing parameter", "fix the request"),
        131000 | 131016 | 1 | 2 => info("Meta-side error or downtime", "retry later"),
        131026 => info(
            "undeliverable: not on WhatsApp, old app, or terms not accepted",
            "reach the user another way",
        ),
        131047 | 470 => info(
            "more than 24 h since the user last wrote: a template is needed",
            "send a template",
        ),
        131048 => info("spam rate limit", "improve quality"),
        131049 => info(
            "per-user marketing limit (healthy ecosystem)",
            "wait 24 h or more",
        ),
        131050 => info("user stopped marketing messages", "do not retry"),
        131051 => info("unsupported message type", "fix the message"),
        131052 | 131053 => info("media upload or download error", "fix the media"),
        131056 => info(
            "too many messages to the same user",
            "slow down for that user",
        ),
        131042 => info("payment problem", "fix billing"),
        132000 => info("template parameter count mismatch", "fix the template"),
        132001 => info("template missing or not approved", "fix the template"),
        132005 => info("template text too long", "fix the template"),
        132007 => info("template violates policy", "fix the template"),
        132012 => info("template parameter format mismatch", "fix the template"),
        132015 => info("template paused", "fix the template"),
        132016 => info("template disabled", "fix the template"),
        133000..=133999 => info(
            "phone number not registered or registration problem",
            "fix the number's setup",
        ),
        368 | 131031 => info("account restricted or locked for policy", "appeal"),
        130472 => info(
            "the user is in Meta's marketing-message experiment group: not delivered, not charged",
            "reach the user another way, or wait until they write (then a reply in the window goes through)",
        ),
        130497 => info(
            "the business may not message users in this country",
            "do not send to this country",
        ),
        131021 => info("the recipient is the sender's own number", "fix the recipient"),
        131037 => info(
            "the phone number's display name is not approved",
            "get the display name approved",
        ),
        131045 => info(
            "the phone number's certificate or registration is not valid",
            "register the number again",
        ),
        131057 => info(
            "the account is in maintenance mode (for example, a throughput upgrade)",
            "retry later",
        ),
        132068 => info("the flow is blocked", "fix the flow"),
        132069 => info("the flow is throttled", "slow down sends of this flow"),
        _ => None,
    }
}

/// One code of each meaning [`meta_error_info`] knows, for the code table
/// the API serves (`GET /v1/codes`).
pub const KNOWN_META_CODES: [i64; 46] = [
    0, 1, 2, 3, 4, 10, 100, 190, 200, 368, 470, 80007, 130429, 130472, 130497, 131000, 131005,
    131008, 131009, 131016, 131021, 131026, 131031, 131037, 131042, 131045, 131047, 131048, 131049,
    131050, 131051, 131052, 131053, 131056, 131057, 132000, 132001, 132005, 132007, 132012, 132015,
    132016, 132068, 132069, 133010, 135000,
];

/// The meaning of the HTTP status of a send.
pub fn http_code_info(code: u16) -> Option<CodeInfo> {
    match code {
        200 => info(
            "accepted by the Cloud API (not yet delivered)",
            "wait for status webhooks",
        ),
        400 => info("bad parameters or template", "fix the request"),
        401 => info("expired or invalid token", "regenerate the token"),
        403 => info("missing permission", "fix the system user's permissions"),
        404 => info("wrong phone number id", "check the phone number id"),
        429 => info("rate limited", "back off and retry"),
        500..=599 => info("Meta-side error", "retry later"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guide_table_is_covered() {
        for code in [
            0, 190, 3, 10, 250, 131005, 4, 80007, 130429, 100, 131008, 131009, 135000, 131000,
            131016, 1, 2, 131026, 131047, 131048, 131049, 131050, 131051, 131052, 131053, 131056,
            131042, 132000, 132001, 132005, 132007, 132012, 132015, 132016, 133010, 368, 131031,
            470,
        ] {
            assert!(meta_error_info(code).is_some(), "{code}");
        }
        assert_eq!(meta_error_info(470), meta_error_info(131047));
        assert!(meta_error_info(999_999).is_none());
        assert_eq!(
            http_code_info(429).map(|i| i.action),
            Some("back off and retry")
        );
    }

    #[test]
    fn every_code_in_the_table_has_a_meaning_and_an_action() {
        for code in KNOWN_META_CODES {
            let i = meta_error_info(code).unwrap_or_else(|| panic!("{code} has no meaning"));
            assert!(!i.meaning.is_empty() && !i.action.is_empty(), "{code}");
        }
        // The codes of today's traffic (CLOUD_API.md, section 5).
        for code in [130472, 131049, 131050, 131056, 130429] {
            assert!(meta_error_info(code).is_some(), "{code}");
        }
        assert_eq!(meta_error_info(999_999), None);
    }
}
