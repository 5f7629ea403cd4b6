//! An Entra-ID-shaped token endpoint, for Azure workload identity the real way: the real
//! source-controller's Azure SDK (MSAL) exchanges a Kubernetes `ServiceAccount` token for an
//! access token the git server accepts.
//!
//! It answers for `login.microsoftonline.com` (the workload-identity webhook's default
//! authority host, which MSAL trusts without instance discovery): the server certificate
//! carries that name, and the process kubelet tunnels the controllers' HTTPS requests for it
//! here. Like Entra, it checks the client assertion before issuing anything: an ES256 JWT
//! signed by a trusted issuer (a cluster's `ServiceAccount` key), audience
//! `api://AzureADTokenExchange`, not expired, whose (issuer, subject) is a federated
//! credential of the `client_id` asked for, in this tenant, for the Azure DevOps scope. Every
//! request it does not know is recorded and logged, so a test fails loudly instead of
//! timing out.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::http::{Body, json};
use super::state::State;

/// The host MSAL asks, and the only one this endpoint answers for.
pub(crate) const AUTHORITY_HOST: &str = "login.microsoftonline.com";

/// Azure DevOps' resource id, whose `.default` scope source-controller asks for.
const AZURE_DEVOPS_SCOPE: &str = "499b84ac-1321-427f-aa17-267ca6975798/.default";

/// Trusted issuers and federated credentials.
#[derive(Default)]
pub(crate) struct Federation {
    /// Issuer URL → uncompressed P-256 public key of its signing key.
    issuers: HashMap<String, Vec<u8>>,
    /// (issuer, subject) → client id.
    credentials: HashMap<(String, String), String>,
    /// Requests that were not understood, for tests to assert on.
    unknown: Vec<String>,
}

impl Federation {
    pub(crate) fn trust_issuer(&mut self, issuer: &str, public_key: Vec<u8>) {
        self.issuers.insert(issuer.to_owned(), public_key);
    }

    pub(crate) fn add_credential(&mut self, issuer: &str, subject: &str, client_id: &str) {
        self.credentials.insert(
            (issuer.to_owned(), subject.to_owned()),
            client_id.to_owned(),
        );
    }

    pub(crate) fn unknown_requests(&self) -> Vec<String> {
        self.unknown.clone()
    }
}

/// Whether `req` is addressed to the authority host.
pub(crate) fn is_for_authority(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(':').next() == Some(AUTHORITY_HOST))
}

/// An Entra error body (`AADSTS` code and description), as MSAL parses it.
fn aad_error(code: &str, description: &str) -> Response<Body> {
    json(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({"error": code, "error_description": description, "error_codes": [], "timestamp": "", "trace_id": "", "correlation_id": ""}),
    )
}

pub(crate) async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let federation = &state.federation;
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let base = format!("https://{AUTHORITY_HOST}");
    match (&method, segments.as_slice()) {
        (&Method::GET, [tenant, "v2.0", ".well-known", "openid-configuration"]) => json(
            StatusCode::OK,
            &serde_json::json!({
                "issuer": format!("{base}/{tenant}/v2.0"),
                "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
                "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
                "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "tenant_region_scope": "EU",
            }),
        ),
        (&Method::GET, ["common", "discovery", "instance"]) => json(
            StatusCode::OK,
            &serde_json::json!({
                "tenant_discovery_endpoint": format!("{base}/common/v2.0/.well-known/openid-configuration"),
                "api-version": "1.1",
                "metadata": [{"preferred_network": AUTHORITY_HOST, "preferred_cache": AUTHORITY_HOST, "aliases": [AUTHORITY_HOST]}],
            }),
        ),
        (&Method::POST, [tenant, "oauth2", "v2.0", "token"]) => {
            let tenant = (*tenant).to_owned();
            let body = match req.into_body().collect().await {
                Ok(body) => body.to_bytes(),
                Err(_) => return aad_error("invalid_request", "unreadable body"),
            };
            let form: HashMap<String, String> = url_form(&body);
            token(state, federation, &tenant, &form)
        }
        _ => {
            let line = format!("{method} {path}");
            #[expect(clippy::print_stderr, reason = "a stand-in logs what it does not know")]
            {
                eprintln!("entra stand-in: unknown request `{line}`");
            }
            federation
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .unknown
                .push(line);
            aad_error(
                "invalid_request",
                "the harness's Entra stand-in does not know this request",
            )
        }
    }
}

fn url_form(body: &[u8]) -> HashMap<String, String> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn token(
    state: &State,
    federation: &Mutex<Federation>,
    tenant: &str,
    form: &HashMap<String, String>,
) -> Response<Body> {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if tenant != state.tenant_id {
        return aad_error(
            "invalid_request",
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        );
    }
    if field("grant_type") != "client_credentials"
        || field("client_assertion_type")
            != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    {
        return aad_error(
            "unsupported_grant_type",
            "AADSTS70003: expected a federated client assertion",
        );
    }
    if !field("scope").split(' ').any(|s| s == AZURE_DEVOPS_SCOPE) {
        return aad_error(
            "invalid_scope",
            "AADSTS70011: only the Azure DevOps scope is served here",
        );
    }
    let claims = match verify_assertion(
        &federation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        field("client_assertion"),
    ) {
        Ok(claims) => claims,
        Err(description) => return aad_error("invalid_client", &description),
    };
    let issuer = claims["iss"].as_str().unwrap_or_default();
    let subject = claims["sub"].as_str().unwrap_or_default();
    let registered = federation
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .credentials
        .get(&(issuer.to_owned(), subject.to_owned()))
        .cloned();
    if registered.as_deref() != Some(field("client_id")) {
        return aad_error(
            "invalid_client",
            &format!(
                "AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'."
            ),
        );
    }
    json(
        StatusCode::OK,
        &serde_json::json!({
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": state.bearer_token,
        }),
    )
}

/// The claims of a valid client assertion, or the `AADSTS` description of why it is not.
fn verify_assertion(federation: &Federation, jwt: &str) -> Result<serde_json::Value, String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.trim().split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err("AADSTS50027: the client assertion is not a JWT".to_owned());
    };
    let decode = |part: &str| -> Result<serde_json::Value, String> {
        b64.decode(part)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| "AADSTS50027: the client assertion is not a JWT".to_owned())
    };
    let (header_json, claims) = (decode(header)?, decode(payload)?);
    if header_json["alg"] != "ES256" {
        return Err("AADSTS5002738: unsupported assertion signing algorithm".to_owned());
    }
    let issuer = claims["iss"].as_str().unwrap_or_default();
    let Some(key) = federation.issuers.get(issuer) else {
        return Err(format!(
            "AADSTS700211: No matching federated identity record found for presented assertion issuer '{issuer}'."
        ));
    };
    let signature = b64
        .decode(signature)
        .map_err(|_| "AADSTS50012: the assertion signature is malformed".to_owned())?;
    let signed = format!("{header}.{payload}");
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "AADSTS50012: the assertion signature is invalid".to_owned())?;
    let audiences: Vec<&str> = match &claims["aud"] {
        serde_json::Value::String(a) => vec![a.as_str()],
        serde_json::Value::Array(a) => a.iter().filter_map(serde_json::Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&"api://AzureADTokenExchange") {
        return Err("AADSTS700212: No matching federated identity record found for presented assertion audience.".to_owned());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if claims["exp"].as_u64().is_none_or(|exp| exp < now) {
        return Err(
            "AADSTS700024: Client assertion is not within its valid time range.".to_owned(),
        );
    }
    Ok(claims)
}
