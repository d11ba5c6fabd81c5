//! The known providers (presets) and the input rules each documents.

use super::schema::{AuthMethod, BasicEncoding};
use crate::error::{Error, Result};
use crate::secret::SecretString;

/// Input rules a provider documents, checked at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Rules {
    None,
    /// Vitesse: client id and secret 6 to 100 characters.
    Vitesse,
    /// Vipps standard: subscription key required, Merchant-Serial-Number 4 to 6 digits,
    /// Vipps-System-* headers at most 30 characters.
    Vipps,
}

pub(super) struct Preset {
    pub(super) name: &'static str,
    pub(super) token_url: Option<&'static str>,
    pub(super) issuer: Option<&'static str>,
    pub(super) auth_method: AuthMethod,
    pub(super) basic_encoding: BasicEncoding,
    pub(super) scope: Option<&'static str>,
    pub(super) rules: Rules,
}

const fn preset(
    name: &'static str,
    token_url: Option<&'static str>,
    issuer: Option<&'static str>,
    auth_method: AuthMethod,
    basic_encoding: BasicEncoding,
    scope: Option<&'static str>,
    rules: Rules,
) -> Preset {
    Preset {
        name,
        token_url,
        issuer,
        auth_method,
        basic_encoding,
        scope,
        rules,
    }
}

use AuthMethod::{ClientSecretBasic as Basic, ClientSecretPost as Post, Headers};
use BasicEncoding::{Plain, Rfc6749};

/// The known providers, from their public documentation (see PROVIDERS.md).
///
/// The Basic encoding is what each server does with a Basic header, which matters when the
/// preset's auth method is Basic or a user switches to `client_secret_basic`: Apiture and Vipps
/// document plain `base64(id:secret)`; Vitesse runs IdentityServer and VGS runs Keycloak, which
/// URL-decode both halves as RFC 6749 section 2.3.1 says, so plain Basic would break a secret
/// with `+`, `%` or `&` in it there.
pub(super) const PRESETS: &[Preset] = &[
    preset(
        "vitesse-staging",
        Some("https://staging-identity.vitessepsp.com/connect/token"),
        None,
        Post,
        Rfc6749,
        Some("API"),
        Rules::Vitesse,
    ),
    preset(
        "vitesse-uk",
        Some("https://identity.vitessepsp.com/connect/token"),
        None,
        Post,
        Rfc6749,
        Some("API"),
        Rules::Vitesse,
    ),
    preset(
        "vitesse-us",
        Some("https://identity.us.vitesse.io/connect/token"),
        None,
        Post,
        Rfc6749,
        Some("API"),
        Rules::Vitesse,
    ),
    preset(
        "apiture",
        None,
        Some("https://auth.apiture.com/oidc/"),
        Basic,
        Plain,
        None,
        Rules::None,
    ),
    preset(
        "apiture-cat",
        None,
        Some("https://cat-oidc.apiture-comm-preprod.com/oidc/"),
        Basic,
        Plain,
        None,
        Rules::None,
    ),
    preset(
        "apiture-cat2",
        None,
        Some("https://cat2-oidc.apiture-comm-preprod.com/oidc/"),
        Basic,
        Plain,
        None,
        Rules::None,
    ),
    preset(
        "vipps-test",
        Some("https://apitest.vipps.no/accesstoken/get"),
        None,
        Headers,
        Plain,
        None,
        Rules::Vipps,
    ),
    preset(
        "vipps",
        Some("https://api.vipps.no/accesstoken/get"),
        None,
        Headers,
        Plain,
        None,
        Rules::Vipps,
    ),
    preset(
        "vipps-partner-test",
        Some("https://apitest.vipps.no/miami/v1/token"),
        None,
        Basic,
        Plain,
        None,
        Rules::None,
    ),
    preset(
        "vipps-partner",
        Some("https://api.vipps.no/miami/v1/token"),
        None,
        Basic,
        Plain,
        None,
        Rules::None,
    ),
    preset(
        "vgs",
        Some("https://auth.verygoodsecurity.com/auth/realms/vgs/protocol/openid-connect/token"),
        None,
        Post,
        Rfc6749,
        None,
        Rules::None,
    ),
];

/// The names of every preset, in documentation order.
pub fn preset_names() -> impl Iterator<Item = &'static str> {
    PRESETS.iter().map(|p| p.name)
}

/// Checks the rules of `preset` (the ones it documents) on the values given.
pub(super) fn check_rules(
    preset: &Preset,
    client_id: &str,
    client_secret: Option<&SecretString>,
    headers: &[(String, SecretString)],
) -> Result<()> {
    match preset.rules {
        Rules::None => Ok(()),
        Rules::Vitesse => check_vitesse(preset.name, client_id, client_secret),
        Rules::Vipps => check_vipps(preset.name, headers),
    }
}

/// Vitesse: client id and secret 6 to 100 characters.
fn check_vitesse(
    preset: &str,
    client_id: &str,
    client_secret: Option<&SecretString>,
) -> Result<()> {
    let len_ok = |s: &str| (6..=100).contains(&s.chars().count());
    if !len_ok(client_id) {
        return Err(Error::config(format!(
            "client_id: preset {preset} requires 6 to 100 characters"
        )));
    }
    if client_secret.is_some_and(|s| !len_ok(s.expose())) {
        return Err(Error::config(format!(
            "client_secret: preset {preset} requires 6 to 100 characters"
        )));
    }
    Ok(())
}

/// Vipps standard: the subscription key, Merchant-Serial-Number if given, Vipps-System-* lengths.
fn check_vipps(preset: &str, headers: &[(String, SecretString)]) -> Result<()> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.expose())
    };
    if header("Ocp-Apim-Subscription-Key").is_none() {
        return Err(Error::config(format!(
            "headers.Ocp-Apim-Subscription-Key: required by preset {preset}"
        )));
    }
    if let Some(msn) = header("Merchant-Serial-Number") {
        if !(4..=6).contains(&msn.len()) || !msn.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::config(format!(
                "headers.Merchant-Serial-Number: preset {preset} requires 4 to 6 digits"
            )));
        }
    }
    // Every Vipps-System-* header (Name, Version, Plugin-Name, Plugin-Version and any other).
    let system = headers.iter().filter(|(n, _)| {
        n.len() > 13
            && n.get(..13)
                .is_some_and(|p| p.eq_ignore_ascii_case("vipps-system-"))
    });
    for (name, value) in system {
        if value.expose().chars().count() > 30 {
            return Err(Error::config(format!(
                "headers.{name}: preset {preset} allows at most 30 characters in Vipps-System-* headers"
            )));
        }
    }
    Ok(())
}
