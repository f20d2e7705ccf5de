//! Template definitions as the Graph API answers them
//! (`GET /{version}/{WABA_ID}/message_templates`), parsed into the engine's
//! typed [`TemplateDef`]s.
//!
//! A page is `{data: [{id, name, language, status, category,
//! parameter_format?, components: [...]}], paging: {cursors, next?}}`; a
//! bare array of definitions, or one definition, is taken too (a file a
//! person wrote). A definition that cannot be used (no name, no body) is
//! reported by its path and the others are kept. Ticks' one extension:
//! `ticks_first_seen` (RFC 3339 or epoch seconds) on a definition says
//! when it came into force, for imports of a template's history.

use crate::error::ParseError;
use crate::json::{dig_str, index, join, kind, Json};
use crate::time::parse_instant;
use ticks_engine::templates::{
    Button, ButtonKind, Header, MediaKind, ParameterFormat, TemplateContent, TemplateDef,
};

/// One page of definitions.
#[derive(Clone, Debug, Default)]
pub struct TemplatePage {
    /// The definitions, each with the time it came into force when the
    /// page says (`ticks_first_seen`).
    pub templates: Vec<(TemplateDef, Option<i64>)>,
    /// The definitions left out, by path, and why.
    pub rejected: Vec<ParseError>,
    /// `paging.next`: the URL of the next page.
    pub next: Option<String>,
}

/// Parses one page, a list of pages (several answers saved together: paths
/// `[p].data[i]`), a bare list of definitions, or one definition.
pub fn parse_template_page(raw: &[u8]) -> Result<TemplatePage, ParseError> {
    let doc = Json::parse(raw).map_err(|e| ParseError::Json(e.to_string()))?;
    let mut page = TemplatePage::default();
    match &doc {
        Json::Array(pages) if pages.iter().any(|p| p.get("data").is_some()) => {
            for (p, one) in pages.iter().enumerate() {
                read_page(one, &index("", p), &mut page)?;
            }
        }
        _ => read_page(&doc, "", &mut page)?,
    }
    Ok(page)
}

/// Adds the definitions of one page at `base` to `page`.
fn read_page(doc: &Json<'_>, base: &str, page: &mut TemplatePage) -> Result<(), ParseError> {
    let data = join(base, "data");
    // The items, and the path they are indexed under (`None`: the document
    // is one definition, at `base` itself).
    let (items, items_at): (Vec<&Json<'_>>, Option<&str>) = match doc {
        Json::Array(items) => (items.iter().collect(), Some(base)),
        Json::Object(_) => match doc.get("data") {
            Some(Json::Array(items)) => (items.iter().collect(), Some(&data)),
            Some(other) => {
                return Err(ParseError::field(
                    data.clone(),
                    format!("expected an array of templates, found {}", kind(other)),
                ))
            }
            None => (vec![doc], None),
        },
        other => {
            return Err(ParseError::field(
                base,
                format!("expected a page of templates, found {}", kind(other)),
            ))
        }
    };
    if let Some(next) = dig_str(doc, &["paging", "next"]) {
        page.next = Some(next);
    }
    for (i, item) in items.into_iter().enumerate() {
        let path = items_at.map_or_else(|| base.to_string(), |at| index(at, i));
        match parse_template(item, &path) {
            Ok(t) => page.templates.push(t),
            Err(e) => page.rejected.push(e),
        }
    }
    Ok(())
}

fn parse_template(t: &Json<'_>, path: &str) -> Result<(TemplateDef, Option<i64>), ParseError> {
    if !t.is_object() {
        return Err(ParseError::field(
            path,
            format!("expected a template object, found {}", kind(t)),
        ));
    }
    let required = |key: &str| {
        dig_str(t, &[key])
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| ParseError::field(join(path, key), "missing"))
    };
    let name = required("name")?;
    let language = required("language")?;
    let parameter_format = match dig_str(t, &["parameter_format"]).as_deref() {
        Some(f) if f.eq_ignore_ascii_case("named") => ParameterFormat::Named,
        _ => ParameterFormat::Positional,
    };
    let mut content = TemplateContent {
        parameter_format,
        ..TemplateContent::default()
    };
    let components = match t.get("components") {
        Some(Json::Array(c)) => c.as_slice(),
        Some(other) => {
            return Err(ParseError::field(
                join(path, "components"),
                format!("expected an array, found {}", kind(other)),
            ))
        }
        None => return Err(ParseError::field(join(path, "components"), "missing")),
    };
    let mut has_body = false;
    for (ci, c) in components.iter().enumerate() {
        let cpath = index(&join(path, "components"), ci);
        let ctype = dig_str(c, &["type"])
            .unwrap_or_default()
            .to_ascii_uppercase();
        match ctype.as_str() {
            "HEADER" => {
                let format = dig_str(c, &["format"])
                    .unwrap_or_else(|| "TEXT".into())
                    .to_ascii_uppercase();
                content.header = Some(match format.as_str() {
                    "IMAGE" => Header::Media(MediaKind::Image),
                    "VIDEO" => Header::Media(MediaKind::Video),
                    "DOCUMENT" => Header::Media(MediaKind::Document),
                    "LOCATION" => Header::Media(MediaKind::Location),
                    _ => Header::Text(dig_str(c, &["text"]).unwrap_or_default()),
                });
            }
            "BODY" => {
                content.body = dig_str(c, &["text"])
                    .ok_or_else(|| ParseError::field(join(&cpath, "text"), "missing"))?;
                has_body = true;
            }
            "FOOTER" => content.footer = dig_str(c, &["text"]),
            "BUTTONS" => {
                for b in c
                    .get("buttons")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                {
                    content.buttons.push(parse_button(b));
                }
            }
            // Carousels, limited-time offers and what comes next: their
            // text is not rendered yet, and the rest still is.
            _ => {}
        }
    }
    if !has_body {
        return Err(ParseError::field(
            join(path, "components"),
            "no BODY component",
        ));
    }
    let first_seen = match t.get("ticks_first_seen") {
        None | Some(Json::Null) => None,
        Some(v) => Some(parse_instant(v, &join(path, "ticks_first_seen"))?.ms),
    };
    Ok((
        TemplateDef {
            name,
            language,
            id: dig_str(t, &["id"]),
            status: dig_str(t, &["status"]),
            category: dig_str(t, &["category"]),
            content,
        },
        first_seen,
    ))
}

fn parse_button(b: &Json<'_>) -> Button {
    let kind = match dig_str(b, &["type"])
        .unwrap_or_default()
        .to_ascii_uppercase()
        .as_str()
    {
        "QUICK_REPLY" => ButtonKind::QuickReply,
        "URL" => ButtonKind::Url,
        "PHONE_NUMBER" => ButtonKind::PhoneNumber,
        "COPY_CODE" => ButtonKind::CopyCode,
        "OTP" => ButtonKind::Otp,
        "FLOW" => ButtonKind::Flow,
        _ => ButtonKind::Other,
    };
    let default_text = match kind {
        ButtonKind::CopyCode | ButtonKind::Otp => "Copy code",
        _ => "",
    };
    Button {
        kind,
        text: dig_str(b, &["text"]).unwrap_or_else(|| default_text.into()),
        url: dig_str(b, &["url"]).or_else(|| dig_str(b, &["phone_number"])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_graph_api_page_parses_every_component_and_its_next_page() {
        let page = r#"{"data": [
            {"id": "594425479261596", "name": "pedido_enviado", "language": "pt_BR",
             "status": "APPROVED", "category": "UTILITY",
             "components": [
                {"type": "HEADER", "format": "DOCUMENT"},
                {"type": "BODY", "text": "Olá {{1}}, seu pedido {{2}} foi enviado"},
                {"type": "FOOTER", "text": "Loja"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "URL", "text": "Rastrear", "url": "https://loja.example/r/{{1}}"},
                    {"type": "PHONE_NUMBER", "text": "Ligar", "phone_number": "+5511999990000"},
                    {"type": "QUICK_REPLY", "text": "Parar"}]}]},
            {"name": "sem_corpo", "language": "es", "components": []},
            {"name": "boas_vindas", "language": "pt_BR", "parameter_format": "NAMED",
             "ticks_first_seen": "2025-03-01T00:00:00Z",
             "components": [{"type": "BODY", "text": "Oi {{first_name}}"}]}],
          "paging": {"cursors": {"before": "a", "after": "b"},
                     "next": "https://graph.example/v23.0/1/message_templates?after=b"}}"#;
        let page = parse_template_page(page.as_bytes()).expect("page");
        assert_eq!(page.templates.len(), 2);
        assert_eq!(
            page.next.as_deref(),
            Some("https://graph.example/v23.0/1/message_templates?after=b")
        );
        assert_eq!(
            page.rejected,
            vec![ParseError::field("data[1].components", "no BODY component")]
        );
        let (shipped, seen) = &page.templates[0];
        assert_eq!(*seen, None);
        assert_eq!(shipped.status.as_deref(), Some("APPROVED"));
        assert_eq!(
            shipped.content.header,
            Some(Header::Media(MediaKind::Document))
        );
        assert_eq!(shipped.content.footer.as_deref(), Some("Loja"));
        assert_eq!(
            shipped
                .content
                .buttons
                .iter()
                .map(|b| b.kind)
                .collect::<Vec<_>>(),
            [
                ButtonKind::Url,
                ButtonKind::PhoneNumber,
                ButtonKind::QuickReply
            ]
        );
        assert_eq!(
            shipped.content.buttons[1].url.as_deref(),
            Some("+5511999990000")
        );
        let (named, seen) = &page.templates[1];
        assert_eq!(named.content.parameter_format, ParameterFormat::Named);
        assert_eq!(*seen, Some(1_740_787_200_000));
    }

    #[test]
    fn a_bare_definition_or_list_is_a_page_and_bad_input_names_the_field() {
        let one =
            br#"{"name": "x", "language": "en", "components": [{"type": "BODY", "text": "hi"}]}"#;
        assert_eq!(parse_template_page(one).expect("one").templates.len(), 1);
        let list =
            br#"[{"name": "x", "language": "en", "components": [{"type": "BODY", "text": "hi"}]},
                       {"language": "en", "components": []}]"#;
        let page = parse_template_page(list).expect("list");
        assert_eq!(page.templates.len(), 1);
        assert_eq!(page.rejected[0].field_path(), Some("[1].name"));
        assert!(matches!(
            parse_template_page(b"{nope"),
            Err(ParseError::Json(_))
        ));
        assert_eq!(
            parse_template_page(br#"{"data": 3}"#)
                .err()
                .and_then(|e| e.field_path().map(String::from)),
            Some("data".into())
        );
    }
}
