//! Exports: CSV parsed back, NDJSON round trip, XLSX, receipts.

use crate::support::*;
use serde_json::{json, Value};

#[test]
fn csv_export_has_every_matching_row_and_neutralises_formulas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    s.client
        .post(s.url("/v1/import"))
        .body(generated(300, 8))
        .send()
        .expect("import");
    let mut evil = send_result("wamid.EVIL", "=HYPERLINK(\"http://x\")");
    evil["request"]["text"]["body"] = json!("@SUM(A1)");
    s.post_json("/v1/sends", &json!([evil]));
    let total = s.get_json("/v1/logs?-status=received").1["total"]
        .as_u64()
        .expect("total");
    let r = s
        .client
        .get(s.url("/v1/export?format=csv&-status=received"))
        .send()
        .expect("export");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .expect("h")
        .contains(".csv"));
    let body = r.bytes().expect("body");
    let mut reader = csv::Reader::from_reader(&body[..]);
    let headers = reader.headers().expect("headers").clone();
    assert_eq!(&headers[0], "id");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len() as u64, total, "all matching entries, not a page");
    let name_col = headers
        .iter()
        .position(|h| h == "name")
        .expect("name column");
    let text_col = headers
        .iter()
        .position(|h| h == "text")
        .expect("text column");
    let evil_row = rows
        .iter()
        .find(|r| r[name_col].contains("HYPERLINK"))
        .expect("the evil row");
    assert!(
        evil_row[name_col].starts_with("'="),
        "{}",
        &evil_row[name_col]
    );
    assert!(
        evil_row[text_col].starts_with("'@"),
        "{}",
        &evil_row[text_col]
    );
    // A receipt with the count, id range and hash of exactly these bytes.
    let (_, receipts) = s.get_json("/v1/receipts");
    let rc = &receipts["receipts"][0];
    assert_eq!(rc["count"].as_u64(), Some(total));
    use sha2::Digest;
    assert_eq!(
        rc["sha256"].as_str(),
        Some(hex::encode(sha2::Sha256::digest(&body)).as_str())
    );
    assert_eq!(rc["filter"], "-status=received");
}

#[test]
fn an_ndjson_export_imported_into_an_empty_store_gives_the_same_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    s.client
        .post(s.url("/v1/import"))
        .body(generated(200, 12))
        .send()
        .expect("import");
    for f in [
        "webhook_status_delivered.json",
        "webhook_template_status.json",
    ] {
        s.post_webhook(&fixture(f));
    }
    let export = s
        .client
        .get(s.url("/v1/export?format=ndjson"))
        .send()
        .expect("export")
        .bytes()
        .expect("body");
    let other = tempfile::tempdir().expect("tempdir");
    let t = Server::start(other.path(), &[]);
    let r: Value = t
        .client
        .post(t.url("/v1/import"))
        .body(export.to_vec())
        .send()
        .expect("import")
        .json()
        .expect("json");
    assert_eq!(r["rejected"], 0, "{r}");
    let strip = |v: Value| -> Vec<Value> { v["entries"].as_array().cloned().unwrap_or_default() };
    let a = strip(s.get_json("/v1/logs?limit=1000&sort=id").1);
    let b = strip(t.get_json("/v1/logs?limit=1000&sort=id").1);
    assert_eq!(a.len(), b.len());
    assert_eq!(a, b, "same entries, same ids, same columns");
    let id = a[0]["id"].as_u64().expect("id");
    let raw = |srv: &Server| {
        srv.get_json(&format!("/v1/logs/{id}")).1["inputs"]
            .as_array()
            .expect("inputs")
            .iter()
            .map(|i| i["raw"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(raw(&s), raw(&t), "the same raw payloads");
}

#[test]
fn xlsx_export_is_a_workbook_and_bad_formats_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    s.client
        .post(s.url("/v1/import"))
        .body(generated(50, 3))
        .send()
        .expect("import");
    let r = s
        .client
        .get(s.url("/v1/export?format=xlsx&status=read"))
        .send()
        .expect("export");
    assert_eq!(r.status(), 200);
    let body = r.bytes().expect("body");
    assert!(body.starts_with(b"PK\x03\x04"), "an XLSX file is a zip");
    let (status, v) = s.get_json("/v1/export?format=docx");
    assert_eq!(status, 400);
    assert_eq!(v["error"]["field"], "format");
}

/// An XLSX date (days since 1899-12-30, the fraction the time of day) as
/// `YYYY-MM-DDTHH:MM:SS`.
fn excel_local(serial: f64) -> String {
    let days = serial.floor();
    let seconds = ((serial - days) * 86_400.0).round() as i64;
    let date = jiff::civil::date(1899, 12, 30)
        .checked_add(jiff::Span::new().days(days as i64))
        .expect("date");
    let dt = date
        .at(0, 0, 0, 0)
        .checked_add(jiff::Span::new().seconds(seconds))
        .expect("time");
    dt.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

#[test]
fn xlsx_cells_are_typed_and_times_are_the_csvs_in_the_zone_asked_for() {
    use calamine::{Data, Reader};
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    s.client
        .post(s.url("/v1/import"))
        .body(generated(80, 5))
        .send()
        .expect("import");
    let evil = send_result("wamid.EVIL", "=HYPERLINK(\"http://x\")");
    s.post_json("/v1/sends", &json!([evil]));
    let query = "tz=America/Sao_Paulo&direction=outbound";
    let get = |format: &str| {
        s.client
            .get(s.url(&format!("/v1/export?format={format}&{query}")))
            .send()
            .expect("export")
            .bytes()
            .expect("body")
    };
    let csv_body = get("csv");
    let mut reader = csv::Reader::from_reader(&csv_body[..]);
    let headers = reader.headers().expect("headers").clone();
    let csv_rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let col = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let xlsx = get("xlsx");
    let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(xlsx.to_vec()))
        .expect("a workbook");
    // The header stays in view, the columns have widths and filter buttons.
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(xlsx.to_vec())).expect("a zip");
    let mut sheet_xml = String::new();
    std::io::Read::read_to_string(
        &mut zip
            .by_name("xl/worksheets/sheet1.xml")
            .expect("the first sheet's XML"),
        &mut sheet_xml,
    )
    .expect("utf-8");
    assert!(
        sheet_xml.contains(r#"state="frozen""#),
        "a frozen header row"
    );
    assert!(
        sheet_xml.contains("<autoFilter ref=\"A1:"),
        "filter buttons"
    );
    assert!(sheet_xml.contains("<col "), "column widths");
    let range = book.worksheet_range("Log 1").expect("the first sheet");
    let rows: Vec<&[Data]> = range.rows().collect();
    assert_eq!(rows.len(), csv_rows.len() + 1, "a header and every row");
    assert_eq!(rows[0][0], Data::String("id".into()));
    let mut codes = 0;
    for (x, c) in rows[1..].iter().zip(&csv_rows) {
        // Ids and codes are numbers.
        assert_eq!(x[col("id")], Data::Float(c[col("id")].parse().expect("id")));
        if !c[col("response_code")].is_empty() {
            codes += 1;
            let code: f64 = c[col("response_code")].parse().expect("code");
            assert_eq!(x[col("response_code")], Data::Float(code));
        }
        // Times are dates, the CSV's local time in the same zone.
        let Data::DateTime(t) = &x[col("recorded_at")] else {
            panic!("recorded_at is not a date: {:?}", x[col("recorded_at")]);
        };
        let csv_time = &c[col("recorded_at")];
        assert!(
            csv_time.ends_with("-03:00"),
            "every time in São Paulo's zone: {csv_time}"
        );
        assert_eq!(excel_local(t.as_f64()), csv_time[..19], "{csv_time}");
        // Text is text, written as it is.
        if c[col("name")].contains("HYPERLINK") {
            assert_eq!(
                x[col("name")],
                Data::String("=HYPERLINK(\"http://x\")".into())
            );
            assert!(
                c[col("name")].starts_with("'="),
                "the CSV still neutralises it"
            );
        }
    }
    assert!(codes > 50);
}

#[test]
fn pdf_export_is_a_paginated_printable_report_listing_every_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    s.client
        .post(s.url("/v1/import"))
        .body(generated(150, 4))
        .send()
        .expect("import");
    let (_, page) = s.get_json("/v1/logs?status=read&limit=1000");
    let entries = page["entries"].as_array().expect("entries").clone();
    assert!(entries.len() > 60, "enough rows for several pages");
    let r = s
        .client
        .get(s.url("/v1/export?format=pdf&status=read&tz=America%2FSao_Paulo"))
        .send()
        .expect("export");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let body = r.bytes().expect("body");
    let doc = lopdf::Document::load_mem(&body).expect("a PDF that opens");
    let pages = doc.get_pages();
    assert!(pages.len() >= 2, "paginated: {} pages", pages.len());
    let numbers: Vec<u32> = pages.keys().copied().collect();
    let text = doc.extract_text(&numbers).expect("text");
    assert!(text.contains("Ticks - WhatsApp log export"), "a title");
    assert!(
        text.contains("status=read&tz=America/Sao_Paulo"),
        "the filters used, as written: {}",
        &text[..400.min(text.len())]
    );
    assert!(text.contains("Generated:"), "the generation time");
    assert!(
        text.contains("(times in America/Sao_Paulo)"),
        "the zone named"
    );
    assert!(
        text.contains(&format!("Entries: {}", entries.len())),
        "the total"
    );
    assert!(text.contains(&format!("page 1 of {}", pages.len())));
    for e in &entries {
        let id = e["id"].as_u64().expect("id").to_string();
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(&id)),
            "row {id} listed"
        );
    }
    let (_, receipts) = s.get_json("/v1/receipts");
    assert!(receipts["receipts"]
        .as_array()
        .expect("receipts")
        .iter()
        .any(|r| r["format"] == "pdf" && r["count"].as_u64() == Some(entries.len() as u64)));
}
