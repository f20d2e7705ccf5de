//! End-to-end tests of Ticks: the real `ticks` binary, spoken to over HTTP
#![allow(clippy::unwrap_used)]
//! on loopback. No test reaches the internet.
//!
//! Table of contents:
//! - `support`: starting and killing the server, HTTP helpers, fixtures.
//! - `webhook`: Meta's handshake, signatures, duplicates, large bodies.
//! - `api`: send results, import, every filter of /v1/logs, detail,
//!   timeline, stats, errors, deletes, saved searches, metrics.
//! - `auth`: token scopes.
//! - `crash`: kill -9 mid-ingest, many times; every acknowledged write survives.
//! - `export`: every format parsed back, receipts.
//! - `purge`: export before purge, a purge killed midway, retention.
//! - `proxy`: the logging proxy in front of a fake Graph API.
//! - `relay`: webhooks relayed to the business's own app, across restarts.
//! - `alerts`: rules over what arrives; a burst fires once, a flapping rate
//!   notifies once, notifications signed and retried across a restart, the
//!   history without the content of purged entries.
//! - `cli`: the command line on a data directory.
//! - `conformance`: the same inputs into the embedded store, one ClickHouse
//!   server, and the cluster written by two processes at once: the same
//!   answers to the same questions.
//! - `clickhouse`: `ticks serve` on a ClickHouse server of its own: stopped
//!   mid-ingest (503s, no loss, ingest resumes), Ticks killed mid-ingest.
//! - `cost`: rate cards (posted, configured, named for a what-if) pricing
//!   the billable messages of the report by country and date.
//! - `people`: one person behind many identifiers (a Brazilian or Mexican
//!   number and its `wa_id`, a user id without a number, a username, a
//!   number change), found by `contact=`, `phone=`, `text=` and
//!   `/v1/contacts/{X}`; redelivery, order and purge; reply attribution.
//! - `today`: today's webhooks typed: per-message pricing merged from the
//!   statuses that carry it; account and template events once each, with
//!   their own time and values, found by `event=`; link clicks; coexistence
//!   echoes and history; group sends.
//! - `templates`: the catalog in the Graph API's format (HTTP, files, a
//!   fake Graph API); sends rendered with the version in force when sent,
//!   shown, exported and found by their rendered text; the backfill after a
//!   late import, across a kill -9.
//! - `safety`: the route x scope table of the README, cell by cell; the
//!   proxy's tokens; deletions that would reach further than they say; a
//!   full disk and a connection storm survived without a restart; unsigned
//!   bodies that cannot grow the process; start-up refusals; loose input.

mod alerts;
mod api;
mod auth;
mod cli;
mod clickhouse;
mod conformance;
mod cost;
mod crash;
mod export;
mod people;
mod proxy;
mod purge;
mod relay;
mod safety;
mod support;
mod templates;
mod today;
mod webhook;
