//! The sink's TLS server configuration: a self-signed certificate made at start with rcgen,
//! served by rustls with the ring provider.

use std::io;
use std::sync::Arc;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

/// A configuration whose certificate names `hostname`, `localhost` and 127.0.0.1.
///
/// Clients must not verify it: it is new at every start and signed by nobody.
pub fn server_config(hostname: &str) -> io::Result<Arc<ServerConfig>> {
    let mut names = vec![hostname.to_string()];
    for extra in ["localhost", "127.0.0.1"] {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(extra)) {
            names.push(extra.to_string());
        }
    }
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| {
        io::Error::other(format!("cannot make a certificate for '{hostname}': {e}"))
    })?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(vec![certified.cert.der().clone()], key)
        })
        .map_err(|e| io::Error::other(format!("TLS configuration: {e}")))?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    #[test]
    fn makes_a_config() {
        assert!(super::server_config("mx.test").is_ok());
    }
}
