//! A person's country (ISO 3166-1 alpha-2): from the calling code of a
//! phone number, or from the prefix of a business-scoped user id
//! (`US.13491208655302741918`), the only country signal a person without
//! a number leaves. Rate cards price by it and reports split by it.
//!
//! The table is data, not logic: ITU calling codes, each with the country
//! that owns it (the main one where several share a code, as Guernsey
//! shares `44` with the United Kingdom). North America shares `1`: the
//! area codes of Canada and the Caribbean are listed, the rest is the
//! United States. `7` is Russia but for Kazakhstan's `76` and `77`.

/// Calling code -> country, sorted by code (the numbers are prefixes:
/// "1204" is `1` + Manitoba's area code). Looked up by the longest prefix.
const CALLING_CODES: &[(&str, &str)] = &[
    ("1", "US"),
    ("1204", "CA"),
    ("1226", "CA"),
    ("1236", "CA"),
    ("1242", "BS"),
    ("1246", "BB"),
    ("1249", "CA"),
    ("1250", "CA"),
    ("1263", "CA"),
    ("1264", "AI"),
    ("1268", "AG"),
    ("1284", "VG"),
    ("1289", "CA"),
    ("1306", "CA"),
    ("1340", "VI"),
    ("1343", "CA"),
    ("1345", "KY"),
    ("1354", "CA"),
    ("1365", "CA"),
    ("1367", "CA"),
    ("1368", "CA"),
    ("1382", "CA"),
    ("1403", "CA"),
    ("1416", "CA"),
    ("1418", "CA"),
    ("1428", "CA"),
    ("1431", "CA"),
    ("1437", "CA"),
    ("1438", "CA"),
    ("1441", "BM"),
    ("1450", "CA"),
    ("1468", "CA"),
    ("1473", "GD"),
    ("1474", "CA"),
    ("1506", "CA"),
    ("1514", "CA"),
    ("1519", "CA"),
    ("1548", "CA"),
    ("1579", "CA"),
    ("1581", "CA"),
    ("1584", "CA"),
    ("1587", "CA"),
    ("1604", "CA"),
    ("1613", "CA"),
    ("1639", "CA"),
    ("1647", "CA"),
    ("1649", "TC"),
    ("1658", "JM"),
    ("1664", "MS"),
    ("1670", "MP"),
    ("1671", "GU"),
    ("1672", "CA"),
    ("1683", "CA"),
    ("1684", "AS"),
    ("1705", "CA"),
    ("1709", "CA"),
    ("1721", "SX"),
    ("1742", "CA"),
    ("1753", "CA"),
    ("1758", "LC"),
    ("1767", "DM"),
    ("1778", "CA"),
    ("1780", "CA"),
    ("1782", "CA"),
    ("1784", "VC"),
    ("1787", "PR"),
    ("1807", "CA"),
    ("1809", "DO"),
    ("1819", "CA"),
    ("1825", "CA"),
    ("1829", "DO"),
    ("1849", "DO"),
    ("1867", "CA"),
    ("1868", "TT"),
    ("1869", "KN"),
    ("1873", "CA"),
    ("1876", "JM"),
    ("1879", "CA"),
    ("1902", "CA"),
    ("1905", "CA"),
    ("1939", "PR"),
    ("20", "EG"),
    ("211", "SS"),
    ("212", "MA"),
    ("213", "DZ"),
    ("216", "TN"),
    ("218", "LY"),
    ("220", "GM"),
    ("221", "SN"),
    ("222", "MR"),
    ("223", "ML"),
    ("224", "GN"),
    ("225", "CI"),
    ("226", "BF"),
    ("227", "NE"),
    ("228", "TG"),
    ("229", "BJ"),
    ("230", "MU"),
    ("231", "LR"),
    ("232", "SL"),
    ("233", "GH"),
    ("234", "NG"),
    ("235", "TD"),
    ("236", "CF"),
    ("237", "CM"),
    ("238", "CV"),
    ("239", "ST"),
    ("240", "GQ"),
    ("241", "GA"),
    ("242", "CG"),
    ("243", "CD"),
    ("244", "AO"),
    ("245", "GW"),
    ("246", "IO"),
    ("248", "SC"),
    ("249", "SD"),
    ("250", "RW"),
    ("251", "ET"),
    ("252", "SO"),
    ("253", "DJ"),
    ("254", "KE"),
    ("255", "TZ"),
    ("256", "UG"),
    ("257", "BI"),
    ("258", "MZ"),
    ("260", "ZM"),
    ("261", "MG"),
    ("262", "RE"),
    ("263", "ZW"),
    ("264", "NA"),
    ("265", "MW"),
    ("266", "LS"),
    ("267", "BW"),
    ("268", "SZ"),
    ("269", "KM"),
    ("27", "ZA"),
    ("290", "SH"),
    ("291", "ER"),
    ("297", "AW"),
    ("298", "FO"),
    ("299", "GL"),
    ("30", "GR"),
    ("31", "NL"),
    ("32", "BE"),
    ("33", "FR"),
    ("34", "ES"),
    ("350", "GI"),
    ("351", "PT"),
    ("352", "LU"),
    ("353", "IE"),
    ("354", "IS"),
    ("355", "AL"),
    ("356", "MT"),
    ("357", "CY"),
    ("358", "FI"),
    ("359", "BG"),
    ("36", "HU"),
    ("370", "LT"),
    ("371", "LV"),
    ("372", "EE"),
    ("373", "MD"),
    ("374", "AM"),
    ("375", "BY"),
    ("376", "AD"),
    ("377", "MC"),
    ("378", "SM"),
    ("380", "UA"),
    ("381", "RS"),
    ("382", "ME"),
    ("383", "XK"),
    ("385", "HR"),
    ("386", "SI"),
    ("387", "BA"),
    ("389", "MK"),
    ("39", "IT"),
    ("40", "RO"),
    ("41", "CH"),
    ("420", "CZ"),
    ("421", "SK"),
    ("423", "LI"),
    ("43", "AT"),
    ("44", "GB"),
    ("45", "DK"),
    ("46", "SE"),
    ("47", "NO"),
    ("48", "PL"),
    ("49", "DE"),
    ("500", "FK"),
    ("501", "BZ"),
    ("502", "GT"),
    ("503", "SV"),
    ("504", "HN"),
    ("505", "NI"),
    ("506", "CR"),
    ("507", "PA"),
    ("508", "PM"),
    ("509", "HT"),
    ("51", "PE"),
    ("52", "MX"),
    ("53", "CU"),
    ("54", "AR"),
    ("55", "BR"),
    ("56", "CL"),
    ("57", "CO"),
    ("58", "VE"),
    ("590", "GP"),
    ("591", "BO"),
    ("592", "GY"),
    ("593", "EC"),
    ("594", "GF"),
    ("595", "PY"),
    ("596", "MQ"),
    ("597", "SR"),
    ("598", "UY"),
    ("599", "CW"),
    ("60", "MY"),
    ("61", "AU"),
    ("62", "ID"),
    ("63", "PH"),
    ("64", "NZ"),
    ("65", "SG"),
    ("66", "TH"),
    ("670", "TL"),
    ("672", "NF"),
    ("673", "BN"),
    ("674", "NR"),
    ("675", "PG"),
    ("676", "TO"),
    ("677", "SB"),
    ("678", "VU"),
    ("679", "FJ"),
    ("680", "PW"),
    ("681", "WF"),
    ("682", "CK"),
    ("683", "NU"),
    ("685", "WS"),
    ("686", "KI"),
    ("687", "NC"),
    ("688", "TV"),
    ("689", "PF"),
    ("690", "TK"),
    ("691", "FM"),
    ("692", "MH"),
    ("7", "RU"),
    ("76", "KZ"),
    ("77", "KZ"),
    ("81", "JP"),
    ("82", "KR"),
    ("84", "VN"),
    ("850", "KP"),
    ("852", "HK"),
    ("853", "MO"),
    ("855", "KH"),
    ("856", "LA"),
    ("86", "CN"),
    ("880", "BD"),
    ("886", "TW"),
    ("90", "TR"),
    ("91", "IN"),
    ("92", "PK"),
    ("93", "AF"),
    ("94", "LK"),
    ("95", "MM"),
    ("960", "MV"),
    ("961", "LB"),
    ("962", "JO"),
    ("963", "SY"),
    ("964", "IQ"),
    ("965", "KW"),
    ("966", "SA"),
    ("967", "YE"),
    ("968", "OM"),
    ("970", "PS"),
    ("971", "AE"),
    ("972", "IL"),
    ("973", "BH"),
    ("974", "QA"),
    ("975", "BT"),
    ("976", "MN"),
    ("977", "NP"),
    ("98", "IR"),
    ("992", "TJ"),
    ("993", "TM"),
    ("994", "AZ"),
    ("995", "GE"),
    ("996", "KG"),
    ("998", "UZ"),
];

/// The country of an international number, digits only (`5511981390501`
/// -> `BR`). `None` for a number no calling code starts (a national number
/// dialled with its trunk `0`, say) or one too short to be a number.
pub fn country_of_number(digits: &str) -> Option<&'static str> {
    if digits.len() < 7 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Calling codes are 1-3 digits; North America's area codes make 4.
    (1..=4).rev().find_map(|n| {
        let prefix = digits.get(..n)?;
        CALLING_CODES
            .binary_search_by(|(code, _)| code.cmp(&prefix))
            .ok()
            .map(|i| CALLING_CODES[i].1)
    })
}

/// The country of a business-scoped user id: its two-letter prefix
/// (`US.13491208655302741918` -> `US`).
pub fn country_of_user_id(id: &str) -> Option<&str> {
    let (prefix, rest) = id.split_once('.')?;
    (prefix.len() == 2 && prefix.bytes().all(|b| b.is_ascii_uppercase()) && !rest.is_empty())
        .then_some(prefix)
}

/// Parses a country as a filter gives it: two letters, either case.
pub fn parse_country(text: &str) -> Option<String> {
    (text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| text.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_so_it_can_be_searched() {
        assert!(CALLING_CODES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn numbers_are_placed_by_their_longest_calling_code() {
        assert_eq!(country_of_number("5511981390501"), Some("BR"));
        assert_eq!(country_of_number("551181390501"), Some("BR"));
        assert_eq!(country_of_number("5215512345678"), Some("MX"));
        assert_eq!(country_of_number("5491123456789"), Some("AR"));
        assert_eq!(country_of_number("819012345678"), Some("JP"));
        assert_eq!(country_of_number("14155550123"), Some("US"));
        assert_eq!(country_of_number("14165550123"), Some("CA"));
        assert_eq!(country_of_number("18095550123"), Some("DO"));
        assert_eq!(country_of_number("79161234567"), Some("RU"));
        assert_eq!(country_of_number("77011234567"), Some("KZ"));
        assert_eq!(country_of_number("351912345678"), Some("PT"));
        assert_eq!(country_of_number("34612345678"), Some("ES"));
    }

    #[test]
    fn what_is_not_an_international_number_has_no_country() {
        assert_eq!(country_of_number("01198139050"), None);
        assert_eq!(country_of_number("5511"), None);
        assert_eq!(country_of_number("US.134912086"), None);
        assert_eq!(country_of_number(""), None);
    }

    #[test]
    fn user_ids_name_their_country_in_their_prefix() {
        assert_eq!(country_of_user_id("US.13491208655302741918"), Some("US"));
        assert_eq!(country_of_user_id("BR.9981"), Some("BR"));
        assert_eq!(country_of_user_id("13491208655302741918"), None);
        assert_eq!(country_of_user_id("usa.1"), None);
        assert_eq!(country_of_user_id("US."), None);
    }

    #[test]
    fn filters_take_either_case() {
        assert_eq!(parse_country("br").as_deref(), Some("BR"));
        assert_eq!(parse_country("BR").as_deref(), Some("BR"));
        assert_eq!(parse_country("BRA"), None);
        assert_eq!(parse_country("5"), None);
    }
}
