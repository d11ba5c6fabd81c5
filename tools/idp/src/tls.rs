//! HTTPS for the idp (`--tls-cert`, `--tls-key`, `--client-ca`): rustls with the ring provider,
//! TLS 1.2 and 1.3, ALPN `http/1.1` (or `http/1.0`), one certificate chain for every connection
//! (SNI is neither required nor looked at). With a client CA, clients must present a
//! certificate that chains to it (mutual TLS as in RFC 8705), unless `--client-cert-optional`
//! is given.
//!
//! The handshake runs in the connection's own thread, before the first request is read; after
//! it the connection is an ordinary [`Transport`] and everything else is unchanged.

use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

use super::http::Transport;

/// Whether (and how) clients authenticate with a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    Off,
    /// A certificate signed by the client CA is required; handshakes without one fail.
    Required,
    /// A certificate is asked for and verified if sent, but a client may send none.
    Optional,
}

/// The files named on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: String,
    pub key: String,
    pub client_ca: Option<String>,
    pub client_cert_optional: bool,
}

/// A loaded server configuration.
pub struct Tls {
    config: Arc<ServerConfig>,
    pub client_auth: ClientAuth,
}

/// A TLS connection over TCP.
pub type TlsStream = StreamOwned<ServerConnection, TcpStream>;

impl Transport for TlsStream {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }

    fn close_notify(&mut self) {
        self.conn.send_close_notify();
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

fn read_certs(flag: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{flag} {path}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{flag} {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{flag} {path}: no CERTIFICATE in the file"));
    }
    Ok(certs)
}

/// Read the certificate chain, the key and the client CA, and build the server configuration.
pub fn load(files: &TlsFiles) -> Result<Tls, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = read_certs("--tls-cert", &files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!(
            "--tls-key {}: no PRIVATE KEY (PKCS#8, RSA or EC) in the file",
            files.key
        ),
        e => format!("--tls-key {}: {e}", files.key),
    })?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let (builder, client_auth) = match &files.client_ca {
        None => (builder.with_no_client_auth(), ClientAuth::Off),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs("--client-ca", path)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("--client-ca {path}: {e}"))?;
            }
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let mode = if files.client_cert_optional {
                verifier = verifier.allow_unauthenticated();
                ClientAuth::Optional
            } else {
                ClientAuth::Required
            };
            let verifier = verifier
                .build()
                .map_err(|e| format!("--client-ca {path}: {e}"))?;
            (builder.with_client_cert_verifier(verifier), mode)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("--tls-cert {} / --tls-key {}: {e}", files.cert, files.key))?;
    // HTTP/1.x only: a client offering only h2 gets a no_application_protocol alert, one
    // offering no ALPN at all is fine.
    config.alpn_protocols = vec![b"http/1.1".to_vec(), b"http/1.0".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        client_auth,
    })
}

/// How the handshake on a new connection went.
pub enum Accepted {
    /// Ready for requests; `client_cert` says whether the client presented a (verified)
    /// certificate.
    Ready {
        stream: Box<TlsStream>,
        client_cert: bool,
    },
    /// The peer left (or sent nothing until the idle timeout) without a byte: a port probe,
    /// not a handshake.
    Silent,
    /// The handshake failed (the reason went to `on_failure`); the connection is closed.
    Failed,
}

/// Run the server side of the handshake on a freshly accepted connection (blocking, within the
/// socket's read and write timeouts). On failure, `on_failure` is called with the reason
/// before anything more reaches the peer (so a client that sees the failure sees it counted),
/// then rustls's alert, if it has one, is sent and the connection closed.
pub fn accept(tls: &Tls, mut tcp: TcpStream, on_failure: impl FnOnce(&str)) -> Accepted {
    let mut probe = [0u8; 1];
    match tcp.peek(&mut probe) {
        Ok(0) | Err(_) => return Accepted::Silent,
        Ok(_) => {}
    }
    let mut conn = match ServerConnection::new(Arc::clone(&tls.config)) {
        Ok(c) => c,
        Err(e) => {
            let reason = e.to_string();
            on_failure(&reason);
            let _ = tcp.shutdown(Shutdown::Both);
            return Accepted::Failed;
        }
    };
    if let Err(reason) = handshake(&mut conn, &mut tcp) {
        on_failure(&reason);
        while conn.wants_write() {
            match conn.write_tls(&mut tcp) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = tcp.shutdown(Shutdown::Both);
        return Accepted::Failed;
    }
    let client_cert = conn.peer_certificates().is_some_and(|c| !c.is_empty());
    Accepted::Ready {
        stream: Box::new(StreamOwned::new(conn, tcp)),
        client_cert,
    }
}

/// Drive the handshake to its end (including the server's last flight, such as TLS 1.3
/// session tickets). Unlike `complete_io`, this sends nothing after an error, so that the
/// caller can act before the alert goes out.
fn handshake(conn: &mut ServerConnection, tcp: &mut TcpStream) -> Result<(), String> {
    loop {
        while conn.wants_write() {
            match conn.write_tls(tcp) {
                Ok(0) => return Err("the connection closed during the handshake".into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("writing the handshake: {e}")),
            }
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        match conn.read_tls(tcp) {
            Ok(0) => return Err("the peer closed the connection during the handshake".into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading the handshake: {e}")),
        }
        conn.process_new_packets().map_err(|e| e.to_string())?;
    }
}

#[cfg(test)]
pub mod fixtures {
    //! Obviously fake certificates for the tests (P-256, valid 2020 to 2120), made with Python's
    //! `cryptography`. Never use them for anything else: the keys are public.

    use std::net::{SocketAddr, TcpStream};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

    /// Write `contents` to a fresh file in the temporary directory.
    pub fn file(contents: &str) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path: PathBuf =
            std::env::temp_dir().join(format!("credvault-idp-test-{}-{n}.pem", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// The server's files; with `client_ca`, clients must present a certificate.
    pub fn server_files(client_ca: bool) -> super::TlsFiles {
        super::TlsFiles {
            cert: file(SERVER_CERT),
            key: file(SERVER_KEY),
            client_ca: client_ca.then(|| file(CLIENT_CA)),
            client_cert_optional: false,
        }
    }

    /// A client that trusts [`CA`], optionally with a client certificate and key.
    pub fn client_config(identity: Option<(&str, &str)>) -> Arc<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(CA.as_bytes()).unwrap())
            .unwrap();
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
        };
        Arc::new(config)
    }

    /// Connect and handshake (by IP address, so without SNI).
    pub fn connect(
        addr: SocketAddr,
        config: Arc<ClientConfig>,
    ) -> std::io::Result<StreamOwned<ClientConnection, TcpStream>> {
        let name = ServerName::IpAddress(addr.ip().into());
        let mut conn = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
        let mut tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        Ok(StreamOwned::new(conn, tcp))
    }

    /// The CA that signed [`SERVER_CERT`] and [`ROGUE_CERT`] (clients trust it).
    pub const CA: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBhjCCASygAwIBAgIUdge1gT/epWQJd8DCY+LNPTV0dGswCgYIKoZIzj0EAwIw\n\
IDEeMBwGA1UEAwwVY3JlZHZhdWx0IGlkcCB0ZXN0IENBMCAXDTIwMDEwMTAwMDAw\n\
MFoYDzIxMjAwMTAxMDAwMDAwWjAgMR4wHAYDVQQDDBVjcmVkdmF1bHQgaWRwIHRl\n\
c3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARu6fa+odclFgfVLoLS6h1w\n\
5xzmrWzoaLPHMpNsBQLECLzgCnNNw4AIEGRMhxM7jACI/3hRjsVtNGG3WE8P6Aa9\n\
o0IwQDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQU\n\
aJXY9GeMyx6/7xhcKK+ThMkaPsAwCgYIKoZIzj0EAwIDSAAwRQIhAJUMm63bJtFg\n\
+WAjZMtMQh9bENlBNHIbtN75Qlwal5h2AiATaGocbKhzZq4z/Fxk211WjBXKjf0W\n\
4ljFt7jTsON7vQ==\n\
-----END CERTIFICATE-----\n\
";

    /// For `localhost`, `127.0.0.1` and `::1`, signed by [`CA`].
    pub const SERVER_CERT: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBvjCCAWSgAwIBAgIUW4z4jzEQ+xguhzID/DOn/AnZhyUwCgYIKoZIzj0EAwIw\n\
IDEeMBwGA1UEAwwVY3JlZHZhdWx0IGlkcCB0ZXN0IENBMCAXDTIwMDEwMTAwMDAw\n\
MFoYDzIxMjAwMTAxMDAwMDAwWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcq\n\
hkjOPQIBBggqhkjOPQMBBwNCAAQTcbmd2vLEizeEArNhtStJtXVdIkWuVi4zE3zV\n\
4kQUVj6ilu0ImRDsxw+E1WaNC8FGZCKIE5LOYenGfpEhtVMzo4GFMIGCMAwGA1Ud\n\
EwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMB8G\n\
A1UdIwQYMBaAFGiV2PRnjMsev+8YXCivk4TJGj7AMCwGA1UdEQQlMCOCCWxvY2Fs\n\
aG9zdIcEfwAAAYcQAAAAAAAAAAAAAAAAAAAAATAKBggqhkjOPQQDAgNIADBFAiAU\n\
rrRAttMAlIgpG8DeD3rhwhHsOeRatmQkhP+WObAQ6QIhAOIin0gUiZtmCq6t0neC\n\
EIpRa8xnVT9HN41TOeOM53+6\n\
-----END CERTIFICATE-----\n\
";

    /// The key of [`SERVER_CERT`] (PKCS#8, P-256).
    pub const SERVER_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJqVhvDD5FpQ6u3VW\n\
+0rIYWKPB3a9nWsN0cEDMafdZfKhRANCAAQTcbmd2vLEizeEArNhtStJtXVdIkWu\n\
Vi4zE3zV4kQUVj6ilu0ImRDsxw+E1WaNC8FGZCKIE5LOYenGfpEhtVMz\n\
-----END PRIVATE KEY-----\n\
";

    /// The CA for client certificates (`--client-ca`).
    pub const CLIENT_CA: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBlDCCATqgAwIBAgIUCytPUR9dFFtBgekV/7i8kp/jOQwwCgYIKoZIzj0EAwIw\n\
JzElMCMGA1UEAwwcY3JlZHZhdWx0IGlkcCB0ZXN0IGNsaWVudCBDQTAgFw0yMDAx\n\
MDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAwMFowJzElMCMGA1UEAwwcY3JlZHZhdWx0\n\
IGlkcCB0ZXN0IGNsaWVudCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABPgD\n\
9dm7c4ZTYojJtHnDeC5jkxUK3nT+7hrot3KL7UrKxxCQJnB/0izNh+hx1Jl2XRuO\n\
iuJjwWa++AYWa35jlGejQjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQD\n\
AgEGMB0GA1UdDgQWBBQOhE3Abd9RVzXdMi+ZT87PisV6ATAKBggqhkjOPQQDAgNI\n\
ADBFAiEAm/nr4B0jO3d4qOB3/DbDp3/kgTOm10DIdpjJjyT5IaACIGv6JC57W5HQ\n\
ykStWFNJL4D6o+kxK2eMx7DqDCcvKBtJ\n\
-----END CERTIFICATE-----\n\
";

    /// A client certificate (`CN=test-client`) signed by [`CLIENT_CA`].
    pub const CLIENT_CERT: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBmDCCAT2gAwIBAgIUFyUtJo/mEYeJ+VnbUXKeU/zrE94wCgYIKoZIzj0EAwIw\n\
JzElMCMGA1UEAwwcY3JlZHZhdWx0IGlkcCB0ZXN0IGNsaWVudCBDQTAgFw0yMDAx\n\
MDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAwMFowFjEUMBIGA1UEAwwLdGVzdC1jbGll\n\
bnQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQPUjGBcT/svB3bXoeMp5g5ZTny\n\
NPkjhAGB3OfGPclb8UR0azV3FZ9mE4+5HySPjSSbZ2BBWIfrmIdRatCkjBzio1Yw\n\
VDAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEF\n\
BQcDAjAfBgNVHSMEGDAWgBQOhE3Abd9RVzXdMi+ZT87PisV6ATAKBggqhkjOPQQD\n\
AgNJADBGAiEAzEZg/rETgA+QS1PU1py3J9uc0UDcqImRlwp6fAWFQwECIQDLkOJJ\n\
luLcQMLbK26PfsQnMTyYgb9V7THl1fzWbXfuww==\n\
-----END CERTIFICATE-----\n\
";

    /// The key of [`CLIENT_CERT`].
    pub const CLIENT_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvT/2G+3gd3jqg/0P\n\
DvIppXBlU2U2A72V+WwCxozGH4ShRANCAAQPUjGBcT/svB3bXoeMp5g5ZTnyNPkj\n\
hAGB3OfGPclb8UR0azV3FZ9mE4+5HySPjSSbZ2BBWIfrmIdRatCkjBzi\n\
-----END PRIVATE KEY-----\n\
";

    /// A client certificate signed by [`CA`], not by [`CLIENT_CA`].
    pub const ROGUE_CERT: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBkTCCATegAwIBAgIUATtg78icyvgTxXNyu0pTnjc2sKEwCgYIKoZIzj0EAwIw\n\
IDEeMBwGA1UEAwwVY3JlZHZhdWx0IGlkcCB0ZXN0IENBMCAXDTIwMDEwMTAwMDAw\n\
MFoYDzIxMjAwMTAxMDAwMDAwWjAXMRUwEwYDVQQDDAxyb2d1ZS1jbGllbnQwWTAT\n\
BgcqhkjOPQIBBggqhkjOPQMBBwNCAARrLbNJNIcpNomv5iyXPqE4Ju1QD8U+7X5k\n\
O+Ubpn/P+eQBK9fHdNRfJebWmP6CYSDHLGgOL77PI5rjAhfY7sdfo1YwVDAMBgNV\n\
HRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjAf\n\
BgNVHSMEGDAWgBRoldj0Z4zLHr/vGFwor5OEyRo+wDAKBggqhkjOPQQDAgNIADBF\n\
AiEAyjfwG5pK1vDM4W5vRxaX4tKokJ1+6qV1uyWGfgtTOqwCIGCEsjJCo6vOnGje\n\
eGJgooeHBatqfnWaxcAndI9essMI\n\
-----END CERTIFICATE-----\n\
";

    /// The key of [`ROGUE_CERT`].
    pub const ROGUE_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUxDly+Dsc1qBNIaJ\n\
Lr3SJTqeQfdlHuLhtMyRYUtFDyqhRANCAARrLbNJNIcpNomv5iyXPqE4Ju1QD8U+\n\
7X5kO+Ubpn/P+eQBK9fHdNRfJebWmP6CYSDHLGgOL77PI5rjAhfY7sdf\n\
-----END PRIVATE KEY-----\n\
";
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::thread;

    #[test]
    fn loads_and_refuses_files() {
        let tls = load(&server_files(false)).unwrap();
        assert_eq!(tls.client_auth, ClientAuth::Off);
        assert_eq!(tls.config.alpn_protocols[0], b"http/1.1");
        let tls = load(&server_files(true)).unwrap();
        assert_eq!(tls.client_auth, ClientAuth::Required);
        let files = TlsFiles {
            client_cert_optional: true,
            ..server_files(true)
        };
        assert_eq!(load(&files).unwrap().client_auth, ClientAuth::Optional);

        let err = |files: TlsFiles| load(&files).err().unwrap();
        let e = err(TlsFiles {
            cert: "/nonexistent/cert.pem".into(),
            ..server_files(false)
        });
        assert!(e.starts_with("--tls-cert /nonexistent/cert.pem: "), "{e}");
        let e = err(TlsFiles {
            cert: file(SERVER_KEY),
            ..server_files(false)
        });
        assert!(e.contains("no CERTIFICATE"), "{e}");
        let e = err(TlsFiles {
            key: file(SERVER_CERT),
            ..server_files(false)
        });
        assert!(e.contains("no PRIVATE KEY"), "{e}");
        // The key must match the certificate.
        let e = err(TlsFiles {
            key: file(CLIENT_KEY),
            ..server_files(false)
        });
        assert!(e.starts_with("--tls-cert "), "{e}");
        let e = err(TlsFiles {
            client_ca: Some(file("not a certificate\n")),
            ..server_files(false)
        });
        assert!(e.starts_with("--client-ca "), "{e}");
    }

    /// Accept one connection on a fresh listener; run `client` against it.
    fn handshake_with<F: FnOnce(SocketAddr) + Send + 'static>(
        files: TlsFiles,
        client: F,
    ) -> Accepted {
        let tls = load(&files).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let t = thread::spawn(move || client(addr));
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut accepted = accept(&tls, tcp, |_| {});
        // Finish the exchange the client may be waiting for.
        if let Accepted::Ready { stream, .. } = &mut accepted {
            let mut buf = [0u8; 4];
            if stream.read_exact(&mut buf).is_ok() {
                let _ = stream.write_all(&buf);
                let _ = stream.flush();
            }
        }
        t.join().unwrap();
        accepted
    }

    fn echo(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<[u8; 4]> {
        let mut s = connect(addr, config)?;
        s.write_all(b"ping")?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf)?;
        Ok(buf)
    }

    #[test]
    fn handshakes() {
        // Server authentication only.
        let a = handshake_with(server_files(false), |addr| {
            assert_eq!(&echo(addr, client_config(None)).unwrap(), b"ping");
        });
        assert!(matches!(
            a,
            Accepted::Ready {
                client_cert: false,
                ..
            }
        ));
        // Mutual TLS with a good client certificate.
        let a = handshake_with(server_files(true), |addr| {
            let config = client_config(Some((CLIENT_CERT, CLIENT_KEY)));
            assert_eq!(&echo(addr, config).unwrap(), b"ping");
        });
        assert!(matches!(
            a,
            Accepted::Ready {
                client_cert: true,
                ..
            }
        ));
        // Required, but none sent (in TLS 1.3 the client learns at its first read).
        let a = handshake_with(server_files(true), |addr| {
            assert!(echo(addr, client_config(None)).is_err());
        });
        assert!(matches!(a, Accepted::Failed));
        // A certificate from another CA.
        let a = handshake_with(server_files(true), |addr| {
            let config = client_config(Some((ROGUE_CERT, ROGUE_KEY)));
            assert!(echo(addr, config).is_err());
        });
        assert!(matches!(a, Accepted::Failed));
        // Optional: none sent is fine.
        let files = TlsFiles {
            client_cert_optional: true,
            ..server_files(true)
        };
        let a = handshake_with(files, |addr| {
            assert_eq!(&echo(addr, client_config(None)).unwrap(), b"ping");
        });
        assert!(matches!(
            a,
            Accepted::Ready {
                client_cert: false,
                ..
            }
        ));
        // Plain HTTP to the TLS port.
        let a = handshake_with(server_files(false), |addr| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        });
        assert!(matches!(a, Accepted::Failed));
        // A port probe: connect, then leave.
        let a = handshake_with(server_files(false), |addr| {
            drop(TcpStream::connect(addr).unwrap());
        });
        assert!(matches!(a, Accepted::Silent));
    }
}
