//! The command line: `serve`, and the account, user and token commands, which work
//! on the store directly (also while a server runs; it picks the change up within a
//! second).

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::auth::identity::{self, BOOTSTRAP_ACCOUNT, BOOTSTRAP_USER, check_key, check_name};
use crate::auth::keys::{KeyHasher, generate_key};
use crate::backend::swift::{Clusters, Prefixes};
use crate::config::{Config, ConfigError, LogFormat};
use crate::server::{Gateway, StartError};
use crate::store::{ADMIN_GROUP, RESELLER_ADMIN_GROUP, Store, StoreError};

#[derive(Debug, Parser)]
#[command(
    name = "swiftgate",
    version,
    about = "Authentication, authorization and secure delivery for OpenStack Swift",
    after_help = "Start with `swiftgate serve`; it prints a `swift` command to try."
)]
pub struct Cli {
    /// Data directory (store and objects) [default: ./swiftgate-data]
    #[arg(long, global = true, env = "SWIFTGATE_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// TOML configuration file, or - to read it from stdin
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway
    Serve(ServeArgs),
    /// Create, list and delete accounts
    #[command(subcommand)]
    Account(AccountCommand),
    /// Add, list and delete users; set their keys
    #[command(subcommand)]
    User(UserCommand),
    /// Revoke tokens
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, repeatable (e.g. 127.0.0.1:8080, [::1]:8080, [::]:8080)
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,
    /// Allow plain HTTP on non-loopback addresses (e.g. behind a TLS proxy)
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// Base URL clients reach the gateway at (for X-Storage-Url)
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Log format
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account, on the local backend or on an upstream cluster
    Create {
        name: String,
        /// Storage id suffix (the id is AUTH_<suffix>) [default: random]
        #[arg(long)]
        suffix: Option<String>,
        /// Where its objects live: local, or a [[backend]] name [default: auth.default_backend]
        #[arg(long)]
        backend: Option<String>,
    },
    /// List accounts
    List,
    /// Delete an account that has no users (and, on a cluster, no containers)
    Delete { name: String },
    /// Create every account of the upstream clusters there again (after a cluster was wiped)
    Recreate,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The key (visible to other local users in the process list; prefer --key-file)
    #[arg(long, conflicts_with = "key_file")]
    pub key: Option<String>,
    /// Read the key from a file, or - for stdin
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (and its account if new); prints a generated key when none is given
    Add {
        /// ACCOUNT:USER
        user: String,
        #[command(flatten)]
        key: KeyArgs,
        /// Make the user an admin of its account (.admin)
        #[arg(long)]
        admin: bool,
        /// Make the user a reseller admin (every account; .reseller_admin)
        #[arg(long)]
        reseller_admin: bool,
        /// Put the user in a group (repeatable), e.g. the service group
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// List users, of one account or all
    List { account: Option<String> },
    /// Delete a user; its tokens stop working
    Delete {
        /// ACCOUNT:USER
        user: String,
    },
    /// Set a new key; the user's tokens stop working
    SetKey {
        /// ACCOUNT:USER
        user: String,
        #[command(flatten)]
        key: KeyArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Revoke every token of a user
    Revoke {
        /// ACCOUNT:USER
        user: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<crate::error::Error> for CliError {
    fn from(e: crate::error::Error) -> Self {
        match e {
            crate::error::Error::Store(s) => CliError::Store(s),
            other => CliError::Usage(other.to_string()),
        }
    }
}

fn load_config(cli: &Cli) -> Result<Config, CliError> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(d) = &cli.data {
        config.server.data_dir = Some(d.clone());
    }
    Ok(config)
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    let mut config = load_config(&cli)?;
    match cli.command {
        Command::Serve(args) => serve(config, args),
        Command::Account(cmd) => account(&config, cmd),
        Command::User(cmd) => user(&mut config, cmd),
        Command::Token(TokenCommand::Revoke { user }) => {
            let (account, name) = split_user(&user)?;
            let store = Store::open(&config.data_dir())?;
            let u = store.user(account, name)?;
            let n = store.revoke_tokens(u.id)?;
            println!("revoked {n} token(s) of {user}");
            Ok(())
        }
    }
}

fn split_user(s: &str) -> Result<(&str, &str), CliError> {
    s.split_once(':')
        .filter(|(a, u)| !a.is_empty() && !u.is_empty())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "{s:?} is not ACCOUNT:USER (for example test:tester)"
            ))
        })
}

fn read_key(args: &KeyArgs) -> Result<Option<String>, CliError> {
    let key = match (&args.key, &args.key_file) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(p)) if p == Path::new("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            Some(s.trim_end_matches(['\n', '\r']).to_owned())
        }
        (None, Some(p)) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", p.display())))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        ),
        (None, None) => None,
    };
    if let Some(k) = &key {
        check_key(k)?;
    }
    Ok(key)
}

/// Runs one upstream call from the command line.
fn upstream<T>(
    call: impl std::future::Future<Output = crate::error::Result<T>>,
) -> Result<T, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(call)
        .map_err(CliError::from)
}

/// Creates an account: on a cluster backend the upstream account first, then the record.
fn create_account(
    config: &Config,
    store: &Store,
    name: &str,
    suffix: Option<&str>,
    backend: &str,
) -> Result<crate::store::AccountRecord, CliError> {
    let prefix = &config.auth.reseller_prefix;
    check_name("account", name, prefix)?;
    let clusters = Clusters::from_config(&config.backends)?;
    clusters.check(backend)?;
    if store.account(name)?.is_some() {
        return Err(StoreError::AccountExists(name.to_owned()).into());
    }
    let id = identity::storage_id(prefix, suffix)?;
    let record = async { Ok(store.create_account(name, &id, backend)?) };
    let acc = upstream(clusters.provision_then(backend, &id, prefixes(config), record))?;
    println!(
        "created account {} with storage id {} on {}",
        acc.name, acc.storage_id, acc.backend
    );
    Ok(acc)
}

/// The gateway's account prefixes, as configured.
fn prefixes(config: &Config) -> Prefixes<'_> {
    Prefixes {
        reseller: &config.auth.reseller_prefix,
        service: config.auth.service_prefix.as_deref(),
    }
}

fn account(config: &Config, cmd: AccountCommand) -> Result<(), CliError> {
    let store = Store::open(&config.data_dir())?;
    match cmd {
        AccountCommand::Create {
            name,
            suffix,
            backend,
        } => {
            let backend = backend.as_deref().unwrap_or(&config.auth.default_backend);
            create_account(config, &store, &name, suffix.as_deref(), backend)?;
        }
        AccountCommand::Recreate => {
            let clusters = Clusters::from_config(&config.backends)?;
            let mut failures = Vec::new();
            let mut count = 0;
            for a in store.accounts()? {
                if clusters.get(&a.backend).is_none() {
                    continue;
                }
                count += 1;
                match upstream(clusters.provision(&a.backend, &a.storage_id, prefixes(config))) {
                    Ok(()) => println!("recreated {} ({}) on {}", a.name, a.storage_id, a.backend),
                    Err(e) => {
                        eprintln!("cannot recreate {}: {e}", a.name);
                        failures.push(a.name);
                    }
                }
            }
            println!("{count} accounts, {} failed", failures.len());
            if !failures.is_empty() {
                return Err(CliError::Usage(format!("failed: {}", failures.join(", "))));
            }
        }
        AccountCommand::List => {
            let users = store.users(None)?;
            println!(
                "{:<24} {:<40} {:<8} USERS",
                "ACCOUNT", "STORAGE ID", "BACKEND"
            );
            for a in store.accounts()? {
                let n = users.iter().filter(|(acc, _)| *acc == a.name).count();
                println!("{:<24} {:<40} {:<8} {n}", a.name, a.storage_id, a.backend);
            }
        }
        AccountCommand::Delete { name } => {
            let acc = store
                .account(&name)?
                .ok_or_else(|| StoreError::NoAccount(name.clone()))?;
            let users = store.users(Some(&name))?.len();
            if users > 0 {
                return Err(CliError::Usage(format!(
                    "account {name:?} still has {users} user(s); delete them first \
                     (swiftgate user list {name}; swiftgate user delete {name}:USER)"
                )));
            }
            let clusters = Clusters::from_config(&config.backends)?;
            upstream(clusters.deprovision(&acc.backend, &acc.storage_id, prefixes(config)))?;
            store.delete_account(&name).map_err(|e| match e {
                StoreError::AccountHasUsers { account, users } => CliError::Usage(format!(
                    "account {account:?} still has {users} user(s); delete them first \
                     (swiftgate user list {account}; swiftgate user delete {account}:USER)"
                )),
                other => other.into(),
            })?;
            println!("deleted account {name}");
        }
    }
    Ok(())
}

fn user(config: &mut Config, cmd: UserCommand) -> Result<(), CliError> {
    let store = Store::open(&config.data_dir())?;
    let hasher = KeyHasher::new(&config.auth.argon2).map_err(CliError::Usage)?;
    match cmd {
        UserCommand::Add {
            user,
            key,
            admin,
            reseller_admin,
            groups: named,
        } => {
            let (account, name) = split_user(&user)?;
            check_name("user", name, "")?;
            for g in &named {
                identity::check_group(g)?;
            }
            let given = read_key(&key)?;
            if store.account(account)?.is_none() {
                let backend = config.auth.default_backend.clone();
                create_account(config, &store, account, None, &backend)?;
            } else if store.user(account, name).is_ok() {
                return Err(CliError::Usage(format!(
                    "user {user} already exists; to change its key: swiftgate user set-key {user}"
                )));
            }
            let mut groups = Vec::new();
            if admin || reseller_admin {
                groups.push(ADMIN_GROUP.to_owned());
            }
            if reseller_admin {
                groups.push(RESELLER_ADMIN_GROUP.to_owned());
            }
            groups.extend(named);
            let k = given.clone().unwrap_or_else(generate_key);
            store.put_user(account, name, &hasher.hash_blocking(&k)?, &groups)?;
            println!("added user {user}");
            if given.is_none() {
                println!("key: {k}");
            }
        }
        UserCommand::List { account } => {
            println!("{:<40} GROUPS", "USER");
            for (acc, u) in store.users(account.as_deref())? {
                println!("{:<40} {}", format!("{acc}:{}", u.name), u.groups.join(","));
            }
        }
        UserCommand::Delete { user } => {
            let (account, name) = split_user(&user)?;
            store.delete_user(account, name)?;
            println!("deleted user {user}");
        }
        UserCommand::SetKey { user, key } => {
            let (account, name) = split_user(&user)?;
            store.user(account, name)?;
            let given = read_key(&key)?;
            let k = given.clone().unwrap_or_else(generate_key);
            store.set_key(account, name, &hasher.hash_blocking(&k)?)?;
            println!("set a new key for {user}; its tokens were revoked");
            if given.is_none() {
                println!("key: {k}");
            }
        }
    }
    Ok(())
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// The address a local client uses to reach a listener.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

fn serve(mut config: Config, args: ServeArgs) -> Result<(), CliError> {
    if !args.listen.is_empty() {
        config.server.listen = args.listen;
    }
    if args.allow_insecure_http {
        config.server.allow_insecure_http = true;
    }
    if args.public_url.is_some() {
        config.server.public_url = args.public_url;
    }
    if let Some(f) = args.log_format {
        config.log.format = f;
    }
    config.validate()?;
    init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let public_url = config.server.public_url.clone();
        let mut gateway = Gateway::start(config).await?;
        for addr in gateway.addrs() {
            eprintln!("swiftgate listening on http://{addr}");
        }
        if let Some(key) = gateway.identity().bootstrap_admin().await? {
            let base = public_url
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| format!("http://{}", reachable(gateway.addrs()[0])));
            eprintln!(
                "swiftgate: created the first user, {BOOTSTRAP_ACCOUNT}:{BOOTSTRAP_USER} (account admin and \
                 reseller admin). Its key is shown only this once; try:\n\n    \
                 swift -A {base}/auth/v1.0 -U {BOOTSTRAP_ACCOUNT}:{BOOTSTRAP_USER} -K {key} stat\n"
            );
        }
        tokio::select! {
            _ = shutdown_signal() => {
                tracing::info!("shutting down; letting in-flight requests finish");
                gateway.shutdown().await;
            }
            _ = gateway.wait() => {}
        }
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
