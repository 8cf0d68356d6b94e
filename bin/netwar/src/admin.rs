//! The operator's commands: `auth`, `whoami`, `rates`, `doctor` and `jobs`.

use std::io::{BufRead, Write};
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Local, TimeZone, Utc};
use netwar_cli::{CommonArgs, Session, UsageError, exit};
use netwar_core::config::{Config, CredentialsFile, StoreKind};
use netwar_core::store::{Archive, Graph, JobOutcome, Queue, StoreHealth, Stores};
use netwar_core::xapi::{Client, Governor, pin};

/// The credential set a command acts on: `--credential`, or the configured default.
fn credential_name<'a>(common: &'a CommonArgs, config: &'a Config) -> &'a str {
    common
        .credential
        .as_deref()
        .unwrap_or(config.api.credential.as_str())
}

/// `auth`: the PIN flow. The app's consumer keys come from the credential set being
/// authorised or, for a new set, from the configured default set (one app, several accounts).
pub async fn auth(common: &CommonArgs) -> anyhow::Result<u8> {
    let config = common.load_config()?;
    let name = credential_name(common, &config).to_owned();
    let mut credentials = CredentialsFile::load_or_new(&config.api.credentials_file)?;
    let path = credentials.path.display().to_string();

    let app = [name.as_str(), config.api.credential.as_str()]
        .into_iter()
        .filter_map(|set| credentials.sets.get(set))
        .chain(credentials.sets.values())
        .find_map(|set| Some((set.consumer_key.clone()?, set.consumer_secret.clone()?)));
    let Some((consumer_key, consumer_secret)) = app else {
        return Err(UsageError(format!(
            "{path} has no app keys to authorise with: add consumer_key and consumer_secret \
             of your X app under [{name}], then run `netwar auth` again"
        ))
        .into());
    };

    let request = pin::request_token(&config.api.base_url, &consumer_key, &consumer_secret)
        .await
        .context("asking X for a request token")?;
    let url = pin::authorize_url(&config.api.base_url, &request)?;
    println!("Open this address in a browser, sign in as the account to authorise, and");
    println!("approve the app; X then shows a PIN.");
    println!();
    println!("    {url}");
    println!();
    print!("PIN: ");
    std::io::stdout().flush().context("writing the prompt")?;

    let mut pin_text = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut pin_text)
        .context("reading the PIN")?;
    let pin_text = pin_text.trim();
    if pin_text.is_empty() {
        return Err(UsageError("no PIN given; nothing was changed".to_owned()).into());
    }
    let access = pin::access_token(
        &config.api.base_url,
        &consumer_key,
        &consumer_secret,
        &request,
        pin_text,
    )
    .await
    .context("exchanging the PIN for an access token")?;

    let set = credentials.sets.entry(name.clone()).or_default();
    set.consumer_key = Some(consumer_key);
    set.consumer_secret = Some(consumer_secret);
    set.access_token = Some(access.token);
    set.access_token_secret = Some(access.secret);
    set.user_id = Some(access.user_id.clone());
    set.screen_name = Some(access.screen_name.clone());
    credentials.save()?;

    println!();
    println!(
        "authorised @{} (id {}) as credential `{name}` in {path} (mode 0600)",
        access.screen_name, access.user_id
    );
    Ok(exit::OK)
}

/// `whoami`: asks `/2/users/me` for each credential set with user context.
pub async fn whoami(common: &CommonArgs) -> anyhow::Result<u8> {
    let config = common.load_config()?;
    let credentials = CredentialsFile::load(&config.api.credentials_file)?;
    let names: Vec<String> = match &common.credential {
        Some(name) => {
            credentials.get(name)?;
            vec![name.clone()]
        }
        None => credentials.sets.keys().cloned().collect(),
    };
    if names.is_empty() {
        return Err(UsageError(format!(
            "{} holds no credential set: run `netwar auth`",
            credentials.path.display()
        ))
        .into());
    }

    // Requests are counted in the shared rate ledger when the queue store can be opened, so
    // `whoami` never spends budget the workers believe they still have.
    let ledger = match Stores::open(&config).await {
        Ok(stores) => Some(stores.ledger),
        Err(error) => {
            tracing::warn!(%error, "Stores not reachable; rate budgets are not shared.");
            None
        }
    };
    let governor = Arc::new(match ledger {
        Some(ledger) => Governor::with_ledger(config.api.tier, ledger),
        None => Governor::new(config.api.tier),
    });

    let mut failed = false;
    for name in names {
        let set = credentials.get(&name)?;
        if !set.has_user_context() {
            let what = if set.has_app_only() {
                "app-only (bearer token): acts as no account"
            } else {
                "incomplete: neither a bearer token nor user-context keys"
            };
            println!("{name:<16} {what}");
            continue;
        }
        let client = Client::with_governor(
            &config.api,
            &credentials,
            Some(&name),
            Arc::clone(&governor),
        )?;
        match client.me().await {
            Ok(page) => {
                let Some(user) = page.data.first() else {
                    failed = true;
                    println!("{name:<16} X answered without an account");
                    continue;
                };
                let field = |key: &str| user.get(key).and_then(|v| v.as_str()).unwrap_or("?");
                let recorded = set
                    .screen_name
                    .as_deref()
                    .filter(|recorded| !recorded.eq_ignore_ascii_case(field("username")))
                    .map(|recorded| format!(" (authorised as @{recorded}, renamed since)"))
                    .unwrap_or_default();
                println!(
                    "{name:<16} @{:<20} id {}{recorded}",
                    field("username"),
                    field("id")
                );
            }
            Err(error) => {
                failed = true;
                println!("{name:<16} failed: {error}");
            }
        }
    }
    Ok(if failed { exit::PARTIAL } else { exit::OK })
}

/// One row of `rates`.
#[derive(Debug, serde::Serialize)]
struct RateRow {
    credential: String,
    pool: String,
    endpoint: String,
    limit: u32,
    remaining: u32,
    reset: DateTime<Utc>,
    /// True when the figures come from the API's last headers.
    from_headers: bool,
}

/// `rates`: the budgets of the shared rate ledger, which every worker updates.
pub async fn rates(common: &CommonArgs, json: bool) -> anyhow::Result<u8> {
    let session = Session::open(common).await?;
    let now = Utc::now();
    let rows: Vec<RateRow> = session
        .stores
        .ledger
        .budgets()
        .await?
        .into_iter()
        .filter_map(|budget| {
            let (credential, pool, bucket) = budget.parts();
            if common
                .credential
                .as_deref()
                .is_some_and(|wanted| wanted != credential)
            {
                return None;
            }
            let reset = Utc.timestamp_opt(budget.reset as i64, 0).single()?;
            // A window that ended gives the whole limit back with the next request.
            let remaining = if reset < now {
                budget.limit
            } else {
                budget.remaining
            };
            Some(RateRow {
                credential: credential.to_owned(),
                pool: pool.to_owned(),
                endpoint: bucket.to_owned(),
                limit: budget.limit,
                remaining,
                reset,
                from_headers: budget.from_headers && reset >= now,
            })
        })
        .collect();

    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        println!("no request recorded yet: budgets appear after a worker or `whoami` ran");
        return Ok(exit::OK);
    }
    println!(
        "{:<14} {:<5} {:<28} {:>7} {:>9}  {:<25} source",
        "credential", "pool", "endpoint", "limit", "remaining", "reset"
    );
    for row in rows {
        let reset = if row.reset < now {
            "window over".to_owned()
        } else {
            let minutes = (row.reset - now).num_minutes();
            format!(
                "{} (in {minutes} min)",
                row.reset.with_timezone(&Local).format("%H:%M:%S")
            )
        };
        println!(
            "{:<14} {:<5} {:<28} {:>7} {:>9}  {:<25} {}",
            row.credential,
            row.pool,
            row.endpoint,
            row.limit,
            row.remaining,
            reset,
            if row.from_headers {
                "X headers"
            } else {
                "counted"
            }
        );
    }
    Ok(exit::OK)
}

/// Prints one check: `ok` or `FAIL` with the fix on the next line.
struct Checks {
    problems: u32,
}

impl Checks {
    fn ok(&self, what: &str) {
        println!("ok    {what}");
    }

    fn fail(&mut self, what: &str, fix: &str) {
        self.problems += 1;
        println!("FAIL  {what}");
        println!("      fix: {fix}");
    }

    fn health(&mut self, role: &str, health: netwar_core::Result<StoreHealth>, fix: &str) {
        match health {
            Ok(health) => {
                let version = health
                    .version
                    .as_deref()
                    .map(|version| format!(" {version}"))
                    .unwrap_or_default();
                if health.problems.is_empty() {
                    self.ok(&format!("{role}: {}{version}", health.store));
                }
                for problem in &health.problems {
                    self.fail(
                        &format!("{role}: {}{version}: {}", health.store, problem.problem),
                        &problem.fix,
                    );
                }
            }
            Err(error) => self.fail(&format!("{role}: {error}"), fix),
        }
    }
}

/// `doctor`: every check runs, whatever failed before it, and each problem comes with its
/// fix. Exit 1 when anything is wrong.
pub async fn doctor(common: &CommonArgs) -> anyhow::Result<u8> {
    let mut checks = Checks { problems: 0 };

    let config = match common.load_config() {
        Ok(config) => {
            checks.ok(&format!(
                "configuration: API {}, tier {:?}, stores queue={:?} archive={:?} graph={:?}",
                config.api.base_url,
                config.api.tier,
                config.store.queue,
                config.store.archive,
                config.store.graph
            ));
            config
        }
        Err(error) => {
            checks.fail(
                &format!("configuration: {error}"),
                "correct the file (every key is documented in example.conf)",
            );
            println!("{} problem(s) found", checks.problems);
            return Ok(exit::PARTIAL);
        }
    };

    check_credentials(&mut checks, common, &config);
    check_stores(&mut checks, &config).await;

    if checks.problems == 0 {
        println!("everything is in place");
        Ok(exit::OK)
    } else {
        println!("{} problem(s) found", checks.problems);
        Ok(exit::PARTIAL)
    }
}

fn check_credentials(checks: &mut Checks, common: &CommonArgs, config: &Config) {
    let path = &config.api.credentials_file;
    if !path.exists() {
        checks.fail(
            &format!("credentials: {} does not exist", path.display()),
            "run `netwar auth`, or write the file by hand (see README) with mode 0600",
        );
        return;
    }
    let credentials = match CredentialsFile::load(path) {
        Ok(credentials) => credentials,
        Err(error @ netwar_core::Error::CredentialsExposed { .. }) => {
            checks.fail(
                &format!("credentials: {error}"),
                &format!("chmod 600 {}", path.display()),
            );
            return;
        }
        Err(error) => {
            checks.fail(
                &format!("credentials: {error}"),
                "correct the file: one [name] table per set, keys as in README",
            );
            return;
        }
    };
    checks.ok(&format!(
        "credentials: {} is private, sets: {}",
        path.display(),
        credentials
            .sets
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    ));

    let name = credential_name(common, config);
    match credentials.sets.get(name) {
        None => checks.fail(
            &format!("credentials: the set `{name}` the commands use is not in the file"),
            &format!("run `netwar auth --credential {name}`, or set api.credential"),
        ),
        Some(set) if !set.has_app_only() && !set.has_user_context() => checks.fail(
            &format!("credentials: `{name}` has neither a bearer token nor user-context keys"),
            &format!("add bearer_token, or run `netwar auth --credential {name}`"),
        ),
        Some(set) => {
            let mut kinds = Vec::new();
            if set.has_app_only() {
                kinds.push("app-only");
            }
            if set.has_user_context() {
                kinds.push("user context");
            }
            checks.ok(&format!(
                "credentials: `{name}` has {}",
                kinds.join(" and ")
            ));
        }
    }
}

async fn check_stores(checks: &mut Checks, config: &Config) {
    use netwar_core::store::{elastic, neo4j, redis, sqlite};

    let embedded = || -> netwar_core::Result<Arc<sqlite::SqliteStore>> {
        Ok(Arc::new(sqlite::SqliteStore::open(&config.store.path)?))
    };
    let embedded_fix = format!(
        "make {} writable by this user, or point store.path elsewhere",
        config.store.path.display()
    );

    let queue: netwar_core::Result<Arc<dyn Queue>> = match config.store.queue {
        StoreKind::Redis => redis::connect(&config.redis).await,
        _ => embedded().map(|store| store as Arc<dyn Queue>),
    };
    let (health, fix) = match queue {
        Ok(queue) => (
            queue.describe().await,
            "check the Redis server and redis.url",
        ),
        Err(error) => (
            Err(error),
            "start the server or correct the [redis] section",
        ),
    };
    let fix = if config.store.queue == StoreKind::Redis {
        fix.to_owned()
    } else {
        embedded_fix.clone()
    };
    checks.health("queue", health, &fix);

    let archive: netwar_core::Result<Arc<dyn Archive>> = match config.store.archive {
        StoreKind::Elasticsearch => elastic::connect(&config.elasticsearch).await,
        _ => embedded().map(|store| store as Arc<dyn Archive>),
    };
    let health = match archive {
        Ok(archive) => archive.describe().await,
        Err(error) => Err(error),
    };
    let fix = if config.store.archive == StoreKind::Elasticsearch {
        "start the server or correct the [elasticsearch] section (url, credentials, ca_file)"
            .to_owned()
    } else {
        embedded_fix.clone()
    };
    checks.health("archive", health, &fix);

    let graph: netwar_core::Result<Arc<dyn Graph>> = match config.store.graph {
        StoreKind::Neo4j => neo4j::connect(&config.neo4j).await,
        _ => embedded().map(|store| store as Arc<dyn Graph>),
    };
    let health = match graph {
        Ok(graph) => graph.describe().await,
        Err(error) => Err(error),
    };
    let fix = if config.store.graph == StoreKind::Neo4j {
        "start the server or correct the [neo4j] section (uri, user, password)".to_owned()
    } else {
        embedded_fix
    };
    checks.health("graph", health, &fix);
}

/// `jobs`: the job records the workers wrote.
pub async fn jobs(common: &CommonArgs, limit: usize, json: bool) -> anyhow::Result<u8> {
    let session = Session::open(common).await?;
    let records = session.stores.queue.jobs(limit).await?;
    if json {
        for record in &records {
            println!("{}", serde_json::to_string(record)?);
        }
        return Ok(exit::OK);
    }
    if records.is_empty() {
        println!("no job recorded yet");
        return Ok(exit::OK);
    }
    for record in records {
        let ended = match record.ended_at {
            Some(ended) => format!("{:.0} s", (ended - record.started_at).as_seconds_f64()),
            None if record.outcome == JobOutcome::Running => "running or died".to_owned(),
            None => String::new(),
        };
        let counts: Vec<String> = record
            .counts
            .iter()
            .map(|(name, count)| format!("{name} {count}"))
            .collect();
        println!(
            "{}  {:<11} {:<14} {:<24} {:<12} {:<10} {}",
            record
                .started_at
                .with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S"),
            record.outcome.as_str(),
            record.tool,
            record.command,
            record.credential.as_deref().unwrap_or("-"),
            ended,
            counts.join(", ")
        );
        for error in record.errors.iter().take(5) {
            println!("      error: {error}");
        }
        if record.errors.len() > 5 {
            println!("      … and {} more errors", record.errors.len() - 5);
        }
    }
    Ok(exit::OK)
}
