//! The command line: `serve`, and the account, user and token commands, which work
//! on the store directly (also while a server runs; it picks the change up within a
//! second).

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::auth::identity::{self, BOOTSTRAP_ACCOUNT, BOOTSTRAP_USER, check_key, check_name};
use crate::auth::keys::{KeyHasher, generate_key};
use crate::backend::credentials::{AccountCredentials, Login};
use crate::backend::swift::Clusters;
use crate::config::{Config, ConfigError, LogFormat};
use crate::server::{Gateway, StartError};
use crate::store::{ADMIN_GROUP, RESELLER_ADMIN_GROUP, Store, StoreError};
use crate::swift::target::Prefixes;

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
    /// The key ring that seals tokens
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Move the embedded store to a shared one
    #[command(subcommand)]
    Store(StoreCommand),
    /// Certificates for trying swiftgate out over TLS
    #[command(subcommand)]
    Cert(CertCommand),
    /// Check a configuration without starting
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Back up the data directory while the gateway serves: the identity store (its
    /// SQLite file; a shared PostgreSQL store is backed up with pg_dump) and the embedded
    /// object store (its database, and its bodies hard-linked, or copied on another file
    /// system) into DIR, which must not exist
    Backup {
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Restore a backup into the data directory (--data), which must be empty
    Restore {
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
    /// Print the shell completions of swiftgate (e.g. `source <(swiftgate completions bash)`)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print swiftgate's man page (roff; `swiftgate man | man -l -`)
    Man,
    /// Link an account to its OAuth2 provider from a headless machine: prints the address
    /// to open in a browser elsewhere, then takes the code (or the address the browser
    /// was sent back to) on stdin
    Link {
        account: String,
        /// Where the provider sends the browser back [default: the backend's
        /// redirect_uri, else <server.public_url>/callback]
        #[arg(long, value_name = "URL")]
        redirect_uri: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration (--config) as `serve` would, without starting: every
    /// section, the listen addresses, the secret and certificate files, the policies; then
    /// print the effective configuration, every secret shown as <set> or <unset>
    Check,
}

#[derive(Debug, Clone, Args)]
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
    /// Set the upstream credentials of an account on a keystone or v1 backend (stored
    /// sealed with the credential key, never printed); they are tried before they are kept
    SetCredentials(CredentialArgs),
}

#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// The account
    pub name: String,
    /// Keystone: the user's name; v1: the upstream ACCOUNT:USER
    #[arg(long)]
    pub user: Option<String>,
    /// Keystone: the user's domain (name)
    #[arg(long, default_value = "Default")]
    pub user_domain: String,
    /// Keystone: the project to scope to (name)
    #[arg(long)]
    pub project: Option<String>,
    /// Keystone: the project's domain (name)
    #[arg(long, default_value = "Default")]
    pub project_domain: String,
    /// Keystone: log in with this application credential instead of user and project
    #[arg(long, conflicts_with_all = ["user", "project"])]
    pub application_credential_id: Option<String>,
    /// Keystone: the catalog region of the object-store endpoint [default: the backend's]
    #[arg(long)]
    pub region: Option<String>,
    /// Keystone: public, internal or admin [default: the backend's]
    #[arg(long)]
    pub interface: Option<String>,
    /// Read the password, v1 key or application credential secret from a file, or - for stdin
    #[arg(long, value_name = "FILE")]
    pub secret_file: PathBuf,
    /// Keep the credentials without trying them upstream first
    #[arg(long)]
    pub no_check: bool,
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
    /// Keystone application credentials of a user
    #[command(subcommand)]
    AppCredential(AppCredentialCommand),
    /// EC2-style S3 credentials of a user (for a Swift cluster's s3api + s3token)
    #[command(subcommand)]
    Ec2Credential(Ec2CredentialCommand),
}

#[derive(Debug, Subcommand)]
pub enum Ec2CredentialCommand {
    /// Make one for the user's account; prints its access key and secret
    Create {
        /// ACCOUNT:USER
        user: String,
    },
    /// List a user's EC2 credentials (access keys; --secrets shows the secrets too)
    List {
        /// ACCOUNT:USER
        user: String,
        #[arg(long)]
        secrets: bool,
    },
    /// Delete one; S3 requests signed with it are refused from then on
    Delete {
        /// ACCOUNT:USER
        user: String,
        /// Its access key
        access: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCredentialCommand {
    /// Make one; prints its id, and its secret when none is given (shown only this once)
    Create {
        /// ACCOUNT:USER
        user: String,
        /// Its name, unique among the user's
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// When it stops working (e.g. 2027-06-30T00:00:00Z)
        #[arg(long, value_name = "TIME")]
        expires: Option<String>,
        /// A role of the user's it gives (repeatable); all of them when none is named
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// The secret (--key, --key-file); a generated one when neither is given
        #[command(flatten)]
        secret: KeyArgs,
    },
    /// List a user's application credentials
    List {
        /// ACCOUNT:USER
        user: String,
    },
    /// Delete one; the tokens made from it stop working
    Delete {
        /// ACCOUNT:USER
        user: String,
        /// Its id
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Write a self-signed certificate authority, a server certificate it signed, and
    /// client certificates: for people trying TLS out, and for tests (not for production)
    Dev {
        /// Directory to write into (created; existing files are not overwritten)
        #[arg(long, default_value = "swiftgate-certs")]
        dir: PathBuf,
        /// DNS name of the server (repeatable) [default: localhost]
        #[arg(long = "name", value_name = "NAME")]
        names: Vec<String>,
        /// IP address of the server (repeatable) [default: 127.0.0.1 and ::1]
        #[arg(long = "ip", value_name = "IP")]
        ips: Vec<std::net::IpAddr>,
        /// A client certificate with this common name, e.g. backup:robot (repeatable)
        #[arg(long = "client", value_name = "NAME")]
        clients: Vec<String>,
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

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Rotate the token key ring: the staged key becomes the primary (which seals new
    /// tokens), the primary a secondary (which still accepts its tokens), a new key is
    /// staged, and the oldest secondaries beyond auth.token_keys are dropped with their
    /// tokens. Every gateway on the store follows within a second
    Rotate,
    /// List the ring's keys: their ids, states and ages (never the keys)
    List,
    /// Seal again under the current credential key (auth.credential_key_file) everything
    /// a previous one sealed (auth.previous_credential_key_files): accounts' upstream
    /// credentials and OAuth2 grants, the token key ring, EC2 secrets. First make the new
    /// key the credential key, list the old one as previous, and reload every gateway of
    /// the store (SIGHUP); afterwards the old key opens nothing, and can be removed
    RotateCredentialKey {
        /// The new key, to check that it is the configured auth.credential_key_file
        #[arg(long, value_name = "FILE")]
        new_key_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Salvage the data directory's databases after damage (swiftgate refuses to start on
    /// a damaged one and says so): each damaged one is kept as FILE.damaged (FILE.damaged.N
    /// when an earlier salvage kept that name) and made again from every row SQLite can
    /// still read; object rows without their body are dropped, bodies no row names are
    /// moved to objects.lost/; after the identity store is salvaged, every token issued
    /// before is void. Run it with the gateway stopped; sound databases are left as they
    /// are
    Salvage,
    /// Copy the embedded store of the data directory (accounts, users with their key
    /// hashes, sealed upstream credentials and OAuth2 grants) into an empty PostgreSQL
    /// database; every user keeps its key. The shared store gets a token key ring of its
    /// own, sealed with auth.credential_key: tokens of the embedded store do not work there
    Migrate {
        /// postgres://USER@HOST:PORT/DATABASE (the password in it, in --password-file or
        /// in SWIFTGATE_STORE_PASSWORD)
        #[arg(long, value_name = "URL")]
        to: String,
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// The database's certificate authorities (PEM)
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// Leave the accounts on the embedded object store (and their users) behind
        #[arg(long)]
        skip_local: bool,
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

/// `swiftgate store salvage`.
fn salvage(config: &Config) -> Result<(), CliError> {
    let dir = config.data_dir();
    if !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "{} is not a directory: there is nothing to salvage (--data names the data \
             directory)",
            dir.display()
        )));
    }
    let _lock = crate::store::DataDirLock::take(&dir)?;
    crate::backend::local::check_salvage(&dir).map_err(CliError::Usage)?;
    let left = |file: &str| {
        let path = dir.join(file);
        if path.exists() {
            println!("{}: sound, left as it is", path.display());
        } else {
            println!("{}: not there, nothing to salvage", path.display());
        }
    };
    match crate::store::salvage_embedded(&dir)? {
        None => left("swiftgate.db"),
        Some(s) => println!(
            "{}: damaged, kept as {}; {} rows salvaged{}, {} rows of lost accounts dropped; \
             every token issued before is void (a revocation may have been lost): clients \
             log in again",
            dir.join("swiftgate.db").display(),
            s.kept_as.display(),
            s.rows,
            cut_short(&s.cut_short),
            s.orphans
        ),
    }
    match crate::backend::local::salvage(&dir).map_err(CliError::Usage)? {
        None => left("objects.db"),
        Some(o) if o.missing => println!(
            "{}: missing or empty beside object bodies; made anew (empty), {} bodies no row \
             names moved to {}",
            dir.join("objects.db").display(),
            o.lost_bodies,
            dir.join("objects.lost").display()
        ),
        Some(o) => println!(
            "{}: damaged, kept as {}; {} rows salvaged{}, {} rows of lost containers and {} \
             without their body dropped, {} bodies no row names moved to {}",
            dir.join("objects.db").display(),
            o.salvaged.kept_as.display(),
            o.salvaged.rows,
            cut_short(&o.salvaged.cut_short),
            o.salvaged.orphans,
            o.without_body,
            o.lost_bodies,
            dir.join("objects.lost").display()
        ),
    }
    Ok(())
}

fn cut_short(tables: &[String]) -> String {
    if tables.is_empty() {
        String::new()
    } else {
        format!(" (damage cut short: {})", tables.join(", "))
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
    crate::policy::Policies::new(&config.policies, &config.denies)?;
    Ok(config)
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    let mut config = load_config(&cli)?;
    match cli.command {
        Command::Serve(args) => serve(config, args, cli.config.as_deref(), cli.data.as_deref()),
        Command::Cert(CertCommand::Dev {
            dir,
            names,
            ips,
            clients,
        }) => cert_dev(&dir, names, ips, &clients),
        Command::Store(StoreCommand::Salvage) => salvage(&config),
        Command::Config(ConfigCommand::Check) => config_check(config),
        Command::Backup { to } => backup(&config, &to),
        Command::Restore { from } => restore(&config, &from),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            use std::io::Write as _;
            // written whole, then sent on: a reader that goes away is an error, not a panic
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "swiftgate", &mut out);
            std::io::stdout().write_all(&out)?;
            Ok(())
        }
        Command::Man => {
            use clap::CommandFactory as _;
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(())
        }
        command => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(async move {
                let store = open_store(&config).await?;
                match command {
                    Command::Account(cmd) => account(&config, &store, cmd).await,
                    Command::User(cmd) => user(&mut config, &store, cmd).await,
                    Command::Link {
                        account,
                        redirect_uri,
                    } => link(&config, store, &account, redirect_uri).await,
                    Command::Keys(cmd) => keys(&config, &store, cmd).await,
                    Command::Store(StoreCommand::Migrate {
                        to,
                        password_file,
                        ca_file,
                        skip_local,
                    }) => {
                        let target = crate::config::StoreConfig {
                            url: Some(to),
                            password_file,
                            ca_file,
                            pool_size: None,
                        };
                        migrate(&config, &store, &target, skip_local).await
                    }
                    Command::Token(TokenCommand::Revoke { user }) => {
                        let (account, name) = split_user(&user)?;
                        let u = store.user(account, name).await?;
                        store.revoke_tokens(u.id).await?;
                        println!("revoked every token of {user} issued until now");
                        Ok(())
                    }
                    Command::Serve(_)
                    | Command::Cert(_)
                    | Command::Config(_)
                    | Command::Completions { .. }
                    | Command::Backup { .. }
                    | Command::Restore { .. }
                    | Command::Man
                    | Command::Store(StoreCommand::Salvage) => {
                        unreachable!("handled above")
                    }
                }
            }),
    }
}

/// The identity store's file in a data directory (or a backup).
const IDENTITY_DB: &str = "swiftgate.db";

/// `backup`: into `DIR.partial`, renamed to `DIR` once whole, so that `DIR` is a
/// complete backup or absent.
fn backup(config: &Config, to: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let data = config.data_dir();
    let invalid = |m: String| CliError::Config(ConfigError::Invalid(m));
    if !data.join("objects.db").exists() && !data.join(IDENTITY_DB).exists() {
        return Err(invalid(format!(
            "{} holds no swiftgate data",
            data.display()
        )));
    }
    if to.exists() {
        return Err(invalid(format!(
            "{} exists: a backup goes into a new directory",
            to.display()
        )));
    }
    let mut partial = to.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&partial)?;
    let shared = config.store.shared()?.is_some();
    let copied = (|| {
        if !shared {
            crate::store::copy_database(&data.join(IDENTITY_DB), &partial.join(IDENTITY_DB))?;
        }
        crate::backend::local::backup::backup(&data, &partial)
    })();
    let copied = match copied {
        Ok(c) => c,
        Err(e) => {
            // a backup that failed leaves no copy of keys and credentials behind
            let _ = std::fs::remove_dir_all(&partial);
            return Err(invalid(e));
        }
    };
    std::fs::write(
        partial.join("BACKUP"),
        format!(
            "swiftgate {} backup of {}
identity store: {}
objects: {}
bytes: {}
",
            env!("CARGO_PKG_VERSION"),
            data.display(),
            if shared {
                "shared (not in this backup)"
            } else {
                IDENTITY_DB
            },
            copied.objects,
            copied.bytes
        ),
    )?;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, to)?;
    println!(
        "backed up {} objects ({} bytes){} to {}",
        copied.objects,
        copied.bytes,
        if shared {
            "; the identity store is the shared PostgreSQL database: back it up with pg_dump"
        } else {
            " and the identity store"
        },
        to.display()
    );
    if copied.deleted_meanwhile > 0 {
        println!(
            "{} objects deleted while the backup ran are not in it",
            copied.deleted_meanwhile
        );
    }
    Ok(())
}

/// `restore`: a backup into an empty data directory, held locked meanwhile.
fn restore(config: &Config, from: &Path) -> Result<(), CliError> {
    let data = config.data_dir();
    let invalid = |m: String| CliError::Config(ConfigError::Invalid(m));
    if !from.join("BACKUP").exists() {
        return Err(invalid(format!(
            "{} is not a swiftgate backup (it has no BACKUP file)",
            from.display()
        )));
    }
    if std::fs::read_dir(&data).is_ok_and(|mut d| d.next().is_some()) {
        return Err(invalid(format!(
            "{} is not empty: a backup is restored into an empty data directory",
            data.display()
        )));
    }
    let _lock = crate::store::DataDirLock::take(&data)?;
    let identity = from.join(IDENTITY_DB);
    let is_file = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file());
    if identity.exists() && !is_file(&identity) {
        return Err(invalid(format!(
            "{} is not a regular file (a link?)",
            identity.display()
        )));
    }
    if identity.exists() {
        crate::store::copy_database(&identity, &data.join(IDENTITY_DB)).map_err(invalid)?;
    }
    let copied = match crate::backend::local::backup::restore(from, &data) {
        Ok(c) => c,
        Err(e) => {
            // nothing of a failed restore stays
            let _ = std::fs::remove_file(data.join(IDENTITY_DB));
            return Err(invalid(e));
        }
    };
    println!(
        "restored {} objects ({} bytes){} into {}",
        copied.objects,
        copied.bytes,
        if identity.exists() {
            " and the identity store"
        } else {
            ""
        },
        data.display()
    );
    Ok(())
}

/// `config check`: every check `serve` makes before it binds, then the effective
/// configuration as TOML, secrets as `<set>` or `<unset>` whichever way they were given
/// (inline, in a file, in the environment).
fn config_check(mut config: Config) -> Result<(), CliError> {
    config.validate()?;
    let addrs = config.listen_addrs()?;
    config.check_insecure_listeners(&addrs)?;
    config.tls_listen_addrs()?;
    config.admin.listen_addrs()?;
    config.store.shared()?;
    Clusters::from_config(&config)?;
    let set = |found: bool| found.then(String::new);
    config.auth.super_admin_key = set(config.super_admin_key()?.is_some());
    config.auth.credential_key = set(config.credential_key()?.is_some());
    for b in &mut config.backends {
        if b.kind == "oauth2" {
            b.client_secret = set(b.oauth().is_ok_and(|o| !o.client_secret.is_empty()));
        } else if !b.per_account() {
            b.key = set(b.key().is_ok());
        }
        for url in [&mut b.auth_url]
            .into_iter()
            .chain(b.authorize_url.as_mut())
            .chain(b.token_url.as_mut())
            .chain(b.credentials_url.as_mut())
            .chain(b.usage_url.as_mut())
            .chain(b.redirect_uri.as_mut())
            .chain(b.internal_url.as_mut())
        {
            *url = crate::config::without_password(url);
        }
    }
    let text = toml::to_string(&config)
        .map_err(|e| ConfigError::Invalid(format!("the configuration cannot be shown: {e}")))?;
    println!("{text}");
    eprintln!("swiftgate: the configuration is valid");
    Ok(())
}

/// `store migrate`: the embedded store, whole, into an empty shared one.
async fn migrate(
    config: &Config,
    source: &Store,
    target: &crate::config::StoreConfig,
    skip_local: bool,
) -> Result<(), CliError> {
    if source.is_shared() {
        return Err(CliError::Usage(
            "store migrate copies the embedded store of the data directory; run it with a \
             configuration that has no [store] url"
                .into(),
        ));
    }
    let credential_key = config.credential_key()?.ok_or_else(|| {
        CliError::Usage(
            "a shared store keeps the token key ring sealed with auth.credential_key: give \
             auth.credential_key_file (or SWIFTGATE_CREDENTIAL_KEY), the key every gateway \
             on the shared store will have"
                .into(),
        )
    })?;
    let mut snap = source.snapshot().await?;
    let local: Vec<&crate::store::AccountRecord> = snap
        .accounts
        .iter()
        .filter(|a| a.backend == crate::store::EMBEDDED_BACKEND)
        .collect();
    if !local.is_empty() && !skip_local {
        let names: Vec<&str> = local.iter().map(|a| a.name.as_str()).collect();
        return Err(CliError::Usage(format!(
            "accounts on the embedded object store live on this machine and cannot move to \
             a shared store: {}; move their objects to a cluster account first, or give \
             --skip-local to leave them (and their users) behind",
            names.join(", ")
        )));
    }
    let left: Vec<i64> = local.iter().map(|a| a.id).collect();
    let left_names: Vec<String> = local.iter().map(|a| a.name.clone()).collect();
    snap.accounts.retain(|a| !left.contains(&a.id));
    snap.users.retain(|u| !left.contains(&u.account_id));
    // a ring of its own: a token of one store must never open in the other, where the
    // same user id may name someone else (the accounts left behind keep being served here)
    snap.keys.clear();
    let shared = target
        .shared()?
        .ok_or_else(|| CliError::Usage("--to names no store".into()))?;
    let store = Store::open(Some(&shared), &config.data_dir()).await?;
    store.import(&snap).await?;
    crate::auth::ring::start(&store, Some(&credential_key)).await?;
    println!(
        "copied {} accounts and {} users to the shared store; it seals tokens with a key \
         ring of its own, so users log in there anew (with the same keys)",
        snap.accounts.len(),
        snap.users.len(),
    );
    if !left_names.is_empty() {
        println!(
            "left behind (on the embedded object store): {}",
            left_names.join(", ")
        );
    }
    Ok(())
}

async fn keys(config: &Config, store: &Store, cmd: KeysCommand) -> Result<(), CliError> {
    let credential = crate::auth::ring::CredentialKeys::of(config)?;
    let ring = match cmd {
        KeysCommand::RotateCredentialKey { new_key_file } => {
            return rotate_credential_key(store, &credential, new_key_file.as_deref()).await;
        }
        KeysCommand::Rotate => {
            let ring =
                crate::auth::ring::rotate(store, &credential, config.auth.token_keys).await?;
            println!("rotated the token key ring");
            ring
        }
        KeysCommand::List => store.snapshot().await?.keys,
    };
    let now = crate::store::now_micros() / 1_000_000;
    println!("{:<6} {:<10} {:<8} AGE", "ID", "STATE", "SEALED");
    for k in ring.iter().rev() {
        let age = humantime::format_duration(std::time::Duration::from_secs(
            now.saturating_sub(k.created_at),
        ));
        println!("{:<6} {:<10} {:<8} {age}", k.id, k.state.as_str(), k.sealed);
    }
    Ok(())
}

/// `keys rotate-credential-key`: each sealed value that only a previous key opens, sealed
/// again under the current one; a value changed meanwhile (a refreshed grant) is read
/// again and sealed anew.
async fn rotate_credential_key(
    store: &Store,
    keys: &crate::auth::ring::CredentialKeys,
    new_key_file: Option<&Path>,
) -> Result<(), CliError> {
    use crate::auth::{identity, ring, token};
    use crate::backend::credentials::Sealer;
    use crate::store::Sealed;
    let Some(current) = keys.current else {
        return Err(CliError::Usage(
            "no credential key is configured: set auth.credential_key_file to the new key".into(),
        ));
    };
    if let Some(path) = new_key_file {
        let mut given = Config::default();
        given.auth.credential_key_file = Some(path.to_path_buf());
        if given.credential_key()? != Some(current) {
            return Err(CliError::Usage(format!(
                "{} is not the configured auth.credential_key_file: first make it the credential key, list the old one in auth.previous_credential_key_files, reload every gateway of the store (SIGHUP), then run this again; nothing was changed",
                path.display()
            )));
        }
    }
    if keys.previous.is_empty() {
        return Err(CliError::Usage(
            "auth.previous_credential_key_files lists no previous key: nothing to seal again"
                .into(),
        ));
    }
    let cannot = |what: String| {
        CliError::Usage(format!(
            "{what} opens with none of the configured credential keys; nothing more was changed"
        ))
    };
    let only_current = crate::auth::ring::CredentialKeys {
        current: Some(current),
        previous: Vec::new(),
    };
    let snap = store.snapshot().await?;
    let (mut ring_keys, mut ec2, mut accounts) = (0, 0, 0);
    for k in snap.keys.iter().filter(|k| k.sealed) {
        if ring::open_ring_key(&only_current, k).is_some() {
            continue;
        }
        let key =
            ring::open_ring_key(keys, k).ok_or_else(|| cannot(format!("token key {}", k.id)))?;
        let sealed = token::seal_ring_key(&current, k.id, &key);
        if store.reseal(Sealed::RingKey(k.id), &k.key, &sealed).await? {
            ring_keys += 1;
        }
    }
    for c in snap.ec2_credentials.iter().filter(|c| c.sealed) {
        if identity::open_ec2_secret(&only_current, c).is_some() {
            continue;
        }
        let plain = identity::open_ec2_secret(keys, c)
            .ok_or_else(|| cannot(format!("the EC2 secret {}", c.access)))?;
        let sealed = identity::seal_ec2_secret(&current, &c.access, &plain);
        if store
            .reseal(Sealed::Ec2Secret(&c.access), &c.secret, &sealed)
            .await?
        {
            ec2 += 1;
        }
    }
    let opening = Sealer::with_previous(&current, &keys.previous);
    let sealing = Sealer::new(&current);
    for name in snap.accounts.iter().map(|a| a.name.clone()) {
        for _ in 0..5 {
            let Some(a) = store.account(&name).await? else {
                break;
            };
            let Some(blob) = &a.credentials else {
                break;
            };
            if sealing.open(&a.storage_id, blob).is_ok() {
                break;
            }
            let creds = opening
                .open(&a.storage_id, blob)
                .map_err(|_| cannot(format!("the upstream credentials of {name}")))?;
            let sealed = sealing.seal(&a.storage_id, &creds)?;
            if store
                .reseal(Sealed::Credentials(&name), blob, &sealed)
                .await?
            {
                accounts += 1;
                break;
            }
        }
    }
    println!(
        "sealed again under the current credential key: {accounts} accounts' upstream \
         credentials, {ring_keys} token keys, {ec2} EC2 secrets; once every gateway has run \
         with this configuration since, remove the previous keys from \
         auth.previous_credential_key_files and reload them"
    );
    Ok(())
}

/// The store the configuration names: the shared one, or the embedded one. A
/// configured credential key must be the one the store's token key ring is sealed with:
/// what the command would seal with another one (a grant, upstream credentials) no
/// gateway of the store could open.
async fn open_store(config: &Config) -> Result<std::sync::Arc<Store>, CliError> {
    let shared = config.store.shared()?;
    let store = Store::open(shared.as_ref(), &config.data_dir()).await?;
    let credential = crate::auth::ring::CredentialKeys::of(config)?;
    if credential.current.is_some() {
        let keys = store.snapshot().await?.keys;
        if let Err(e) = crate::auth::ring::Ring::open(&keys, &credential) {
            return Err(CliError::Usage(format!(
                "{e}: this is not the credential key of the store's gateways; nothing was \
                 changed"
            )));
        }
    }
    Ok(std::sync::Arc::new(store))
}

/// Writes a file that must not exist yet; keys readable by their owner only.
fn write_new(path: &Path, text: &str, private: bool) -> Result<(), CliError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .map_err(|e| CliError::Usage(format!("cannot write {}: {e}", path.display())))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn cert_dev(
    dir: &Path,
    mut names: Vec<String>,
    mut ips: Vec<std::net::IpAddr>,
    clients: &[String],
) -> Result<(), CliError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        SanType,
    };
    let failed = |e: rcgen::Error| CliError::Usage(format!("cannot make a certificate: {e}"));
    if names.is_empty() && ips.is_empty() {
        names.push("localhost".into());
        ips.extend([
            std::net::IpAddr::from([127, 0, 0, 1]),
            std::net::Ipv6Addr::LOCALHOST.into(),
        ]);
    }
    std::fs::create_dir_all(dir)?;
    let ca_key = KeyPair::generate().map_err(failed)?;
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "swiftgate development CA");
    let ca = ca_params.self_signed(&ca_key).map_err(failed)?;
    write_new(&dir.join("ca.pem"), &ca.pem(), false)?;
    write_new(&dir.join("ca.key"), &ca_key.serialize_pem(), true)?;

    let key = KeyPair::generate().map_err(failed)?;
    let mut params = CertificateParams::default();
    let common = names
        .first()
        .cloned()
        .or_else(|| ips.first().map(|i| i.to_string()))
        .unwrap_or_default();
    params.distinguished_name.push(DnType::CommonName, common);
    for n in &names {
        params
            .subject_alt_names
            .push(SanType::DnsName(n.clone().try_into().map_err(failed)?));
    }
    params
        .subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params.signed_by(&key, &ca, &ca_key).map_err(failed)?;
    write_new(&dir.join("server.pem"), &server.pem(), false)?;
    write_new(&dir.join("server.key"), &key.serialize_pem(), true)?;

    for name in clients {
        let key = KeyPair::generate().map_err(failed)?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, name.clone());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &ca, &ca_key).map_err(failed)?;
        let file = name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
        write_new(&dir.join(format!("client-{file}.pem")), &cert.pem(), false)?;
        write_new(
            &dir.join(format!("client-{file}.key")),
            &key.serialize_pem(),
            true,
        )?;
    }
    println!(
        "wrote {}: ca.pem (trust it in clients, e.g. swift --os-cacert), server.pem and \
         server.key (for [server.tls]){}",
        dir.display(),
        if clients.is_empty() {
            String::new()
        } else {
            ", and client-*.pem/.key".into()
        }
    );
    Ok(())
}

/// The code in what was pasted: the code itself, or the address the provider sent the
/// browser back to (whose `state` must be ours).
fn pasted_code(pasted: &str, state: &str) -> Result<String, CliError> {
    let pasted = pasted.trim();
    let Some((_, query)) = pasted.split_once('?') else {
        return Ok(pasted.to_owned());
    };
    let pairs = crate::swift::query::query_pairs(Some(query))
        .map_err(|_| CliError::Usage("the pasted address has an invalid query".into()))?;
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if let Some(error) = get("error") {
        return Err(CliError::Usage(format!(
            "the provider did not link the account: {} ({error})",
            get("error_description").unwrap_or("no reason given")
        )));
    }
    if get("state").is_some_and(|s| s != state) {
        return Err(CliError::Usage(
            "the pasted address belongs to another link attempt (its state differs)".into(),
        ));
    }
    get("code")
        .map(str::to_owned)
        .ok_or_else(|| CliError::Usage("the pasted address holds no code".into()))
}

async fn link(
    config: &Config,
    store: std::sync::Arc<Store>,
    account: &str,
    redirect_uri: Option<String>,
) -> Result<(), CliError> {
    let acc = store
        .account(account)
        .await?
        .ok_or_else(|| StoreError::NoAccount(account.to_owned()))?;
    let clusters = Clusters::from_config(config)?.with_store(store.clone());
    let settings = clusters.oauth(&acc.backend).ok_or_else(|| {
        CliError::Usage(format!(
            "account {account} is on backend {:?}, which is not an OAuth2 provider",
            acc.backend
        ))
    })?;
    let redirect = match (
        &redirect_uri,
        &settings.redirect_uri,
        &config.server.public_url,
    ) {
        (Some(u), _, _) | (None, Some(u), _) => u.clone(),
        (None, None, Some(public)) => format!("{}/callback", public.trim_end_matches('/')),
        (None, None, None) => {
            return Err(CliError::Usage(
                "give --redirect-uri (as registered with the provider), or set server.public_url"
                    .into(),
            ));
        }
    };
    let pkce = crate::backend::oauth::pkce();
    let state = crate::backend::oauth::nonce();
    println!(
        "Open this address in a browser and grant access:\n\n  {}\n\nThen paste the code the \
         gateway's page shows, or the whole address the browser was sent back to:",
        crate::backend::oauth::authorize_url(settings, &redirect, &state, &pkce.challenge)
    );
    let mut pasted = String::new();
    std::io::stdin().read_line(&mut pasted)?;
    let code = pasted_code(&pasted, &state)?;
    let refresh_token = clusters
        .link_grant(&acc.backend, &code, &pkce.verifier, &redirect)
        .await?;
    let grant = AccountCredentials::oauth2(refresh_token);
    store
        .set_credentials(account, &clusters.sealer()?.seal(&acc.storage_id, &grant)?)
        .await?;
    println!("linked account {account} to {}", acc.backend);
    Ok(())
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

/// A secret from a file, or from stdin for `-`; its trailing newline dropped.
fn read_secret(path: &Path) -> Result<String, CliError> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?
    };
    let secret = text.trim_end_matches(['\n', '\r']).to_owned();
    if secret.is_empty() {
        return Err(CliError::Usage(format!(
            "{} holds no secret",
            path.display()
        )));
    }
    Ok(secret)
}

/// The credentials the arguments describe, for a backend of type `kind`.
fn account_credentials(kind: &str, args: CredentialArgs) -> Result<AccountCredentials, CliError> {
    let usage = |m: &str| Err(CliError::Usage(format!("{kind} backend: {m}")));
    let secret = read_secret(&args.secret_file)?;
    let login = match (
        kind,
        args.user,
        args.project,
        args.application_credential_id,
    ) {
        ("v1", Some(user), None, None) if args.region.is_none() && args.interface.is_none() => {
            if split_user(&user).is_err() {
                return usage("--user must be the upstream ACCOUNT:USER");
            }
            Login::V1 { user, key: secret }
        }
        ("v1", ..) => return usage("give --user ACCOUNT:USER and --secret-file, nothing else"),
        ("keystone", None, None, Some(id)) => Login::ApplicationCredential { id, secret },
        ("keystone", Some(user), Some(project), None) => Login::Password {
            user,
            user_domain: args.user_domain,
            password: secret,
            project,
            project_domain: args.project_domain,
        },
        ("keystone", ..) => {
            return usage("give --user and --project, or --application-credential-id");
        }
        _ => {
            return Err(CliError::Usage(format!(
                "a {kind} backend has no per-account credentials"
            )));
        }
    };
    if let Some(i) = &args.interface
        && !matches!(i.as_str(), "public" | "internal" | "admin")
    {
        return usage("--interface must be public, internal or admin");
    }
    Ok(AccountCredentials {
        login,
        region: args.region,
        interface: args.interface,
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

/// Creates an account: on a cluster backend the upstream account first, then the record.
async fn create_account(
    config: &Config,
    store: &Store,
    name: &str,
    suffix: Option<&str>,
    backend: &str,
) -> Result<crate::store::AccountRecord, CliError> {
    let prefix = &config.auth.reseller_prefix;
    check_name("account", name, prefix)?;
    let clusters = Clusters::from_config(config)?;
    clusters.check(backend)?;
    if store.account(name).await?.is_some() {
        return Err(StoreError::AccountExists(name.to_owned()).into());
    }
    let id = identity::storage_id(prefix, suffix)?;
    let record = async { Ok(store.create_account(name, &id, backend).await?) };
    let acc = clusters
        .provision_then(backend, &id, prefixes(config), record)
        .await?;
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

async fn account(config: &Config, store: &Store, cmd: AccountCommand) -> Result<(), CliError> {
    match cmd {
        AccountCommand::Create {
            name,
            suffix,
            backend,
        } => {
            let backend = backend.as_deref().unwrap_or(&config.auth.default_backend);
            create_account(config, store, &name, suffix.as_deref(), backend).await?;
        }
        AccountCommand::Recreate => {
            let clusters = Clusters::from_config(config)?;
            let mut failures = Vec::new();
            let mut count = 0;
            for a in store.accounts().await? {
                if clusters.get(&a.backend).is_none() {
                    continue;
                }
                count += 1;
                match clusters
                    .provision(&a.backend, &a.storage_id, prefixes(config))
                    .await
                {
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
        AccountCommand::SetCredentials(args) => {
            let name = args.name.clone();
            let no_check = args.no_check;
            let mut acc = store
                .account(&name)
                .await?
                .ok_or_else(|| StoreError::NoAccount(name.clone()))?;
            let clusters = Clusters::from_config(config)?;
            let kind = clusters.kind(&acc.backend).unwrap_or("local").to_owned();
            let creds = account_credentials(&kind, args)?;
            let sealed = clusters.sealer()?.seal(&acc.storage_id, &creds)?;
            acc.credentials = Some(sealed.clone());
            if !no_check {
                let up = clusters.upstream(&acc)?.ok_or_else(|| {
                    CliError::Usage(format!("account {name} is on the local backend"))
                })?;
                let found = up.cluster.direct_credentials(false).await?;
                println!(
                    "the upstream accepts them: storage at {}",
                    found.storage_url
                );
            }
            store.set_credentials(&name, &sealed).await?;
            println!(
                "set the {} credentials of account {name} ({})",
                acc.backend,
                creds.describe()
            );
        }
        AccountCommand::List => {
            let users = store.users(None).await?;
            println!(
                "{:<24} {:<40} {:<8} USERS",
                "ACCOUNT", "STORAGE ID", "BACKEND"
            );
            for a in store.accounts().await? {
                let n = users.iter().filter(|(acc, _)| *acc == a.name).count();
                println!("{:<24} {:<40} {:<8} {n}", a.name, a.storage_id, a.backend);
            }
        }
        AccountCommand::Delete { name } => {
            let acc = store
                .account(&name)
                .await?
                .ok_or_else(|| StoreError::NoAccount(name.clone()))?;
            let users = store.users(Some(&name)).await?.len();
            if users > 0 {
                return Err(CliError::Usage(format!(
                    "account {name:?} still has {users} user(s); delete them first \
                     (swiftgate user list {name}; swiftgate user delete {name}:USER)"
                )));
            }
            let clusters = Clusters::from_config(config)?;
            clusters
                .deprovision(&acc.backend, &acc.storage_id, prefixes(config))
                .await?;
            store.delete_account(&name).await.map_err(|e| match e {
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

/// `user app-credential`: through the identity service, as the API makes them.
async fn app_credential(
    config: &Config,
    store: std::sync::Arc<Store>,
    cmd: AppCredentialCommand,
) -> Result<(), CliError> {
    let identity = std::sync::Arc::new(loaded_identity(config, store).await?);
    let owner = |user: &str| principal_of(&identity, user);
    match cmd {
        AppCredentialCommand::Create {
            user,
            name,
            description,
            expires,
            roles,
            secret,
        } => {
            let p = owner(&user)?;
            let expires_at = match expires {
                None => None,
                Some(t) => Some(crate::auth::keystone::parse_time(&t).ok_or_else(|| {
                    CliError::Usage(format!(
                        "--expires {t:?} is not a time such as 2027-06-30T00:00:00Z"
                    ))
                })?),
            };
            let given = read_key(&secret)?;
            let s = given.clone().unwrap_or_else(generate_key);
            let roles = (!roles.is_empty()).then_some(roles);
            let c = identity
                .create_app_credential(p.user_id, &name, &description, &s, roles, expires_at)
                .await?;
            println!(
                "made application credential {} of {user} (roles {})",
                c.id,
                c.roles.join(",")
            );
            if given.is_none() {
                println!("secret: {s}");
            }
        }
        AppCredentialCommand::List { user } => {
            let p = owner(&user)?;
            println!("{:<34} {:<24} {:<22} ROLES", "ID", "NAME", "EXPIRES");
            for c in identity.app_credentials_of(p.user_id) {
                let expires = c.expires_at.map_or_else(
                    || "never".to_owned(),
                    |t| {
                        humantime::format_rfc3339_seconds(
                            std::time::UNIX_EPOCH + std::time::Duration::from_secs(t),
                        )
                        .to_string()
                    },
                );
                println!(
                    "{:<34} {:<24} {:<22} {}",
                    c.id,
                    c.name,
                    expires,
                    c.roles.join(",")
                );
            }
        }
        AppCredentialCommand::Delete { user, id } => {
            let p = owner(&user)?;
            if !identity.delete_app_credential(p.user_id, &id).await? {
                return Err(CliError::Usage(format!(
                    "{user} has no application credential {id}"
                )));
            }
            println!("deleted application credential {id} of {user}");
        }
    }
    Ok(())
}

/// The identity service on the store, loaded, for the credential commands.
async fn loaded_identity(
    config: &Config,
    store: std::sync::Arc<Store>,
) -> Result<identity::Identity, CliError> {
    let identity = identity::Identity::open(store, config).map_err(CliError::Usage)?;
    identity.reload().await?;
    Ok(identity)
}

/// The user `ACCOUNT:USER` names.
fn principal_of(
    identity: &identity::Identity,
    user: &str,
) -> Result<identity::Principal, CliError> {
    let (account, name) = split_user(user)?;
    identity
        .principal_of(account, name)
        .ok_or_else(|| CliError::Usage(format!("no user {user}")))
}

/// `user ec2-credential`: through the identity service, as the API makes them.
async fn ec2_credential(
    config: &Config,
    store: std::sync::Arc<Store>,
    cmd: Ec2CredentialCommand,
) -> Result<(), CliError> {
    let identity = loaded_identity(config, store).await?;
    let owner = |user: &str| principal_of(&identity, user);
    match cmd {
        Ec2CredentialCommand::Create { user } => {
            let p = owner(&user)?;
            let (c, secret) = identity.create_ec2_credential(p.user_id).await?;
            println!("made EC2 credential of {user}");
            println!("access: {}", c.access);
            println!("secret: {secret}");
        }
        Ec2CredentialCommand::List { user, secrets } => {
            let p = owner(&user)?;
            if secrets {
                println!("{:<34} {:<34} CREATED", "ACCESS", "SECRET");
            } else {
                println!("{:<34} CREATED", "ACCESS");
            }
            for c in identity.ec2_credentials_of(p.user_id) {
                let created = humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(c.created_at),
                );
                if secrets {
                    println!(
                        "{:<34} {:<34} {created}",
                        c.access,
                        identity.ec2_secret(&c)?
                    );
                } else {
                    println!("{:<34} {created}", c.access);
                }
            }
        }
        Ec2CredentialCommand::Delete { user, access } => {
            let p = owner(&user)?;
            if !identity.delete_ec2_credential(p.user_id, &access).await? {
                return Err(CliError::Usage(format!(
                    "{user} has no EC2 credential {access}"
                )));
            }
            println!("deleted EC2 credential {access} of {user}");
        }
    }
    Ok(())
}

async fn user(
    config: &mut Config,
    store: &std::sync::Arc<Store>,
    cmd: UserCommand,
) -> Result<(), CliError> {
    let hasher = KeyHasher::new(&config.auth.argon2).map_err(CliError::Usage)?;
    match cmd {
        UserCommand::AppCredential(cmd) => return app_credential(config, store.clone(), cmd).await,
        UserCommand::Ec2Credential(cmd) => return ec2_credential(config, store.clone(), cmd).await,
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
            if store.account(account).await?.is_none() {
                let backend = config.auth.default_backend.clone();
                create_account(config, store, account, None, &backend).await?;
            } else if store.user(account, name).await.is_ok() {
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
            store
                .put_user(account, name, &hasher.hash_blocking(&k)?, &groups)
                .await?;
            println!("added user {user}");
            if given.is_none() {
                println!("key: {k}");
            }
        }
        UserCommand::List { account } => {
            println!("{:<40} GROUPS", "USER");
            for (acc, u) in store.users(account.as_deref()).await? {
                println!("{:<40} {}", format!("{acc}:{}", u.name), u.groups.join(","));
            }
        }
        UserCommand::Delete { user } => {
            let (account, name) = split_user(&user)?;
            store.delete_user(account, name).await?;
            println!("deleted user {user}");
        }
        UserCommand::SetKey { user, key } => {
            let (account, name) = split_user(&user)?;
            store.user(account, name).await?;
            let given = read_key(&key)?;
            let k = given.clone().unwrap_or_else(generate_key);
            store
                .set_key(account, name, &hasher.hash_blocking(&k)?)
                .await?;
            println!("set a new key for {user}; its tokens were revoked");
            if given.is_none() {
                println!("key: {k}");
            }
        }
    }
    Ok(())
}

/// Sets the log level again (`log.level` after a reload); what is wrong with it if it
/// cannot be.
type SetLevel = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The log filter of `level`, unless `RUST_LOG` gives one.
fn log_filter(level: &str) -> tracing_subscriber::EnvFilter {
    // the database driver logs statements with their parameters (key hashes, sealed
    // credentials) below info: never written
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    if let Ok(quiet) = "tokio_postgres=info".parse() {
        filter = filter.add_directive(quiet);
    }
    filter
}

fn init_logging(config: &Config) -> SetLevel {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter(&config.log.level))
        .with_writer(std::io::stderr);
    macro_rules! install {
        ($builder:expr) => {{
            let builder = $builder.with_filter_reloading();
            let handle = builder.reload_handle();
            builder.init();
            Box::new(move |level: &str| {
                if std::env::var_os("RUST_LOG").is_some() {
                    return Err("RUST_LOG is set, and gives the log level".into());
                }
                tracing_subscriber::EnvFilter::try_new(level)
                    .map_err(|e| format!("log.level {level:?}: {e}"))?;
                handle.reload(log_filter(level)).map_err(|e| e.to_string())
            })
        }};
    }
    match config.log.format {
        LogFormat::Json => install!(builder.json()),
        LogFormat::Text => install!(builder),
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

/// What `serve`'s options change in a configuration.
fn with_serve_args(mut config: Config, args: &ServeArgs) -> Config {
    if !args.listen.is_empty() {
        config.server.listen.clone_from(&args.listen);
    }
    if args.allow_insecure_http {
        config.server.allow_insecure_http = true;
    }
    if args.public_url.is_some() {
        config.server.public_url.clone_from(&args.public_url);
    }
    if let Some(f) = args.log_format {
        config.log.format = f;
    }
    config
}

/// SIGHUP: the configuration file read again, and what can change taken at once; a file
/// that does not load changes nothing, and the log says why.
async fn reload_on_hangup(gateway: &swiftgate_reload::Handle<'_>, set_level: &SetLevel) {
    let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        return std::future::pending().await;
    };
    while hangup.recv().await.is_some() {
        notify(&[sd_notify::NotifyState::Reloading]);
        gateway.reload(set_level).await;
        notify(&[sd_notify::NotifyState::Ready]);
    }
}

/// Tells systemd how the service stands (`Type=notify`), when it runs under it
/// (`NOTIFY_SOCKET`).
fn notify(state: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(e) = sd_notify::notify(state)
    {
        tracing::warn!(error = %e, "cannot tell systemd how the service stands");
    }
}

mod swiftgate_reload {
    use super::{ServeArgs, SetLevel, with_serve_args};
    use crate::config::Config;
    use crate::server::Reloader;
    use std::path::Path;

    /// What a reload needs: the running gateway and where its configuration came from.
    pub(super) struct Handle<'a> {
        pub gateway: Reloader,
        pub path: Option<&'a Path>,
        pub data: Option<&'a Path>,
        pub args: &'a ServeArgs,
    }

    impl Handle<'_> {
        pub(super) async fn reload(&self, set_level: &SetLevel) {
            let path = match self.path {
                Some(p) if p != Path::new("-") => p,
                Some(_) => {
                    tracing::warn!(
                        "SIGHUP: the configuration came from stdin; nothing to read again"
                    );
                    return;
                }
                None => {
                    tracing::warn!(
                        "SIGHUP: no configuration file (--config); nothing to read again"
                    );
                    return;
                }
            };
            let loaded = Config::load(path).map(|mut c| {
                if let Some(d) = self.data {
                    c.server.data_dir = Some(d.to_path_buf());
                }
                with_serve_args(c, self.args)
            });
            let reloaded = match loaded {
                Ok(c) => self.gateway.reload(&c).await.map(|r| (r, c)),
                Err(e) => Err(e),
            };
            match reloaded {
                Err(e) => tracing::warn!(
                    file = %path.display(),
                    error = %e,
                    "SIGHUP: the configuration did not load; the running one stays"
                ),
                Ok((r, c)) => {
                    if r.applied.iter().any(|k| k == "log.level")
                        && let Err(e) = set_level(&c.log.level)
                    {
                        tracing::warn!(error = %e, "SIGHUP: the log level stays");
                    }
                    tracing::info!(
                        file = %path.display(),
                        applied = ?r.applied,
                        needs_restart = ?r.restart,
                        "SIGHUP: configuration read again"
                    );
                    if !r.restart.is_empty() {
                        tracing::warn!(
                            keys = ?r.restart,
                            "SIGHUP: these settings changed and take effect only after a restart"
                        );
                    }
                }
            }
        }
    }
}

fn serve(
    config: Config,
    args: ServeArgs,
    path: Option<&Path>,
    data: Option<&Path>,
) -> Result<(), CliError> {
    let config = with_serve_args(config, &args);
    config.validate()?;
    let set_level = init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let public_url = config.server.public_url.clone();
        let mut gateway = Gateway::start(config).await?;
        for addr in gateway.admin_addrs() {
            eprintln!(
                "swiftgate admin listener on http://{addr} (/metrics, /readyz, /healthcheck)"
            );
        }
        for url in gateway.urls() {
            eprintln!("swiftgate listening on {url}");
        }
        if let Some(key) = gateway.identity().bootstrap_admin().await? {
            let scheme = if gateway.urls()[0].starts_with("https:") {
                "https"
            } else {
                "http"
            };
            let base = public_url
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| format!("{scheme}://{}", reachable(gateway.addrs()[0])));
            eprintln!(
                "swiftgate: created the first user, {BOOTSTRAP_ACCOUNT}:{BOOTSTRAP_USER} (account admin and \
                 reseller admin). Its key is shown only this once; try:\n\n    \
                 swift -A {base}/auth/v1.0 -U {BOOTSTRAP_ACCOUNT}:{BOOTSTRAP_USER} -K {key} stat\n"
            );
        }
        notify(&[
            sd_notify::NotifyState::MainPid(std::process::id()),
            sd_notify::NotifyState::Ready,
        ]);
        let stopped = {
            let reload = swiftgate_reload::Handle {
                gateway: gateway.reloader(),
                path,
                data,
                args: &args,
            };
            tokio::select! {
                _ = shutdown_signal() => true,
                () = reload_on_hangup(&reload, &set_level) => false,
                _ = gateway.wait() => false,
            }
        };
        if stopped {
            notify(&[sd_notify::NotifyState::Stopping]);
            tracing::info!("shutting down; letting in-flight requests finish");
            gateway.shutdown().await;
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
