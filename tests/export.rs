//! Exports against the real database: CSV completeness and exact round trips (property),
//! masking per role, a readable multi-page PDF, audit rows, permissions and bad formats.

mod common;

use common::{TestApp, spawn_app};
use customer360::domain::roles::Role;
use proptest::prelude::*;

async fn customer(app: &TestApp, name: &str, email: &str) -> i64 {
    app.db
        .sql()
        .await
        .query_one("INSERT INTO customers (name, email, phone) VALUES ($1, $2, '+1 555 010 4321') RETURNING id", &[&name, &email])
        .await
        .expect("customer")
        .get(0)
}

async fn export(app: &TestApp, id: i64, format: &str, role: Role) -> common::TestResponse {
    app.get(
        &format!("/api/admin/customers/{id}/export?format={format}"),
        role,
    )
    .await
}

/// The CSV's records (after the first, commented line), as (section, id, amount, detail, name).
fn records(body: &[u8]) -> Vec<csv::StringRecord> {
    let text = String::from_utf8_lossy(body);
    let (comment, rest) = text.split_once("\r\n").expect("a first line");
    assert!(
        comment.starts_with("# customer360 export of customer"),
        "{comment}"
    );
    let mut reader = csv::Reader::from_reader(rest.as_bytes());
    reader
        .records()
        .map(|r| r.expect("a well-formed CSV record"))
        .collect()
}

#[test]
fn csv_holds_every_visible_record_exactly() {
    let rt = actix_web::rt::System::new();
    let app = rt.block_on(spawn_app());
    let sql = rt.block_on(app.db.sql());
    let round = std::cell::Cell::new(0);
    let config = ProptestConfig {
        cases: 10,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(totals in proptest::collection::vec(0i64..1_000_000, 0..30),
                         bodies in proptest::collection::vec(("[=+@a-zA-Z ,\"\\n;é-]{1,40}", any::<bool>(), any::<bool>()), 0..8),
                         tickets in 0usize..5, role in proptest::sample::select(vec![Role::Admin, Role::Support, Role::Analyst]))| {
        round.set(round.get() + 1);
        rt.block_on(async {
            let id = customer(&app, "Round Trip", &format!("rt{}@example.com", round.get())).await;
            for (i, total) in totals.iter().enumerate() {
                sql.execute("INSERT INTO orders (customer_id, order_number, subtotal_cents, total_cents) VALUES ($1, $2, $3, $3)",
                    &[&id, &format!("RT{}-{i}", round.get()), total]).await.expect("order");
            }
            for t in 0..tickets {
                sql.execute("INSERT INTO support_tickets (customer_id, subject) VALUES ($1, $2)", &[&id, &format!("Ticket, \"{t}\"")]).await.expect("ticket");
            }
            let mut visible = Vec::new();
            let mut hidden = Vec::new();
            for (body, private, mine) in &bodies {
                let author = if *mine { format!("{}-1", role.as_str()) } else { "someone-else".to_owned() };
                let visibility = if *private { "private" } else { "public" };
                let note_id: i64 = sql.query_one(
                    "INSERT INTO customer_notes (customer_id, author_id, author_name, body, visibility) VALUES ($1, $2, 'N', $3, ($4::text)::note_visibility) RETURNING id",
                    &[&id, &author, body, &visibility]).await.expect("note").get(0);
                // What a spreadsheet would run as a formula is exported with a leading `'`.
                let exported = if body.starts_with(['=', '+', '-', '@']) { format!("'{body}") } else { body.clone() };
                if !*private || *mine || role == Role::Admin { visible.push((note_id, exported)) } else { hidden.push(note_id) }
            }
            let r = export(&app, id, "csv", role).await;
            assert_eq!(r.status, 200, "{}", r.text());
            let rows = records(&r.body);
            let of = |section: &str| rows.iter().filter(|r| &r[0] == section).cloned().collect::<Vec<_>>();
            let orders = of("order");
            assert_eq!(orders.len(), totals.len());
            let mut exported: Vec<i64> = orders.iter().map(|o| o[5].parse().expect("amount")).collect();
            let mut expected = totals.clone();
            exported.sort_unstable();
            expected.sort_unstable();
            assert_eq!(exported, expected, "every order with its exact total");
            assert_eq!(of("ticket").len(), tickets);
            let notes = of("note");
            let mut got: Vec<(i64, String)> = notes.iter().map(|n| (n[1].parse().expect("id"), n[7].to_owned())).collect();
            got.sort();
            visible.sort();
            assert_eq!(got, visible, "every readable note, bodies round-tripped exactly (formulas defused)");
            for h in hidden {
                assert!(!notes.iter().any(|n| n[1] == *h.to_string()), "a private note of someone else leaked");
            }
            let profile = &of("profile")[0];
            let masked = role == Role::Analyst;
            assert_eq!(profile[7].contains(&format!("rt{}@example.com", round.get())), !masked, "{}", &profile[7]);
        });
    });
}

#[actix_web::test]
async fn the_pdf_is_a_readable_multi_page_report() {
    let app = spawn_app().await;
    let id = customer(&app, "Zoë Łódź-Müller", "zoe@example.com").await;
    let sql = app.db.sql().await;
    sql.execute(
        "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents, placed_at)
         SELECT $1, 'PDF-' || g, 'delivered', 1000 + g, 1000 + g, now() - g * interval '1 day' FROM generate_series(1, 120) g",
        &[&id],
    )
    .await
    .expect("orders");
    sql.execute("INSERT INTO customer_notes (customer_id, author_id, author_name, body) VALUES ($1, 'a', 'Ann', 'Prefers email')", &[&id])
        .await
        .expect("note");
    let r = export(&app, id, "pdf", Role::Support).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("application/pdf"));
    assert!(r.header("content-disposition").is_some_and(|d| {
        d.starts_with("attachment; filename=\"customer-") && d.ends_with(".pdf\"")
    }));
    let doc = lopdf::Document::load_mem(&r.body).expect("a PDF");
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    assert!(
        pages.len() >= 3,
        "120 orders take several pages, got {}",
        pages.len()
    );
    assert!(
        r.body.len() < 1_000_000,
        "without Chinese, Japanese or Korean text the fallback font stays out: {} bytes",
        r.body.len()
    );
    let text = doc.extract_text(&pages).expect("extractable text");
    for needle in [
        "Zoë Łódź-Müller",
        "support Tester",
        "PDF-1",
        "PDF-120",
        "Orders (120) (continued)",
        "Prefers email",
        "Health",
        "Churn risk",
        &format!("Page 1 of {}", pages.len()),
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} missing from the PDF text"
        );
    }
    let masked = export(&app, id, "pdf", Role::Analyst).await;
    let text = lopdf::Document::load_mem(&masked.body)
        .and_then(|d| d.extract_text(&[1]))
        .expect("text");
    assert!(
        text.contains("z***@example.com") && !text.contains("zoe@example.com"),
        "the analyst's report is masked"
    );
}

/// Names in any script print: what DejaVu Sans lacks (Chinese, Japanese, Korean) is set in the
/// fallback font, a character neither font has prints as `?`, and tabs and line breaks as
/// spaces (they printed as invisible NUL glyphs).
#[actix_web::test]
async fn the_pdf_prints_every_script_and_no_control_characters() {
    let app = spawn_app().await;
    let id = customer(&app, "王小明 Ødegård 김민준 さくら", "wang@example.com").await;
    let sql = app.db.sql().await;
    sql.execute(
        "INSERT INTO customer_notes (customer_id, author_id, author_name, body) VALUES ($1, 'a', 'Ann', $2)",
        &[&id, &"line one\tline two\nline three \u{10FFFD} end"],
    )
    .await
    .expect("note");
    let r = export(&app, id, "pdf", Role::Admin).await;
    assert_eq!(r.status, 200);
    let doc = lopdf::Document::load_mem(&r.body).expect("a PDF");
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    let text = doc.extract_text(&pages).expect("extractable text");
    for needle in [
        "王小明 Ødegård 김민준 さくら",
        "line one line two line three ? end",
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} missing from the PDF text"
        );
    }
    assert!(!text.contains('\0'), "no NUL glyphs");
}

#[actix_web::test]
async fn exports_are_audited_and_checked() {
    let app = spawn_app().await;
    let id = customer(&app, "Audited", "audit@example.com").await;
    assert_eq!(export(&app, id, "csv", Role::Analyst).await.status, 200);
    assert_eq!(export(&app, id, "pdf", Role::Admin).await.status, 200);
    export(&app, id, "pdf", Role::Marketing)
        .await
        .problem(403, "forbidden");
    assert_eq!(
        export(&app, id, "docx", Role::Admin)
            .await
            .problem(422, "validation_failed")["field"],
        "format"
    );
    export(&app, 999_999, "csv", Role::Admin)
        .await
        .problem(404, "not_found");
    let rows = app
        .db
        .sql()
        .await
        .query("SELECT action, actor_role, (details->>'bytes')::bigint, details ? 'duration_ms' FROM audit_log WHERE customer_id = $1 ORDER BY id", &[&id])
        .await
        .expect("audit");
    let got: Vec<(String, String, i64, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str(), got[0].3),
        ("export.csv", "analyst", true)
    );
    assert_eq!(got[1].0, "export.pdf");
    assert!(got.iter().all(|g| g.2 > 0));
}
