//! A templated send rendered as the person saw it: the definition's header,
//! body, footer and buttons with the send's parameters in their places.
//!
//! Meta renders on the phone; Ticks renders the same text from the same
//! two halves (the definition in force when the message was sent, and the
//! parameters the send carried), so the table, the detail, the exports and
//! free text show and find the sentence the customer read. A parameter
//! count that does not match the definition (what Meta rejects with 132000)
//! renders what it can, leaves a missing placeholder as written, and says
//! why in `error`.

use super::{Button, ButtonKind, Header, MediaKind, ParameterFormat, TemplateContent};
use crate::model::TemplateParam;

/// A send's rendered text, and why it is incomplete when it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// Header, body, footer and buttons, one per line.
    pub text: String,
    /// The parameter counts that did not match the definition, `None` when
    /// every placeholder had its parameter and every parameter its place.
    pub error: Option<String>,
}

/// What rendering reads of a parameter: a send's own ([`TemplateParam`]),
/// or one read from a stored row without copying its strings (a page of
/// the table renders fifty sends, and copying four strings per parameter
/// was most of that).
pub trait ParamParts {
    /// `header`, `body` or `button`.
    fn component(&self) -> &str;
    /// The named parameter, or the positional index (`1`, `2`...).
    fn name(&self) -> &str;
    /// The value as a person reads it.
    fn value(&self) -> &str;
}

impl ParamParts for TemplateParam {
    fn component(&self) -> &str {
        &self.component
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn value(&self) -> &str {
        &self.value
    }
}

/// Renders `content` with a send's `params` (in the order the request gave
/// them, as `ticks-ingest` parsed them: component `header`, `body` or
/// `button`; positional names `1`, `2`..., named ones as given; buttons
/// named `url[0]`, `copy_code[1]`...).
pub fn render<P: ParamParts>(content: &TemplateContent, params: &[P]) -> Rendered {
    let mut errors: Vec<String> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    let of = |component: &str| -> Vec<&P> {
        params
            .iter()
            .filter(|p| p.component().eq_ignore_ascii_case(component))
            .collect()
    };
    let header_params = of("header");
    match &content.header {
        Some(Header::Text(text)) => {
            lines.push(fill(
                text,
                &header_params,
                content.parameter_format,
                "header",
                &mut errors,
            ));
        }
        Some(Header::Media(kind)) => {
            let value = header_params.first().map(|p| p.value());
            lines.push(media(*kind, value));
            if header_params.len() > 1 {
                errors.push(format!(
                    "header: 1 parameter expected, {} given",
                    header_params.len()
                ));
            }
        }
        None if !header_params.is_empty() => errors.push(format!(
            "header: no parameter expected, {} given",
            header_params.len()
        )),
        None => {}
    }
    let body = fill(
        &content.body,
        &of("body"),
        content.parameter_format,
        "body",
        &mut errors,
    );
    lines.push(body);
    if let Some(footer) = &content.footer {
        lines.push(footer.clone());
    }
    let button_params = of("button");
    let mut used = vec![false; button_params.len()];
    for (index, button) in content.buttons.iter().enumerate() {
        // A button's parameter is named by its index (`url[0]`); a request
        // without the name gives them in button order.
        let param = button_params
            .iter()
            .position(|p| button_index(p.name()) == Some(index))
            .filter(|at| !used[*at]);
        if let Some(at) = param {
            used[at] = true;
        }
        let value = param.map(|at| button_params[at].value());
        lines.push(button_line(button, value));
    }
    let unused = used.iter().filter(|u| !**u).count();
    if unused > 0 {
        errors.push(format!(
            "buttons: {unused} parameter{} without a button that takes one",
            if unused == 1 { "" } else { "s" }
        ));
    }
    lines.retain(|l| !l.is_empty());
    Rendered {
        text: lines.join("\n"),
        error: (!errors.is_empty()).then(|| errors.join("; ")),
    }
}

/// The index in `url[0]`, `quick_reply[1]`...
fn button_index(name: &str) -> Option<usize> {
    let open = name.find('[')?;
    name[open + 1..].strip_suffix(']')?.parse().ok()
}

fn media(kind: MediaKind, value: Option<&str>) -> String {
    let name = value
        .map(|v| v.rsplit('/').next().unwrap_or(v))
        .filter(|v| !v.is_empty());
    match (kind, name) {
        (MediaKind::Image, _) => "[image]".into(),
        (MediaKind::Video, _) => "[video]".into(),
        (MediaKind::Document, Some(file)) => format!("[document {file}]"),
        (MediaKind::Document, None) => "[document]".into(),
        (MediaKind::Location, _) => "[location]".into(),
    }
}

fn button_line(button: &Button, value: Option<&str>) -> String {
    let text = button.text.as_str();
    match button.kind {
        ButtonKind::Url => {
            let url = button.url.as_deref().unwrap_or_default();
            let url = match (url.find("{{"), value) {
                (Some(at), Some(suffix)) => {
                    let close = url[at..].find("}}").map_or(url.len(), |c| at + c + 2);
                    format!("{}{suffix}{}", &url[..at], &url[close..])
                }
                _ => url.to_string(),
            };
            if url.is_empty() {
                format!("[{text}]")
            } else {
                format!("[{text}: {url}]")
            }
        }
        ButtonKind::PhoneNumber => match button.url.as_deref() {
            Some(phone) => format!("[{text}: {phone}]"),
            None => format!("[{text}]"),
        },
        ButtonKind::CopyCode | ButtonKind::Otp => match value {
            Some(code) => format!("[{text}: {code}]"),
            None => format!("[{text}]"),
        },
        ButtonKind::QuickReply | ButtonKind::Flow | ButtonKind::Other => format!("[{text}]"),
    }
}

/// `text` with its `{{1}}` or `{{name}}` placeholders filled from `params`;
/// a count that does not match is reported in `errors` under `label`.
fn fill<P: ParamParts>(
    text: &str,
    params: &[&P],
    format: ParameterFormat,
    label: &str,
    errors: &mut Vec<String>,
) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut placeholders: Vec<&str> = Vec::new();
    let mut missing: Vec<&str> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let Some(len) = rest[open + 2..].find("}}") else {
            break;
        };
        let name = rest[open + 2..open + 2 + len].trim();
        out.push_str(&rest[..open]);
        let value = match format {
            ParameterFormat::Named => params.iter().find(|p| p.name() == name),
            ParameterFormat::Positional => {
                let position: Option<usize> = name.parse().ok();
                // By name (`1`, `2`... as ingest names positional ones),
                // else by position.
                params.iter().find(|p| p.name() == name).or_else(|| {
                    position
                        .and_then(|n| n.checked_sub(1))
                        .and_then(|i| params.get(i))
                })
            }
        };
        match value {
            Some(p) => out.push_str(p.value()),
            None => {
                out.push_str(&rest[open..open + 4 + len]);
                missing.push(name);
            }
        }
        if !placeholders.contains(&name) {
            placeholders.push(name);
        }
        rest = &rest[open + 4 + len..];
    }
    out.push_str(rest);
    let expected = placeholders.len();
    if !missing.is_empty() || params.len() > expected {
        let mut why = format!(
            "{label}: {expected} parameter{} expected, {} given",
            if expected == 1 { "" } else { "s" },
            params.len()
        );
        if !missing.is_empty() {
            why.push_str(&format!(" (missing {{{{{}}}}})", missing.join("}}, {{")));
        }
        errors.push(why);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(component: &str, name: &str, value: &str) -> TemplateParam {
        TemplateParam {
            component: component.into(),
            name: name.into(),
            kind: "text".into(),
            value: value.into(),
        }
    }

    fn shipped() -> TemplateContent {
        TemplateContent {
            parameter_format: ParameterFormat::Positional,
            header: Some(Header::Text("Pedido {{1}}".into())),
            body: "Olá {{1}}, seu pedido #{{2}} foi enviado! Código de rastreio: {{3}}.".into(),
            footer: Some("Loja Exemplo".into()),
            buttons: vec![
                Button {
                    kind: ButtonKind::Url,
                    text: "Rastrear".into(),
                    url: Some("https://loja.example/r/{{1}}".into()),
                },
                Button {
                    kind: ButtonKind::QuickReply,
                    text: "Falar com atendente".into(),
                    url: None,
                },
            ],
        }
    }

    #[test]
    fn positional_parameters_fill_header_body_and_the_url_suffix() {
        let r = render(
            &shipped(),
            &[
                param("header", "1", "48213"),
                param("body", "1", "José"),
                param("body", "2", "48213"),
                param("body", "3", "BR123456789BR"),
                param("button", "url[0]", "BR123456789BR"),
            ],
        );
        assert_eq!(
            r.text,
            "Pedido 48213\nOlá José, seu pedido #48213 foi enviado! Código de rastreio: \
             BR123456789BR.\nLoja Exemplo\n[Rastrear: https://loja.example/r/BR123456789BR]\n\
             [Falar com atendente]"
        );
        assert_eq!(r.error, None);
    }

    #[test]
    fn a_missing_parameter_stays_as_written_and_is_reported() {
        let r = render(
            &shipped(),
            &[param("body", "1", "José"), param("body", "2", "48213")],
        );
        assert!(r.text.contains("Código de rastreio: {{3}}."), "{}", r.text);
        assert_eq!(
            r.error.as_deref(),
            Some(
                "header: 1 parameter expected, 0 given (missing {{1}}); \
                 body: 3 parameters expected, 2 given (missing {{3}})"
            )
        );
    }

    #[test]
    fn an_extra_parameter_is_reported() {
        let mut content = shipped();
        content.header = None;
        let r = render(
            &content,
            &[
                param("body", "1", "a"),
                param("body", "2", "b"),
                param("body", "3", "c"),
                param("body", "4", "d"),
            ],
        );
        assert_eq!(
            r.error.as_deref(),
            Some("body: 3 parameters expected, 4 given")
        );
    }

    #[test]
    fn named_parameters_fill_by_name() {
        let content = TemplateContent {
            parameter_format: ParameterFormat::Named,
            header: None,
            body: "Oi {{first_name}}, seu boleto de {{amount}} vence {{due}}.".into(),
            footer: None,
            buttons: vec![],
        };
        let r = render(
            &content,
            &[
                param("body", "due", "amanhã"),
                param("body", "first_name", "Ana"),
                param("body", "amount", "R$ 120,00"),
            ],
        );
        assert_eq!(r.text, "Oi Ana, seu boleto de R$ 120,00 vence amanhã.");
        assert_eq!(r.error, None);
    }

    #[test]
    fn media_headers_show_their_kind_and_a_documents_file_name() {
        let mut content = shipped();
        content.header = Some(Header::Media(MediaKind::Document));
        let r = render(
            &content,
            &[param("header", "1", "https://cdn.example/x/boleto.pdf")],
        );
        assert!(r.text.starts_with("[document boleto.pdf]\n"), "{}", r.text);
        for (kind, shown) in [
            (MediaKind::Image, "[image]"),
            (MediaKind::Video, "[video]"),
            (MediaKind::Location, "[location]"),
        ] {
            content.header = Some(Header::Media(kind));
            assert!(render::<TemplateParam>(&content, &[])
                .text
                .starts_with(shown));
        }
    }

    #[test]
    fn copy_code_and_phone_buttons_show_their_value() {
        let content = TemplateContent {
            parameter_format: ParameterFormat::Positional,
            header: None,
            body: "{{1}} é seu código.".into(),
            footer: None,
            buttons: vec![
                Button {
                    kind: ButtonKind::Otp,
                    text: "Copiar código".into(),
                    url: None,
                },
                Button {
                    kind: ButtonKind::PhoneNumber,
                    text: "Ligar".into(),
                    url: Some("+5511999990000".into()),
                },
                Button {
                    kind: ButtonKind::CopyCode,
                    text: "Copiar cupom".into(),
                    url: None,
                },
            ],
        };
        let r = render(
            &content,
            &[
                param("body", "1", "482913"),
                param("button", "url[0]", "482913"),
                param("button", "copy_code[2]", "NATAL25"),
            ],
        );
        assert_eq!(
            r.text,
            "482913 é seu código.\n[Copiar código: 482913]\n[Ligar: +5511999990000]\n\
             [Copiar cupom: NATAL25]"
        );
        assert_eq!(r.error, None);
    }
}
