//! `private_key_jwt` client authentication (RFC 7523 section 2.2, OpenID Connect Core 9): the
//! client signs a short JWT with its private key instead of sending a shared secret.
//!
//! The key is read once when the provider is created, to check it (RSA of 2048 bits or more,
//! or EC P-256) and to learn its type; what is kept is the key's text, sealed like every other
//! secret. Each token request opens it, builds the signing key, signs one assertion and drops
//! the key again: the plaintext and ring's key object live only for that moment (zeroizing
//! buffers here; the zeroizing allocator wipes what ring frees; `Sealed::seal` and
//! `Sealed::with_plaintext` zero the vector registers AES-GCM left the key's last blocks in).
//!
//! Accepted forms: PEM `PRIVATE KEY` (PKCS#8, RSA or EC), `RSA PRIVATE KEY` (PKCS#1),
//! `EC PRIVATE KEY` (SEC1, with its public key), and a JWK (`kty` `RSA` with `n`, `e`, `d`, `p`,
//! `q`, `dp`, `dq`, `qi`, or `EC` with `crv` `P-256`, `x`, `y`, `d`). Messages name the field
//! and the rule, never key material.

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::secret::Sealed;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 section 2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid (its `exp` is `iat` plus this).
pub const LIFETIME_S: u64 = 60;

/// The JWS algorithms credvault signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// ECDSA over P-256 with SHA-256.
    Es256,
}

impl SigningAlg {
    /// The JWS name.
    pub fn name(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Ps256 => "PS256",
            SigningAlg::Es256 => "ES256",
        }
    }

    /// Reads a JWS name; `None` for any other.
    pub fn parse(name: &str) -> Option<SigningAlg> {
        match name {
            "RS256" => Some(SigningAlg::Rs256),
            "PS256" => Some(SigningAlg::Ps256),
            "ES256" => Some(SigningAlg::Es256),
            _ => None,
        }
    }

    fn key_type(self) -> KeyType {
        match self {
            SigningAlg::Rs256 | SigningAlg::Ps256 => KeyType::Rsa,
            SigningAlg::Es256 => KeyType::Ec,
        }
    }
}

/// What kind of key a `private_key` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// An RSA key (`RS256`, `PS256`).
    Rsa,
    /// An EC P-256 key (`ES256`).
    Ec,
}

/// What the assertion's `aud` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    /// The token endpoint URL the request goes to (the default; RFC 7523, OIDC Core).
    TokenEndpoint,
    /// The issuer identifier (FAPI 2.0, RFC 7523bis).
    Issuer,
    /// A value given in the configuration.
    Literal(String),
}

/// A client's signing key: its text sealed, its type and algorithm, its `kid`.
pub struct AssertionKey {
    sealed: Sealed,
    /// The signing algorithm.
    pub alg: SigningAlg,
    /// The `kid` of the assertion's header, if any.
    pub key_id: Option<String>,
    /// What the assertion's `aud` is.
    pub audience: Audience,
}

impl std::fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionKey")
            .field("key", &"[sealed]")
            .field("alg", &self.alg)
            .field("key_id", &self.key_id)
            .field("audience", &self.audience)
            .finish()
    }
}

impl AssertionKey {
    /// Checks `text` (a PEM or a JWK), picks the algorithm (`alg`, or the key type's default) and
    /// seals the text. `key_id` defaults to the JWK's `kid`.
    pub fn new(
        text: &str,
        alg: Option<SigningAlg>,
        key_id: Option<String>,
        audience: Audience,
    ) -> Result<AssertionKey> {
        let parsed = parse_key(text)?;
        let key_type = parsed.signer.key_type();
        let alg = match alg {
            None => match key_type {
                KeyType::Rsa => SigningAlg::Rs256,
                KeyType::Ec => SigningAlg::Es256,
            },
            Some(a) if a.key_type() == key_type => a,
            Some(a) => {
                return Err(Error::config(format!(
                    "signing_alg: {} needs an {} key, but private_key is an {} key",
                    a.name(),
                    type_name(a.key_type()),
                    type_name(key_type)
                )))
            }
        };
        Ok(AssertionKey {
            sealed: Sealed::seal(text.as_bytes())?,
            alg,
            key_id: key_id.or(parsed.kid),
            audience,
        })
    }

    /// A signed assertion for one token request: `iss` = `sub` = `client_id`, `aud`, a fresh
    /// random `jti`, `iat` = `nbf` = now, `exp` = now + [`LIFETIME_S`].
    pub fn sign(&self, client_id: &str, aud: &str, now_s: u64) -> Result<Zeroizing<String>> {
        let rng = SystemRandom::new();
        let mut jti = [0u8; 18];
        rng.fill(&mut jti)
            .map_err(|_| Error::internal("private_key_jwt: the random number generator failed"))?;
        let mut header = json!({"alg": self.alg.name(), "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = Value::String(kid.clone());
        }
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": aud,
            "jti": b64(&jti),
            "iat": now_s,
            "nbf": now_s,
            "exp": now_s + LIFETIME_S,
        });
        let mut out = Zeroizing::new(String::with_capacity(1024));
        out.push_str(&b64(header.to_string().as_bytes()));
        out.push('.');
        out.push_str(&b64(claims.to_string().as_bytes()));
        let signature = self.sealed.with_plaintext(|p| {
            let text = std::str::from_utf8(p)
                .map_err(|_| Error::internal("private_key_jwt: the sealed key is not text"))?;
            parse_key(text)?.signer.sign(self.alg, out.as_bytes(), &rng)
        })??;
        out.push('.');
        out.push_str(&b64(&signature));
        Ok(out)
    }
}

fn type_name(t: KeyType) -> &'static str {
    match t {
        KeyType::Rsa => "RSA",
        KeyType::Ec => "EC P-256",
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A key ready to sign (ring's objects; dropped, and wiped by the allocator, after one use).
enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl Signer {
    fn key_type(&self) -> KeyType {
        match self {
            Signer::Rsa(_) => KeyType::Rsa,
            Signer::Ec(_) => KeyType::Ec,
        }
    }

    fn sign(&self, alg: SigningAlg, input: &[u8], rng: &SystemRandom) -> Result<Vec<u8>> {
        let failed = || Error::internal("private_key_jwt: signing failed");
        match (self, alg) {
            (Signer::Rsa(k), SigningAlg::Rs256 | SigningAlg::Ps256) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    SigningAlg::Ps256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(padding, rng, input, &mut sig)
                    .map_err(|_| failed())?;
                Ok(sig)
            }
            (Signer::Ec(k), SigningAlg::Es256) => {
                Ok(k.sign(rng, input).map_err(|_| failed())?.as_ref().to_vec())
            }
            _ => Err(Error::internal(
                "private_key_jwt: the algorithm does not fit the key",
            )),
        }
    }
}

/// A parsed key and the JWK's `kid`, if it had one.
struct Parsed {
    signer: Signer,
    kid: Option<String>,
}

fn key_error(what: &str) -> Error {
    Error::config(format!("private_key: {what}"))
}

/// Reads a PEM or a JWK into a signing key.
fn parse_key(text: &str) -> Result<Parsed> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        return parse_jwk(trimmed);
    }
    if !trimmed.starts_with("-----BEGIN ") {
        return Err(key_error(
            "not a PEM private key (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY) nor a JWK (a JSON object)",
        ));
    }
    let (label, der) = pem_decode(trimmed)?;
    let signer = match label.as_str() {
        "PRIVATE KEY" => match RsaKeyPair::from_pkcs8(&der) {
            Ok(k) => rsa_checked(k)?,
            Err(rsa_err) => match EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &der,
                &SystemRandom::new(),
            ) {
                Ok(k) => Signer::Ec(k),
                Err(_) => return Err(rsa_rejected(&rsa_err.to_string())),
            },
        },
        "RSA PRIVATE KEY" => match RsaKeyPair::from_der(&der) {
            Ok(k) => rsa_checked(k)?,
            Err(e) => return Err(rsa_rejected(&e.to_string())),
        },
        "EC PRIVATE KEY" => {
            let (d, public) = sec1(&der)?;
            ec_from_parts(&d, &public)?
        }
        "ENCRYPTED PRIVATE KEY" => return Err(key_error(
            "an encrypted PEM is not supported (decrypt it into the secret store that holds it)",
        )),
        _ => {
            return Err(key_error(
                "the PEM is not a private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
            ))
        }
    };
    Ok(Parsed { signer, kid: None })
}

fn rsa_checked(k: RsaKeyPair) -> Result<Signer> {
    if k.public().modulus_len() < 256 {
        return Err(key_error("an RSA key must have at least 2048 bits"));
    }
    Ok(Signer::Rsa(k))
}

/// ring's reason for refusing a key, in our words (ring's reasons are fixed names, no key data).
fn rsa_rejected(reason: &str) -> Error {
    match reason {
        "TooSmall" => key_error("an RSA key must have at least 2048 bits"),
        "TooLarge" => key_error("an RSA key may have at most 8192 bits"),
        _ => key_error(&format!(
            "not a usable RSA (2048 bits or more) or EC P-256 private key ({reason})"
        )),
    }
}

fn ec_from_parts(d: &[u8], public: &[u8]) -> Result<Signer> {
    EcdsaKeyPair::from_private_key_and_public_key(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        d,
        public,
        &SystemRandom::new(),
    )
    .map(Signer::Ec)
    .map_err(|e| key_error(&format!("not a usable EC P-256 private key ({})", e)))
}

/// The label and the DER of the first PEM block.
fn pem_decode(text: &str) -> Result<(String, Zeroizing<Vec<u8>>)> {
    let first = text.lines().next().unwrap_or_default().trim();
    let label = first
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or_else(|| key_error("the PEM's first line is not -----BEGIN ...-----"))?;
    let end = format!("-----END {label}-----");
    let mut b64text = Zeroizing::new(String::with_capacity(text.len()));
    let mut ended = false;
    for line in text.lines().skip(1) {
        let line = line.trim();
        if line == end {
            ended = true;
            break;
        }
        if line.contains(':') {
            // RFC 1421 headers (Proc-Type, DEK-Info): an encrypted legacy PEM.
            return Err(key_error(
                "an encrypted PEM is not supported (decrypt it into the secret store that holds it)",
            ));
        }
        b64text.push_str(line);
    }
    if !ended {
        return Err(key_error("the PEM has no matching -----END line"));
    }
    let mut der = Zeroizing::new(Vec::with_capacity(b64text.len()));
    base64::engine::general_purpose::STANDARD
        .decode_vec(b64text.as_bytes(), &mut der)
        .map_err(|_| key_error("the PEM's body is not base64"))?;
    Ok((label.to_string(), der))
}

/// One DER element: tag, contents, and what follows it.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 3 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The OID of the P-256 curve (1.2.840.10045.3.1.7).
const P256_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// The private scalar and the public point of a SEC1 `ECPrivateKey` (RFC 5915).
fn sec1(der: &[u8]) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let bad = || key_error("the EC PRIVATE KEY is not valid SEC1 DER");
    let (tag, body, _) = der_next(der).ok_or_else(bad)?;
    if tag != 0x30 {
        return Err(bad());
    }
    let (tag, version, rest) = der_next(body).ok_or_else(bad)?;
    if tag != 0x02 || version != [1] {
        return Err(bad());
    }
    let (tag, d, mut rest) = der_next(rest).ok_or_else(bad)?;
    if tag != 0x04 {
        return Err(bad());
    }
    let mut public = None;
    while !rest.is_empty() {
        let (tag, inner, next) = der_next(rest).ok_or_else(bad)?;
        match tag {
            0xa0 => {
                let (t, oid, _) = der_next(inner).ok_or_else(bad)?;
                if t != 0x06 || oid != P256_OID {
                    return Err(key_error("an EC key must be on the P-256 curve"));
                }
            }
            0xa1 => {
                let (t, bits, _) = der_next(inner).ok_or_else(bad)?;
                // A BIT STRING: its first byte counts the unused bits (0 here).
                if t != 0x03 || bits.first() != Some(&0) {
                    return Err(bad());
                }
                public = Some(bits[1..].to_vec());
            }
            _ => return Err(bad()),
        }
        rest = next;
    }
    let public = public.ok_or_else(|| {
        key_error("the EC PRIVATE KEY does not include its public key (export it as PKCS#8, or with the public key)")
    })?;
    Ok((Zeroizing::new(d.to_vec()), public))
}

/// Reads a JWK (RFC 7517, 7518): an RSA or an EC P-256 private key.
fn parse_jwk(text: &str) -> Result<Parsed> {
    let jwk = crate::secret::WipedValue(
        serde_json::from_str::<Value>(text)
            .map_err(|_| key_error("a JWK must be a JSON object (it is not valid JSON)"))?,
    );
    let obj = jwk
        .0
        .as_object()
        .ok_or_else(|| key_error("a JWK must be a JSON object"))?;
    let field = |name: &str| -> Result<Zeroizing<Vec<u8>>> {
        let s = obj
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| key_error(&format!("the JWK has no \"{name}\"")))?;
        let mut out = Zeroizing::new(Vec::new());
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode_vec(s.trim_end_matches('='), &mut out)
            .map_err(|_| key_error(&format!("the JWK's \"{name}\" is not base64url")))?;
        Ok(out)
    };
    let kid = match obj.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(key_error("the JWK's \"kid\" must be a string")),
    };
    let signer = match obj.get("kty").and_then(Value::as_str) {
        Some("RSA") => {
            let components = ring::rsa::KeyPairComponents {
                public_key: ring::rsa::PublicKeyComponents {
                    n: field("n")?,
                    e: field("e")?,
                },
                d: field("d")?,
                p: field("p")?,
                q: field("q")?,
                dP: field("dp")?,
                dQ: field("dq")?,
                qInv: field("qi")?,
            };
            match RsaKeyPair::from_components(&components) {
                Ok(k) => rsa_checked(k)?,
                Err(e) => return Err(rsa_rejected(&e.to_string())),
            }
        }
        Some("EC") => {
            if obj.get("crv").and_then(Value::as_str) != Some("P-256") {
                return Err(key_error("an EC JWK must have \"crv\": \"P-256\""));
            }
            let (x, y) = (field("x")?, field("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err(key_error("an EC P-256 JWK's x and y are 32 bytes each"));
            }
            let mut public = Vec::with_capacity(65);
            public.push(4);
            public.extend_from_slice(&x);
            public.extend_from_slice(&y);
            ec_from_parts(&field("d")?, &public)?
        }
        _ => {
            return Err(key_error(
                "a JWK must have \"kty\" \"RSA\" or \"EC\" (with its private members)",
            ))
        }
    };
    Ok(Parsed { signer, kid })
}

/// The public half of a private key as a JWK (with `kid` when given): what a client registers
/// at its identity provider. Used by `credvault` tooling and the tests.
pub fn public_jwk(text: &str, kid: Option<&str>) -> Result<Value> {
    let parsed = parse_key(text)?;
    let mut jwk = match &parsed.signer {
        Signer::Rsa(k) => {
            let c: ring::rsa::PublicKeyComponents<Vec<u8>> = k.public().into();
            json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)})
        }
        Signer::Ec(k) => {
            let p = k.public_key().as_ref();
            json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])})
        }
    };
    if let Some(kid) = kid.map(str::to_string).or(parsed.kid) {
        jwk["kid"] = Value::String(kid);
    }
    Ok(jwk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec_pkcs8_pem() -> String {
        let doc = EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SystemRandom::new(),
        )
        .unwrap();
        let b = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
        format!("-----BEGIN PRIVATE KEY-----\n{b}\n-----END PRIVATE KEY-----\n")
    }

    fn verify(jwt: &str, jwk: &Value) -> Value {
        let mut parts = jwt.split('.');
        let (h, c, s) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let d = |x: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(x)
                .unwrap()
        };
        let header: Value = serde_json::from_slice(&d(h)).unwrap();
        assert_eq!(header["typ"], "JWT");
        let x = d(jwk["x"].as_str().unwrap());
        let y = d(jwk["y"].as_str().unwrap());
        let mut public = vec![4];
        public.extend(x);
        public.extend(y);
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, public)
            .verify(format!("{h}.{c}").as_bytes(), &d(s))
            .expect("the signature verifies");
        serde_json::from_slice(&d(c)).unwrap()
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "ring's RSA and ECDSA are assembly and C, which Miri cannot run"
    )]
    fn an_ec_key_signs_a_verifiable_assertion_with_a_fresh_jti() {
        let pem = ec_pkcs8_pem();
        let key =
            AssertionKey::new(&pem, None, Some("k1".into()), Audience::TokenEndpoint).unwrap();
        assert_eq!(key.alg, SigningAlg::Es256);
        let jwk = public_jwk(&pem, Some("k1")).unwrap();
        let a = key
            .sign("client-1", "https://as.example/token", 1_000)
            .unwrap();
        let b = key
            .sign("client-1", "https://as.example/token", 1_000)
            .unwrap();
        let (ca, cb) = (verify(&a, &jwk), verify(&b, &jwk));
        assert_eq!(ca["iss"], "client-1");
        assert_eq!(ca["sub"], "client-1");
        assert_eq!(ca["aud"], "https://as.example/token");
        assert_eq!(ca["iat"], 1_000);
        assert_eq!(ca["nbf"], 1_000);
        assert_eq!(ca["exp"], 1_000 + LIFETIME_S);
        assert!(ca["jti"].as_str().unwrap().len() >= 22, "128 bits or more");
        assert_ne!(ca["jti"], cb["jti"], "never reused");
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "ring's RSA and ECDSA are assembly and C, which Miri cannot run"
    )]
    fn a_wrong_algorithm_for_the_key_is_refused_by_name() {
        let e = AssertionKey::new(
            &ec_pkcs8_pem(),
            Some(SigningAlg::Rs256),
            None,
            Audience::TokenEndpoint,
        )
        .unwrap_err();
        assert!(
            e.message()
                .starts_with("signing_alg: RS256 needs an RSA key"),
            "{e}"
        );
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "ring's RSA and ECDSA are assembly and C, which Miri cannot run"
    )]
    fn key_errors_name_the_field_and_show_no_key_material() {
        let pem = ec_pkcs8_pem();
        let body: String = pem.lines().nth(1).unwrap().to_string();
        for bad in [
            "not a key at all".to_string(),
            pem.replace("PRIVATE KEY", "PUBLIC KEY"),
            pem.replace(&body[10..20], "!!!!!!!!!!"),
            format!("-----BEGIN PRIVATE KEY-----\n{}\n", &body),
            r#"{"kty":"oct","k":"c2VjcmV0c2VjcmV0"}"#.to_string(),
            r#"{"kty":"EC","crv":"P-384","x":"a","y":"b","d":"c2VjcmV0c2VjcmV0"}"#.to_string(),
        ] {
            let e = AssertionKey::new(&bad, None, None, Audience::TokenEndpoint).unwrap_err();
            let m = e.message();
            assert!(m.starts_with("private_key: "), "{m}");
            assert!(!m.contains(&body[..16]) && !m.contains("c2VjcmV0"), "{m}");
        }
    }

    #[test]
    fn sec1_needs_the_p256_curve_and_the_public_key() {
        // A SEC1 key with the P-256 OID and no public key.
        let mut inner = vec![0x02, 0x01, 0x01, 0x04, 0x20];
        inner.extend([7u8; 32]);
        inner.extend([0xa0, 0x0a, 0x06, 0x08]);
        inner.extend(P256_OID);
        let mut der = vec![0x30, inner.len() as u8];
        der.extend(inner);
        let e = sec1(&der).unwrap_err();
        assert!(
            e.message().contains("does not include its public key"),
            "{e}"
        );
    }
}
