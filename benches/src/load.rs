//! `ticks-load`: load and latency over HTTP against a running `ticks serve`,
//! from a client light enough not to take the cores the server needs (one
//! thread, hyper's bare HTTP/1.1 connections, keep-alive).
//!
//! - `queries`: each query kind of the suite (equality filters, a date
//!   range, an exact phone, a wamid, an entry id: count + first page of 50
//!   with every column) sent one after another on one kept-alive
//!   connection; p50/p99 of the answer's arrival, body included.
//! - `webhooks`: signed status webhooks (one status per POST, each a new
//!   message), on `--connections` connections for `--seconds`; requests/s
//!   and the acknowledgement's p50/p99, optionally while free-text queries
//!   run at `--text-qps` on a connection of their own.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use sha2::Sha256;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    url: String,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Latency of the query suite, one request at a time.
    Queries {
        /// Samples per query kind.
        #[arg(long, default_value_t = 500)]
        samples: usize,
        /// Unmeasured requests of each kind first.
        #[arg(long, default_value_t = 50)]
        warmup: usize,
    },
    /// Signed status webhooks as fast as the server takes them.
    Webhooks {
        /// The app secret the server checks signatures with.
        #[arg(long)]
        secret: String,
        /// Connections, each sending one request after another.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// How long.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Free-text queries per second on a connection of their own
        /// while the webhooks run (0: none).
        #[arg(long, default_value_t = 0)]
        text_qps: u32,
    },
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match args.what {
            What::Queries { samples, warmup } => queries(&args.url, samples, warmup).await,
            What::Webhooks {
                secret,
                connections,
                seconds,
                text_qps,
            } => webhooks(&args.url, &secret, connections, seconds, text_qps).await,
        }
    })
}

/// `host:port` of an `http://` URL.
fn authority(url: &str) -> Result<String> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("--url: only http:// is supported (a loopback server)");
    };
    Ok(rest.trim_end_matches('/').to_string())
}

async fn connect(url: &str) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(authority(url)?)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    stream.set_nodelay(true)?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole answer; its status and body.
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(u16, Bytes)> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

fn get(url: &str, path: &str) -> Result<Request<Full<Bytes>>> {
    Ok(Request::get(path)
        .header("host", authority(url)?)
        .body(Full::new(Bytes::new()))?)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

async fn queries(url: &str, samples: usize, warmup: usize) -> Result<()> {
    let mut conn = connect(url).await?;
    // Values to ask for, from the store itself: entries spread over it.
    let (status, body) = send(
        &mut conn,
        get(url, "/v1/logs?limit=1000&sort=id&direction=outbound")?,
    )
    .await?;
    if status != 200 {
        bail!("GET /v1/logs answered {status}");
    }
    let page: serde_json::Value = serde_json::from_slice(&body)?;
    let entries = page["entries"].as_array().cloned().unwrap_or_default();
    let pick = |key: &str| -> Vec<String> {
        entries
            .iter()
            .filter_map(|e| match &e[key] {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect()
    };
    let (phones, wamids, ids) = (pick("phone"), pick("wamid"), pick("id"));
    let first_ms = entries
        .first()
        .and_then(|e| e["recorded_ms"].as_i64())
        .unwrap_or(0);
    let day = 86_400_000i64;
    let enc = |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    type Kind = (&'static str, Box<dyn Fn(usize) -> String>);
    let campaigns = ["marketing_campaign", "template_bot", "message_bot"];
    let statuses = ["read", "delivered", "failed", "sent"];
    let kinds: Vec<Kind> = vec![
        (
            "equality filters (category + status)",
            Box::new(move |i| {
                format!(
                    "/v1/logs?category={}&status={}&limit=50",
                    campaigns[i % 3],
                    statuses[i % 4]
                )
            }),
        ),
        (
            "one response code (429)",
            Box::new(|_| "/v1/logs?response_code=429&limit=50".to_string()),
        ),
        (
            "a date range (7 days)",
            Box::new(move |i| {
                let from = first_ms + (i as i64 % 20) * day;
                format!("/v1/logs?from={from}&to={}&limit=50", from + 7 * day)
            }),
        ),
        (
            "an exact phone",
            Box::new(move |i| {
                format!(
                    "/v1/logs?phone={}&limit=50",
                    enc(&phones[i % phones.len().max(1)])
                )
            }),
        ),
        (
            "an exact wamid",
            Box::new(move |i| {
                format!(
                    "/v1/logs?wamid={}&limit=50",
                    enc(&wamids[i % wamids.len().max(1)])
                )
            }),
        ),
        (
            "an entry id",
            Box::new(move |i| format!("/v1/logs?id={}&limit=50", ids[i % ids.len().max(1)])),
        ),
        (
            "limit=0 (the total alone), equality filters",
            Box::new(move |i| {
                format!(
                    "/v1/logs?category={}&status={}&limit=0",
                    campaigns[i % 3],
                    statuses[i % 4]
                )
            }),
        ),
    ];
    for (name, path) in &kinds {
        let mut times = Vec::with_capacity(samples);
        let mut bytes = 0usize;
        for i in 0..warmup + samples {
            let request = get(url, &path(i))?;
            let started = Instant::now();
            let (status, body) = send(&mut conn, request).await?;
            let took = started.elapsed();
            if status != 200 {
                bail!(
                    "{name}: {} answered {status}: {}",
                    path(i),
                    String::from_utf8_lossy(&body)
                );
            }
            if i >= warmup {
                times.push(took);
                bytes += body.len();
            }
        }
        times.sort_unstable();
        println!(
            "http {name}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} samples, {:.0} bytes/answer)",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            percentile(&times, 1.0),
            times.len(),
            bytes as f64 / times.len().max(1) as f64
        );
    }
    Ok(())
}

fn status_webhook(n: u64) -> Vec<u8> {
    let ts = 1_767_225_600 + n / 50;
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001111","phone_number_id":"106540352242922"}},"statuses":[{{"id":"wamid.LOAD{n:016X}","status":"delivered","timestamp":"{ts}","recipient_id":"55119{:08}","pricing":{{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}}}}]}}}}]}}]}}"#,
        n % 100_000_000
    )
    .into_bytes()
}

fn sign(secret: &str, body: &[u8]) -> Result<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

async fn webhooks(
    url: &str,
    secret: &str,
    connections: usize,
    seconds: u64,
    text_qps: u32,
) -> Result<()> {
    let until = Instant::now() + Duration::from_secs(seconds);
    let run_id = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64))
        << 20;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (url, secret) = (url.to_string(), secret.to_string());
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(&url).await?;
            let mut times = Vec::new();
            let mut n = run_id + (c as u64) * 10_000_000;
            while Instant::now() < until {
                let body = status_webhook(n);
                n += 1;
                let request = Request::post("/webhook")
                    .header("host", authority(&url)?)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", sign(&secret, &body)?)
                    .body(Full::new(Bytes::from(body)))?;
                let started = Instant::now();
                let (status, answer) = send(&mut conn, request).await?;
                if status != 200 {
                    bail!(
                        "POST /webhook answered {status}: {}",
                        String::from_utf8_lossy(&answer)
                    );
                }
                times.push(started.elapsed());
            }
            anyhow::Ok(times)
        }));
    }
    let text = if text_qps > 0 {
        let url = url.to_string();
        Some(tokio::spawn(async move {
            let mut conn = connect(&url).await?;
            let words = ["oferta", "pedido", "cashback", "\"black friday\"", "promo*"];
            let every = Duration::from_secs_f64(1.0 / f64::from(text_qps));
            let mut tick = tokio::time::interval(every);
            let mut times = Vec::new();
            let mut i = 0;
            while Instant::now() < until {
                tick.tick().await;
                let path = format!(
                    "/v1/logs?limit=50&text={}",
                    form_urlencoded::byte_serialize(words[i % words.len()].as_bytes())
                        .collect::<String>()
                );
                i += 1;
                let started = Instant::now();
                let (status, _) = send(&mut conn, get(&url, &path)?).await?;
                if status != 200 {
                    bail!("{path} answered {status}");
                }
                times.push(started.elapsed());
            }
            anyhow::Ok(times)
        }))
    } else {
        None
    };
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let secs = started.elapsed().as_secs_f64().max(seconds as f64);
    all.sort_unstable();
    println!(
        "webhooks: {} signed POSTs on {connections} connections in {secs:.1} s = {:.0} requests/s; acknowledged p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms{}",
        all.len(),
        all.len() as f64 / secs,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        percentile(&all, 1.0),
        if text_qps > 0 { format!(" (with free-text queries at {text_qps}/s)") } else { String::new() }
    );
    if let Some(t) = text {
        let mut times = t.await??;
        times.sort_unstable();
        println!(
            "free text during the webhooks: {} queries, p50 {:.2} ms, p99 {:.2} ms",
            times.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
    }
    Ok(())
}
