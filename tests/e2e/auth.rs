//! API tokens and their scopes.

use crate::support::*;
use serde_json::json;

const INGEST: &str = "ingest-token-0123456789";
const READ: &str = "read-token-0123456789ab";
const ADMIN: &str = "admin-token-0123456789a";

#[test]
fn each_scope_opens_only_its_endpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(
        dir.path(),
        &[
            "--token",
            &format!("crm:ingest:{INGEST}"),
            "--token",
            &format!("ui:read:{READ}"),
            "--token",
            &format!("ops:admin:{ADMIN}"),
        ],
    );
    let post = |token: Option<&str>| {
        let mut r = s
            .client
            .post(s.url("/v1/sends"))
            .json(&send_result("wamid.AUTH", "x"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().expect("post").status().as_u16()
    };
    assert_eq!(post(None), 401);
    assert_eq!(post(Some("wrong-token-0000000000")), 401);
    assert_eq!(post(Some(READ)), 403);
    assert_eq!(post(Some(INGEST)), 200);
    let get = |token: &str| {
        s.client
            .get(s.url("/v1/logs"))
            .bearer_auth(token)
            .send()
            .expect("get")
            .status()
            .as_u16()
    };
    assert_eq!(get(INGEST), 403);
    assert_eq!(get(READ), 200);
    let del = |token: &str| {
        s.client
            .post(s.url("/v1/delete"))
            .bearer_auth(token)
            .json(&json!({"ids": [0], "force": true}))
            .send()
            .expect("post")
            .status()
            .as_u16()
    };
    assert_eq!(del(READ), 403);
    assert_eq!(del(ADMIN), 200);
    // The webhook is authenticated by Meta's signature, not a token.
    assert_eq!(s.post_webhook(&fixture("webhook_status_read.json")).0, 200);
}
