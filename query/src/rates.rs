//! Rate cards: what a message costs by market (country), pricing category,
//! date and, optionally, monthly volume tier. Ticks ships none of Meta's
//! prices as truth; a business loads its own card (CSV or TOML) and the
//! cost report prices billable messages with it.
//!
//! CSV (lines starting with `#` are comments): a header naming `market,category,price,currency,valid_from` (any
//! order) and an optional `tier`; TOML: `[[rate]]` tables with the same
//! keys. `market` is an ISO 3166-1 alpha-2 code or `*` (every market the
//! card does not name); `category` is a pricing category as Meta spells it
//! (`marketing`, `utility`, `authentication-international`...; a hyphen and
//! an underscore match each other); `valid_from` is a date (from 00:00 UTC
//! that day); `tier` is the message of the month, counted per market and
//! category, from which the price applies (`0` or absent: from the first).
//! Prices are kept in millionths of the currency, so sums are exact.

/// Why a rate card was refused: the line (1-based, the header is line 1;
/// for TOML the rate's position) and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate card line {line}, {field}: {message}")]
pub struct RateCardError {
    /// The line (CSV) or the rate's position counting from 1 (TOML).
    pub line: usize,
    /// The column or key at fault.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// One price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    /// ISO 3166-1 alpha-2, or `None` for `*`.
    pub market: Option<String>,
    /// The pricing category, lower case, `-` read as `_`.
    pub category: String,
    /// Millionths of the card's currency per message.
    pub price_micros: i64,
    /// The first day it applies, as UTC milliseconds of its midnight.
    pub valid_from_ms: i64,
    /// The month's message (per market and category, from 0) from which it
    /// applies.
    pub tier: u64,
}

/// A rate card: one currency, its rates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCard {
    /// Its name (`default`, or what it was stored or loaded as).
    pub name: String,
    /// ISO 4217 code, as the card gives it.
    pub currency: String,
    rates: Vec<Rate>,
}

/// How a message was priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    /// Millionths of the currency.
    pub micros: i64,
}

/// A pricing category as rates and webhooks are matched: lower case, `-`
/// as `_` (Meta writes `authentication-international` in `pricing` and
/// `authentication_international` in `conversation.origin.type`).
pub fn category_key(category: &str) -> String {
    category.trim().to_ascii_lowercase().replace('-', "_")
}

impl RateCard {
    /// Reads a card as CSV when its first line has a comma, else as TOML.
    pub fn parse(name: &str, text: &str) -> Result<RateCard, RateCardError> {
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .unwrap_or("");
        if first.contains(',') {
            RateCard::from_csv(name, text)
        } else {
            RateCard::from_toml(name, text)
        }
    }

    /// Reads a CSV card.
    pub fn from_csv(name: &str, text: &str) -> Result<RateCard, RateCardError> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .flexible(false)
            .from_reader(text.as_bytes());
        let header_error = |message: String| RateCardError {
            line: 1,
            field: "header".into(),
            message,
        };
        let headers = reader
            .headers()
            .map_err(|e| header_error(e.to_string()))?
            .clone();
        let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let mut at = [0usize; 5];
        for (slot, name) in ["market", "category", "price", "currency", "valid_from"]
            .iter()
            .enumerate()
        {
            at[slot] = column(name).ok_or_else(|| header_error(format!("no {name} column")))?;
        }
        let tier_at = column("tier");
        let mut fields = Vec::new();
        for (n, record) in reader.records().enumerate() {
            let line = n + 2;
            let record = record.map_err(|e| RateCardError {
                line,
                field: "row".into(),
                message: e.to_string(),
            })?;
            let get = |i: usize| record.get(i).unwrap_or("").to_string();
            fields.push((
                line,
                RawRate {
                    market: get(at[0]),
                    category: get(at[1]),
                    price: get(at[2]),
                    currency: get(at[3]),
                    valid_from: get(at[4]),
                    tier: tier_at.map(get).unwrap_or_default(),
                },
            ));
        }
        RateCard::from_raw(name, fields)
    }

    /// Reads a TOML card (`[[rate]]` tables).
    pub fn from_toml(name: &str, text: &str) -> Result<RateCard, RateCardError> {
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| RateCardError {
            line: 0,
            field: "toml".into(),
            message: e.message().to_string(),
        })?;
        let rates = match doc.get("rate") {
            Some(toml::Value::Array(rates)) => rates.as_slice(),
            Some(_) => {
                return Err(RateCardError {
                    line: 0,
                    field: "rate".into(),
                    message: "use [[rate]] tables".into(),
                })
            }
            None => &[],
        };
        // Dates, numbers and strings are all read as their text.
        let text_of = |rate: &toml::Value, key: &str| match rate.get(key) {
            Some(toml::Value::String(s)) => s.clone(),
            Some(toml::Value::Datetime(d)) => d.to_string(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let raw = rates
            .iter()
            .enumerate()
            .map(|(n, r)| {
                (
                    n + 1,
                    RawRate {
                        market: text_of(r, "market"),
                        category: text_of(r, "category"),
                        price: text_of(r, "price"),
                        currency: text_of(r, "currency"),
                        valid_from: text_of(r, "valid_from"),
                        tier: text_of(r, "tier"),
                    },
                )
            })
            .collect();
        RateCard::from_raw(name, raw)
    }

    fn from_raw(name: &str, raw: Vec<(usize, RawRate)>) -> Result<RateCard, RateCardError> {
        let mut currency: Option<String> = None;
        let mut rates = Vec::with_capacity(raw.len());
        for (line, r) in raw {
            let bad = |field: &str, message: String| RateCardError {
                line,
                field: field.into(),
                message,
            };
            let market = match r.market.as_str() {
                "*" => None,
                m => Some(ticks_engine::country::parse_country(m).ok_or_else(|| {
                    bad(
                        "market",
                        format!("{m:?}: use an ISO 3166-1 alpha-2 code (BR) or *"),
                    )
                })?),
            };
            let category = category_key(&r.category);
            if category.is_empty() {
                return Err(bad("category", "empty: use a pricing category".into()));
            }
            let price_micros = parse_micros(&r.price).ok_or_else(|| {
                bad(
                    "price",
                    format!("{:?}: use a price of at least 0 (0.0625)", r.price),
                )
            })?;
            let code = r.currency.trim().to_ascii_uppercase();
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(bad(
                    "currency",
                    format!("{:?}: use an ISO 4217 code (USD)", r.currency),
                ));
            }
            match &currency {
                Some(c) if *c != code => {
                    return Err(bad(
                        "currency",
                        format!("{code} in a card priced in {c}: use one currency per card"),
                    ))
                }
                Some(_) => {}
                None => currency = Some(code),
            }
            let date: jiff::civil::Date = r.valid_from.trim().parse().map_err(|_| {
                bad(
                    "valid_from",
                    format!("{:?}: use a date (2026-10-01)", r.valid_from),
                )
            })?;
            let valid_from_ms = date
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map_err(|e| bad("valid_from", e.to_string()))?
                .timestamp()
                .as_millisecond();
            let tier = match r.tier.trim() {
                "" => 0,
                t => t.parse().map_err(|_| {
                    bad(
                        "tier",
                        format!("{t:?}: use the month's message count the price starts at"),
                    )
                })?,
            };
            rates.push(Rate {
                market,
                category,
                price_micros,
                valid_from_ms,
                tier,
            });
        }
        let currency = currency.ok_or(RateCardError {
            line: 1,
            field: "rates".into(),
            message: "the card has no rates".into(),
        })?;
        Ok(RateCard {
            name: name.to_string(),
            currency,
            rates,
        })
    }

    /// Every rate.
    pub fn rates(&self) -> &[Rate] {
        &self.rates
    }

    /// The rates a message of this market and category could get, most
    /// specific market first: the market's own, else the card's `*`.
    pub fn rates_for(&self, market: Option<&str>, category: &str) -> Vec<Rate> {
        let category = category_key(category);
        let own: Vec<Rate> = self
            .rates
            .iter()
            .filter(|r| r.category == category && market.is_some() && r.market.as_deref() == market)
            .cloned()
            .collect();
        if !own.is_empty() {
            return own;
        }
        self.rates
            .iter()
            .filter(|r| r.category == category && r.market.is_none())
            .cloned()
            .collect()
    }

    /// The price of a message of this market and category sent at `at_ms`,
    /// the `rank`-th of its market and category that month (from 0):
    /// the rate with the latest `valid_from` not after it, and of those the
    /// highest tier the rank reached. `None` when the card has no rate for it.
    pub fn price(
        &self,
        market: Option<&str>,
        category: &str,
        at_ms: i64,
        rank: u64,
    ) -> Option<Price> {
        price_among(&self.rates_for(market, category), at_ms, rank)
    }
}

/// The price among one market and category's rates (see [`RateCard::price`]).
pub(crate) fn price_among(rates: &[Rate], at_ms: i64, rank: u64) -> Option<Price> {
    let from = rates
        .iter()
        .filter(|r| r.valid_from_ms <= at_ms)
        .map(|r| r.valid_from_ms)
        .max()?;
    rates
        .iter()
        .filter(|r| r.valid_from_ms == from && r.tier <= rank)
        .max_by_key(|r| r.tier)
        .map(|r| Price {
            micros: r.price_micros,
        })
}

struct RawRate {
    market: String,
    category: String,
    price: String,
    currency: String,
    valid_from: String,
    tier: String,
}

/// A decimal price in millionths ("0.0625" -> 62,500), exact: no float.
fn parse_micros(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty()
        || fraction.len() > 6
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction: i64 = format!("{fraction:0<6}").parse().ok()?;
    whole.checked_mul(1_000_000)?.checked_add(fraction)
}

/// Millionths as a number of the currency (for JSON).
pub(crate) fn money(micros: i64) -> f64 {
    micros as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = "market,category,price,currency,valid_from,tier
BR,marketing,0.0625,USD,2025-07-01,
BR,marketing,0.0700,USD,2026-10-01,
BR,utility,0.0080,USD,2025-07-01,0
BR,utility,0.0060,USD,2025-07-01,1000
*,marketing,0.0500,USD,2025-07-01,
*,authentication-international,0.03,USD,2025-07-01,
";

    fn day(d: &str) -> i64 {
        let date: jiff::civil::Date = d.parse().expect("date");
        date.to_zoned(jiff::tz::TimeZone::UTC)
            .expect("zoned")
            .timestamp()
            .as_millisecond()
    }

    #[test]
    fn a_price_is_the_latest_in_force_for_the_market_or_else_the_cards_star() {
        let card = RateCard::parse("default", CARD).expect("card");
        assert_eq!(card.currency, "USD");
        let price = |m: Option<&str>, c: &str, d: &str, rank: u64| {
            card.price(m, c, day(d), rank).map(|p| p.micros)
        };
        assert_eq!(
            price(Some("BR"), "marketing", "2026-09-30", 0),
            Some(62_500)
        );
        assert_eq!(
            price(Some("BR"), "marketing", "2026-10-01", 0),
            Some(70_000)
        );
        assert_eq!(
            price(Some("MX"), "marketing", "2026-10-01", 0),
            Some(50_000)
        );
        assert_eq!(price(None, "marketing", "2026-10-01", 0), Some(50_000));
        assert_eq!(price(Some("BR"), "marketing", "2025-06-30", 0), None);
        assert_eq!(price(Some("BR"), "service", "2026-01-01", 0), None);
        assert_eq!(
            price(Some("JP"), "authentication_international", "2026-01-01", 0),
            Some(30_000),
            "a hyphen and an underscore are one category"
        );
    }

    #[test]
    fn tiers_lower_the_price_from_the_months_nth_message() {
        let card = RateCard::parse("default", CARD).expect("card");
        let at = day("2026-01-15");
        assert_eq!(
            card.price(Some("BR"), "utility", at, 999).map(|p| p.micros),
            Some(8_000)
        );
        assert_eq!(
            card.price(Some("BR"), "utility", at, 1000)
                .map(|p| p.micros),
            Some(6_000)
        );
    }

    #[test]
    fn toml_cards_carry_the_same_fields() {
        let toml = r#"
[[rate]]
market = "BR"
category = "marketing"
price = 0.0625
currency = "usd"
valid_from = 2025-07-01
"#;
        let card = RateCard::parse("t", toml).expect("card");
        assert_eq!(card.currency, "USD");
        assert_eq!(
            card.price(Some("BR"), "marketing", day("2025-08-01"), 0),
            Some(Price { micros: 62_500 })
        );
    }

    #[test]
    fn a_bad_card_is_refused_naming_the_line_and_the_field() {
        let err = |text: &str| RateCard::parse("x", text).expect_err("refused").to_string();
        assert_eq!(
            err("market,category,price,currency,valid_from\nBRA,marketing,0.1,USD,2025-07-01\n"),
            "rate card line 2, market: \"BRA\": use an ISO 3166-1 alpha-2 code (BR) or *"
        );
        assert!(err(
            "market,category,price,currency,valid_from\nBR,marketing,abc,USD,2025-07-01\n"
        )
        .starts_with("rate card line 2, price:"));
        assert!(err("market,category,price,currency,valid_from\nBR,marketing,0.1,USD,2025-07-01\nBR,utility,0.1,EUR,2025-07-01\n")
            .starts_with("rate card line 3, currency:"));
        assert!(
            err("market,category,price,currency,valid_from\nBR,marketing,0.1,USD,July\n")
                .starts_with("rate card line 2, valid_from:")
        );
        assert!(err("market,category,cost\nBR,marketing,0.1\n").contains("no price column"));
        assert!(err("market,category,price,currency,valid_from\n").contains("no rates"));
        assert!(err("[[rate]]\nmarket = 5\n").starts_with("rate card line 1, market:"));
    }

    #[test]
    fn the_example_card_in_the_repository_is_a_valid_card() {
        let text = include_str!("../../server/rate-card.example.csv");
        let card = RateCard::parse("example", text).expect("the example parses");
        assert_eq!(card.currency, "USD");
        assert!(card.rates().len() > 20);
    }

    #[test]
    fn prices_are_exact_decimals() {
        assert_eq!(parse_micros("0.0625"), Some(62_500));
        assert_eq!(parse_micros("1"), Some(1_000_000));
        assert_eq!(parse_micros(".5"), Some(500_000));
        assert_eq!(parse_micros("0.1234567"), None);
        assert_eq!(parse_micros("-1"), None);
        assert_eq!(parse_micros(""), None);
        assert_eq!(parse_micros("1e3"), None);
    }
}
