//! Opening what a command works with: configuration, stores, credentials and the API client.

use netwar_core::config::{Config, CredentialsFile};
use netwar_core::pipeline::Sink;
use netwar_core::store::Stores;
use netwar_core::xapi::{Client, Governor};

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

    /// The API client for the credential the flags name (or the configured default). Its
    /// rate budgets are shared, through the queue store, with every other process using the
    /// same credential.
    pub fn client(&self, common: &CommonArgs) -> anyhow::Result<Client> {
        let credentials = CredentialsFile::load(&self.config.api.credentials_file)?;
        let governor = Governor::with_ledger(self.config.api.tier, self.stores.ledger.clone());
        Ok(Client::with_governor(
            &self.config.api,
            &credentials,
            common.credential.as_deref(),
            std::sync::Arc::new(governor),
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
