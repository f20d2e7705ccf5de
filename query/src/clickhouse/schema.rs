//! The tables Ticks keeps in ClickHouse, created and upgraded by Ticks
//! (`ticks clickhouse init`, and at every start).
//!
//! | table | engine | what it holds |
//! | --- | --- | --- |
//! | `inputs` | MergeTree, by month of receipt, ordered by `seq` | every raw input byte for byte: the truth, as the sled log is for the embedded store; only a purge removes rows |
//! | `settings` | ReplacingMergeTree(`version`) by namespace and key | saved searches, receipts, relay cursors, alert rules; a deletion is a newer row marked `deleted`; read with `argMax` per key, never `FINAL` |
//! | `purges` | MergeTree by `seq` | who purged what, under which receipt |
//! | `writers` | MergeTree by tag | the tags of the processes that write (a tag is part of every `seq` a process hands out) |
//! | `input_index` | MergeTree by ident, in granules of 128 | which inputs hold events of an entry (`k:` key), name a person (`p:` identifier) or quote a message (`q:` wamid), each row with what a derivation follows in one string (`index_row.rs`); a materialized view of `inputs` |
//! | `entries` | ReplacingMergeTree(`version`) by key | each entry as the engine's fold derives it, with the columns filters read; the largest version is the entry |
//! | `entry_changes` | MergeTree by time and key | each row of `entries` written, with its version and values but the entry itself (a materialized view of `entries`, stamped with the server's clock): which entries changed since the settler's last round, and what alert rounds read; its days before the settled ones are dropped |
//! | `latest` | VersionedCollapsingMergeTree(`sign`, `version`) by key, partitioned by week of `recorded_ms` | each entry's latest row as the settler last saw it, with a cancel row (`sign` -1) for each state it replaced: counted by `sum(sign)`, with no grouping (see `settle.rs`) |
//! | `entry_lookup` | ReplacingMergeTree by value and key | the keys of the entries with a phone (`p:`), an id (`i:`) or a correlation id (`c:`): what those filters read first (a materialized view of `entries`) |
//! | `entry_ids` | MergeTree by key | the id of each entry: the smallest any process gave it |
//! | `id_blocks` | MergeTree by block | blocks of 4,096 ids, each claimed by one process |
//! | `purged_keys` | MergeTree by hash | the SHA-256 of each purged entry's key: a redelivery never derives it again |
//! | `purges_erased` | MergeTree by seq | the purges whose erasure finished (an unfinished one is resumed at open) |
//! | `redactions` | MergeTree by purge and seq | inputs shared with surviving entries, redacted, staged while a purge deletes the originals |
//! | `meta` | ReplacingMergeTree(`version`) by key | the schema version |
//!
//! Tables that hold content (`inputs`, `input_index`, `entries`,
//! `entry_ids`, `redactions`) drop the parts a mutation replaced after 60
//! seconds (`old_parts_lifetime`, 480 by default), so that a purge can
//! wait until its content is gone from disk. The price: a merge's new part
//! is not fsynced on 18.16, and a power loss within that minute can lose
//! it with its sources gone (a crash of the server alone cannot).
//!
//! On a cluster each node holds `<table>_local` with the engine above and
//! `<table>`, a Distributed table over the cluster's shards (inputs by
//! `seq`, settings by namespace and key, so that every version of a key is
//! on one shard). The DDL runs `ON CLUSTER` when the servers have
//! distributed DDL (ZooKeeper), else on every configured URL in turn (each
//! must then be a node of the cluster). Every statement is one that
//! ClickHouse 18.16 (Debian's) and current releases both accept.
//!
//! Replicated (`clickhouse_replicated`), each engine above is its
//! `Replicated` form (see `engine`) and every replica gets the DDL (each
//! has tables of its own; replication copies parts, not DDL). Materialized
//! views write into replicated tables, so a part fetched by a replica is
//! not indexed twice: views run on inserts only. Replicated tables
//! deduplicate a block inserted again whole (a retried insert).
//! Upgrades that fill a table under another name and rename it are not
//! done on replicated tables (none made before version 7 exists): a later
//! version that needs one names its ZooKeeper path by version.

use super::client::{ident, quote, ChError, Client};

/// The schema version this build creates; `meta` records it.
pub const SCHEMA_VERSION: u32 = 7;

/// The columns of an entry's row but its key, version and the entry
/// itself: the values filters, sorts and groupings read. Both `entries`
/// and `latest` have them.
macro_rules! value_columns {
    () => {
        "id UInt64, purged UInt8, \
direction String, status String, recorded_ms Int64, \
category Nullable(String), name Nullable(String), template Nullable(String), \
language Nullable(String), recipient_type Nullable(String), \
phone_number_id Nullable(String), subaccount Nullable(String), user Nullable(String), \
content_type Nullable(String), conversation_type Nullable(String), \
pricing_category Nullable(String), pricing_type Nullable(String), button Nullable(String), \
country Nullable(String), wamid Nullable(String), correlation_id Nullable(String), \
phone Nullable(String), session Nullable(String), source Nullable(String), \
attribution Nullable(String), billable Nullable(String), engagement Nullable(String), \
reached Nullable(String), \
response_code Nullable(Int64), error_code Nullable(Int64), \
words String, exact Array(String), opted_out UInt8, marketing Nullable(String), \
opt_out_cause Nullable(String), derived_ms Int64"
    };
}

/// The columns of `entries`: the key, the version (how many inputs the
/// derivation folded, then how many ids were given: see `derive.rs`), the
/// whole entry (msgpack), then the values (see [`upgrade`] for what
/// came after version 1).
pub(super) const ENTRY_COLUMNS: &str = concat!(
    "key String, version UInt64, entry String, ",
    value_columns!()
);

/// The columns of `latest`: an entry's key, version and values, and the
/// sign of the row (1 a state, -1 the cancel of a state written before).
pub(super) const LATEST_COLUMNS: &str =
    concat!("key String, version UInt64, sign Int8, ", value_columns!());

/// The names of `latest`'s columns but the sign, in order: what the settler
/// copies from `entries` and between its own rows.
pub(super) fn latest_value_names() -> Vec<&'static str> {
    column_names(LATEST_COLUMNS)
        .into_iter()
        .filter(|c| *c != "sign")
        .collect()
}

/// The names in a list of column declarations (`name Type, ...`).
fn column_names(declared: &'static str) -> Vec<&'static str> {
    declared
        .split(", ")
        .filter_map(|d| d.split_whitespace().next())
        .collect()
}

/// The index of inputs by the entries and people they name, filled by
/// ClickHouse itself in the insert of the inputs (a materialized view), so
/// that an input is never stored without its index rows.
fn index_view(db: &str, on: &str, suffix: &str) -> String {
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.input_index_mv{on} TO {db}.input_index{suffix} \
AS {}",
        index_rows(&format!("{db}.inputs{suffix}"))
    )
}

/// The index rows of the inputs of `table`: one per identifier an input
/// names, each with what a derivation follows (its keys, people and
/// quoted messages) and, on an entry's rows (`k:`), its events, in one
/// string (see `index_row.rs`).
fn index_rows(table: &str) -> String {
    format!(
        "SELECT arrayJoin(arrayConcat(arrayMap(k -> concat('k:', k), keys), arrayMap(p -> concat('p:', p), people), \
arrayMap(q -> concat('q:', q), links))) AS ident, seq, {} AS row FROM {table}",
        super::index_row::row_sql()
    )
}

/// The record of when each entry row was written, filled by ClickHouse in
/// the insert of the rows (a materialized view), stamped with the clock of
/// the server that stores them.
/// The look-up rows of the entry rows of `table`: one per value that
/// `phone=`, `id=` and `correlation_id=` find (`p:`, `i:`, `c:`), with the
/// entry's key. Every version's: a superset of the latest's.
fn lookup_rows(table: &str) -> String {
    format!(
        "SELECT v AS value, key FROM {table} ARRAY JOIN arrayConcat(\
if(isNull(phone), emptyArrayString(), [concat('p:', assumeNotNull(phone))]), \
[concat('i:', toString(id))], \
if(isNull(correlation_id), emptyArrayString(), [concat('c:', assumeNotNull(correlation_id))])) AS v"
    )
}

fn lookup_view(db: &str, on: &str, suffix: &str) -> String {
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.entry_lookup_mv{on} TO {db}.entry_lookup{suffix} \
AS {}",
        lookup_rows(&format!("{db}.entries{suffix}"))
    )
}

/// The record of each entry row written: when (the server's clock), and
/// the row's version and values (see [`CHANGES_COLUMNS`]).
fn changes_view(db: &str, on: &str, suffix: &str) -> String {
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.entry_changes_mv{on} TO {db}.entry_changes{suffix} \
AS SELECT toUInt32(now()) AS at, key, version, {} FROM {db}.entries{suffix}",
        column_names(value_columns!()).join(", ")
    )
}

/// The columns of `entry_changes`: when a row of `entries` was written
/// (the server's clock, in seconds), its key, and since version 7 its
/// version and values, so that alert rounds find the entries written
/// since a time and what they hold in the rows of that time alone (a read
/// of `entries` by the changed keys read most of it at 10M: a granule per
/// key, 1.2 s a round during ingest).
const CHANGES_COLUMNS: &str = concat!(
    "at UInt32 DEFAULT toUInt32(now()), key String, version UInt64, ",
    value_columns!()
);

/// The granules of `input_index`: a derivation reads at least one per
/// identifier it asks (see `index_row.rs`).
macro_rules! index_granularity {
    () => {
        "index_granularity = 128"
    };
}

/// The granules of `entry_ids` (since version 7).
macro_rules! ids_granularity {
    () => {
        "index_granularity = 256"
    };
}

/// The columns of `input_index` (version 3 added what a derivation
/// follows, in a column each; version 7 holds it in `row`).
const INDEX_COLUMNS: &str = "ident String, seq UInt64, row String";

/// One table: its name and its columns and engine on one server.
struct Table {
    name: &'static str,
    columns: &'static str,
    engine: &'static str,
    /// The Distributed table's sharding expression.
    shard_by: &'static str,
}

const TABLES: &[Table] = &[
    Table {
        name: "inputs",
        columns:
            "seq UInt64, source String, received_ms Int64, raw String, writer UInt64, origin UInt64, \
keys Array(String), people Array(String), links Array(String), events String",
        engine: "MergeTree PARTITION BY toYYYYMM(toDateTime(intDiv(received_ms, 1000))) ORDER BY seq \
SETTINGS old_parts_lifetime = 60",
        shard_by: "intHash64(seq)",
    },
    Table {
        name: "settings",
        columns: "namespace String, key String, value String, version UInt64, deleted UInt8",
        engine: "ReplacingMergeTree(version) ORDER BY (namespace, key)",
        shard_by: "cityHash64(namespace, key)",
    },
    Table {
        name: "purges",
        columns: "seq UInt64, record String",
        engine: "MergeTree ORDER BY seq",
        shard_by: "intHash64(seq)",
    },
    Table {
        name: "writers",
        columns: "tag UInt64, writer UInt64, seen_ms Int64",
        engine: "MergeTree ORDER BY (tag, seen_ms)",
        shard_by: "intHash64(tag)",
    },
    Table {
        name: "input_index",
        columns: INDEX_COLUMNS,
        engine: concat!(
            "MergeTree ORDER BY (ident, seq) SETTINGS old_parts_lifetime = 60, ",
            index_granularity!()
        ),
        shard_by: "intHash64(seq)",
    },
    Table {
        name: "entries",
        columns: ENTRY_COLUMNS,
        // Small granules: a page reads each of its entries by key, and a
        // granule of 8,192 whole entries (msgpack) took 59 ms to read for
        // one; 1,024 read 64 MiB for a page of 50 at 1M.
        engine: "ReplacingMergeTree(version) ORDER BY key SETTINGS old_parts_lifetime = 60, index_granularity = 256",
        shard_by: "cityHash64(key)",
    },
    Table {
        name: "latest",
        columns: LATEST_COLUMNS,
        engine: "VersionedCollapsingMergeTree(sign, version) PARTITION BY toMonday(toDate(toDateTime(intDiv(recorded_ms, 1000)))) \
ORDER BY key SETTINGS old_parts_lifetime = 60, index_granularity = 2048",
        shard_by: "cityHash64(key)",
    },
    Table {
        name: "entry_changes",
        columns: CHANGES_COLUMNS,
        engine: "MergeTree PARTITION BY toYYYYMMDD(toDateTime(at)) ORDER BY (at, key) \
SETTINGS old_parts_lifetime = 60",
        shard_by: "cityHash64(key)",
    },
    Table {
        name: "entry_lookup",
        columns: "value String, key String",
        engine: "ReplacingMergeTree ORDER BY (value, key) SETTINGS old_parts_lifetime = 60",
        shard_by: "cityHash64(key)",
    },
    Table {
        name: "entry_ids",
        columns: "key String, id UInt64",
        // Small granules: every fold reads the ids of its entries by key,
        // 5,000 keys a statement; in granules of 8,192 each such read
        // read about half of the table at 10M (see `regranulate_ids`).
        engine: concat!(
            "MergeTree ORDER BY key SETTINGS old_parts_lifetime = 60, ",
            ids_granularity!()
        ),
        shard_by: "cityHash64(key)",
    },
    Table {
        name: "id_blocks",
        columns: "block UInt64, writer UInt64, seen_ms Int64",
        engine: "MergeTree ORDER BY block",
        shard_by: "intHash64(block)",
    },
    Table {
        name: "purged_keys",
        columns: "hash String, purge UInt64",
        engine: "MergeTree ORDER BY hash",
        shard_by: "cityHash64(hash)",
    },
    Table {
        name: "purges_erased",
        columns: "seq UInt64",
        engine: "MergeTree ORDER BY seq",
        shard_by: "intHash64(seq)",
    },
    Table {
        name: "redactions",
        columns: "purge UInt64, seq UInt64, source String, received_ms Int64, raw String, writer UInt64, \
origin UInt64, keys Array(String), people Array(String), links Array(String), events String",
        engine: "MergeTree ORDER BY (purge, seq) SETTINGS old_parts_lifetime = 60",
        shard_by: "intHash64(seq)",
    },
    Table {
        name: "meta",
        columns: "key String, value String, version UInt64",
        engine: "ReplacingMergeTree(version) ORDER BY key",
        shard_by: "cityHash64(key)",
    },
];

/// Where the tables live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One server (or replicas behind one name): plain tables.
    Single,
    /// The shards of a `remote_servers` cluster: local tables on each node
    /// and Distributed tables over them.
    Cluster(String),
}

/// What `init` found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaInfo {
    /// The server's version as it reports it (`18.16.1`, `24.8.4.13`).
    pub server_version: String,
    /// Its major and minor numbers.
    pub version: (u32, u32),
    /// Whether the DDL ran `ON CLUSTER` (else node by node).
    pub distributed_ddl: bool,
}

/// A `(major, minor)` from a version string.
fn parse_version(v: &str) -> (u32, u32) {
    let mut parts = v.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Creates the database and every table that is missing, and records the
/// schema version. Safe to run again, from several processes at once.
pub fn init(
    client: &Client,
    database: &str,
    layout: &Layout,
    replicated: bool,
) -> Result<SchemaInfo, ChError> {
    let db = ident(database).ok_or_else(|| bad_name("clickhouse_database", database))?;
    let server_version = client.query_text("SELECT version()")?.trim().to_string();
    let version = parse_version(&server_version);
    let distributed_ddl = match layout {
        Layout::Single => false,
        // Distributed DDL needs ZooKeeper (or Keeper) configured.
        Layout::Cluster(_) => client
            .query("SELECT count() FROM system.zookeeper WHERE path = '/'")
            .is_ok(),
    };
    let statements = statements(&db, layout, distributed_ddl, replicated)?;
    // Each replica has tables of its own (replication copies their parts,
    // not their DDL): behind one name, each URL is made as one server is.
    let nodes: Vec<Client> = match layout {
        Layout::Single if !replicated => vec![client.copy()],
        _ => client.urls().iter().map(|u| client.node(u)).collect(),
    };
    let mut unrecorded = false;
    for node in &nodes {
        // Each step of an upgrade is made so that one that fails (a
        // timeout, a server stopped) is found undone at the next open and
        // done again: a derived table is filled under another name and
        // renamed once full.
        let patient = node.with_timeout(UPGRADE_TIMEOUT);
        rebuild_old_index(&patient, &db, layout)?;
        fill_lookup(&patient, &db, layout)?;
        unrecorded |= !has_table(node, &db, &local_name("entry_changes", layout))?;
        drop_unpartitioned_latest(&patient, &db, layout)?;
        drop_narrow_changes_view(node, &db)?;
        regranulate_ids(&patient, &db, layout)?;
    }
    // The views last, once the columns upgrade adds are there: a view's
    // query is analysed when it is created, even one that exists already
    // (`IF NOT EXISTS` on 18.16), and reads columns of newer versions.
    let (views, tables): (Vec<String>, Vec<String>) = statements
        .into_iter()
        .partition(|sql| sql.starts_with("CREATE MATERIALIZED VIEW"));
    let apply = |node: &Client, distributed_ddl: bool| -> Result<(), ChError> {
        for sql in &tables {
            node.query(sql)?;
        }
        upgrade(node, &db, layout, distributed_ddl)?;
        for sql in &views {
            node.query(sql)?;
        }
        Ok(())
    };
    if distributed_ddl || (*layout == Layout::Single && !replicated) {
        apply(client, distributed_ddl)?;
    } else {
        for node in &nodes {
            apply(node, false)?;
        }
    }
    for node in &nodes {
        check_replication(node, &db, replicated)?;
    }
    let suffix = match layout {
        Layout::Single => "",
        Layout::Cluster(_) => "_local",
    };
    if unrecorded {
        // Entries written before version 5: changed at the dawn of time, so
        // that the settler's first round settles them all.
        for node in &nodes {
            node.with_timeout(UPGRADE_TIMEOUT).query(&format!(
                "INSERT INTO {db}.entry_changes{suffix} (at, key) SELECT toUInt32(1), key FROM {db}.entries{suffix}"
            ))?;
        }
    }
    // On a cluster `meta` is the Distributed table: the row goes to a shard.
    client.query(&format!(
        "INSERT INTO {db}.meta (key, value, version) VALUES ('schema_version', {}, {})",
        quote(&SCHEMA_VERSION.to_string()),
        SCHEMA_VERSION
    ))?;
    Ok(SchemaInfo {
        server_version,
        version,
        distributed_ddl,
    })
}

/// Refuses a database whose tables are not what `clickhouse_replicated`
/// says: tables made unreplicated stay so (`CREATE TABLE IF NOT EXISTS`
/// keeps them), and a deployment that reads replicated tables without
/// quorum writes could miss an acknowledged input on a replica behind.
fn check_replication(node: &Client, db: &str, replicated: bool) -> Result<(), ChError> {
    let engines = node.query_text(&format!(
        "SELECT name, engine FROM system.tables WHERE database = {} AND engine LIKE '%MergeTree'",
        quote(db.trim_matches('`'))
    ))?;
    let wrong: Vec<&str> = engines
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, engine)| engine.starts_with("Replicated") != replicated)
        .map(|(name, _)| name)
        .collect();
    if wrong.is_empty() {
        return Ok(());
    }
    let message = if replicated {
        format!(
            "clickhouse_replicated: the tables {} of {db} are not replicated (made without it); \
move their data into replicated tables (ClickHouse's ATTACH PARTITION FROM) or use another database",
            wrong.join(", ")
        )
    } else {
        format!(
            "clickhouse_replicated: the tables {} of {db} are replicated; set clickhouse_replicated \
(with quorum writes) to use them",
            wrong.join(", ")
        )
    };
    Err(ChError::Server {
        status: 400,
        message,
    })
}

/// A table's engine: as [`TABLES`] has it, or where tables are
/// replicated its `Replicated` form, coordinated through ZooKeeper at
/// `/clickhouse/tables/<database>/<table>` (on a cluster
/// `/clickhouse/tables/{shard}/<database>/<table>`), each replica named by
/// its server's `{replica}` macro.
fn engine(t: &Table, db: &str, name: &str, layout: &Layout, replicated: bool) -> String {
    if !replicated {
        return t.engine.to_string();
    }
    let bare_db = db.trim_matches('`');
    let path = match layout {
        Layout::Single => format!("/clickhouse/tables/{bare_db}/{name}"),
        Layout::Cluster(_) => format!("/clickhouse/tables/{{shard}}/{bare_db}/{name}"),
    };
    let coordinates = format!("{}, '{{replica}}'", quote(&path));
    let cut = t.engine.find([' ', '(']).unwrap_or(t.engine.len());
    let (kind, rest) = t.engine.split_at(cut);
    match rest.strip_prefix('(').and_then(|r| r.split_once(')')) {
        Some((args, after)) => format!("Replicated{kind}({coordinates}, {args}){after}"),
        None => format!("Replicated{kind}({coordinates}){rest}"),
    }
}

/// A table's name on one server: on a cluster, its local table's.
pub(super) fn local_name(table: &str, layout: &Layout) -> String {
    match layout {
        Layout::Single => table.to_string(),
        Layout::Cluster(_) => format!("{table}_local"),
    }
}

/// Whether `node` has the table `name` in the database.
fn has_table(node: &Client, db: &str, name: &str) -> Result<bool, ChError> {
    let found = node.query_text(&format!(
        "SELECT count() FROM system.tables WHERE database = {} AND name = {}",
        quote(db.trim_matches('`')),
        quote(name)
    ))?;
    Ok(found.trim() != "0")
}

/// How long one statement of an upgrade may take (a table of a 10M store
/// made again: minutes).
const UPGRADE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4 * 3600);

/// Makes the table `table` of [`TABLES`] on `node` under the name
/// `{table}_new` (dropping one left by an upgrade that failed), fills it
/// with `rows` (a `SELECT`), and returns that name: an upgrade's derived
/// table, renamed to its own once full.
fn fill_new(node: &Client, db: &str, table: &str, rows: &str) -> Result<String, ChError> {
    let name = format!("{table}_new");
    node.query(&format!("DROP TABLE IF EXISTS {db}.{name}"))?;
    node.query(&create_as(db, table, &name)?)?;
    node.query(&format!("INSERT INTO {db}.{name} {rows}"))?;
    Ok(name)
}

/// The `CREATE TABLE` of the table `table` of [`TABLES`] on one server,
/// under the name `name`.
fn create_as(db: &str, table: &str, name: &str) -> Result<String, ChError> {
    let t = TABLES
        .iter()
        .find(|t| t.name == table)
        .ok_or_else(|| ChError::Server {
            status: 500,
            message: format!("no table {table} in the schema"),
        })?;
    Ok(format!(
        "CREATE TABLE {db}.{name} ({}) ENGINE = {}",
        t.columns, t.engine
    ))
}

/// Makes `input_index` again from `inputs` on `node` where it is of another
/// form than this build's: before version 3 (identifiers and seqs only),
/// before version 6 (granules of 8,192 rows: a derivation asks an ident at
/// a time, and each read ~8,000 other inputs' events; a group of 5,000
/// lines at 10M read 30M rows, past the 30 s a statement may take), before
/// version 7 (a column each for what a derivation follows, where version 7
/// has one string, `row`). Filled under another name and renamed once
/// full, so that an upgrade that fails midway leaves the old index, and is
/// done again at the next open. Inputs written meanwhile are not in the
/// new one: an upgrade runs with the writers stopped (README says so).
fn rebuild_old_index(node: &Client, db: &str, layout: &Layout) -> Result<(), ChError> {
    let local = local_name("input_index", layout);
    if !has_table(node, db, &local)? {
        return Ok(());
    }
    let columns = node.query_text(&format!(
        "SELECT name FROM system.columns WHERE database = {} AND table = {}",
        quote(db.trim_matches('`')),
        quote(&local)
    ))?;
    let create = node.query_text(&format!("SHOW CREATE TABLE {db}.{local}"))?;
    if columns.lines().any(|c| c.trim() == "row") && create.contains(index_granularity!()) {
        return Ok(());
    }
    tracing::info!("input_index made again from the inputs (schema version {SCHEMA_VERSION})");
    let inputs = local_name("inputs", layout);
    let new = fill_new(
        node,
        db,
        "input_index",
        &index_rows(&format!("{db}.{inputs}")),
    )?;
    // The view's query may be an older one: made again after the rename.
    node.query(&format!("DROP TABLE IF EXISTS {db}.input_index_mv"))?;
    node.query(&format!("DROP TABLE IF EXISTS {db}.input_index_old"))?;
    node.query(&format!(
        "RENAME TABLE {db}.{local} TO {db}.input_index_old, {db}.{new} TO {db}.{local}"
    ))?;
    node.query(&format!("DROP TABLE IF EXISTS {db}.input_index_old"))?;
    if let Layout::Cluster(_) = layout {
        // The Distributed table has the old columns: made again with the
        // new ones by the DDL that follows.
        node.query(&format!("DROP TABLE IF EXISTS {db}.input_index"))?;
    }
    Ok(())
}

/// Fills `entry_lookup` from `entries` on `node` where it is missing (a
/// database of before version 6 with entries), under another name then
/// renamed, as [`rebuild_old_index`] does.
fn fill_lookup(node: &Client, db: &str, layout: &Layout) -> Result<(), ChError> {
    let local = local_name("entry_lookup", layout);
    let entries = local_name("entries", layout);
    if has_table(node, db, &local)? || !has_table(node, db, &entries)? {
        return Ok(());
    }
    tracing::info!("entry_lookup filled from the entries (schema version 6)");
    let new = fill_new(
        node,
        db,
        "entry_lookup",
        &lookup_rows(&format!("{db}.{entries}")),
    )?;
    node.query(&format!("RENAME TABLE {db}.{new} TO {db}.{local}"))?;
    Ok(())
}

/// Copies `entry_ids` into a table of granules of 256 rows where it is of
/// granules of 8,192 (before version 7), under another name, renamed once
/// full. `entry_ids` is not derived (it is which id each entry was
/// given), so a copy left between the two renames by a server that
/// stopped (the old table renamed away, the new one not yet in its place)
/// is put back first, and the old table is dropped only once the new one
/// is in place.
fn regranulate_ids(node: &Client, db: &str, layout: &Layout) -> Result<(), ChError> {
    let local = local_name("entry_ids", layout);
    let old = "entry_ids_old";
    if !has_table(node, db, &local)? {
        if has_table(node, db, old)? {
            node.query(&format!("RENAME TABLE {db}.{old} TO {db}.{local}"))?;
        } else {
            return Ok(());
        }
    }
    let create = node.query_text(&format!("SHOW CREATE TABLE {db}.{local}"))?;
    if !create.contains(ids_granularity!()) {
        tracing::info!("entry_ids copied into granules of 256 rows (schema version 7)");
        let new = fill_new(
            node,
            db,
            "entry_ids",
            &format!("SELECT key, id FROM {db}.{local}"),
        )?;
        node.query(&format!(
            "RENAME TABLE {db}.{local} TO {db}.{old}, {db}.{new} TO {db}.{local}"
        ))?;
    }
    node.query(&format!("DROP TABLE IF EXISTS {db}.{old}"))?;
    Ok(())
}

/// Drops `entry_changes_mv` where it copies the key alone (before version
/// 7), for the DDL to create it again with every column once [`upgrade`]
/// gave the table them. Rows recorded before read the new columns as
/// empty: alert rounds, which read them, look at the last minutes only.
fn drop_narrow_changes_view(node: &Client, db: &str) -> Result<(), ChError> {
    if !has_table(node, db, "entry_changes_mv")? {
        return Ok(());
    }
    let create = node.query_text(&format!("SHOW CREATE TABLE {db}.entry_changes_mv"))?;
    if !create.contains("opt_out_cause") {
        node.query(&format!("DROP TABLE {db}.entry_changes_mv"))?;
    }
    Ok(())
}

/// Drops `latest` where it is not partitioned (schema version 5's), for
/// the statements to create it again by week of `recorded_ms`: a date
/// range then reads only its weeks' parts.
/// `latest` is derived (the settler fills it from `entries`), so nothing
/// is lost; until the next round settles, queries group `entries`.
fn drop_unpartitioned_latest(node: &Client, db: &str, layout: &Layout) -> Result<(), ChError> {
    let local = local_name("latest", layout);
    if !has_table(node, db, &local)? {
        return Ok(());
    }
    let create = node.query_text(&format!("SHOW CREATE TABLE {db}.{local}"))?;
    if create.contains("PARTITION BY") {
        return Ok(());
    }
    tracing::info!("latest made again by week (schema version 6): every entry settled anew");
    // Every entry changed now, before the drop: the settler's next round
    // settles them all into the new table, and a drop that did not happen
    // is done at the next open.
    let changes = local_name("entry_changes", layout);
    if has_table(node, db, &changes)? {
        node.query(&format!(
            "INSERT INTO {db}.{changes} (at, key) SELECT toUInt32(now()), key FROM {db}.{}",
            local_name("entries", layout)
        ))?;
    }
    node.query(&format!("DROP TABLE IF EXISTS {db}.{local}"))?;
    if let Layout::Cluster(_) = layout {
        node.query(&format!("DROP TABLE IF EXISTS {db}.latest"))?;
    }
    Ok(())
}

/// Adds to each table the columns of [`TABLES`] it lacks (on a cluster to
/// the local and the Distributed table), as seen from `client`'s server:
/// an older table gets them by `ALTER TABLE ... ADD COLUMN`, its rows
/// reading them as empty (in `entries`, until their entries are derived
/// again). Version 2 added free text to `entries` (`words`, the entry's
/// tokens; `exact`, its identifiers), `opted_out` and `marketing`; version
/// 4 `opt_out_cause` (on an opt-out, the key of the marketing message its
/// person got last before it) and `derived_ms` (when the row was written);
/// version 7 every column of `entries` but the entry to `entry_changes`
/// (see [`CHANGES_COLUMNS`]).
fn upgrade(
    client: &Client,
    db: &str,
    layout: &Layout,
    distributed_ddl: bool,
) -> Result<(), ChError> {
    let (suffixes, on): (&[&str], String) = match layout {
        Layout::Single => (&[""], String::new()),
        Layout::Cluster(c) => {
            let c = ident(c).ok_or_else(|| bad_name("clickhouse_cluster", c))?;
            let on = if distributed_ddl {
                format!(" ON CLUSTER {c}")
            } else {
                String::new()
            };
            (&["_local", ""], on)
        }
    };
    let present = client.query_text(&format!(
        "SELECT table, name FROM system.columns WHERE database = {}",
        quote(db.trim_matches('`'))
    ))?;
    let present: std::collections::HashSet<(&str, &str)> =
        present.lines().filter_map(|l| l.split_once('\t')).collect();
    for suffix in suffixes {
        for t in TABLES {
            let name = format!("{}{suffix}", t.name);
            for declared in t.columns.split(", ") {
                let Some(column) = declared.split_whitespace().next() else {
                    continue;
                };
                if !present.contains(&(name.as_str(), column)) {
                    client.query(&format!(
                        "ALTER TABLE {db}.{name}{on} ADD COLUMN {declared}"
                    ))?;
                }
            }
        }
    }
    Ok(())
}

fn bad_name(what: &str, name: &str) -> ChError {
    ChError::Server {
        status: 400,
        message: format!("{what}: {name:?} is not a plain name (letters, digits and _)"),
    }
}

/// The DDL, in order.
fn statements(
    db: &str,
    layout: &Layout,
    distributed_ddl: bool,
    replicated: bool,
) -> Result<Vec<String>, ChError> {
    let mut out = Vec::new();
    match layout {
        Layout::Single => {
            out.push(format!("CREATE DATABASE IF NOT EXISTS {db}"));
            for t in TABLES {
                out.push(format!(
                    "CREATE TABLE IF NOT EXISTS {db}.{} ({}) ENGINE = {}",
                    t.name,
                    t.columns,
                    engine(t, db, t.name, layout, replicated)
                ));
            }
            out.push(index_view(db, "", ""));
            out.push(changes_view(db, "", ""));
            out.push(lookup_view(db, "", ""));
        }
        Layout::Cluster(cluster) => {
            let cluster_ident =
                ident(cluster).ok_or_else(|| bad_name("clickhouse_cluster", cluster))?;
            let on = if distributed_ddl {
                format!(" ON CLUSTER {cluster_ident}")
            } else {
                String::new()
            };
            out.push(format!("CREATE DATABASE IF NOT EXISTS {db}{on}"));
            let bare_db = db.trim_matches('`');
            for t in TABLES {
                let local = format!("{}_local", t.name);
                out.push(format!(
                    "CREATE TABLE IF NOT EXISTS {db}.{local}{on} ({}) ENGINE = {}",
                    t.columns,
                    engine(t, db, &local, layout, replicated)
                ));
                out.push(format!(
                    "CREATE TABLE IF NOT EXISTS {db}.{}{on} ({}) ENGINE = Distributed({cluster_ident}, {}, {}_local, {})",
                    t.name, t.columns, quote(bare_db), t.name, t.shard_by
                ));
            }
            // Each shard indexes the inputs it holds.
            out.push(index_view(db, &on, "_local"));
            out.push(changes_view(db, &on, "_local"));
            out.push(lookup_view(db, &on, "_local"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_as_major_and_minor() {
        assert_eq!(parse_version("18.16.1"), (18, 16));
        assert_eq!(parse_version("24.8.4.13\n"), (24, 8));
        assert_eq!(parse_version("garbage"), (0, 0));
    }

    #[test]
    fn a_cluster_has_local_tables_and_distributed_ones_over_them() {
        let sql =
            statements("`ticks`", &Layout::Cluster("c1".into()), false, false).expect("as written");
        assert!(sql
            .iter()
            .any(|s| s.contains("`ticks`.inputs_local (") && s.contains("MergeTree PARTITION BY")));
        assert!(sql.iter().any(|s| s.contains("`ticks`.inputs (")
            && s.contains("Distributed(`c1`, 'ticks', inputs_local, intHash64(seq))")));
        assert!(sql.iter().all(|s| !s.contains("ON CLUSTER")));
        let with_ddl =
            statements("`ticks`", &Layout::Cluster("c1".into()), true, false).expect("as written");
        assert!(with_ddl.iter().all(|s| s.contains("ON CLUSTER `c1`")));
    }

    #[test]
    fn tables_that_hold_content_drop_replaced_parts_within_a_minute() {
        for name in [
            "inputs",
            "input_index",
            "entries",
            "latest",
            "entry_changes",
            "entry_ids",
            "redactions",
        ] {
            let t = TABLES.iter().find(|t| t.name == name).expect("a table");
            assert!(t.engine.contains("old_parts_lifetime = 60"), "{name}");
        }
    }

    #[test]
    fn replicated_tables_keep_their_engine_arguments_after_the_coordinates() {
        let sql = statements("`ticks`", &Layout::Single, false, true).expect("as written");
        let create = |name: &str| {
            sql.iter()
                .find(|s| s.contains(&format!("`ticks`.{name} (")))
                .cloned()
                .unwrap_or_default()
        };
        assert!(create("inputs").contains(
            "ENGINE = ReplicatedMergeTree('/clickhouse/tables/ticks/inputs', '{replica}') PARTITION BY"
        ));
        assert!(create("entries").contains(
            "ReplicatedReplacingMergeTree('/clickhouse/tables/ticks/entries', '{replica}', version) ORDER BY key"
        ));
        assert!(create("latest").contains(
            "ReplicatedVersionedCollapsingMergeTree('/clickhouse/tables/ticks/latest', '{replica}', sign, version) PARTITION BY"
        ));
        assert!(create("entry_lookup").contains(
            "ReplicatedReplacingMergeTree('/clickhouse/tables/ticks/entry_lookup', '{replica}') ORDER BY (value, key)"
        ));
        let tables = sql.iter().filter(|s| s.starts_with("CREATE TABLE"));
        assert!(tables.clone().count() == TABLES.len());
        assert!(tables.clone().all(|s| s.contains("ENGINE = Replicated")));
        // On a cluster each shard's replicas share a path of their own.
        let cluster =
            statements("`ticks`", &Layout::Cluster("c1".into()), true, true).expect("as written");
        assert!(cluster.iter().any(|s| s.contains(
            "ReplicatedMergeTree('/clickhouse/tables/{shard}/ticks/inputs_local', '{replica}')"
        )));
        assert!(cluster
            .iter()
            .any(|s| s.contains("Distributed(`c1`, 'ticks', inputs_local, intHash64(seq))")));
    }

    #[test]
    fn a_name_that_is_not_plain_is_refused_not_escaped() {
        assert!(statements("`ticks`", &Layout::Cluster("a b".into()), false, false).is_err());
    }
}
