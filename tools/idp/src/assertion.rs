//! `private_key_jwt` at the local identity provider: verifies a client assertion (RFC 7523
//! section 3) against the public keys registered with the client (`jwks`), as a real server
//! does: signature (RS256, PS256, ES256), `iss` = `sub` = client id, `aud` (the token endpoint
//! URL or the issuer), `exp` / `nbf` / `iat` with a small clock skew, a bounded lifetime, and a
//! `jti` never accepted twice.

use std::collections::HashMap;

use base64::Engine as _;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::Value;

/// The `client_assertion_type` of a JWT assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const SKEW_S: u64 = 5;

/// Longest assertion lifetime accepted (`exp` − `iat`), in seconds.
pub const MAX_LIFETIME_S: u64 = 300;

/// One registered public key.
#[derive(Debug, Clone)]
pub struct PublicJwk {
    kid: Option<String>,
    key: KeyMaterial,
}

#[derive(Debug, Clone)]
enum KeyMaterial {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { point: Vec<u8> },
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| "not base64url".to_string())
}

/// Reads a JWK set (`{"keys": [...]}`) of RSA and EC P-256 public keys.
pub fn parse_jwks(v: &Value) -> Result<Vec<PublicJwk>, String> {
    let keys = v
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("jwks must be {\"keys\": [...]}")?;
    let mut out = Vec::new();
    for k in keys {
        let s = |name: &str| {
            k.get(name)
                .and_then(Value::as_str)
                .ok_or(format!("a jwks key has no \"{name}\""))
        };
        let key = match s("kty")? {
            "RSA" => KeyMaterial::Rsa {
                n: b64(s("n")?)?,
                e: b64(s("e")?)?,
            },
            "EC" if s("crv")? == "P-256" => {
                let mut point = vec![4];
                point.extend(b64(s("x")?)?);
                point.extend(b64(s("y")?)?);
                KeyMaterial::Ec { point }
            }
            _ => return Err("jwks keys must be RSA or EC P-256".into()),
        };
        let kid = k.get("kid").and_then(Value::as_str).map(str::to_string);
        out.push(PublicJwk { kid, key });
    }
    Ok(out)
}

/// The `iss` of an assertion, before it is verified: only to find the client whose keys verify it.
pub fn unverified_iss(jwt: &str) -> Option<String> {
    let claims = jwt.split('.').nth(1)?;
    let v: Value = serde_json::from_slice(&b64(claims).ok()?).ok()?;
    v.get("iss")?.as_str().map(str::to_string)
}

/// The `jti`s accepted so far, each until its assertion's `exp` (then a replay would be refused
/// as expired anyway).
#[derive(Default)]
pub struct SeenJti(HashMap<(String, String), u64>);

impl SeenJti {
    /// Records `jti` of `client`; false when it was already seen.
    fn first_use(&mut self, client: &str, jti: &str, exp: u64, now: u64) -> bool {
        self.0.retain(|_, e| *e + SKEW_S >= now);
        self.0
            .insert((client.to_string(), jti.to_string()), exp)
            .is_none()
    }
}

/// What the token endpoint needs to check an assertion.
pub struct Check<'a> {
    pub client_id: &'a str,
    pub keys: &'a [PublicJwk],
    /// Every `aud` value accepted (the token endpoint URL, the issuer).
    pub audiences: &'a [String],
    pub now: u64,
}

/// Verifies `jwt`; the reason when it is refused (never the assertion itself).
pub fn verify(jwt: &str, check: &Check, seen: &mut SeenJti) -> Result<(), String> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("client_assertion is not a JWS compact serialization".into());
    };
    let json = |part: &str| -> Result<Value, String> {
        serde_json::from_slice(&b64(part)?).map_err(|_| "a JWT part is not JSON".to_string())
    };
    let header = json(h)?;
    let claims = json(c)?;
    let sig = b64(s)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let kid = header.get("kid").and_then(Value::as_str);
    let candidates: Vec<&PublicJwk> = check
        .keys
        .iter()
        .filter(|k| kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid)
        .collect();
    if candidates.is_empty() {
        return Err("no registered key has the assertion's kid".into());
    }
    let signed = format!("{h}.{c}");
    let verified = candidates
        .iter()
        .any(|k| verify_one(alg, k, signed.as_bytes(), &sig));
    if !verified {
        return Err(format!("the assertion's {alg} signature does not verify"));
    }
    let str_claim = |n: &str| claims.get(n).and_then(Value::as_str);
    let num_claim = |n: &str| claims.get(n).and_then(Value::as_u64);
    if str_claim("iss") != Some(check.client_id) || str_claim("sub") != Some(check.client_id) {
        return Err("iss and sub must be the client id".into());
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => check.audiences.contains(a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| check.audiences.iter().any(|x| x == a)),
        _ => false,
    };
    if !aud_ok {
        return Err("aud is not this token endpoint nor its issuer".into());
    }
    let exp = num_claim("exp").ok_or("the assertion has no exp")?;
    if exp + SKEW_S < check.now {
        return Err("the assertion has expired".into());
    }
    if num_claim("nbf").is_some_and(|nbf| nbf > check.now + SKEW_S) {
        return Err("the assertion is not valid yet (nbf)".into());
    }
    let iat = num_claim("iat").ok_or("the assertion has no iat")?;
    if iat > check.now + SKEW_S || exp.saturating_sub(iat) > MAX_LIFETIME_S {
        return Err("the assertion's iat is in the future or its lifetime too long".into());
    }
    let jti = str_claim("jti").ok_or("the assertion has no jti")?;
    if !seen.first_use(check.client_id, jti, exp, check.now) {
        return Err("the assertion's jti was used before (replay)".into());
    }
    Ok(())
}

fn verify_one(alg: &str, key: &PublicJwk, signed: &[u8], sig: &[u8]) -> bool {
    match (&key.key, alg) {
        (KeyMaterial::Rsa { n, e }, "RS256" | "PS256") => {
            let params = if alg == "RS256" {
                &signature::RSA_PKCS1_2048_8192_SHA256
            } else {
                &signature::RSA_PSS_2048_8192_SHA256
            };
            signature::RsaPublicKeyComponents { n, e }
                .verify(params, signed, sig)
                .is_ok()
        }
        (KeyMaterial::Ec { point }, "ES256") => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(signed, sig)
                .is_ok()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair as _};
    use serde_json::json;

    fn enc(b: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    fn setup() -> (EcdsaKeyPair, Vec<PublicJwk>) {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).unwrap();
        let p = key.public_key().as_ref();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k",
            "x": enc(&p[1..33]), "y": enc(&p[33..65])}]});
        (key, parse_jwks(&jwks).unwrap())
    }

    fn sign(key: &EcdsaKeyPair, claims: Value) -> String {
        let h = enc(json!({"alg": "ES256", "kid": "k"}).to_string().as_bytes());
        let c = enc(claims.to_string().as_bytes());
        let sig = key
            .sign(&SystemRandom::new(), format!("{h}.{c}").as_bytes())
            .unwrap();
        format!("{h}.{c}.{}", enc(sig.as_ref()))
    }

    #[test]
    fn replayed_expired_and_misaddressed_assertions_are_refused() {
        let (key, keys) = setup();
        let aud = vec!["http://127.0.0.1:1/oauth/token".to_string()];
        let check = Check {
            client_id: "c",
            keys: &keys,
            audiences: &aud,
            now: 10_000,
        };
        let claims = |jti: &str, iat: u64, aud: &str| {
            json!({"iss": "c", "sub": "c", "aud": aud, "jti": jti, "iat": iat, "nbf": iat,
                "exp": iat + 60})
        };
        let mut seen = SeenJti::default();
        let ok = sign(&key, claims("a", 10_000, &aud[0]));
        assert_eq!(verify(&ok, &check, &mut seen), Ok(()));
        let again = verify(&ok, &check, &mut seen).unwrap_err();
        assert!(again.contains("replay"), "{again}");
        let old = sign(&key, claims("b", 9_000, &aud[0]));
        assert!(verify(&old, &check, &mut seen)
            .unwrap_err()
            .contains("expired"));
        let elsewhere = sign(&key, claims("c", 10_000, "https://other.example/token"));
        assert!(verify(&elsewhere, &check, &mut seen)
            .unwrap_err()
            .contains("aud"));
        let mut tampered = sign(&key, claims("d", 10_000, &aud[0]));
        tampered.insert(tampered.len() - 4, 'A');
        tampered.truncate(tampered.len() - 1);
        assert!(verify(&tampered, &check, &mut seen).is_err());
    }
}
