//! The token and discovery endpoints of the provider dialects, with the request decoding they
//! share: `application/x-www-form-urlencoded` bodies and HTTP Basic client authentication.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
use base64::Engine as _;
use serde_json::{json, Value};

use super::http::{Request, Response};
use super::{assertion, Client, Dialect, State};

/// Which token endpoint a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpoint {
    Vitesse,
    Apiture,
    Vipps,
    VippsPartner,
    Vgs,
    /// The generic RFC 6749 endpoints (also the RFC 8414-only issuer's token endpoint).
    OAuth(OAuthShape),
}

/// Response shapes of the generic endpoints, to exercise the client's lifetime fallbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthShape {
    Standard,
    ExpiresOn,
    NoExpiry,
    NoType,
}

/// Which discovery document a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    ApitureOpenId,
    /// The RFC 8414-only issuer has no OpenID configuration: always 404.
    Rfc8414OpenIdMissing,
    Rfc8414Metadata,
}

pub fn token_endpoint(path: &str) -> Option<TokenEndpoint> {
    Some(match path {
        "/vitesse/connect/token" => TokenEndpoint::Vitesse,
        "/apiture/oidc/token" => TokenEndpoint::Apiture,
        "/vipps/accesstoken/get" => TokenEndpoint::Vipps,
        "/vipps/miami/v1/token" => TokenEndpoint::VippsPartner,
        "/vgs/auth/realms/vgs/protocol/openid-connect/token" => TokenEndpoint::Vgs,
        "/oauth/token" | "/rfc8414/token" => TokenEndpoint::OAuth(OAuthShape::Standard),
        "/oauth/token-expires-on" => TokenEndpoint::OAuth(OAuthShape::ExpiresOn),
        "/oauth/token-no-expiry" => TokenEndpoint::OAuth(OAuthShape::NoExpiry),
        "/oauth/token-no-type" => TokenEndpoint::OAuth(OAuthShape::NoType),
        _ => return None,
    })
}

pub fn discovery_endpoint(path: &str) -> Option<Discovery> {
    Some(match path {
        "/apiture/oidc/.well-known/openid-configuration" => Discovery::ApitureOpenId,
        "/rfc8414/.well-known/openid-configuration" => Discovery::Rfc8414OpenIdMissing,
        "/.well-known/oauth-authorization-server/rfc8414" => Discovery::Rfc8414Metadata,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Decode one `application/x-www-form-urlencoded` component: `+` is a space, `%XX` a byte; the
/// result must be UTF-8. A `%` not followed by two hex digits is an error (strict on purpose:
/// this server exists to catch clients that encode wrongly).
pub fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = b.get(i + 1).and_then(|c| (*c as char).to_digit(16))?;
                let lo = b.get(i + 2).and_then(|c| (*c as char).to_digit(16))?;
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Parse a form body into (name, value) pairs, in order.
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, &'static str> {
    let body = std::str::from_utf8(body).map_err(|_| "form body is not valid UTF-8")?;
    let mut pairs = Vec::new();
    for part in body.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let k = form_decode(k).ok_or("malformed form body encoding")?;
        let v = form_decode(v).ok_or("malformed form body encoding")?;
        pairs.push((k, v));
    }
    Ok(pairs)
}

/// Whether `s` is exactly what a form-urlencoder could have produced: unreserved characters,
/// `+` and well-formed `%XX` escapes only.
fn is_form_encoded(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
                if !ok {
                    return false;
                }
                i += 2;
            }
            c if c.is_ascii_alphanumeric() || b"*-._~+".contains(&c) => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

/// Credentials from an `Authorization: Basic` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Basic {
    /// The two halves as sent (Apiture's and Vipps' documented form: plain `id:secret`).
    pub raw_id: String,
    pub raw_secret: String,
    /// The halves form-urlencoded-decoded (RFC 6749 §2.3.1), when they decode.
    pub decoded: Option<(String, String)>,
    /// Both halves are well-formed form-urlencoded strings.
    pub encoding_ok: bool,
}

/// What the `Authorization` header holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    /// A Basic header; `None` when its payload is not base64 of UTF-8 `id:secret`.
    Basic(Option<Basic>),
    Other,
}

impl Auth {
    pub fn is_basic(&self) -> bool {
        matches!(self, Auth::Basic(_))
    }
}

pub fn parse_basic_value(value: &str) -> Auth {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Auth::Other;
    }
    let decoded = STANDARD_PAD_INDIFFERENT
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let basic = decoded.and_then(|s| {
        let (id, secret) = s.split_once(':')?;
        let decoded = match (form_decode(id), form_decode(secret)) {
            (Some(i), Some(s)) => Some((i, s)),
            _ => None,
        };
        Some(Basic {
            encoding_ok: is_form_encoded(id) && is_form_encoded(secret),
            raw_id: id.to_string(),
            raw_secret: secret.to_string(),
            decoded,
        })
    });
    Auth::Basic(basic)
}

pub fn parse_auth(req: &Request) -> Auth {
    match req.header("authorization") {
        None => Auth::None,
        Some(v) => parse_basic_value(v),
    }
}

fn is_form_content_type(req: &Request) -> bool {
    req.header("content-type").is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

// ---------------------------------------------------------------------------------------------
// Responses

/// A JSON object with its fields in the given order (as the real providers send them).
pub fn ordered_json(fields: &[(&str, Value)]) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&Value::from(*k).to_string());
        s.push(':');
        s.push_str(&v.to_string());
    }
    s.push('}');
    s
}

fn no_store(resp: Response) -> Response {
    resp.with_header("Cache-Control", "no-store")
        .with_header("Pragma", "no-cache")
}

pub fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    no_store(Response::json(
        status,
        ordered_json(&[
            ("error", json!(error)),
            ("error_description", json!(description)),
        ]),
    ))
}

fn invalid_request(description: &str) -> Response {
    oauth_error(400, "invalid_request", description)
}

fn invalid_client(used_basic: bool) -> Response {
    let resp = oauth_error(401, "invalid_client", "client authentication failed");
    if used_basic {
        resp.with_header("WWW-Authenticate", "Basic realm=\"idp\"")
    } else {
        resp
    }
}

fn method_not_allowed(allow: &str) -> Response {
    oauth_error(405, "invalid_request", "method not allowed").with_header("Allow", allow)
}

const APIM_DENIED: &str = "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.";

fn apim_denied() -> Response {
    no_store(Response::json(
        401,
        ordered_json(&[("statusCode", json!(401)), ("message", json!(APIM_DENIED))]),
    ))
    .with_header(
        "WWW-Authenticate",
        "AzureApiManagementKey realm=\"idp\",name=\"Ocp-Apim-Subscription-Key\",type=\"header\"",
    )
}

fn vipps_invalid_client() -> Response {
    oauth_error(
        401,
        "invalid_client",
        "AADSTS7000215: Invalid client secret provided.",
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Token endpoints

type Form = Vec<(String, String)>;

fn form_get<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Parse the body as a form and check `grant_type=client_credentials`.
fn client_credentials_form(req: &Request) -> Result<Form, Response> {
    let form = if req.body.is_empty() {
        Vec::new()
    } else {
        if !is_form_content_type(req) {
            return Err(invalid_request(
                "Content-Type must be application/x-www-form-urlencoded",
            ));
        }
        parse_form(&req.body).map_err(invalid_request)?
    };
    for (i, (k, _)) in form.iter().enumerate() {
        if form[..i].iter().any(|(k2, _)| k2 == k) {
            return Err(invalid_request(&format!("parameter '{k}' is repeated")));
        }
    }
    match form_get(&form, "grant_type") {
        None => Err(invalid_request("grant_type is missing")),
        Some("client_credentials") => Ok(form),
        Some(_) => Err(no_store(Response::json(
            400,
            r#"{"error":"unsupported_grant_type"}"#,
        ))),
    }
}

/// Every space-separated scope in `requested` must be in `allowed` (when there is a list).
fn check_scopes(requested: &str, allowed: Option<&[String]>) -> Result<(), Response> {
    let Some(allowed) = allowed else {
        return Ok(());
    };
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == s) {
            return Err(oauth_error(
                400,
                "invalid_scope",
                &format!("scope '{s}' is not allowed for this client"),
            ));
        }
    }
    Ok(())
}

/// Look a client up by the credentials from a Basic header: the plain halves first (what
/// Apiture and Vipps document), then the RFC 6749 decoded halves when `plain` is allowed;
/// only the decoded halves when it is not.
fn basic_client(state: &State, dialect: Dialect, basic: &Basic, plain: bool) -> Option<Client> {
    if plain {
        if let Some(c) = state.authenticate(dialect, &basic.raw_id, &basic.raw_secret) {
            return Some(c);
        }
    }
    let (id, secret) = basic.decoded.as_ref()?;
    state.authenticate(dialect, id, secret)
}

/// How the client authenticated.
enum Method {
    Basic {
        plain_too: bool,
    },
    Post,
    /// Basic if present (RFC 6749-decoded, as Keycloak does: plain `id:secret` with `+`, `%` or
    /// `&` in it does not match), else the body (Keycloak).
    Either,
    /// Basic (RFC 6749-decoded) or the body, but not both (generic RFC 6749).
    Strict,
}

fn authenticate(
    state: &State,
    req: &Request,
    form: &Form,
    dialect: Dialect,
    method: Method,
    base: &str,
) -> Result<Client, Response> {
    if let Some(kind) = form_get(form, "client_assertion_type") {
        return assertion_client(state, req, form, dialect, method, kind, base);
    }
    let auth = parse_auth(req);
    let body_id = form_get(form, "client_id");
    let body_secret = form_get(form, "client_secret");
    let from_body = || match (body_id, body_secret) {
        (Some(id), Some(secret)) => state
            .authenticate(dialect, id, secret)
            .ok_or_else(|| invalid_client(false)),
        _ => Err(invalid_client(false)),
    };
    let from_basic = |plain: bool| match &auth {
        Auth::Basic(Some(b)) => {
            let c = basic_client(state, dialect, b, plain).ok_or_else(|| invalid_client(true))?;
            if body_id.is_some_and(|id| id != c.client_id) {
                return Err(invalid_request(
                    "client_id in the body differs from the Authorization header",
                ));
            }
            Ok(c)
        }
        _ => Err(invalid_client(auth.is_basic())),
    };
    match method {
        Method::Post => {
            if auth.is_basic() {
                // Vitesse documents credentials in the body only.
                return Err(invalid_client(true));
            }
            from_body()
        }
        Method::Basic { plain_too } => {
            // Credentials belong in the header; a body client_id is tolerated next to it
            // (and must agree), a body client_secret never.
            if body_secret.is_some() || (body_id.is_some() && !auth.is_basic()) {
                return Err(invalid_client(auth.is_basic()));
            }
            from_basic(plain_too)
        }
        // Keycloak and generic RFC 6749 servers alike: Basic (URL-decoded) or the body, not both.
        Method::Either | Method::Strict => {
            if auth.is_basic() {
                if body_secret.is_some() {
                    return Err(invalid_request(
                        "more than one client authentication method",
                    ));
                }
                from_basic(false)
            } else {
                from_body()
            }
        }
    }
}

/// `private_key_jwt` (RFC 7523 section 2.2), where the dialect takes it (Keycloak's and the
/// generic RFC 6749 server's): the client is named by `client_id` (or the assertion's `iss`), and
/// the assertion must verify against its registered `jwks`. The audience may be this token
/// endpoint's URL or the issuer it belongs to.
fn assertion_client(
    state: &State,
    req: &Request,
    form: &Form,
    dialect: Dialect,
    method: Method,
    kind: &str,
    base: &str,
) -> Result<Client, Response> {
    if matches!(method, Method::Post | Method::Basic { .. }) {
        return Err(invalid_client(false));
    }
    if kind != assertion::ASSERTION_TYPE {
        return Err(invalid_request("unsupported client_assertion_type"));
    }
    if parse_auth(req).is_basic() || form_get(form, "client_secret").is_some() {
        return Err(invalid_request(
            "more than one client authentication method",
        ));
    }
    let jwt = form_get(form, "client_assertion")
        .ok_or_else(|| invalid_request("client_assertion is missing"))?;
    let id = match form_get(form, "client_id") {
        Some(id) => id.to_string(),
        None => assertion::unverified_iss(jwt).ok_or_else(|| invalid_client(false))?,
    };
    let client = state
        .client(dialect, &id)
        .filter(|c| !c.jwks.is_empty())
        .ok_or_else(|| invalid_client(false))?;
    let url = format!("{base}{}", req.path);
    let audiences: Vec<String> = [
        Some(url.as_str()),
        url.strip_suffix("/token"),
        url.strip_suffix("token"),
    ]
    .into_iter()
    .flatten()
    .filter(|a| !a.is_empty() && !base.is_empty())
    .map(str::to_string)
    .collect();
    let check = assertion::Check {
        client_id: &client.client_id,
        keys: &client.jwks,
        audiences: &audiences,
        now: now_secs(),
    };
    assertion::verify(jwt, &check, &mut state.seen_jti.lock())
        .map_err(|why| oauth_error(401, "invalid_client", &why))?;
    Ok(client)
}

/// A successful token response; counts the issued token.
fn issued(state: &State, client: &Client, body: String) -> Response {
    state.count_issued(&client.client_id);
    no_store(Response::json(200, body))
}

fn token_or_500(state: &State, bytes: usize) -> Result<String, Response> {
    state
        .new_token(bytes)
        .ok_or_else(|| oauth_error(500, "server_error", "random number generator failed"))
}

/// Answer a request to a token endpoint (faults have been handled already).
/// `base` is `scheme://authority` of the request, for the audience of a client assertion.
pub fn handle_token(state: &State, req: &Request, ep: TokenEndpoint, base: &str) -> Response {
    if req.method != "POST" {
        return method_not_allowed("POST");
    }
    let result = match ep {
        TokenEndpoint::Vitesse => vitesse(state, req),
        TokenEndpoint::Apiture => basic_dialect(state, req, Dialect::Apiture),
        TokenEndpoint::VippsPartner => basic_dialect(state, req, Dialect::VippsPartner),
        TokenEndpoint::Vipps => vipps(state, req),
        TokenEndpoint::Vgs => vgs(state, req, base),
        TokenEndpoint::OAuth(shape) => oauth(state, req, shape, base),
    };
    result.unwrap_or_else(|r| r)
}

fn vitesse(state: &State, req: &Request) -> Result<Response, Response> {
    let form = client_credentials_form(req)?;
    let client = authenticate(state, req, &form, Dialect::Vitesse, Method::Post, "")?;
    let scope = form_get(&form, "scope").unwrap_or("API").trim();
    let scope = if scope.is_empty() { "API" } else { scope };
    let default_allowed = vec!["API".to_string()];
    check_scopes(
        scope,
        Some(client.scopes.as_deref().unwrap_or(&default_allowed)),
    )?;
    let token = token_or_500(state, client.token_bytes)?;
    let body = ordered_json(&[
        ("access_token", json!(token)),
        ("token_type", json!("Bearer")),
        ("expires_in", json!(client.lifetime_s)),
        ("scope", json!(scope)),
    ]);
    Ok(issued(state, &client, body))
}

/// Apiture and Vipps partner: Basic only, `{access_token, token_type, expires_in}`.
fn basic_dialect(state: &State, req: &Request, dialect: Dialect) -> Result<Response, Response> {
    let form = client_credentials_form(req)?;
    let client = authenticate(
        state,
        req,
        &form,
        dialect,
        Method::Basic { plain_too: true },
        "",
    )?;
    if let Some(scope) = form_get(&form, "scope") {
        check_scopes(scope, client.scopes.as_deref())?;
    }
    let token = token_or_500(state, client.token_bytes)?;
    let body = if dialect == Dialect::VippsPartner {
        ordered_json(&[
            ("token_type", json!("Bearer")),
            ("expires_in", json!(client.lifetime_s)),
            ("access_token", json!(token)),
        ])
    } else {
        ordered_json(&[
            ("access_token", json!(token)),
            ("token_type", json!("Bearer")),
            ("expires_in", json!(client.lifetime_s)),
        ])
    };
    Ok(issued(state, &client, body))
}

fn vipps(state: &State, req: &Request) -> Result<Response, Response> {
    // Azure API Management checks the subscription key before anything else.
    let key = req.header("ocp-apim-subscription-key").unwrap_or("");
    if key.is_empty() || !state.is_vipps_subscription_key(key) {
        return Err(apim_denied());
    }
    if let Some(msn) = req.header("merchant-serial-number") {
        if !(4..=6).contains(&msn.len()) || !msn.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid_request(
                "Merchant-Serial-Number must be 4 to 6 digits (^[0-9]{4,6}$)",
            ));
        }
    }
    for name in [
        "Vipps-System-Name",
        "Vipps-System-Version",
        "Vipps-System-Plugin-Name",
        "Vipps-System-Plugin-Version",
    ] {
        if req.header(name).is_some_and(|v| v.chars().count() > 30) {
            return Err(invalid_request(&format!(
                "{name} must be at most 30 characters"
            )));
        }
    }
    let id = req.header("client_id").unwrap_or("");
    let secret = req.header("client_secret").unwrap_or("");
    let client = state
        .authenticate(Dialect::Vipps, id, secret)
        .ok_or_else(vipps_invalid_client)?;
    if client.subscription_key.as_deref() != Some(key) {
        return Err(apim_denied());
    }
    let token = token_or_500(state, client.token_bytes)?;
    let now = now_secs();
    let life = client.lifetime_s;
    let body = ordered_json(&[
        ("token_type", json!("Bearer")),
        ("expires_in", json!(life.to_string())),
        ("ext_expires_in", json!(life.to_string())),
        ("expires_on", json!(now.saturating_add(life).to_string())),
        ("not_before", json!(now.to_string())),
        ("resource", json!("00000002-0000-0000-c000-000000000000")),
        ("access_token", json!(token)),
    ]);
    Ok(issued(state, &client, body))
}

fn vgs(state: &State, req: &Request, base: &str) -> Result<Response, Response> {
    let form = client_credentials_form(req)?;
    let client = authenticate(state, req, &form, Dialect::Vgs, Method::Either, base)?;
    let scope = form_get(&form, "scope")
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(scope) = scope {
        check_scopes(scope, client.scopes.as_deref())?;
    }
    let token = token_or_500(state, client.token_bytes)?;
    let refresh = token_or_500(state, 32)?;
    let body = ordered_json(&[
        ("access_token", json!(token)),
        ("expires_in", json!(client.lifetime_s)),
        ("refresh_expires_in", json!(1800)),
        ("refresh_token", json!(refresh)),
        ("token_type", json!("bearer")),
        ("not-before-policy", json!(0)),
        ("scope", json!(scope.unwrap_or("profile email"))),
    ]);
    Ok(issued(state, &client, body))
}

fn oauth(
    state: &State,
    req: &Request,
    shape: OAuthShape,
    base: &str,
) -> Result<Response, Response> {
    let form = client_credentials_form(req)?;
    let client = authenticate(state, req, &form, Dialect::OAuth, Method::Strict, base)?;
    let requested = form_get(&form, "scope")
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(scope) = requested {
        check_scopes(scope, client.scopes.as_deref())?;
    }
    let granted = requested
        .map(str::to_string)
        .or_else(|| client.scopes.as_ref().map(|s| s.join(" ")));
    let token = token_or_500(state, client.token_bytes)?;
    let mut fields = vec![("access_token", json!(token))];
    if shape != OAuthShape::NoType {
        fields.push(("token_type", json!("Bearer")));
    }
    match shape {
        OAuthShape::Standard | OAuthShape::NoType => {
            fields.push(("expires_in", json!(client.lifetime_s)))
        }
        OAuthShape::ExpiresOn => fields.push((
            "expires_on",
            json!(now_secs().saturating_add(client.lifetime_s)),
        )),
        OAuthShape::NoExpiry => {}
    }
    if let Some(g) = granted {
        fields.push(("scope", json!(g)));
    }
    Ok(issued(state, &client, ordered_json(&fields)))
}

// ---------------------------------------------------------------------------------------------
// Discovery

/// The authority to put in discovered URLs: the Host header when it looks like one, else the
/// address the connection arrived on.
pub fn authority(req: &Request, local: SocketAddr) -> String {
    match req.header("host") {
        Some(h)
            if !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b)) =>
        {
            h.to_string()
        }
        _ => local.to_string(),
    }
}

/// A discovery document; its URLs use `scheme` (`http`, or `https` when TLS is on).
pub fn handle_discovery(req: &Request, local: SocketAddr, scheme: &str, d: Discovery) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return method_not_allowed("GET, HEAD");
    }
    let base = format!("{scheme}://{}", authority(req, local));
    match d {
        Discovery::ApitureOpenId => {
            let iss = format!("{base}/apiture/oidc/");
            Response::json(
                200,
                ordered_json(&[
                    ("issuer", json!(iss)),
                    ("authorization_endpoint", json!(format!("{iss}auth"))),
                    ("token_endpoint", json!(format!("{iss}token"))),
                    ("jwks_uri", json!(format!("{iss}jwks"))),
                    (
                        "grant_types_supported",
                        json!(["authorization_code", "client_credentials"]),
                    ),
                    (
                        "token_endpoint_auth_methods_supported",
                        json!(["client_secret_basic"]),
                    ),
                    ("response_types_supported", json!(["code"])),
                ]),
            )
        }
        Discovery::Rfc8414OpenIdMissing => Response::json(404, r#"{"error":"not_found"}"#),
        Discovery::Rfc8414Metadata => {
            let iss = format!("{base}/rfc8414");
            Response::json(
                200,
                ordered_json(&[
                    ("issuer", json!(iss)),
                    ("token_endpoint", json!(format!("{iss}/token"))),
                    ("grant_types_supported", json!(["client_credentials"])),
                    (
                        "token_endpoint_auth_methods_supported",
                        json!([
                            "client_secret_basic",
                            "client_secret_post",
                            "private_key_jwt"
                        ]),
                    ),
                    ("response_types_supported", json!(["code"])),
                ]),
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Request description for /_idp/last_request and the statistics

const REDACTED_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "client_secret",
    "ocp-apim-subscription-key",
];

/// Whether a header's value must not be shown: the credential headers the dialects use, and
/// anything else that looks like a secret.
fn is_secret_header(lower_name: &str) -> bool {
    REDACTED_HEADERS.contains(&lower_name)
        || lower_name.contains("secret")
        || lower_name.contains("password")
        || lower_name.contains("subscription-key")
}

/// The request as `/_idp/last_request` shows it: secret values redacted, form values omitted.
pub fn describe(req: &Request) -> Value {
    let mut headers = serde_json::Map::new();
    for (name, value) in &req.headers {
        let name = name.to_ascii_lowercase();
        let value = if is_secret_header(&name) {
            "<redacted>".to_string()
        } else {
            value.clone()
        };
        let merged = match headers.get(&name).and_then(Value::as_str) {
            Some(prev) if prev != "<redacted>" => format!("{prev}, {value}"),
            _ => value,
        };
        headers.insert(name, Value::String(merged));
    }
    let form_keys: Vec<String> = lenient_form_keys(&req.body);
    let auth = parse_auth(req);
    let (scheme, encoding_ok) = match &auth {
        Auth::None => ("none", true),
        Auth::Other => ("other", false),
        Auth::Basic(None) => ("basic", false),
        Auth::Basic(Some(b)) => ("basic", b.encoding_ok),
    };
    json!({
        "method": req.method,
        "path": req.path,
        "headers": headers,
        "form_keys": form_keys,
        "body_bytes": req.body.len(),
        "auth_scheme": scheme,
        "auth_encoding_ok": encoding_ok,
    })
}

fn lenient_form_keys(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let k = p.split_once('=').map_or(p, |(k, _)| k);
            form_decode(k).unwrap_or_else(|| k.to_string())
        })
        .collect()
}

/// The client id a token request names, for the per-client statistics (best effort).
pub fn client_id_hint(req: &Request) -> Option<String> {
    if let Ok(form) = parse_form(&req.body) {
        if let Some(id) = form_get(&form, "client_id") {
            return Some(id.to_string());
        }
    }
    if let Some(id) = req.header("client_id") {
        return Some(id.to_string());
    }
    match parse_auth(req) {
        Auth::Basic(Some(b)) => Some(b.decoded.map(|(id, _)| id).unwrap_or(b.raw_id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%20c").as_deref(), Some("a b c"));
        assert_eq!(form_decode("%3A%2b%25").as_deref(), Some(":+%"));
        assert_eq!(form_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(form_decode("plain").as_deref(), Some("plain"));
        assert_eq!(form_decode(""), Some(String::new()));
        assert_eq!(form_decode("%"), None);
        assert_eq!(form_decode("%2"), None);
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%FF"), None, "not UTF-8");
    }

    #[test]
    fn form_parsing() {
        let f =
            parse_form(b"grant_type=client_credentials&scope=API+Foundations&&flag&e=").unwrap();
        assert_eq!(
            f,
            vec![
                ("grant_type".into(), "client_credentials".into()),
                ("scope".into(), "API Foundations".into()),
                ("flag".into(), String::new()),
                ("e".into(), String::new()),
            ]
        );
        assert!(parse_form(b"a=%G0").is_err());
        assert!(parse_form(&[0xff, b'=', b'1']).is_err());
    }

    fn basic(s: &str) -> Auth {
        parse_basic_value(&format!("Basic {}", STANDARD.encode(s)))
    }

    #[test]
    fn basic_plain_and_rfc6749() {
        let Auth::Basic(Some(b)) = basic("id:sec:ret") else {
            panic!()
        };
        assert_eq!(
            (b.raw_id.as_str(), b.raw_secret.as_str()),
            ("id", "sec:ret")
        );
        assert!(!b.encoding_ok, "a raw ':' is not form-encoded");
        // "demo: secret+with%odd chars" encoded per RFC 6749.
        let Auth::Basic(Some(b)) = basic("demo-oauth-client:demo%3A+secret%2Bwith%25odd+chars")
        else {
            panic!()
        };
        assert!(b.encoding_ok);
        assert_eq!(
            b.decoded,
            Some((
                "demo-oauth-client".into(),
                "demo: secret+with%odd chars".into()
            ))
        );
        // The plain form of the same secret does not decode.
        let Auth::Basic(Some(b)) = basic("demo-oauth-client:demo: secret+with%odd chars") else {
            panic!()
        };
        assert_eq!(b.decoded, None);
        assert!(!b.encoding_ok);
        // Scheme is case-insensitive; padding optional.
        let unpadded = STANDARD.encode("a:b").trim_end_matches('=').to_string();
        assert!(matches!(
            parse_basic_value(&format!("bAsIc {unpadded}")),
            Auth::Basic(Some(_))
        ));
        assert_eq!(parse_basic_value("Basic !!!"), Auth::Basic(None));
        assert_eq!(
            parse_basic_value(&format!("Basic {}", STANDARD.encode("nocolon"))),
            Auth::Basic(None)
        );
        assert_eq!(parse_basic_value("Bearer abc"), Auth::Other);
        assert_eq!(parse_basic_value("Basic"), Auth::Basic(None));
    }

    #[test]
    fn form_encoded_check() {
        assert!(is_form_encoded("abc-._~*+%20"));
        assert!(!is_form_encoded("a b"));
        assert!(!is_form_encoded("a%2"));
        assert!(!is_form_encoded("é"));
    }

    #[test]
    fn scopes() {
        let allowed = vec!["API".to_string(), "Foundations".to_string()];
        assert!(check_scopes("API Foundations", Some(&allowed)).is_ok());
        assert!(check_scopes("API", None).is_ok());
        let err = check_scopes("API Admin", Some(&allowed)).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(String::from_utf8_lossy(&err.body)
            .contains("scope 'Admin' is not allowed for this client"));
    }

    #[test]
    fn ordered_json_keeps_order_and_escapes() {
        assert_eq!(
            ordered_json(&[("b", json!(1)), ("a", json!("x\"y"))]),
            r#"{"b":1,"a":"x\"y"}"#
        );
    }
}
