//! The CSV export: a first line saying who exported when, then one row per record with a
//! `section` column (profile, metric, health_factor, churn_reason, order, loyalty_transaction,
//! ticket, note, tag, segment), quoted per RFC 4180 by the `csv` crate. A text cell that a
//! spreadsheet would run as a formula is defused ([`defused`]).

use std::borrow::Cow;

use super::ExportData;

/// The `amount` column: numbers this export formats itself (negative ones included), the one
/// column never defused.
const AMOUNT: usize = 5;

/// A cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so
/// that a spreadsheet shows it as text instead of running it (a note reading
/// `=HYPERLINK("http://evil", "x")`, say): OWASP's advice on CSV injection.
fn defused(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A computed ratio as a reader wants it: at most four decimals, without trailing zeros
/// (`309.9612`, not `309.96118055555553`; `0.5`, not `0.5000`).
fn decimal(x: f64) -> String {
    let fixed = format!("{x:.4}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    match trimmed {
        "-0" => "0".to_owned(),
        t => t.to_owned(),
    }
}

fn row(w: &mut ::csv::Writer<Vec<u8>>, cells: [&str; 8]) -> ::csv::Result<()> {
    let cells: Vec<Cow<'_, str>> = cells
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            if i == AMOUNT {
                Cow::Borrowed(*cell)
            } else {
                defused(cell)
            }
        })
        .collect();
    w.write_record(cells.iter().map(|cell| cell.as_bytes()))
}

pub const COLUMNS: [&str; 8] = [
    "section", "id", "at", "name", "status", "amount", "currency", "detail",
];

pub fn render(d: &ExportData) -> anyhow::Result<Vec<u8>> {
    let mut out = format!(
        "# customer360 export of customer {} at {} by {} ({})\r\n",
        d.customer_id,
        d.exporter.at.to_rfc3339(),
        d.exporter.name,
        d.exporter.role
    )
    .into_bytes();
    let mut w = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(COLUMNS)?;
    let p = &d.view.profile;
    let address = p.address.joined().unwrap_or_default();
    let detail = format!(
        "email={}; phone={}; address={}; birthday={}",
        p.email,
        p.phone.as_deref().unwrap_or(""),
        address,
        p.birthday.as_deref().unwrap_or("")
    );
    row(
        &mut w,
        [
            "profile",
            &p.id.to_string(),
            &p.created_at.to_rfc3339(),
            &p.name,
            "",
            "",
            "",
            &detail,
        ],
    )?;
    let metrics = serde_json::to_value(&d.view.metrics)?;
    if let Some(m) = metrics.as_object() {
        for (k, v) in m {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                serde_json::Value::Number(n) if n.is_f64() => {
                    n.as_f64().map_or(String::new(), decimal)
                }
                other => other.to_string(),
            };
            row(&mut w, ["metric", "", "", k, "", &value, "", ""])?;
        }
    }
    row(
        &mut w,
        [
            "health",
            "",
            "",
            "score",
            "",
            &d.view.health.score.to_string(),
            "",
            "",
        ],
    )?;
    for f in &d.view.health.factors {
        row(
            &mut w,
            [
                "health_factor",
                "",
                "",
                &f.factor,
                "",
                &decimal(f.contribution),
                "",
                &f.explanation,
            ],
        )?;
    }
    row(
        &mut w,
        [
            "churn",
            "",
            "",
            "level",
            d.view.churn.level.as_str(),
            &d.view.churn.points.to_string(),
            "",
            "",
        ],
    )?;
    for r in &d.view.churn.reasons {
        row(&mut w, ["churn_reason", "", "", "", "", "", "", r])?;
    }
    for o in &d.orders {
        row(
            &mut w,
            [
                "order",
                &o.id.to_string(),
                &o.placed_at.to_rfc3339(),
                &o.order_number,
                o.status.as_str(),
                &o.total_cents.to_string(),
                &o.currency,
                &o.channel,
            ],
        )?;
    }
    for l in &d.ledger {
        row(
            &mut w,
            [
                "loyalty_transaction",
                &l.id.to_string(),
                &l.created_at.to_rfc3339(),
                &l.reason,
                "",
                &l.points.to_string(),
                "points",
                l.admin_name.as_deref().unwrap_or(""),
            ],
        )?;
    }
    for t in &d.tickets {
        let satisfaction = t
            .satisfaction
            .map(|s| format!("satisfaction={s}"))
            .unwrap_or_default();
        row(
            &mut w,
            [
                "ticket",
                &t.id.to_string(),
                &t.created_at.to_rfc3339(),
                &t.subject,
                t.status.as_str(),
                "",
                "",
                &format!("priority={}; {satisfaction}", t.priority),
            ],
        )?;
    }
    for n in &d.notes {
        row(
            &mut w,
            [
                "note",
                &n.id.to_string(),
                &n.created_at.to_rfc3339(),
                &n.author_name,
                n.visibility.as_str(),
                "",
                "",
                &n.body,
            ],
        )?;
    }
    for t in &d.view.tags {
        row(
            &mut w,
            [
                "tag",
                &t.tag_id.to_string(),
                &t.assigned_at.to_rfc3339(),
                &t.name,
                "",
                "",
                "",
                &t.assigned_by_name,
            ],
        )?;
    }
    for s in &d.view.segments {
        row(
            &mut w,
            [
                "segment",
                &s.segment_id.to_string(),
                &s.assigned_at.to_rfc3339(),
                &s.name,
                s.source.as_str(),
                "",
                "",
                s.kind.as_str(),
            ],
        )?;
    }
    out.extend(w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{decimal, defused};

    #[test]
    fn ratios_keep_four_decimals_at_most() {
        for (x, shown) in [
            (309.961_180_555_555_53, "309.9612"),
            (0.5, "0.5"),
            (2.0, "2"),
            (0.0, "0"),
            (-0.000_01, "0"),
            (-3.25, "-3.25"),
            (1.0 / 3.0, "0.3333"),
        ] {
            assert_eq!(decimal(x), shown);
        }
    }

    #[test]
    fn formulas_are_defused_and_other_text_is_left_alone() {
        for (cell, exported) in [
            (
                "=HYPERLINK(\"http://evil\",\"x\")",
                "'=HYPERLINK(\"http://evil\",\"x\")",
            ),
            ("+1 555 0100", "'+1 555 0100"),
            ("-50", "'-50"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("Prefers email", "Prefers email"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(defused(cell), exported);
        }
    }
}
