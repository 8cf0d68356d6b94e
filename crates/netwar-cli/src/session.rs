//! Opening what a command works with: configuration, stores, credentials and the API client.

use netwar_core::config::{Config, CredentialsFile};
use netwar_core::pipeline::Sink;
use netwar_core::store::Stores;
use netwar_core::xapi::Client;

use crate::CommonArgs;

/// An opened configuration with its stores.
pub struct Session {
    pub config: Config,
    pub stores: Stores,
}

impl Session {
    /// Loads the configuration and opens the configured stores.
    pub async fn open(common: &CommonArgs) -> anyhow::Result<Session> {
        install_crypto_provider();
        let config = common.load_config()?;
        let stores = Stores::open(&config).await?;
        Ok(Session { config, stores })
    }

    /// The API client for the credential the flags name (or the configured default).
    pub fn client(&self, common: &CommonArgs) -> anyhow::Result<Client> {
        let credentials = CredentialsFile::load(&self.config.api.credentials_file)?;
        Ok(Client::new(
            &self.config.api,
            &credentials,
            common.credential.as_deref(),
        )?)
    }

    /// A sink writing on behalf of `client`'s credential.
    pub fn sink(&self, client: &Client) -> Sink {
        Sink::new(self.stores.clone(), client.credential_name())
    }
}

/// Several TLS stacks are linked in (the HTTP client's and the Neo4j driver's); rustls needs
/// to be told which cryptography provider to use before any of them opens a connection.
pub fn install_crypto_provider() {
    // An error means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
