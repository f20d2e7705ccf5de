//! What an input names: the entries its events belong to, the people they
//! name, the messages its replies quote. The index (`input_index`) and the
//! groups an entry's version counts are made of these.

use std::collections::BTreeSet;
use ticks_engine::Event;

/// What one input names, as stored in `inputs.keys`, `inputs.people`
/// and `inputs.links`, and indexed as `k:`, `p:` and `q:` identifiers.
pub(super) struct Named {
    /// The entries its events belong to.
    pub(super) keys: Vec<String>,
    /// The people its events name.
    pub(super) people: Vec<String>,
    /// The messages its replies quote.
    pub(super) links: Vec<String>,
}

impl Named {
    /// Reads what `events` name.
    pub(super) fn of(events: &[Event], received_ms: i64) -> Named {
        let mut keys = BTreeSet::new();
        let mut people = BTreeSet::new();
        let mut links = BTreeSet::new();
        let mut person = |p: &Option<String>| {
            if let Some(p) = p.as_deref().filter(|p| !p.is_empty()) {
                people.insert(p.to_string());
            }
        };
        for event in events {
            keys.insert(ticks_engine::entry_key(event, received_ms));
            match event {
                Event::Send(s) => {
                    person(&s.phone);
                    person(&s.wa_id);
                    person(&s.user_id);
                }
                Event::Status(s) => {
                    person(&s.recipient);
                    person(&s.user_id);
                    person(&s.parent_user_id);
                }
                Event::Inbound(m) => {
                    person(&m.from);
                    person(&m.user_id);
                    person(&m.parent_user_id);
                    person(&m.username);
                    if let Some(c) = &m.identity_change {
                        person(&c.wa_id);
                        person(&c.new_wa_id);
                        person(&c.user_id);
                        person(&c.new_user_id);
                    }
                    // The send's derivation reaches the replies that quote
                    // it, whoever they came from.
                    if let Some(quoted) = &m.context_wamid {
                        links.insert(quoted.clone());
                    }
                }
                Event::Other(o) => {
                    person(&o.wa_id);
                    person(&o.user_id);
                }
            }
        }
        Named {
            keys: keys.into_iter().collect(),
            people: people.into_iter().collect(),
            links: links.into_iter().collect(),
        }
    }

    /// What joins this input to others in one fold: its entries and the
    /// messages it quotes (`k:`), its people (`p:`).
    pub(super) fn joins(&self) -> impl Iterator<Item = String> + '_ {
        self.keys
            .iter()
            .chain(&self.links)
            .map(|k| format!("k:{k}"))
            .chain(self.people.iter().map(|p| format!("p:{p}")))
    }
}
