//! Redaction of the credentials a request carries from every message built of
//! identity-provider text ([`Secrets`]).

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::config::Config;
use crate::error::Error;

use super::request::{form_encode, open_string};

/// The credential values a token request carries (the client secret, as is and form-encoded;
/// the Basic credentials in both encodings; every configured header's value), to redact from
/// messages built from identity-provider text: a gateway that echoes a request header or the body
/// would otherwise put the secret into an error message.
///
/// This is the one way identity-provider text (an OAuth `error`, `error_description`, a
/// gateway's `message`, a `token_type`, a `Content-Type`, discovery metadata, a transport
/// error's description) becomes message text: [`Secrets::clean`] redacts the whole text, then
/// removes control characters, then bounds its length, so no cut can leave part of a credential
/// behind. Redaction takes out every run of the text that holds any 8-byte window of a
/// credential (so a credential cut anywhere, or echoed in part, is found too), merging runs that
/// overlap or touch. Opened on first use (only a failed request builds a message), wiped on drop.
#[derive(Default)]
pub(crate) struct Secrets<'a> {
    cfg: Option<&'a Config>,
    opened: once_cell::unsync::OnceCell<Opened>,
}

/// The opened credentials: every 8-byte window of the values of 8 bytes or more (as
/// little-endian integers, sorted), and the shorter values whole.
#[derive(Default)]
struct Opened {
    windows: Zeroizing<Vec<u64>>,
    short: Vec<Zeroizing<String>>,
}

/// How long a piece of a credential must be to be redacted wherever it appears.
const WINDOW: usize = 8;

/// What stands in a message for a redacted credential.
pub(crate) const REDACTED: &str = "[redacted]";

fn window_key(w: &[u8]) -> u64 {
    let mut b = [0u8; WINDOW];
    b.copy_from_slice(w);
    u64::from_le_bytes(b)
}

/// The OAuth `error` code as [`Error::with_oauth_error`] keeps it (visible ASCII only), before
/// its bound.
fn visible_ascii(s: &str) -> String {
    s.chars().filter(char::is_ascii_graphic).collect()
}

impl<'a> Secrets<'a> {
    /// The values `cfg`'s requests carry, opened when first needed.
    pub(crate) fn of(cfg: &'a Config) -> Secrets<'a> {
        Secrets {
            cfg: Some(cfg),
            opened: once_cell::unsync::OnceCell::new(),
        }
    }

    fn opened(&self) -> &Opened {
        self.opened.get_or_init(|| match self.cfg {
            Some(cfg) => Opened::of(cfg),
            None => Opened::default(),
        })
    }

    /// Identity-provider text as message text: redacted whole, then cleaned (no control or
    /// bidirectional characters: see [`crate::error::clean`]) and redacted again (removing a character can
    /// join two pieces), and only then cut to `max` characters.
    pub(crate) fn clean(&self, text: &str, max: usize) -> String {
        let o = self.opened();
        let whole = crate::error::clean(&o.redact(text), usize::MAX);
        crate::error::clean(&o.redact(&whole), max)
    }

    /// An OAuth `error` code for [`Error::with_oauth_error`]: reduced to visible ASCII first
    /// (as that does), then redacted, so that dropping spaces cannot join a credential.
    pub(crate) fn code(&self, code: &str) -> String {
        self.opened().redact(&visible_ascii(code))
    }

    /// `e` with its message and OAuth error code redacted (a second line behind
    /// [`Secrets::clean`]: the whole message, whatever built it).
    pub(crate) fn redact_error(&self, e: Error) -> Error {
        let o = self.opened();
        if o.windows.is_empty() && o.short.is_empty() {
            return e;
        }
        e.map_text(|t| o.redact(t))
    }
}

impl Opened {
    /// A value that cannot be opened (never expected) is left out.
    fn of(cfg: &Config) -> Opened {
        let mut values: Vec<Zeroizing<String>> = Vec::new();
        if let Ok(secret) = cfg.secret().and_then(open_string) {
            // The Basic credentials in both encodings (whatever the auth method: an echo of
            // either is the secret), and the form-encoded secret (the body of client_secret_post).
            let mut plain = Zeroizing::new(Vec::new());
            plain.extend_from_slice(cfg.client_id.as_bytes());
            plain.push(b':');
            plain.extend_from_slice(secret.as_bytes());
            let mut rfc = Zeroizing::new(Vec::new());
            form_encode(&mut rfc, cfg.client_id.as_bytes());
            rfc.push(b':');
            let mut encoded = Zeroizing::new(Vec::new());
            form_encode(&mut encoded, secret.as_bytes());
            rfc.extend_from_slice(&encoded);
            for joined in [&plain, &rfc] {
                let mut b64 = Zeroizing::new(String::new());
                base64::engine::general_purpose::STANDARD.encode_string(&joined[..], &mut b64);
                values.push(b64);
            }
            if let Ok(e) = std::str::from_utf8(&encoded) {
                values.push(Zeroizing::new(e.to_string()));
            }
            values.push(secret);
        }
        for (_, value) in &cfg.headers {
            if let Ok(v) = open_string(value) {
                values.push(v);
            }
        }
        // Each value also as cleaning leaves it in a message, and as an OAuth code keeps it.
        for i in 0..values.len() {
            for variant in [
                Zeroizing::new(crate::error::clean(&values[i], usize::MAX)),
                Zeroizing::new(visible_ascii(&values[i])),
            ] {
                if *variant != *values[i] {
                    values.push(variant);
                }
            }
        }
        let mut opened = Opened::default();
        for v in values {
            if v.len() >= WINDOW {
                opened
                    .windows
                    .extend(v.as_bytes().windows(WINDOW).map(window_key));
            } else if !v.is_empty() {
                opened.short.push(v);
            }
        }
        opened.windows.sort_unstable();
        opened.windows.dedup();
        opened
    }

    /// The byte ranges of `text` that hold a piece of a credential, merged where they overlap
    /// or touch, widened to whole characters.
    fn ranges(&self, text: &str) -> Vec<(usize, usize)> {
        let bytes = text.as_bytes();
        let mut found: Vec<(usize, usize)> = Vec::new();
        if !self.windows.is_empty() {
            for (i, w) in bytes.windows(WINDOW).enumerate() {
                if self.windows.binary_search(&window_key(w)).is_ok() {
                    found.push((i, i + WINDOW));
                }
            }
        }
        for v in &self.short {
            found.extend(
                text.match_indices(v.as_str())
                    .map(|(i, m)| (i, i + m.len())),
            );
        }
        found.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
        for (mut start, mut end) in found {
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            while !text.is_char_boundary(end) {
                end += 1;
            }
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }

    fn redact(&self, text: &str) -> String {
        let ranges = self.ranges(text);
        if ranges.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in ranges {
            out.push_str(&text[at..start]);
            out.push_str(REDACTED);
            at = end;
        }
        out.push_str(&text[at..]);
        // The mark and the text beside it could together spell a piece of a credential that
        // holds part of the mark itself (or the mark could be one): then nothing is kept.
        if self.ranges(&out).is_empty() {
            out
        } else {
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdefghij£KLMNOPQRSTUVWXYZ-the-secret";

    fn config() -> Config {
        let cfg = serde_json::json!({"token_url": "https://idp.example/t", "client_id": "client",
            "client_secret": SECRET, "headers": {"X-Key": "header-value-1234", "X-Version": "v2"}});
        Config::from_json(&cfg.to_string()).unwrap()
    }

    /// Whether `text` holds any 8-byte window of `value` (whole, when shorter).
    fn holds_piece(text: &str, value: &str) -> bool {
        let v = value.as_bytes();
        let n = v.len().min(WINDOW);
        v.windows(n)
            .any(|w| text.as_bytes().windows(n).any(|x| x == w))
    }

    /// Redaction runs on the whole text before any cut, and takes out any 8-byte
    /// piece of a credential wherever it stands, merging pieces that overlap or touch. (The
    /// assertions never print the texts: they hold the test's secret.)
    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn every_piece_of_a_credential_is_redacted_before_the_cut() {
        let cfg = config();
        let s = Secrets::of(&cfg);
        let basic = {
            let mut b = String::new();
            base64::engine::general_purpose::STANDARD
                .encode_string(format!("client:{SECRET}"), &mut b);
            b
        };
        let pieces = [
            SECRET.to_string(),
            SECRET[..8].to_string(),
            SECRET[5..13].to_string(),
            SECRET[SECRET.len() - 8..].to_string(),
            // A window that starts inside the two-byte character.
            SECRET[19..28].to_string(),
            format!("{}{}", &SECRET[..12], &SECRET[6..30]),
            basic[10..18].to_string(),
            "header-value-1234".to_string(),
        ];
        for (i, piece) in pieces.iter().enumerate() {
            for text in [
                piece.clone(),
                format!("error: {piece}"),
                format!("{piece} was sent"),
                format!("{}{piece}", "x ".repeat(40)),
            ] {
                for max in [8, 20, 64, 300] {
                    let out = s.clean(&text, max);
                    assert!(
                        !holds_piece(&out, SECRET) && !holds_piece(&out, &basic),
                        "piece {i}, bound {max}: a piece is left"
                    );
                    assert!(!holds_piece(&out, "header-value-1234"), "piece {i}");
                }
            }
        }
        // The case: a long secret at the start of a text cut to 64 characters.
        assert!(
            s.clean(SECRET, 64) == REDACTED,
            "the whole secret is one mark"
        );
        // Overlapping and touching pieces are one mark; the text around them stays.
        let two = format!("a {}{} b", &SECRET[..12], &SECRET[30..]);
        assert!(s.clean(&two, 300) == "a [redacted] b", "one mark for both");
        // A bidirectional control inside the echo is removed by cleaning: redacted again after.
        let split = format!("x {}\u{202E}{} y", &SECRET[..5], &SECRET[5..10]);
        assert!(
            s.clean(&split, 300) == "x [redacted] y",
            "joined piece redacted"
        );
        // An OAuth code loses its spaces: the joined secret is redacted too.
        let spaced: String = SECRET[..10].chars().flat_map(|c| [c, ' ']).collect();
        assert!(!holds_piece(&s.code(&spaced), SECRET), "code with spaces");
        // A short value is redacted whole; other text is left alone.
        assert!(s.clean("api v2 down", 300) == "api [redacted] down");
        assert!(s.clean("nothing secret here", 300) == "nothing secret here");
        // No credentials: nothing changes but the cleaning.
        let none = Secrets::default();
        assert!(none.clean("a\nb", 10) == "a b");
    }

    /// A credential that holds part of the mark: the mark beside the kept text cannot spell it.
    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn the_mark_never_completes_a_credential() {
        let cfg = serde_json::json!({"token_url": "https://idp.example/t", "client_id": "c",
            "client_secret": "zzzzzzzzzzzz-redacted]abcd"});
        let cfg = Config::from_json(&cfg.to_string()).unwrap();
        let s = Secrets::of(&cfg);
        // "zzzzzzzz" is redacted; the mark would then read "redacted]abcd".
        let out = s.clean("zzzzzzzzabcd", 300);
        assert!(!holds_piece(&out, "zzzzzzzzzzzz-redacted]abcd"));
        assert!(out.is_empty());
    }

    /// The rule (redaction before any cut), kept by construction: in the modules that read
    /// identity-provider answers, text becomes message text only through `Secrets::clean`
    /// (redact whole, clean, then cut). A direct call of `error::clean` anywhere else in them
    /// fails here.
    #[test]
    fn identity_provider_text_is_cleaned_only_through_secrets() {
        let call = concat!("clean", "(");
        for (file, src) in [
            ("endpoint/mod.rs", include_str!("mod.rs")),
            ("endpoint/client.rs", include_str!("client.rs")),
            ("endpoint/request.rs", include_str!("request.rs")),
            ("endpoint/response.rs", include_str!("response.rs")),
            ("endpoint/token.rs", include_str!("token.rs")),
            ("endpoint/retry.rs", include_str!("retry.rs")),
            ("endpoint/redact.rs", include_str!("redact.rs")),
            ("discovery.rs", include_str!("../discovery.rs")),
        ] {
            // The code, not these tests.
            let src = match src.find(concat!("#[cfg(test)]\n", "mod tests")) {
                Some(tests) => &src[..tests],
                None => src,
            };
            // `Secrets` and the `Opened` values behind it, to the end of the code.
            let (start, end) = match file {
                "endpoint/redact.rs" => (
                    src.find(concat!("impl<'a> ", "Secrets<'a> {")).unwrap(),
                    src.len(),
                ),
                _ => (0, 0),
            };
            assert!(
                !src.contains(concat!("error::{", "clean")),
                "{file} imports clean"
            );
            for (at, _) in src.match_indices(call) {
                let before = &src[..at];
                let ok = before.ends_with("secrets.")
                    || before.ends_with("fn ")
                    || (start..end).contains(&at);
                assert!(ok, "{file}: a direct clean() at byte {at}");
            }
        }
    }
}
