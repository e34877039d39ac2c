//! `rediss://`: TLS to Redis through rustls (feature `shared-redis-tls`), under the same
//! one deadline as everything else: the socket below rustls gives each system call only
//! what is left of the call's deadline, so the handshake cannot stretch it.

#[cfg(feature = "shared-redis-tls")]
mod on {
    use crate::cache::shared::resp::CallError;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
    use std::io::{self, Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;
    use std::time::Instant;

    /// What every TLS connection of a tier is made with.
    #[derive(Debug)]
    pub struct TlsSetup {
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    }

    impl TlsSetup {
        /// Trust the CA certificates of `ca_file` (PEM), else the system's roots; check
        /// the server's certificate against `sni`, else `host`.
        pub fn new(
            host: &str,
            ca_file: Option<&str>,
            sni: Option<&str>,
        ) -> Result<TlsSetup, String> {
            let mut roots = RootCertStore::empty();
            match ca_file {
                Some(f) => {
                    let certs = CertificateDer::pem_file_iter(f)
                        .map_err(|e| format!("{f}: {e}"))?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| format!("{f}: {e}"))?;
                    if certs.is_empty() {
                        return Err(format!("{f}: no certificate"));
                    }
                    for c in certs {
                        roots.add(c).map_err(|e| format!("{f}: {e}"))?;
                    }
                }
                None => {
                    let found = rustls_native_certs::load_native_certs();
                    let (added, _) = roots.add_parsable_certificates(found.certs);
                    if added == 0 {
                        return Err("no CA certificate in the system's store: give ?ca=".into());
                    }
                }
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = ServerName::try_from(sni.unwrap_or(host).to_string())
                .map_err(|e| format!("bad TLS server name: {e}"))?;
            Ok(TlsSetup {
                config: Arc::new(config),
                name,
            })
        }
    }

    /// A TCP socket whose every read and write gets only what is left of `deadline`.
    #[derive(Debug)]
    pub struct DeadlineTcp {
        pub tcp: TcpStream,
        pub deadline: Instant,
    }

    impl DeadlineTcp {
        fn arm(&self) -> io::Result<()> {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.as_micros() < 50 {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.tcp.set_read_timeout(Some(left))?;
            self.tcp.set_write_timeout(Some(left))
        }
    }

    impl Read for DeadlineTcp {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.arm()?;
            self.tcp.read(buf)
        }
    }

    impl Write for DeadlineTcp {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.arm()?;
            self.tcp.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A TLS connection over a deadline-bound socket.
    pub type TlsStream = StreamOwned<ClientConnection, DeadlineTcp>;

    /// Start TLS on `tcp` (the handshake runs with the first write, under the deadline).
    pub fn wrap(
        setup: &TlsSetup,
        tcp: TcpStream,
        deadline: Instant,
    ) -> Result<TlsStream, CallError> {
        let conn = ClientConnection::new(setup.config.clone(), setup.name.clone())
            .map_err(|e| CallError::Io(format!("TLS: {e}")))?;
        Ok(StreamOwned::new(conn, DeadlineTcp { tcp, deadline }))
    }
}

#[cfg(feature = "shared-redis-tls")]
pub use on::*;

/// Without the `shared-redis-tls` feature there is no TLS set-up to make.
#[cfg(not(feature = "shared-redis-tls"))]
#[derive(Debug)]
pub enum TlsSetup {}
