//! `ticks report`: the consolidated report printed as plain-text tables.

use std::fmt::Write;
use ticks_engine::FieldValue;
use ticks_query::{Count, Funnel, Report};

fn key(v: &FieldValue) -> String {
    match v {
        FieldValue::None => "(none)".into(),
        FieldValue::Int(i) => i.to_string(),
        FieldValue::Text(t) => t.clone(),
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Cuts a cell to `width` characters so columns stay aligned.
fn cell(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn counts(out: &mut String, title: &str, groups: &[Count]) {
    if groups.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}");
    for g in groups {
        let mut line = format!("  {:<32} {:>10}", cell(&key(&g.key), 32), g.count);
        if let (Some(m), Some(a)) = (g.meaning, g.action) {
            let _ = write!(line, "  {m}; {a}");
        }
        let _ = writeln!(out, "{line}");
    }
}

fn funnel_row(out: &mut String, label: &str, f: &Funnel) {
    let mut line = format!("  {:<28}", cell(label, 28));
    for s in &f.steps {
        let _ = write!(line, " {:>9}", s.count);
    }
    let read_rate = f.steps.get(4).map_or(0.0, |s| s.of_attempted);
    let _ = write!(
        line,
        " {:>9} {:>9} {:>7}",
        f.failed,
        f.rejected,
        pct(read_rate)
    );
    let _ = writeln!(out, "{line}");
}

/// Renders the report as text tables, one section after another.
pub(crate) fn render(r: &Report, zone: &str, sections: ticks_query::Sections) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} matching entries", r.total);

    if sections.funnels {
        let _ = writeln!(out, "\nDelivery funnel (outbound)");
        let _ = writeln!(
            out,
            "  {:<12} {:>10} {:>13} {:>12}",
            "step", "count", "of attempted", "of previous"
        );
        for s in &r.funnel.steps {
            let _ = writeln!(
                out,
                "  {:<12} {:>10} {:>13} {:>12}",
                s.step,
                s.count,
                pct(s.of_attempted),
                pct(s.of_previous)
            );
        }
        let _ = writeln!(
            out,
            "  failed after acceptance: {}; rejected or unanswered: {}",
            r.funnel.failed, r.funnel.rejected
        );

        if !r.funnels.is_empty() {
            let _ = writeln!(out, "\nFunnels by {}", r.funnel_by);
            let mut head = format!("  {:<28}", r.funnel_by);
            for s in &r.funnel.steps {
                let _ = write!(head, " {:>9}", s.step);
            }
            let _ = write!(head, " {:>9} {:>9} {:>7}", "failed", "rejected", "read%");
            let _ = writeln!(out, "{head}");
            for f in &r.funnels {
                funnel_row(&mut out, &key(&f.key), f);
            }
        }

        counts(
            &mut out,
            "Top failure reasons (Meta error code)",
            &r.failure_reasons,
        );
    }

    if !r.series.is_empty() {
        let _ = writeln!(
            out,
            "\nSeries by {} ({zone})",
            match r.interval {
                ticks_query::Interval::Day => "day",
                ticks_query::Interval::Hour => "hour",
            }
        );
        let _ = writeln!(
            out,
            "  {:<17} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>8}",
            "bucket", "total", "outbound", "delivered", "read", "fail%", "429%", "5xx%"
        );
        for b in &r.series {
            let status = |s: &str| b.by_status.get(s).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "  {:<17} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>8}",
                b.label,
                b.total,
                b.outbound,
                status("delivered"),
                status("read"),
                pct(b.failure_rate),
                pct(b.rate_429),
                pct(b.rate_5xx)
            );
        }
    }

    if sections.inbound {
        let i = &r.inbound;
        let _ = writeln!(
        out,
        "\nInbound (MO): {} messages, {} replies to known messages, {} button clicks; {} quoted what they answer, {} inferred",
        i.total, i.replies, i.clicks, i.quoted, i.inferred
    );
        if !i.by_campaign.is_empty() {
            let _ = writeln!(
                out,
                "  {:<32} {:>10} {:>10} {:>10} {:>10}",
                r.funnel_by, "replies", "clicks", "quoted", "inferred"
            );
            for c in &i.by_campaign {
                let _ = writeln!(
                    out,
                    "  {:<32} {:>10} {:>10} {:>10} {:>10}",
                    cell(&key(&c.key), 32),
                    c.replies,
                    c.clicks,
                    c.quoted,
                    c.inferred
                );
            }
        }
        counts(&mut out, "Button clicks by button", &i.by_button);
        counts(&mut out, "Inbound by content type", &i.by_content_type);
    }
    if sections.counts {
        counts(&mut out, "Conversations by type", &r.conversations.by_type);
        counts(
            &mut out,
            "Conversations by pricing category",
            &r.conversations.by_pricing_category,
        );
        for b in &r.counts {
            counts(&mut out, &format!("By {}", b.field), &b.groups);
            if b.other > 0 {
                let _ = writeln!(out, "  {:<32} {:>10}", "(others)", b.other);
            }
        }
    }
    if !r.countries.is_empty() {
        let _ = writeln!(out, "\nFunnels by country");
        for f in &r.countries {
            funnel_row(&mut out, &key(&f.key), f);
            for reason in f.failure_reasons.iter().take(3) {
                let _ = writeln!(
                    out,
                    "      error {:<10} {:>9}",
                    key(&reason.key),
                    reason.count
                );
            }
        }
    }
    if let Some(c) = &r.cost {
        cost(&mut out, c, zone);
    }
    if !r.templates.is_empty() {
        templates(&mut out, &r.templates);
    }
    out
}

fn templates(out: &mut String, list: &[ticks_query::TemplateHealth]) {
    let _ = writeln!(out, "\nTemplate health");
    let _ = writeln!(
        out,
        "  {:<28} {:>6} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "template (language)",
        "sent",
        "deliv.",
        "read",
        "failed",
        "quoted",
        "inferred",
        "buttons",
        "links",
        "opt-outs"
    );
    for t in list {
        let name = format!("{} ({})", t.template, t.language.as_deref().unwrap_or("-"));
        let _ = writeln!(
            out,
            "  {:<28} {:>6} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            cell(&name, 28),
            t.sent,
            t.delivered,
            t.read,
            t.failed,
            t.replies_quoted,
            t.replies_inferred,
            t.button_clicks,
            t.link_clicks,
            t.opt_outs
        );
        for e in &t.events {
            let _ = writeln!(
                out,
                "      {} {}: {}{}",
                crate::present::rfc3339(e.at_ms, 0),
                e.field,
                e.from
                    .as_deref()
                    .map(|f| format!("{f} -> "))
                    .unwrap_or_default(),
                e.to.as_deref().unwrap_or("")
            );
        }
    }
}

fn money(x: f64) -> String {
    format!("{x:.4}")
}

fn cost(out: &mut String, c: &ticks_query::CostReport, zone: &str) {
    let currency = c.currency.as_deref().unwrap_or("(no rate card)");
    let _ = writeln!(
        out,
        "\nCost ({currency}, rate card {})",
        c.rate_card.as_deref().unwrap_or("none")
    );
    let _ = writeln!(
        out,
        "  {} messages: {} billable, {} free, {} not priced by Meta yet, {} without a rate",
        c.messages, c.billable, c.free, c.unknown, c.unpriced
    );
    let per = |x: Option<f64>| x.map_or("-".into(), money);
    let _ = writeln!(
        out,
        "  total {}; per delivered {}, per read {}, per reply {}",
        money(c.total),
        per(c.cost_per_delivered),
        per(c.cost_per_read),
        per(c.cost_per_reply)
    );
    let _ = writeln!(
        out,
        "  {:<28} {:>9} {:>9} {:>9} {:>12} {:>12}",
        c.group, "messages", "billable", "free", "cost", "/delivered"
    );
    for g in &c.groups {
        let _ = writeln!(
            out,
            "  {:<28} {:>9} {:>9} {:>9} {:>12} {:>12}",
            cell(&key(&g.key), 28),
            g.messages,
            g.billable,
            g.free,
            money(g.cost),
            per(g.cost_per_delivered)
        );
    }
    if !c.series.is_empty() {
        let _ = writeln!(out, "  cost by bucket ({zone})");
        for b in &c.series {
            let _ = writeln!(
                out,
                "  {:<17} {:>9} {:>9} {:>12}",
                b.label,
                b.messages,
                b.billable,
                money(b.cost)
            );
        }
    }
}
