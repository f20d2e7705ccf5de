//! The ClickHouse backend against real servers: the single server, the
//! two-shard cluster and the three replicas of one shard that
//! `scripts/clickhouse.sh` starts (`TICKS_TEST_CLICKHOUSE`,
//! `TICKS_TEST_CLICKHOUSE_CLUSTER`, `TICKS_TEST_CLICKHOUSE_REPLICAS`).
//! Without them these tests say so and pass, unless
//! `TICKS_REQUIRE_CLICKHOUSE=1` (CI sets it), where a missing server fails
//! them.

use std::collections::BTreeSet;
use std::time::Duration;
use ticks_engine::{Input, Seq, Source};
use ticks_query::clickhouse::client::Client;
use ticks_query::clickhouse::{ClickHouse, ClickHouseConfig};
use ticks_query::{Backend, QueryError};

/// Which deployment a test runs on.
#[derive(Clone, Copy)]
enum Deployment {
    Single,
    Cluster,
    /// Replicated tables on three replicas behind one name, with quorum
    /// writes of two.
    Replicas,
}

/// A database of its own for one test, dropped at the end.
struct Db {
    config: ClickHouseConfig,
}

impl Db {
    fn new(deployment: Deployment, test: &str) -> Option<Db> {
        let var = match deployment {
            Deployment::Single => "TICKS_TEST_CLICKHOUSE",
            Deployment::Cluster => "TICKS_TEST_CLICKHOUSE_CLUSTER",
            Deployment::Replicas => "TICKS_TEST_CLICKHOUSE_REPLICAS",
        };
        let Ok(urls) = std::env::var(var) else {
            assert!(
                std::env::var("TICKS_REQUIRE_CLICKHOUSE").as_deref() != Ok("1"),
                "{var} is not set: start the servers with scripts/clickhouse.sh start DIR"
            );
            eprintln!("{test}: skipped, {var} is not set (scripts/clickhouse.sh starts servers)");
            return None;
        };
        let mut config =
            ClickHouseConfig::new(urls.split(',').map(|s| s.trim().to_string()).collect());
        config.database = format!("t_{test}_{}", std::process::id());
        match deployment {
            Deployment::Cluster => config.cluster = Some("ticks".into()),
            Deployment::Replicas => config.replicated = true,
            Deployment::Single => {}
        }
        config.timeout = Duration::from_secs(30);
        let db = Db { config };
        db.drop_database();
        Some(db)
    }

    fn open(&self) -> ClickHouse {
        ClickHouse::open(&self.config).expect("open the ClickHouse backend")
    }

    /// The backend through server `i` alone (a replica on its own).
    fn open_alone(&self, i: usize) -> ClickHouse {
        let mut alone = self.config.clone();
        alone.urls = vec![self.config.urls[i].clone()];
        ClickHouse::open(&alone).expect("open through one server")
    }

    /// One server's own client.
    fn node(&self, i: usize) -> Client {
        Client::new(
            vec![self.config.urls[i].clone()],
            None,
            None,
            Duration::from_secs(30),
        )
    }

    fn drop_database(&self) {
        for i in 0..self.config.urls.len() {
            let _ = self
                .node(i)
                .query(&format!("DROP DATABASE IF EXISTS {}", self.config.database));
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.drop_database();
    }
}

fn input(source: Source, received_ms: i64, raw: &[u8]) -> Input {
    Input {
        source,
        received_ms,
        raw: raw.to_vec(),
        events: Vec::new(),
    }
}

#[test]
fn the_schema_is_created_once_and_opening_again_changes_nothing() {
    for deployment in [
        Deployment::Single,
        Deployment::Cluster,
        Deployment::Replicas,
    ] {
        let Some(db) = Db::new(deployment, "schema") else {
            return;
        };
        let first = db.open();
        assert!(first
            .schema()
            .server_version
            .starts_with(|c: char| c.is_ascii_digit()));
        drop(first);
        let _again = db.open();
        for i in 0..db.config.urls.len() {
            let tables = db
                .node(i)
                .query_text(&format!("SHOW TABLES FROM {}", db.config.database))
                .expect("answered");
            let tables: BTreeSet<&str> = tables.lines().collect();
            for t in ["inputs", "settings", "purges", "writers", "meta"] {
                assert!(tables.contains(t), "{t} on node {i}: {tables:?}");
                if let Deployment::Cluster = deployment {
                    assert!(
                        tables.contains(format!("{t}_local").as_str()),
                        "{t}_local on node {i}"
                    );
                }
            }
        }
    }
}

#[test]
fn an_acknowledged_input_is_stored_byte_for_byte_in_receipt_order() {
    for deployment in [Deployment::Single, Deployment::Cluster] {
        let Some(db) = Db::new(deployment, "bytes") else {
            return;
        };
        let backend = db.open();
        // Bytes a text format would bend: tabs, newlines, a quote, a
        // backslash, NUL, invalid UTF-8.
        let odd: &[u8] = b"{\"a\":\"x\ty\nz\\\\ ' \"}\0\xff\xfe";
        let inputs = vec![
            input(Source::Webhook, 1_700_000_000_000, odd),
            input(Source::SendApi, 1_700_000_000_000, b"{\"messages\":[]}"),
            input(Source::Import, 1_700_000_000_001, b""),
        ];
        let outcomes = backend.append(inputs.clone()).expect("answered");
        assert_eq!(outcomes.len(), 3);
        let seqs: Vec<Seq> = outcomes.iter().map(|o| o.seq.expect("answered")).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        let stored = backend.inputs_after(None, 100, &[]).expect("answered");
        assert_eq!(stored.len(), 3);
        for ((seq, source, ms, raw), (want_seq, want)) in
            stored.iter().zip(seqs.iter().zip(&inputs))
        {
            assert_eq!(seq, want_seq);
            assert_eq!(*source, want.source);
            assert_eq!(*ms, want.received_ms);
            assert_eq!(raw, &want.raw);
        }
        assert_eq!(backend.last_seq(), Some(seqs[2]));
        // The relay reads webhooks only, after its cursor.
        assert_eq!(
            backend
                .webhook_after(None)
                .expect("answered")
                .map(|(s, _)| s),
            Some(seqs[0])
        );
        assert_eq!(
            backend.webhook_after(Some(seqs[0])).expect("answered"),
            None
        );
        assert_eq!(backend.store_stats().expect("answered").log_records, 3);
    }
}

#[test]
fn on_the_cluster_inputs_spread_over_both_shards_and_every_one_is_counted() {
    let Some(db) = Db::new(Deployment::Cluster, "spread") else {
        return;
    };
    let backend = db.open();
    let inputs: Vec<Input> = (0..200)
        .map(|i| {
            input(
                Source::Webhook,
                1_700_000_000_000 + i,
                format!("{{\"n\":{i}}}").as_bytes(),
            )
        })
        .collect();
    backend.append(inputs).expect("answered");
    let mut total = 0;
    for i in 0..2 {
        let n: u64 = db
            .node(i)
            .query_text(&format!(
                "SELECT count() FROM {}.inputs_local",
                db.config.database
            ))
            .expect("answered")
            .trim()
            .parse()
            .expect("answered");
        assert!(n > 0, "shard {i} holds none of 200 inputs");
        total += n;
    }
    assert_eq!(total, 200);
    assert_eq!(backend.store_stats().expect("answered").log_records, 200);
}

/// 20 appends of 25 inputs, received in the same milliseconds as the
/// other writer's.
fn write_rounds(backend: &ClickHouse, who: u8) -> Vec<Seq> {
    let mut seqs = Vec::new();
    for round in 0..20 {
        let batch: Vec<Input> = (0..25)
            .map(|i| {
                let raw = format!("{{\"writer\":{who},\"round\":{round},\"i\":{i}}}");
                input(Source::Webhook, 1_700_000_000_000 + round, raw.as_bytes())
            })
            .collect();
        seqs.extend(
            backend
                .append(batch)
                .expect("answered")
                .into_iter()
                .map(|o| o.seq.expect("answered")),
        );
    }
    seqs
}

#[test]
fn two_writers_at_once_lose_nothing_and_never_share_a_sequence_number() {
    for deployment in [
        Deployment::Single,
        Deployment::Cluster,
        Deployment::Replicas,
    ] {
        let Some(mut db) = Db::new(deployment, "writers") else {
            return;
        };
        let a = db.open();
        // On replicas each writer talks to a replica of its own first: the
        // quorum inserts of both into one table take turns.
        db.config.urls.rotate_left(1);
        let b = db.open();
        assert_ne!(a.writer_tag(), b.writer_tag());
        let seqs: Vec<Seq> = std::thread::scope(|s| {
            let ha = s.spawn(|| write_rounds(&a, 1));
            let hb = s.spawn(|| write_rounds(&b, 2));
            let mut all = ha.join().expect("answered");
            all.extend(hb.join().expect("answered"));
            all
        });
        let distinct: BTreeSet<Seq> = seqs.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            1000,
            "every acknowledged input has its own seq"
        );
        let stored = a.inputs_after(None, 10_000, &[]).expect("answered");
        let stored_seqs: BTreeSet<Seq> = stored.iter().map(|s| s.0).collect();
        assert_eq!(stored_seqs, distinct, "every acknowledged input is stored");
    }
}

#[test]
fn settings_keep_the_latest_value_and_a_deletion_removes_only_its_key() {
    for deployment in [Deployment::Single, Deployment::Cluster] {
        let Some(db) = Db::new(deployment, "settings") else {
            return;
        };
        let backend = db.open();
        backend
            .put_setting("searches", "failed", b"status=failed")
            .expect("answered");
        backend
            .put_setting("searches", "read", b"status=read")
            .expect("answered");
        backend
            .put_setting("searches", "failed", b"status=failed&category=marketing")
            .expect("answered");
        backend
            .put_setting("receipts", "failed", b"other namespace")
            .expect("answered");
        assert_eq!(
            backend.settings("searches").expect("answered"),
            vec![
                (
                    "failed".to_string(),
                    b"status=failed&category=marketing".to_vec()
                ),
                ("read".to_string(), b"status=read".to_vec()),
            ]
        );
        assert!(backend
            .delete_setting("searches", "failed")
            .expect("answered"));
        assert!(!backend
            .delete_setting("searches", "failed")
            .expect("answered"));
        assert_eq!(
            backend.settings("searches").expect("answered"),
            vec![("read".to_string(), b"status=read".to_vec())]
        );
        assert_eq!(backend.settings("receipts").expect("answered").len(), 1);
        // Written again after its deletion, a key is back.
        backend
            .put_setting("searches", "failed", b"again")
            .expect("answered");
        assert_eq!(backend.settings("searches").expect("answered").len(), 2);
    }
}

/// People who said stop, then one message each in one group of writes:
/// every message is of an opted-out person, also when their histories
/// together are more than one fold takes (the group is derived in parts,
/// never with a person's history cut short).
#[test]
fn a_group_of_writes_past_the_fold_limit_is_derived_in_parts_with_whole_histories() {
    let Some(mut db) = Db::new(Deployment::Single, "fold_limit") else {
        return;
    };
    db.config.max_folded_inputs = 8;
    let backend = db.open();
    let people: Vec<String> = (0..30).map(|i| format!("5511987650{i:03}")).collect();
    let line = |json: serde_json::Value, at: i64| {
        ticks_ingest::line_input(json.to_string().into_bytes(), Source::Import, at)
            .expect("a valid line")
    };
    let stops = people
        .iter()
        .map(|wa_id| {
            line(
                serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
                "changes": [{"field": "user_preferences", "value": {"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"},
                "contacts": [{"profile": {"name": "Ana"}, "wa_id": wa_id}],
                "user_preferences": [{"wa_id": wa_id, "detail": "User requested it",
                "category": "marketing_messages", "value": "stop", "timestamp": 1777633200}]}}]}]}),
                1_777_633_200_000,
            )
        })
        .collect();
    backend.append(stops).expect("the stops stored");
    let sends = people
        .iter()
        .enumerate()
        .map(|(i, to)| {
            line(
                serde_json::json!({"recorded_at": "2026-05-01T12:00:00Z", "category": "marketing_campaign",
                "name": "Black Friday", "phone_number_id": "106540352242922",
                "request": {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "oferta"}},
                "response_code": 200, "response": {"messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": format!("wamid.F{i}")}]}}),
                1_777_636_800_000,
            )
        })
        .collect();
    backend.append(sends).expect("the sends stored");
    let opted_out = |direction: &str| {
        let params = vec![
            ("opted_out".to_string(), "true".to_string()),
            ("direction".to_string(), direction.to_string()),
        ];
        let query = ticks_query::LogQuery::from_params(&params, &[]).expect("a valid query");
        backend.search(&query).expect("answered").total
    };
    assert_eq!(opted_out("event"), 30, "the stops");
    assert_eq!(opted_out("outbound"), 30, "every message after a stop");
}

/// A database made by a build before free text: its `entries` lacks the
/// columns version 2 added, which the next open adds (on a cluster to the
/// local and the Distributed tables of every node).
#[test]
fn an_older_schema_gets_the_columns_it_lacks_at_open() {
    for deployment in [Deployment::Single, Deployment::Cluster] {
        let Some(db) = Db::new(deployment, "upgrade") else {
            return;
        };
        drop(db.open());
        let tables: &[&str] = match deployment {
            Deployment::Single | Deployment::Replicas => &["entries"],
            Deployment::Cluster => &["entries_local", "entries"],
        };
        let added = ["words", "exact", "opted_out", "marketing"];
        let columns = |node: &Client, table: &str| -> BTreeSet<String> {
            node.query_text(&format!(
                "SELECT name FROM system.columns WHERE database = '{}' AND table = '{table}'",
                db.config.database
            ))
            .expect("answered")
            .lines()
            .map(String::from)
            .collect()
        };
        for i in 0..db.config.urls.len() {
            // Such a database has no view of changes (version 5) yet; the
            // open makes it, once the columns it reads are back. (Current
            // servers refuse to drop a column a view reads.)
            db.node(i)
                .query(&format!(
                    "DROP TABLE {}.entry_changes_mv",
                    db.config.database
                ))
                .expect("the view dropped");
            for table in tables {
                for column in added {
                    db.node(i)
                        .query(&format!(
                            "ALTER TABLE {}.{table} DROP COLUMN {column}",
                            db.config.database
                        ))
                        .expect("the column dropped");
                }
                assert!(!columns(&db.node(i), table).contains("words"));
            }
        }
        drop(db.open());
        for i in 0..db.config.urls.len() {
            for table in tables {
                let now = columns(&db.node(i), table);
                for column in added {
                    assert!(now.contains(column), "{table}.{column} on node {i}");
                }
            }
            let view = db
                .node(i)
                .query_text(&format!(
                    "SHOW CREATE TABLE {}.entry_changes_mv",
                    db.config.database
                ))
                .expect("the view made again");
            assert!(view.contains("words"), "node {i}: {view}");
        }
    }
}

/// A database of schema version 5 has `latest` in one partition: the next
/// open makes it again by week of `recorded_ms` and marks every entry
/// changed, and the next round settles them all into it, with the same
/// answers as before.
#[test]
fn an_unpartitioned_latest_is_made_again_by_week_and_settled_anew() {
    for deployment in [Deployment::Single, Deployment::Cluster] {
        let Some(mut db) = Db::new(deployment, "repartition") else {
            return;
        };
        db.config.settle_lag = Duration::from_secs(1);
        let local = match deployment {
            Deployment::Single | Deployment::Replicas => "latest",
            Deployment::Cluster => "latest_local",
        };
        let name = db.config.database.clone();
        let settle = |backend: &ClickHouse| {
            std::thread::sleep(Duration::from_millis(2_100));
            backend.settle_now().expect("a settler round");
        };
        let before = {
            let backend = db.open();
            let sends = (0..12)
                .map(|i| {
                    let to = format!("55119866{i:05}");
                    let json = serde_json::json!({"recorded_at": format!("2026-05-{:02}T12:00:00Z", 1 + i * 2),
                        "category": "marketing_campaign", "name": "Weeks", "phone_number_id": "106540352242922",
                        "request": {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "oferta"}},
                        "response_code": 200, "response": {"messaging_product": "whatsapp",
                        "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": format!("wamid.WEEK{i}")}]}});
                    ticks_ingest::line_input(json.to_string().into_bytes(), Source::Import, 1_777_636_800_000)
                        .expect("a valid line")
                })
                .collect();
            backend.append(sends).expect("stored");
            settle(&backend);
            answers(&backend)
        };
        let index_local = match deployment {
            Deployment::Single | Deployment::Replicas => "input_index",
            Deployment::Cluster => "input_index_local",
        };
        let indexed = number(&db, &format!("SELECT count() FROM {name}.input_index"));
        // Version 5's form: one partition, the same rows; the index in
        // granules of 8,192.
        for i in 0..db.config.urls.len() {
            let node = db.node(i);
            for sql in [
                format!("CREATE TABLE {name}.index_v5 AS {name}.{index_local} ENGINE = MergeTree ORDER BY (ident, seq)"),
                format!("INSERT INTO {name}.index_v5 SELECT * FROM {name}.{index_local}"),
                format!("DROP TABLE {name}.{index_local}"),
                format!("RENAME TABLE {name}.index_v5 TO {name}.{index_local}"),
            ] {
                node.query(&sql).expect("the version 5 index");
            }
            for sql in [
                format!("CREATE TABLE {name}.latest_v5 AS {name}.{local} ENGINE = VersionedCollapsingMergeTree(sign, version) ORDER BY key"),
                format!("INSERT INTO {name}.latest_v5 SELECT * FROM {name}.{local}"),
                format!("DROP TABLE {name}.{local}"),
                format!("RENAME TABLE {name}.latest_v5 TO {name}.{local}"),
            ] {
                node.query(&sql).expect("the version 5 form");
            }
        }
        let backend = db.open();
        for i in 0..db.config.urls.len() {
            let create = db
                .node(i)
                .query_text(&format!("SHOW CREATE TABLE {name}.{local}"))
                .expect("answered");
            assert!(create.contains("PARTITION BY"), "node {i}: {create}");
            let create = db
                .node(i)
                .query_text(&format!("SHOW CREATE TABLE {name}.{index_local}"))
                .expect("answered");
            assert!(
                create.contains("index_granularity = 128"),
                "node {i}: {create}"
            );
        }
        assert_eq!(
            number(&db, &format!("SELECT count() FROM {name}.input_index")),
            indexed,
            "the index made again from the inputs"
        );
        assert_eq!(
            answers(&backend),
            before,
            "grouped while nothing is settled"
        );
        settle(&backend);
        assert_eq!(answers(&backend), before, "settled anew");
        assert_eq!(
            number(&db, &format!("SELECT sum(sign) FROM {name}.latest")),
            12,
            "every entry settled again"
        );
        let weeks = number(
            &db,
            &format!("SELECT uniqExact(_partition_id) FROM {name}.latest"),
        );
        assert!(weeks >= 3, "twelve sends over 23 days in {weeks} weeks");
    }
}

/// A database of schema version 6 has `input_index` with a column for
/// each of what a derivation follows, `entry_changes` without
/// `derived_ms` and `entry_ids` in granules of 8,192: the next open makes
/// the index again from the inputs as rows of one string (on a cluster the
/// Distributed table too), the view of changes again with `derived_ms`,
/// and copies the ids into granules of 256, each entry keeping its id;
/// entries derive as before: a status that names only its message finds
/// the send's events there.
#[test]
fn a_version_6_index_is_made_again_as_rows_of_one_string_and_derives_as_before() {
    for deployment in [Deployment::Single, Deployment::Cluster] {
        let Some(db) = Db::new(deployment, "index_v6") else {
            return;
        };
        let name = db.config.database.clone();
        let (index_local, inputs_local, changes_local, entries_local, ids_local) = match deployment
        {
            Deployment::Single | Deployment::Replicas => (
                "input_index",
                "inputs",
                "entry_changes",
                "entries",
                "entry_ids",
            ),
            Deployment::Cluster => (
                "input_index_local",
                "inputs_local",
                "entry_changes_local",
                "entries_local",
                "entry_ids_local",
            ),
        };
        {
            let backend = db.open();
            let sends = (0..6)
                .map(|i| {
                    send(
                        &format!("55119877{i:05}"),
                        "2026-05-01T12:00:00Z",
                        &format!("wamid.V6{i}"),
                    )
                })
                .collect();
            backend.append(sends).expect("stored");
        }
        let id_of = |backend: &ClickHouse, wamid: &str| {
            ask(backend, &format!("wamid={wamid}")).entries[0].id
        };
        let given: Vec<_> = {
            let backend = db.open();
            (0..6)
                .map(|i| id_of(&backend, &format!("wamid.V6{i}")))
                .collect()
        };
        let indexed = number(&db, &format!("SELECT count() FROM {name}.input_index"));
        let v6_columns = "ident String, seq UInt64, received_ms Int64, keys Array(String), \
people Array(String), links Array(String), events String";
        let v6_rows = |from: &str| {
            format!(
                "SELECT arrayJoin(arrayConcat(arrayMap(k -> concat('k:', k), keys), arrayMap(p -> concat('p:', p), people), \
arrayMap(q -> concat('q:', q), links))) AS ident, seq, received_ms, keys, people, links, \
if(substring(ident, 1, 2) = 'k:', events, '') AS events FROM {name}.{from}"
            )
        };
        for i in 0..db.config.urls.len() {
            let node = db.node(i);
            let mut sql = vec![
                format!("DROP TABLE {name}.input_index_mv"),
                format!("DROP TABLE {name}.{index_local}"),
                format!("CREATE TABLE {name}.{index_local} ({v6_columns}) ENGINE = MergeTree ORDER BY (ident, seq) SETTINGS index_granularity = 512"),
                format!("INSERT INTO {name}.{index_local} {}", v6_rows(inputs_local)),
                format!("CREATE MATERIALIZED VIEW {name}.input_index_mv TO {name}.{index_local} AS {}", v6_rows(inputs_local)),
                format!("DROP TABLE {name}.entry_changes_mv"),
                format!("ALTER TABLE {name}.{changes_local} DROP COLUMN derived_ms"),
                format!("CREATE MATERIALIZED VIEW {name}.entry_changes_mv TO {name}.{changes_local} AS SELECT toUInt32(now()) AS at, key FROM {name}.{entries_local}"),
                format!("CREATE TABLE {name}.ids_v6 (key String, id UInt64) ENGINE = MergeTree ORDER BY key"),
                format!("INSERT INTO {name}.ids_v6 SELECT key, id FROM {name}.{ids_local}"),
                format!("DROP TABLE {name}.{ids_local}"),
                format!("RENAME TABLE {name}.ids_v6 TO {name}.{ids_local}"),
            ];
            if let Deployment::Cluster = deployment {
                sql.push(format!(
                    "ALTER TABLE {name}.entry_changes DROP COLUMN derived_ms"
                ));
                sql.push(format!("DROP TABLE {name}.input_index"));
                sql.push(format!("CREATE TABLE {name}.input_index ({v6_columns}) ENGINE = Distributed(ticks, '{name}', input_index_local, intHash64(seq))"));
            }
            for statement in sql {
                node.query(&statement).expect("the version 6 index");
            }
        }
        let backend = db.open();
        for i in 0..db.config.urls.len() {
            let tables: &[&str] = match deployment {
                Deployment::Single | Deployment::Replicas => &["input_index"],
                Deployment::Cluster => &["input_index_local", "input_index"],
            };
            for table in tables {
                let columns = db
                    .node(i)
                    .query_text(&format!(
                        "SELECT name FROM system.columns WHERE database = '{name}' AND table = '{table}'"
                    ))
                    .expect("answered");
                let columns: Vec<&str> = columns.lines().collect();
                assert_eq!(columns, ["ident", "seq", "row"], "{table} on node {i}");
            }
        }
        assert_eq!(
            number(&db, &format!("SELECT count() FROM {name}.input_index")),
            indexed,
            "the index made again from the inputs"
        );
        for i in 0..db.config.urls.len() {
            let create = db
                .node(i)
                .query_text(&format!("SHOW CREATE TABLE {name}.{ids_local}"))
                .expect("answered");
            assert!(
                create.contains("index_granularity = 256"),
                "node {i}: {create}"
            );
        }
        let kept: Vec<_> = (0..6)
            .map(|i| id_of(&backend, &format!("wamid.V6{i}")))
            .collect();
        assert_eq!(kept, given, "every entry keeps its id");
        backend
            .append(vec![line(status(
                "wamid.V63",
                "55119877000003",
                "delivered",
                1_777_640_000,
            ))])
            .expect("stored");
        let page = ask(&backend, "wamid=wamid.V63");
        assert_eq!(page.total, 1);
        let entry = &page.entries[0];
        assert_eq!(entry.status, ticks_engine::Status::Delivered);
        assert_eq!(entry.id, given[3]);
        assert_eq!(
            entry.category.as_deref(),
            Some("marketing_campaign"),
            "the send's events, read through the index made again"
        );
        assert_eq!(
            number(&db, &format!("SELECT count() FROM {name}.input_index")),
            indexed + 2,
            "the status indexed by the view made again (its message and its person)"
        );
        assert!(
            number(
                &db,
                &format!("SELECT count() FROM {name}.entry_changes WHERE derived_ms > 0")
            ) >= 1,
            "the status's entry recorded with the time it was derived"
        );
    }
}

#[test]
fn with_no_server_reachable_a_write_is_refused_as_unavailable_and_health_says_why() {
    // Nothing listens on port 9 of loopback (discard is not served here);
    // opening fails at once with the reason.
    let config = ClickHouseConfig::new(vec!["http://127.0.0.1:9".into()]);
    match ClickHouse::open(&config) {
        Err(QueryError::Unavailable(m)) => assert!(m.contains("unreachable"), "{m}"),
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(_) => panic!("opened a backend with no server"),
    }
}

/// Every report section and every sort the store offers is answered (the
/// conformance suite compares the answers with the store's): on an empty
/// database, nothing, never a refusal.
#[test]
fn every_report_section_and_sort_is_answered_even_on_an_empty_database() {
    let Some(db) = Db::new(Deployment::Single, "unsupported") else {
        return;
    };
    let backend = db.open();
    let query = ticks_query::LogQuery::from_params(&[], &[]).expect("a valid query");
    let params = vec![("sections".to_string(), "counts,cost,templates".to_string())];
    let options = ticks_query::ReportOptions::from_params(&params).expect("valid options");
    let report = backend.report(&query, &options).expect("the cost section");
    let cost = report.cost.expect("asked for");
    assert_eq!((report.total, cost.messages, cost.billable), (0, 0, 0));
    assert!(report.templates.is_empty());
    for field in ticks_query::FIELDS.iter().filter(|f| f.sortable) {
        for sort in [field.name.to_string(), format!("-{}", field.name)] {
            let params = vec![("sort".to_string(), sort.clone())];
            let query = ticks_query::LogQuery::from_params(&params, &[]).expect("a valid query");
            match backend.search(&query) {
                Ok(page) => assert_eq!(page.total, 0, "{sort}"),
                Err(e) => panic!("sort={sort}: {e}"),
            }
        }
    }
}

/// Two processes that each get one input of the same new message at the
/// same moment (its send to one, its status to the other) both give the
/// message an id: whatever order their reads and writes interleave in,
/// the entry's row ends with the smallest id either gave, the id its
/// timeline and every other answer use.
#[test]
fn two_writers_that_name_a_new_message_at_once_agree_on_its_id() {
    for deployment in [Deployment::Cluster, Deployment::Replicas] {
        id_race(deployment);
    }
}

fn id_race(deployment: Deployment) {
    let Some(mut db) = Db::new(deployment, "id_race") else {
        return;
    };
    let a = db.open();
    // Each through another server first (on replicas, its own replica).
    db.config.urls.rotate_left(1);
    let b = db.open();
    let messages = 100;
    let send = |i: usize| {
        let to = format!("55119876{i:05}");
        serde_json::json!({"recorded_at": "2026-05-01T12:00:00Z", "category": "marketing_campaign",
            "name": "Black Friday", "phone_number_id": "106540352242922",
            "request": {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "oferta"}},
            "response_code": 200, "response": {"messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": format!("wamid.RACE{i}")}]}})
    };
    let status = |i: usize| {
        serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"},
            "statuses": [{"id": format!("wamid.RACE{i}"), "status": "delivered", "timestamp": "1777636900",
                "recipient_id": format!("55119876{i:05}")}]}}]}]})
    };
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        for (backend, body) in [
            (&a, &send as &(dyn Fn(usize) -> serde_json::Value + Sync)),
            (&b, &status),
        ] {
            let barrier = &barrier;
            s.spawn(move || {
                for i in 0..messages {
                    let line = ticks_ingest::line_input(
                        body(i).to_string().into_bytes(),
                        Source::Import,
                        1_777_636_800_000,
                    )
                    .expect("a valid line");
                    barrier.wait();
                    backend.append(vec![line]).expect("stored");
                }
            });
        }
    });
    let db_name = &db.config.database;
    let pairs = |sql: String| -> std::collections::BTreeMap<String, u64> {
        let text = db.node(0).query_text(&sql).expect("answered");
        text.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, id)| (k.to_string(), id.parse().expect("an id")))
            .collect()
    };
    let written = pairs(format!(
        "SELECT key, argMax(id, version) FROM {db_name}.entries GROUP BY key FORMAT TSV"
    ));
    let smallest = pairs(format!(
        "SELECT key, min(id) FROM {db_name}.entry_ids GROUP BY key FORMAT TSV"
    ));
    assert_eq!(written.len(), messages, "one entry per message");
    let disagree: Vec<String> = written
        .iter()
        .filter(|(k, id)| smallest.get(*k) != Some(id))
        .map(|(k, id)| format!("{k}: row {id}, smallest {:?}", smallest.get(k)))
        .collect();
    assert!(disagree.is_empty(), "{disagree:?}");
}

/// `ticks migrate` copies inputs without their entries and derives them
/// all at the end: until then the copy says it waits for them and the log
/// shows none; a copy stopped between the two says so on the next run.
#[test]
fn copied_inputs_wait_for_one_fold_of_the_whole_store_and_say_so() {
    let Some(db) = Db::new(Deployment::Single, "migrated") else {
        return;
    };
    let backend = db.open();
    let sends: Vec<(Seq, Input)> = (0..40u64)
        .map(|i| {
            let to = format!("5511987650{i:03}");
            let line = serde_json::json!({"recorded_at": "2026-05-01T12:00:00Z", "category": "marketing_campaign",
                "name": "Black Friday", "phone_number_id": "106540352242922",
                "request": {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "oferta"}},
                "response_code": 200, "response": {"messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": format!("wamid.M{i}")}]}});
            let input = ticks_ingest::line_input(
                line.to_string().into_bytes(),
                Source::Import,
                1_777_636_800_000 + i as i64,
            )
            .expect("a valid line");
            (Seq(i + 1), input)
        })
        .collect();
    let total = |backend: &ClickHouse| {
        let query = ticks_query::LogQuery::from_params(&[], &[]).expect("a valid query");
        backend.search(&query).expect("answered").total
    };
    assert!(
        !backend.migration_underived().expect("answered"),
        "nothing copied"
    );
    backend
        .append_migrated(sends[..25].to_vec())
        .expect("copied");
    assert!(backend.migration_underived().expect("answered"));
    assert_eq!(total(&backend), 0, "no entries before the fold");
    let entries = backend
        .derive_migrated(1_000, Box::new(|_| {}))
        .expect("derived");
    assert_eq!(entries, 25);
    assert_eq!(total(&backend), 25);
    assert!(!backend.migration_underived().expect("answered"));
    // A later run copies the rest, and stops before deriving.
    backend
        .append_migrated(sends[25..].to_vec())
        .expect("copied");
    drop(backend);
    let again = db.open();
    assert!(
        again.migration_underived().expect("answered"),
        "the next run knows the copy lacks entries"
    );
    // Folded in parts of about 7 inputs: every entry still written once.
    assert_eq!(
        again.derive_migrated(7, Box::new(|_| {})).expect("derived"),
        40
    );
    assert_eq!(total(&again), 40);
}

/// The answers of a set of queries: each one's total and its first page's
/// ids, in order.
fn answers(backend: &ClickHouse) -> Vec<(String, u64, Vec<u32>)> {
    let asked = [
        "",
        "direction=outbound",
        "status=delivered",
        "status=failed",
        "status=accepted",
        "-status=delivered",
        "category=marketing_campaign&sort=status",
        "text=oferta",
        "limit=0",
    ];
    asked
        .iter()
        .map(|q| {
            let params: Vec<(String, String)> = q
                .split('&')
                .filter(|p| !p.is_empty())
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let query = ticks_query::LogQuery::from_params(&params, &[]).expect("a valid query");
            let page = backend.search(&query).expect("answered");
            let mut ids: Vec<u32> = page.entries.iter().map(|e| e.id.0).collect();
            // Each status's count, as `stats` groups them, after the page.
            let stats = backend
                .stats(
                    &query,
                    ticks_query::GroupBy::Field(ticks_engine::Field::Status),
                )
                .expect("grouped");
            let mut groups: Vec<(String, u64)> = stats
                .groups
                .iter()
                .map(|g| (format!("{:?}", g.key), g.count))
                .collect();
            groups.sort();
            ids.extend(groups.iter().map(|(_, n)| *n as u32));
            (format!("{q} {groups:?}"), page.total, ids)
        })
        .collect()
}

/// An imported line, received on 2026-05-01.
fn line(json: serde_json::Value) -> Input {
    ticks_ingest::line_input(
        json.to_string().into_bytes(),
        Source::Import,
        1_777_636_800_000,
    )
    .expect("a valid line")
}

/// A marketing send to `to` recorded at `at` (RFC 3339), answered with
/// `wamid`.
fn send(to: &str, at: &str, wamid: &str) -> Input {
    line(
        serde_json::json!({"recorded_at": at, "category": "marketing_campaign",
        "phone_number_id": "106540352242922",
        "request": {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "oferta"}},
        "response_code": 200, "response": {"messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": wamid}]}}),
    )
}

/// A status webhook for `wamid` sent to `to`, at `timestamp` (seconds).
fn status(wamid: &str, to: &str, status: &str, timestamp: i64) -> serde_json::Value {
    serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
        "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"},
        "statuses": [{"id": wamid, "status": status, "timestamp": timestamp.to_string(),
            "recipient_id": to}]}}]}]})
}

/// A page of the log table, asked as the API's query string.
fn ask(backend: &ClickHouse, q: &str) -> ticks_query::Page {
    let params: Vec<(String, String)> = q
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let query = ticks_query::LogQuery::from_params(&params, &[]).expect("a valid query");
    backend.search(&query).expect("answered")
}

/// The first number of a one-line answer.
fn number(db: &Db, sql: &str) -> i64 {
    let text = db.node(0).query_text(sql).expect("answered");
    text.trim().parse().expect("a number")
}

/// Settling changes where a query reads its entries, never its answers:
/// before, between and after rounds, with statuses that change entries
/// already settled (a cancel row for each state replaced), the totals and
/// pages are the same, and once no key changed after the watermark every
/// answer comes from the settled rows alone.
#[test]
fn settled_entries_answer_as_the_grouped_versions_do() {
    for deployment in [
        Deployment::Single,
        Deployment::Cluster,
        Deployment::Replicas,
    ] {
        let name = match deployment {
            Deployment::Single => "settle_single",
            Deployment::Replicas => "settle_replicas",
            Deployment::Cluster => "settle_cluster",
        };
        let Some(mut db) = Db::new(deployment, name) else {
            return;
        };
        db.config.settle_lag = Duration::from_secs(1);
        // One server (and the replicas) finds each page's candidates among
        // the settled states in order, and settles in parts of a few keys
        // by key range; the
        // cluster groups every match (these tests' few) and settles each
        // round in one part.
        if let Deployment::Single | Deployment::Replicas = deployment {
            db.config.group_all_max_rows = 0;
            db.config.settle_part_rows = 7;
        }
        let backend = db.open();
        // No merges: every cancel row stays, for queries to step over.
        let local = match deployment {
            Deployment::Single | Deployment::Replicas => "latest",
            Deployment::Cluster => "latest_local",
        };
        for i in 0..db.config.urls.len() {
            db.node(i)
                .query(&format!(
                    "SYSTEM STOP MERGES {}.{local}",
                    db.config.database
                ))
                .expect("merges stopped");
        }
        let sends = (0..40)
            .map(|i| {
                let to = format!("55119877{i:05}");
                line(serde_json::json!({"recorded_at": "2026-05-01T12:00:00Z", "category": "marketing_campaign",
                    "name": "Black Friday", "phone_number_id": "106540352242922",
                    "request": {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "oferta"}},
                    "response_code": 200, "response": {"messaging_product": "whatsapp",
                    "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": format!("wamid.SET{i}")}]}}))
            })
            .collect();
        backend.append(sends).expect("the sends stored");
        let before = answers(&backend);
        assert_eq!(before[0].1, 40, "every send is an entry");
        let db_name = db.config.database.clone();
        let settle = || {
            std::thread::sleep(Duration::from_millis(2_100));
            backend.settle_now().expect("a settler round");
            let fresh = number(
                &db,
                &format!(
                    "SELECT count() FROM {db_name}.entry_changes WHERE at > (SELECT max(version) FROM {db_name}.meta WHERE key = 'settled_at')"
                ),
            );
            assert_eq!(fresh, 0, "{name}: no key changed after the watermark");
        };
        let progress_records = || {
            number(
                &db,
                &format!("SELECT count() FROM {db_name}.meta WHERE key = 'settling'"),
            )
        };
        settle();
        assert_eq!(answers(&backend), before, "{name}: settled as grouped");
        let parts_recorded = progress_records();
        match deployment {
            // `meta` replaces a key's older rows at its merges: at least
            // the last part's record stays.
            Deployment::Single | Deployment::Replicas => assert!(
                parts_recorded >= 1,
                "{name}: 40 changes in parts of about 7 record their progress"
            ),
            Deployment::Cluster => assert_eq!(parts_recorded, 0, "{name}: one part"),
        }
        let statuses = (0..30)
            .map(|i| {
                let status = if i < 20 { "delivered" } else { "failed" };
                let mut s = serde_json::json!({"id": format!("wamid.SET{i}"), "status": status,
                    "timestamp": "1777636900", "recipient_id": format!("55119877{i:05}")});
                if status == "failed" {
                    s["errors"] = serde_json::json!([{"code": 131049, "title": "Ecosystem engagement"}]);
                }
                line(serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
                    "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"},
                    "statuses": [s]}}]}]}))
            })
            .collect();
        backend.append(statuses).expect("the statuses stored");
        let changed = answers(&backend);
        let total = |q: &str| {
            changed
                .iter()
                .find(|a| a.0.split(' ').next() == Some(q))
                .map(|a| a.1)
        };
        assert_eq!(total("status=delivered"), Some(20), "{name}: {changed:?}");
        assert_eq!(total("status=failed"), Some(10), "{name}");
        assert_eq!(total("-status=delivered"), Some(20), "{name}");
        settle();
        assert_eq!(
            answers(&backend),
            changed,
            "{name}: settled again as grouped"
        );
        let cancels = number(
            &db,
            &format!("SELECT countIf(sign = -1) FROM {db_name}.latest"),
        );
        let net = number(&db, &format!("SELECT sum(sign) FROM {db_name}.latest"));
        assert_eq!(net, 40, "{name}: one settled state per entry");
        assert_eq!(cancels, 30, "{name}: one cancel per state replaced");
    }
}

/// A count reads the settled rows and takes out the fresh keys' rows in
/// one statement; a settler round landing between the two reads must not
/// show: while entries keep changing and rounds settle them, every count
/// of entries that neither appear nor vanish stays the same.
#[test]
fn counts_hold_while_the_settler_writes_under_them() {
    let Some(mut db) = Db::new(Deployment::Single, "settle_race") else {
        return;
    };
    db.config.settle_lag = Duration::from_secs(1);
    let backend = db.open();
    let sends = (0..40)
        .map(|i| {
            send(
                &format!("55119866{i:05}"),
                "2026-05-01T12:00:00Z",
                &format!("wamid.RACE{i}"),
            )
        })
        .collect();
    backend.append(sends).expect("the sends stored");
    let count = |q: &str| ask(&backend, q).total;
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            // Each round every entry gets a status it did not have: a new
            // version of all 40, settled a second later.
            for round in 0..8i64 {
                let status_now = ["delivered", "read"][round as usize % 2];
                let statuses = (0..40)
                    .map(|i| {
                        line(status(
                            &format!("wamid.RACE{i}"),
                            &format!("55119866{i:05}"),
                            status_now,
                            1_777_636_900 + round * 60,
                        ))
                    })
                    .collect();
                backend.append(statuses).expect("the statuses stored");
                std::thread::sleep(Duration::from_millis(1_100));
                backend.settle_now().expect("a settler round");
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut asked = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            assert_eq!(count("limit=0"), 40, "every entry, count {asked}");
            assert_eq!(count("direction=outbound&limit=1"), 40, "count {asked}");
            asked += 1;
        }
        assert!(asked > 20, "counted while rounds settled: {asked}");
    });
    let db_name = db.config.database.clone();
    let last_mark = || {
        db.node(0)
            .query_text(&format!(
                "SELECT argMax(value, version) FROM {db_name}.meta WHERE key = 'latest_writes'"
            ))
            .expect("answered")
            .trim()
            .to_string()
    };
    assert_eq!(last_mark(), "end", "each write of the settler marked done");
    // A write that never ended (a settler stopped mid-insert): answers are
    // read the exact way, and are the same.
    let statuses = (0..10)
        .map(|i| {
            let mut failed = status(
                &format!("wamid.RACE{i}"),
                &format!("55119866{i:05}"),
                "failed",
                1_777_646_900,
            );
            failed["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"] =
                serde_json::json!([{"code": 131049, "title": "Ecosystem engagement"}]);
            line(failed)
        })
        .collect();
    backend.append(statuses).expect("the statuses stored");
    let before = answers(&backend);
    db.node(0)
        .query(&format!(
            "INSERT INTO {db_name}.meta (key, value, version) VALUES ('latest_writes', 'begin', {})",
            u64::MAX / 2
        ))
        .expect("a mark written");
    assert_eq!(last_mark(), "begin");
    assert_eq!(answers(&backend), before, "the exact form answers the same");
}

/// A page newest first reads the newest weeks of `latest` first and widens
/// until they hold the page: over ten weeks of sends, every page is the
/// one the order gives, settled (the first states) or with changed
/// entries (the candidates), at any offset.
#[test]
fn a_page_newest_first_is_found_in_the_newest_weeks_and_is_the_whole_order() {
    let Some(mut db) = Db::new(Deployment::Single, "newest_weeks") else {
        return;
    };
    db.config.settle_lag = Duration::from_secs(1);
    // Candidates and first states, not a grouping of every match.
    db.config.group_all_max_rows = 0;
    let backend = db.open();
    // Enough matches that a page reads the newest weeks first: 2,000
    // sends, 1,990 over nine weeks and the last ten in a week of their
    // own, so that a page past them widens its window.
    const SENDS: i64 = 2_000;
    let start = 1_772_366_400; // 2026-03-01T12:00:00Z, a Sunday
    let at_s = |i: i64| {
        if i < SENDS - 10 {
            start + i * 2_736
        } else {
            start + 68 * 86_400 + (i - SENDS + 10) * 3_600
        }
    };
    let sends = (0..SENDS)
        .map(|i| {
            let at = jiff::Timestamp::from_second(at_s(i)).expect("a time");
            send(
                &format!("55119855{i:05}"),
                &at.to_string(),
                &format!("wamid.WEEK{i:04}"),
            )
        })
        .collect();
    backend.append(sends).expect("the sends stored");
    let page = |q: &str| -> Vec<String> {
        let page = ask(&backend, q);
        assert_eq!(page.total, SENDS as u64, "{q}");
        page.entries
            .iter()
            .filter_map(|e| e.wamid.clone())
            .collect()
    };
    let expected = |offset: usize, limit: usize| -> Vec<String> {
        (0..SENDS)
            .rev()
            .skip(offset)
            .take(limit)
            .map(|i| format!("wamid.WEEK{i:04}"))
            .collect()
    };
    let asked = [
        (0, 5),
        (3, 5),
        (10, 10),
        (30, 20),
        (600, 20),
        (1_990, 20),
        (0, 100),
    ];
    let check = |when: &str| {
        for (offset, limit) in asked {
            assert_eq!(
                page(&format!("offset={offset}&limit={limit}")),
                expected(offset, limit),
                "{when}: offset {offset}, limit {limit}"
            );
        }
    };
    check("every entry fresh");
    std::thread::sleep(Duration::from_millis(2_100));
    backend.settle_now().expect("a settler round");
    let weeks = number(
        &db,
        &format!(
            "SELECT uniqExact(partition_id) FROM system.parts WHERE database = '{}' AND table = 'latest' AND active",
            db.config.database
        ),
    );
    assert!(weeks >= 10, "ten weeks of sends in {weeks} partitions");
    let newest = number(
        &db,
        &format!(
            "SELECT count() FROM {}.latest WHERE toMonday(toDate(toDateTime(intDiv(recorded_ms, 1000)))) = toDate('2026-05-04')",
            db.config.database
        ),
    );
    assert_eq!(newest, 10, "the newest week holds the last ten");
    check("settled");
    // Statuses for the oldest and the newest: those entries change, and
    // pages are found among candidates with the fresh entries left out.
    let statuses = [0, 1, SENDS - 2, SENDS - 1]
        .iter()
        .map(|i| {
            line(status(
                &format!("wamid.WEEK{i:04}"),
                &format!("55119855{i:05}"),
                "delivered",
                at_s(*i) + 60,
            ))
        })
        .collect();
    backend.append(statuses).expect("the statuses stored");
    check("some entries changed");
}

/// `entry_changes` says which entries changed since the settler's
/// watermark; days of it well before the watermark are dropped once a
/// round has settled past them, on every shard, and the answers stay.
#[test]
fn settled_days_of_changes_are_dropped_and_recent_ones_kept() {
    for deployment in [
        Deployment::Single,
        Deployment::Cluster,
        Deployment::Replicas,
    ] {
        let name = match deployment {
            Deployment::Single => "trim_single",
            Deployment::Replicas => "trim_replicas",
            Deployment::Cluster => "trim_cluster",
        };
        let Some(mut db) = Db::new(deployment, name) else {
            return;
        };
        db.config.settle_lag = Duration::from_secs(1);
        let backend = db.open();
        let db_name = db.config.database.clone();
        let sends = (0..8)
            .map(|i| {
                send(
                    &format!("55119844{i:05}"),
                    "2026-05-01T12:00:00Z",
                    &format!("wamid.TRIM{i}"),
                )
            })
            .collect();
        backend.append(sends).expect("the sends stored");
        // Changes of ten days in 1970 (as an upgrade marks every entry),
        // on every node's own table.
        let local = match deployment {
            Deployment::Single | Deployment::Replicas => "entry_changes",
            Deployment::Cluster => "entry_changes_local",
        };
        // Replicas share their rows: written through one of them.
        let nodes = match deployment {
            Deployment::Cluster => db.config.urls.len(),
            Deployment::Single | Deployment::Replicas => 1,
        };
        for i in 0..nodes {
            db.node(i)
                .query(&format!(
                    "INSERT INTO {db_name}.{local} (at, key) SELECT toUInt32(864000 + number * 43200), concat('old', toString(number)) FROM system.numbers LIMIT {}",
                    20 / nodes
                ))
                .expect("old changes written");
        }
        let old = || {
            number(
                &db,
                &format!("SELECT count() FROM {db_name}.entry_changes WHERE at < 8640000"),
            )
        };
        assert_eq!(old(), 20, "{name}");
        std::thread::sleep(Duration::from_millis(2_100));
        backend.settle_now().expect("a settler round");
        // Replicas on servers that keep quorum parts delete the old days'
        // rows with a mutation, which ends a moment later.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while old() != 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(old(), 0, "{name}: the old days dropped");
        let recent = number(
            &db,
            &format!("SELECT count() FROM {db_name}.entry_changes WHERE at >= 8640000"),
        );
        assert!(recent >= 8, "{name}: today's changes kept ({recent})");
        assert_eq!(ask(&backend, "limit=0").total, 8, "{name}");
    }
}

/// Replicated tables with quorum writes: each replica has every table, in
/// its `Replicated` engine; every acknowledged input and every derived
/// entry is on each replica, so that each one alone answers as the
/// deployment does; and a database made without replication is refused
/// by name rather than used unreplicated.
#[test]
fn on_replicas_each_replica_alone_answers_as_the_deployment_does() {
    let Some(db) = Db::new(Deployment::Replicas, "replicas") else {
        return;
    };
    let backend = db.open();
    for i in 0..db.config.urls.len() {
        let engines = db
            .node(i)
            .query_text(&format!(
                "SELECT name, engine FROM system.tables WHERE database = '{}' AND engine LIKE '%MergeTree'",
                db.config.database
            ))
            .expect("answered");
        for t in [
            "inputs",
            "input_index",
            "entries",
            "latest",
            "entry_ids",
            "settings",
        ] {
            assert!(
                engines.lines().any(|l| l.starts_with(&format!("{t}\t"))),
                "{t} on replica {i}: {engines}"
            );
        }
        assert!(
            engines.lines().all(|l| l.contains("\tReplicated")),
            "replica {i}: {engines}"
        );
    }
    let mut batch: Vec<Input> = (0..30)
        .map(|i| {
            send(
                &format!("55119870{i:04}"),
                "2026-05-01T12:00:00Z",
                &format!("wamid.rep{i}"),
            )
        })
        .collect();
    backend.append(batch.split_off(15)).expect("acknowledged");
    backend.append(batch).expect("acknowledged");
    let statuses: Vec<Input> = (0..30)
        .map(|i| {
            let s = if i % 3 == 0 { "failed" } else { "delivered" };
            line(status(
                &format!("wamid.rep{i}"),
                &format!("55119870{i:04}"),
                s,
                1_777_640_000 + i,
            ))
        })
        .collect();
    backend.append(statuses).expect("acknowledged");
    let expected = answers(&backend);
    assert_eq!(ask(&backend, "status=delivered").total, 20);
    drop(backend);
    for i in 0..db.config.urls.len() {
        let replica = db.open_alone(i);
        assert_eq!(answers(&replica), expected, "replica {i} alone");
        assert_eq!(
            replica.store_stats().expect("answered").log_records,
            60,
            "replica {i}"
        );
    }
    // A database made unreplicated on the same servers: refused, naming
    // the setting, not used without its copies.
    let plain = Db::new(Deployment::Replicas, "replicas_plain").expect("servers");
    let mut unreplicated = plain.config.clone();
    unreplicated.replicated = false;
    unreplicated.urls.truncate(1);
    drop(ClickHouse::open(&unreplicated).expect("made unreplicated"));
    let refused = ClickHouse::open(&plain.config).err().expect("refused");
    assert!(
        refused.to_string().contains("clickhouse_replicated"),
        "{refused}"
    );
}

/// The replicas as the one shard of a cluster (`ticks_replicated`,
/// `internal_replication`): the DDL runs `ON CLUSTER` through ZooKeeper,
/// each replica has the local replicated tables and the Distributed ones
/// over them, and a write through the Distributed tables reaches each
/// replica.
#[test]
fn replicas_as_the_shard_of_a_cluster_get_their_tables_by_distributed_ddl() {
    let Some(mut db) = Db::new(Deployment::Replicas, "replicated_cluster") else {
        return;
    };
    db.config.cluster = Some("ticks_replicated".into());
    let backend = db.open();
    assert!(
        backend.schema().distributed_ddl,
        "ON CLUSTER through ZooKeeper"
    );
    for i in 0..db.config.urls.len() {
        let engines = db
            .node(i)
            .query_text(&format!(
                "SELECT name, engine FROM system.tables WHERE database = '{}'",
                db.config.database
            ))
            .expect("answered");
        assert!(
            engines.contains("inputs_local\tReplicatedMergeTree"),
            "replica {i}: {engines}"
        );
        assert!(
            engines.contains("inputs\tDistributed"),
            "replica {i}: {engines}"
        );
    }
    let sends: Vec<Input> = (0..12)
        .map(|i| {
            send(
                &format!("55119871{i:04}"),
                "2026-05-01T12:00:00Z",
                &format!("wamid.repc{i}"),
            )
        })
        .collect();
    backend.append(sends).expect("acknowledged");
    let expected = answers(&backend);
    assert_eq!(ask(&backend, "").total, 12);
    drop(backend);
    for i in 0..db.config.urls.len() {
        let replica = db.open_alone(i);
        assert_eq!(answers(&replica), expected, "through replica {i}");
    }
}
