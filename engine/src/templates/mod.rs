//! The template catalog: every version of every message template Ticks has
//! been shown, so that a templated send can be rendered with the text in
//! force when it was sent (the `render` module).
//!
//! A send carries a template's name, language and parameters; the sentence
//! the person read is the definition's text with those parameters in it,
//! and the definition lives at Meta, where it can be edited. Ticks keeps
//! each (name, language)'s distinct definitions with the time each was
//! first seen: a send uses the newest version first seen at or before its
//! time (the oldest version known, for a send older than all of them).
//! Status and category are kept as last imported; their history comes from
//! the template webhooks, which are entries of the log.
//!
//! Definitions are not log records: they are Meta's, not the business's
//! traffic, and a purge never names them. They live in the sled tree
//! `templates` (`FORMAT.md`), one key per version, each written and flushed
//! before an import is answered. Rendering is derived: the table, the
//! detail and the exports render when they read an entry; the full-text
//! index gets the rendered text when a send is indexed, and a backfill adds
//! it for the sends logged before their definition (`Store::add_templates`).

mod render;

pub use render::{render, ParamParts, Rendered};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How a template names its placeholders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParameterFormat {
    /// `{{1}}`, `{{2}}`...
    #[default]
    Positional,
    /// `{{first_name}}`, sent with `parameter_name`.
    Named,
}

/// A header that is not text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// `IMAGE`.
    Image,
    /// `VIDEO`.
    Video,
    /// `DOCUMENT`.
    Document,
    /// `LOCATION`.
    Location,
}

/// A template's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Header {
    /// A text header, which may hold one placeholder.
    Text(String),
    /// A media header: the send gives the media.
    Media(MediaKind),
}

/// What a button does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonKind {
    /// Sends its text back as a reply.
    QuickReply,
    /// Opens a URL, whose `{{1}}` suffix the send gives.
    Url,
    /// Calls a number.
    PhoneNumber,
    /// Copies a code the send gives (coupon).
    CopyCode,
    /// A one-time password (authentication templates).
    Otp,
    /// Opens a WhatsApp Flow.
    Flow,
    /// A kind this build does not know: shown by its text.
    Other,
}

/// One button.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// What it does.
    pub kind: ButtonKind,
    /// Its label.
    pub text: String,
    /// A URL button's URL, a phone button's number.
    pub url: Option<String>,
}

/// What a person sees of a template: what tells two versions apart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateContent {
    /// How placeholders are named.
    pub parameter_format: ParameterFormat,
    /// The header, when there is one.
    pub header: Option<Header>,
    /// The body text, with placeholders.
    pub body: String,
    /// The footer, when there is one.
    pub footer: Option<String>,
    /// The buttons, in order.
    pub buttons: Vec<Button>,
}

/// One definition as Meta's `message_templates` answers it, typed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateDef {
    /// The template's name.
    pub name: String,
    /// Its language code (`pt_BR`).
    pub language: String,
    /// Meta's template id.
    pub id: Option<String>,
    /// `APPROVED`, `PAUSED`, `REJECTED`...
    pub status: Option<String>,
    /// `MARKETING`, `UTILITY`, `AUTHENTICATION`.
    pub category: Option<String>,
    /// The text and buttons.
    pub content: TemplateContent,
}

/// One version of a template, as the catalog keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateVersion {
    /// When Ticks first saw this definition (or the time an import gave
    /// it), UTC milliseconds.
    pub first_seen_ms: i64,
    /// The catalog's change counter when it was added: what a backfill
    /// after a restart starts from.
    pub generation: u64,
    /// The definition.
    pub def: TemplateDef,
}

/// What adding a definition changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// A definition not seen before: a new version.
    Version,
    /// A known definition whose status or category changed.
    Metadata,
    /// Nothing new.
    Unchanged,
}

/// What an import of definitions changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TemplatesAdded {
    /// Definitions not seen before (new templates, or edits of known ones).
    pub versions: usize,
    /// Known definitions whose status or category changed.
    pub updated: usize,
    /// Definitions known as they are.
    pub unchanged: usize,
    /// Sends whose rendered text the backfill indexes now.
    pub backfill: u64,
}

/// Every version of every template, by (name, language).
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Name -> language -> versions by first seen, oldest first (never
    /// empty). Nested rather than keyed by a pair, so that a send's look-up
    /// borrows its two strings instead of allocating a key: it runs for
    /// every templated send indexed and every one shown.
    templates: BTreeMap<String, BTreeMap<String, Vec<TemplateVersion>>>,
    generation: u64,
}

impl Catalog {
    /// The catalog of these versions (as stored): each template's versions
    /// ordered by first seen, then generation; the catalog's generation is
    /// the largest of theirs.
    pub fn from_versions(versions: impl IntoIterator<Item = TemplateVersion>) -> Catalog {
        let mut catalog = Catalog::default();
        for v in versions {
            catalog.generation = catalog.generation.max(v.generation);
            catalog
                .templates
                .entry(v.def.name.clone())
                .or_default()
                .entry(v.def.language.clone())
                .or_default()
                .push(v);
        }
        for versions in catalog
            .templates
            .values_mut()
            .flat_map(BTreeMap::values_mut)
        {
            versions.sort_by_key(|v| (v.first_seen_ms, v.generation));
        }
        catalog
    }

    /// The change counter: the highest generation of any version.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Adds `def`, first seen at `seen_ms`. A definition equal in content
    /// to a known version of its template updates that version's status
    /// and category; another is a new version. Returns what changed and
    /// the version to store (none when nothing changed).
    pub fn add(&mut self, def: TemplateDef, seen_ms: i64) -> (Added, Option<TemplateVersion>) {
        let versions = self
            .templates
            .entry(def.name.clone())
            .or_default()
            .entry(def.language.clone())
            .or_default();
        if let Some(known) = versions.iter_mut().find(|v| v.def.content == def.content) {
            let same_meta = (
                known.def.status.as_ref(),
                known.def.category.as_ref(),
                known.def.id.as_ref(),
            ) == (def.status.as_ref(), def.category.as_ref(), def.id.as_ref());
            if same_meta {
                return (Added::Unchanged, None);
            }
            known.def.status = def.status;
            known.def.category = def.category;
            known.def.id = def.id;
            return (Added::Metadata, Some(known.clone()));
        }
        self.generation += 1;
        let version = TemplateVersion {
            first_seen_ms: seen_ms,
            generation: self.generation,
            def,
        };
        let at = versions.partition_point(|v| v.first_seen_ms <= seen_ms);
        versions.insert(at, version.clone());
        (Added::Version, Some(version))
    }

    /// The version in force at `at_ms`: the newest first seen at or before
    /// it, else the oldest known.
    pub fn in_force(&self, name: &str, language: &str, at_ms: i64) -> Option<&TemplateDef> {
        let versions = self.versions(name, language)?;
        let after = versions.partition_point(|v| v.first_seen_ms <= at_ms);
        versions
            .get(after.saturating_sub(1))
            .or_else(|| versions.first())
            .map(|v| &v.def)
    }

    /// A template's versions, oldest first.
    pub fn versions(&self, name: &str, language: &str) -> Option<&[TemplateVersion]> {
        self.templates
            .get(name)?
            .get(language)
            .map(Vec::as_slice)
            .filter(|v| !v.is_empty())
    }

    /// Every template's versions, by name then language.
    pub fn iter(&self) -> impl Iterator<Item = &[TemplateVersion]> {
        self.templates
            .values()
            .flat_map(BTreeMap::values)
            .map(Vec::as_slice)
            .filter(|v| !v.is_empty())
    }

    /// Adds each of `defs` (first seen at the time given with it, else at
    /// `seen_ms`) as [`Catalog::add`] does; returns what changed (no
    /// backfill counted yet) and the new and changed versions, to store.
    pub fn add_all(
        &mut self,
        defs: Vec<(TemplateDef, Option<i64>)>,
        seen_ms: i64,
    ) -> (TemplatesAdded, Vec<TemplateVersion>) {
        let mut added = TemplatesAdded::default();
        let mut stored = Vec::new();
        for (def, seen) in defs {
            match self.add(def, seen.unwrap_or(seen_ms)) {
                (Added::Version, v) => {
                    added.versions += 1;
                    stored.extend(v);
                }
                (Added::Metadata, v) => {
                    added.updated += 1;
                    stored.extend(v);
                }
                (Added::Unchanged, _) => added.unchanged += 1,
            }
        }
        (added, stored)
    }

    /// The (name, language) pairs with a version added after `generation`.
    pub fn changed_since(&self, generation: u64) -> Vec<(String, String)> {
        self.templates
            .iter()
            .flat_map(|(name, languages)| languages.iter().map(move |(l, vs)| (name, l, vs)))
            .filter(|(_, _, vs)| vs.iter().any(|v| v.generation > generation))
            .map(|(name, language, _)| (name.clone(), language.clone()))
            .collect()
    }
}

/// The catalog as the state shares it with readers: replaced whole when
/// an import changes it (imports are rare, reads are every entry shown).
pub(crate) type SharedCatalog = Arc<Catalog>;

/// The sled key of a version: `name \0 language \0 generation (u64 BE)`.
pub(crate) fn version_key(v: &TemplateVersion) -> Vec<u8> {
    let mut key = Vec::with_capacity(v.def.name.len() + v.def.language.len() + 10);
    key.extend_from_slice(v.def.name.as_bytes());
    key.push(0);
    key.extend_from_slice(v.def.language.as_bytes());
    key.push(0);
    key.extend_from_slice(&v.generation.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(body: &str, status: &str) -> TemplateDef {
        TemplateDef {
            name: "pedido_enviado".into(),
            language: "pt_BR".into(),
            status: Some(status.into()),
            content: TemplateContent {
                body: body.into(),
                ..TemplateContent::default()
            },
            ..TemplateDef::default()
        }
    }

    #[test]
    fn a_send_uses_the_version_in_force_at_its_time() {
        let mut c = Catalog::default();
        assert_eq!(c.add(def("old {{1}}", "APPROVED"), 1_000).0, Added::Version);
        assert_eq!(c.add(def("new {{1}}", "APPROVED"), 5_000).0, Added::Version);
        let body = |at| {
            c.in_force("pedido_enviado", "pt_BR", at)
                .map(|d| d.content.body.clone())
        };
        assert_eq!(
            body(500).as_deref(),
            Some("old {{1}}"),
            "before every version: the oldest"
        );
        assert_eq!(body(1_000).as_deref(), Some("old {{1}}"));
        assert_eq!(body(4_999).as_deref(), Some("old {{1}}"));
        assert_eq!(body(5_000).as_deref(), Some("new {{1}}"));
        assert_eq!(c.in_force("pedido_enviado", "es", 5_000), None);
        assert_eq!(c.generation(), 2);
    }

    #[test]
    fn the_same_definition_again_is_no_new_version_and_a_new_status_updates_it() {
        let mut c = Catalog::default();
        c.add(def("a {{1}}", "APPROVED"), 1_000);
        assert_eq!(
            c.add(def("a {{1}}", "APPROVED"), 9_000),
            (Added::Unchanged, None)
        );
        let (added, stored) = c.add(def("a {{1}}", "PAUSED"), 9_000);
        assert_eq!(added, Added::Metadata);
        assert_eq!(
            stored.map(|v| v.first_seen_ms),
            Some(1_000),
            "first seen stays"
        );
        assert_eq!(
            c.versions("pedido_enviado", "pt_BR").map(<[_]>::len),
            Some(1)
        );
        assert_eq!(c.generation(), 1);
    }

    #[test]
    fn a_catalog_loaded_from_its_versions_equals_the_one_that_made_them() {
        let mut c = Catalog::default();
        let mut stored = Vec::new();
        for (body, at) in [("b", 5_000), ("a", 1_000), ("c", 3_000)] {
            stored.extend(c.add(def(body, "APPROVED"), at).1);
        }
        let loaded = Catalog::from_versions(stored.into_iter().rev());
        assert_eq!(
            loaded.versions("pedido_enviado", "pt_BR"),
            c.versions("pedido_enviado", "pt_BR")
        );
        assert_eq!(loaded.generation(), 3);
        assert_eq!(
            loaded.changed_since(2),
            vec![("pedido_enviado".to_string(), "pt_BR".to_string())]
        );
        assert!(loaded.changed_since(3).is_empty());
    }
}
