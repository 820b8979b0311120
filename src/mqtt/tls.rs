//! TLS to the broker (`mqtts://`): rustls on ring, trusting the system's certificate
//! authorities, or only the ones in `PF_MQTT_CA_FILE` (a private CA, as a Mosquitto TLS
//! listener usually has).

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;

/// The client configuration for every broker connection this process makes.
pub fn client_config(ca_file: Option<&Path>) -> anyhow::Result<Arc<ClientConfig>> {
    let roots = match ca_file {
        Some(path) => roots_from_file(path)?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("no TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn roots_from_file(path: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("PF_MQTT_CA_FILE: cannot read {}", path.display()))?;
    for cert in certs {
        let cert =
            cert.with_context(|| format!("PF_MQTT_CA_FILE: {} is not PEM", path.display()))?;
        roots.add(cert).with_context(|| {
            format!(
                "PF_MQTT_CA_FILE: a certificate in {} is not usable",
                path.display()
            )
        })?;
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "PF_MQTT_CA_FILE: {} holds no certificate",
        path.display()
    );
    Ok(roots)
}

fn system_roots() -> anyhow::Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _unusable) = roots.add_parsable_certificates(found.certs);
    anyhow::ensure!(
        added > 0,
        "mqtts:// needs certificate authorities: the system has none (install ca-certificates) \
         and PF_MQTT_CA_FILE is not set"
    );
    Ok(roots)
}
