//! The token endpoint client: one token request per call, per auth method, over a blocking ureq
//! agent (connections reused within a fetch); response parsing; RFC 6749 error mapping; size and
//! time limits; retries with backoff inside an overall deadline.
//!
//! - `client`: the agent of a fetch, TLS and proxy settings, the token request, the discovery GET
//! - `request`: form and Basic encoding, each auth method's credentials, `client_assertion`
//! - `response`: the size limit, HTTP status and RFC 6749 error mapping, `Retry-After`,
//!   transport and TLS errors
//! - `token`: a token response (HTTP 200) parsed into a sealed token
//! - `retry`: the retry loop, its backoff, `Retry-After` kept across fetches, the deadline
//! - `redact`: [`Secrets`], the one way identity-provider text becomes message text

mod client;
mod redact;
mod request;
mod response;
mod retry;
mod token;

pub use client::Client;
pub(crate) use redact::Secrets;
pub(crate) use response::{oauth_error, parse_retry_after};
pub use retry::{with_retries, Backoff, Failed, NotBefore, Plan, Retry};
pub(crate) use token::{parse_token, Fetched};
