//! The PAT lifecycle API (`{vssps}/{org}/_apis/tokens/pats`, `azure-devops.md` and Microsoft's
//! REST reference): create, get, list and revoke a user's PATs. As the real one, it takes
//! only an Entra token (a PAT gets 401), creates PATs for one organization with the scopes
//! asked for (`vso.code` can clone and fetch, not push), shortens a lifetime over the
//! organization's maximum to the maximum, and answers an organization whose policy disables
//! PAT creation with `patTokenError: disablePatCreationPolicyViolation`. An organization not
//! backed by Entra ID answers an Entra token with 401.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::http::{Body, json, tf_error, unauthorized};
use super::state::{Access, State, guid};

/// The scopes the stand-in knows.
const KNOWN_SCOPES: &[&str] = &["vso.code", "vso.code_write", "vso.code_manage", "app_token"];

/// The organizations' maximum PAT lifetime.
pub(crate) const MAX_LIFETIME_DAYS: i64 = 180;

/// One PAT the API created (`Debug` leaves the token out, so a failing test's message does
/// not print it).
#[derive(Clone, PartialEq, Eq)]
pub struct MintedPatRecord {
    /// The organization it was created in.
    pub org: String,
    /// Its authorization id.
    pub authorization_id: String,
    /// Its name.
    pub display_name: String,
    /// Its scopes.
    pub scope: String,
    /// Its expiry (RFC 3339).
    pub valid_to: String,
    /// Whether it was revoked.
    pub revoked: bool,
    /// The token.
    pub token: String,
}

impl std::fmt::Debug for MintedPatRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedPatRecord")
            .field("org", &self.org)
            .field("authorization_id", &self.authorization_id)
            .field("display_name", &self.display_name)
            .field("scope", &self.scope)
            .field("valid_to", &self.valid_to)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

pub(crate) fn is_pats_route(segments: &[String]) -> bool {
    segments.len() == 4
        && segments[1] == "_apis"
        && segments[2].eq_ignore_ascii_case("tokens")
        && segments[3].eq_ignore_ascii_case("pats")
}

pub(crate) async fn handle(state: &State, req: Request<Incoming>, org: &str) -> Response<Body> {
    let bearer = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && token.trim() == state.bearer_token
        });
    if !bearer || !state.backed_by_entra(org) {
        return unauthorized(state);
    }
    let query = req.uri().query().unwrap_or("").to_owned();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
    };
    match *req.method() {
        Method::POST => create(state, org, req).await,
        Method::GET => {
            if let Some(id) = param("authorizationId") {
                state.minted_pat(org, &id).map_or_else(not_found, |pat| {
                    json(
                        StatusCode::OK,
                        &json!({"patToken": pat_json(&pat, false), "patTokenError": "none"}),
                    )
                })
            } else {
                let tokens: Vec<Value> = state
                    .minted_pats(org)
                    .iter()
                    .filter(|p| !p.revoked)
                    .map(|p| pat_json(p, false))
                    .collect();
                json(
                    StatusCode::OK,
                    &json!({"continuationToken": "", "patTokens": tokens}),
                )
            }
        }
        Method::DELETE => match param("authorizationId") {
            Some(id) if state.revoke_minted_pat(org, &id) => {
                let mut response = Response::new(super::http::full(""));
                *response.status_mut() = StatusCode::NO_CONTENT;
                response
            }
            _ => not_found(),
        },
        _ => tf_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "The requested resource does not support this method.",
            "InvalidOperationException",
        ),
    }
}

fn not_found() -> Response<Body> {
    tf_error(
        StatusCode::NOT_FOUND,
        "The personal access token was not found.",
        "SessionTokenNotFoundException",
    )
}

async fn create(state: &State, org: &str, req: Request<Incoming>) -> Response<Body> {
    let refused = |error: &str| {
        json(
            StatusCode::OK,
            &json!({"patToken": null, "patTokenError": error}),
        )
    };
    let Ok(bytes) = http_body_util::Limited::new(req.into_body(), 64 * 1024)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
    else {
        return tf_error(
            StatusCode::BAD_REQUEST,
            "The request body could not be read.",
            "JsonReaderException",
        );
    };
    let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
        return tf_error(
            StatusCode::BAD_REQUEST,
            "Unexpected character encountered while parsing value.",
            "JsonReaderException",
        );
    };
    if state.pat_creation_disabled(org) {
        return refused("disablePatCreationPolicyViolation");
    }
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default();
    let display_name = text("displayName").trim().to_owned();
    if display_name.is_empty() {
        return refused("displayNameRequired");
    }
    let scope = text("scope").to_owned();
    if scope.split(' ').any(|s| !KNOWN_SCOPES.contains(&s)) {
        return refused("invalidScope");
    }
    if body.get("allOrgs").and_then(Value::as_bool) == Some(true) {
        return refused("globalPatPolicyViolation");
    }
    let now = jiff::Timestamp::now();
    let max = now + jiff::SignedDuration::from_hours(24 * MAX_LIFETIME_DAYS);
    let Ok(asked) = text("validTo").parse::<jiff::Timestamp>() else {
        return refused("invalidValidTo");
    };
    if asked <= now {
        return refused("invalidValidTo");
    }
    // Since 2024 the service shortens a lifetime over the maximum instead of refusing it.
    let valid_to = asked
        .min(max)
        .strftime("%Y-%m-%dT%H:%M:%S%.7fZ")
        .to_string();
    let token = super::state::random_pat();
    let access = if scope == "vso.code" {
        Access::ReadOnly
    } else {
        Access::Full
    };
    state.add_pat(&token, access);
    let pat = MintedPatRecord {
        org: org.to_owned(),
        authorization_id: guid(),
        display_name,
        scope,
        valid_to,
        revoked: false,
        token,
    };
    state.record_minted_pat(pat.clone());
    json(
        StatusCode::OK,
        &json!({"patToken": pat_json(&pat, true), "patTokenError": "none"}),
    )
}

fn pat_json(pat: &MintedPatRecord, with_token: bool) -> Value {
    json!({
        "displayName": pat.display_name,
        "validTo": pat.valid_to,
        "scope": pat.scope,
        "targetAccounts": [guid()],
        "validFrom": super::state::rfc3339_now(),
        "authorizationId": pat.authorization_id,
        "token": if with_token { Value::String(pat.token.clone()) } else { Value::Null },
    })
}
