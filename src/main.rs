//! The `printfarm` command line: parses arguments and dispatches; nothing else.

use clap::{Parser, Subcommand};
use printfarm::cli::{self, KeyRequest, LimitTarget};
use printfarm::config::Config;
use printfarm::ids::StoreId;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "printfarm",
    version,
    about = "Multi-tenant API server for 3D print farms"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and its background workers.
    ///
    /// Settings come from the environment (and a `.env` file in the working directory);
    /// `.env.example` lists every one with its default and what it does. The ones a first run
    /// may want: DATABASE_URL (unset: postgres://postgres@127.0.0.1:5432/printfarm if it lets us
    /// in, else an embedded PostgreSQL in PF_EMBEDDED_DB_DIR), PF_LISTEN_ADDR
    /// (127.0.0.1:8080), PF_MQTT_URL (unset: MQTT off), PF_REDIS_URL (unset: limits in this
    /// process), PF_ENV and PF_KEY_PEPPER (required in production), PF_TRUSTED_PROXIES.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Create a store and a Full Access key for its owner.
    Bootstrap {
        #[arg(long)]
        store_name: String,
        /// Print exactly {"storeId": "...", "apiKey": "..."} on one line (with --owner-email,
        /// then "ownerEmail" and, when one was generated, "ownerPassword").
        #[arg(long)]
        json: bool,
        /// Make the owner key managed by this system: the API cannot change or delete it.
        #[arg(long)]
        managed_by: Option<String>,
        /// Also make the store's owner a user who signs in with this email (an existing user
        /// with it becomes the owner and keeps their password).
        #[arg(long)]
        owner_email: Option<String>,
        /// The owner user's name.
        #[arg(long, default_value = "Owner", requires = "owner_email")]
        owner_name: String,
        /// Read the owner's password from the first line of standard input (10–200
        /// characters). Without it, a terminal is asked for one (empty: generate one); anything
        /// else (a script, `--json`) gets one generated and printed once.
        #[arg(long, requires = "owner_email")]
        owner_password_stdin: bool,
    },
    /// Simulated printers for a store: they register through the API, log in to the broker
    /// with credentials of their own, publish telemetry, obey commands and print the jobs
    /// assigned to them. Needs PF_MQTT_URL (the broker; its credentials are not used) and an
    /// API key of the store.
    Simulate {
        #[arg(long)]
        store_id: StoreId,
        /// An API key of the store with printer.create, printer.config and queue.view.
        #[arg(long, env = "PF_API_KEY", hide_env_values = true)]
        api_key: String,
        /// The server's API.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
        /// How many printers.
        #[arg(long, default_value_t = 3)]
        printers: usize,
        /// bambu or klipper.
        #[arg(long, default_value = "bambu")]
        kind: String,
        /// How long a print takes, in seconds.
        #[arg(long, default_value_t = 30)]
        print_seconds: u64,
        /// The share of prints that fail part-way (0–1).
        #[arg(long, default_value_t = 0.0)]
        failure_rate: f64,
        /// Milliseconds between reports of each printer.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Device ids are <prefix>-<kind>-0001, ….
        #[arg(long, default_value = "sim")]
        prefix: String,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration_secs: Option<u64>,
    },
    /// Manage API keys as the platform operator.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Override rate limits per store or per key (platform operator only).
    Limits {
        #[command(subcommand)]
        command: LimitsCommand,
    },
    /// Manage users (people who sign in) as the platform operator.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Set a user's password (for when mail cannot reach them); their sessions end.
    ResetPassword {
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input (10–200 characters)
        /// instead of generating one and printing it once.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key for an existing store.
    Create {
        #[arg(long)]
        store_id: StoreId,
        #[arg(long)]
        name: String,
        #[arg(long)]
        full_access: bool,
        /// A built-in role id; repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// A permission name; repeatable.
        #[arg(long = "permission")]
        permissions: Vec<String>,
        /// Owning system: the API cannot change or delete the key.
        #[arg(long)]
        managed_by: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum LimitsCommand {
    /// Set (or, with neither limit given, reset) the limits of one store or one key.
    Set {
        #[arg(long, conflicts_with = "key_id", required_unless_present = "key_id")]
        store_id: Option<StoreId>,
        /// The key's public id (`pf_<env>_…`, the first 24 characters of the key).
        #[arg(long)]
        key_id: Option<String>,
        #[arg(long)]
        per_minute: Option<u32>,
        #[arg(long)]
        per_hour: Option<u32>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("printfarm: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    printfarm::logging::init(config.log_format_json);
    match dispatch(cli.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("printfarm: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => printfarm::app::run(config).await,
        Command::Migrate => {
            let database = printfarm::db::open(
                &config.database_url,
                config.embedded_db_dir.as_deref(),
                Default::default(),
            )
            .await?;
            let migrated = printfarm::db::migrate(&database.pool).await;
            database.close().await;
            migrated?;
            println!("migrations applied");
            Ok(())
        }
        Command::Openapi => {
            use std::io::Write;
            // A reader that stops early (`printfarm openapi | head`) is not an error.
            match std::io::stdout().write_all(printfarm::http::openapi_json().as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        Command::Simulate {
            store_id,
            api_key,
            server,
            printers,
            kind,
            print_seconds,
            failure_rate,
            interval_ms,
            prefix,
            duration_secs,
        } => {
            let broker = config
                .mqtt
                .clone()
                .ok_or_else(|| anyhow::anyhow!("set PF_MQTT_URL (e.g. mqtt://127.0.0.1:1883)"))?;
            printfarm::simulator::run(
                broker,
                printfarm::simulator::Options {
                    store: store_id,
                    server: server.trim_end_matches('/').to_owned(),
                    api_key,
                    printers,
                    kind,
                    print_seconds: print_seconds.max(1),
                    failure_rate: failure_rate.clamp(0.0, 1.0),
                    interval: std::time::Duration::from_millis(interval_ms.max(1)),
                    prefix,
                    duration: duration_secs.map(std::time::Duration::from_secs),
                },
            )
            .await
        }
        Command::Bootstrap {
            store_name,
            json,
            managed_by,
            owner_email,
            owner_name,
            owner_password_stdin,
        } => {
            let password = if owner_password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else if owner_email.is_some() && !json {
                cli::prompt_password("Owner's password (10-200 characters; empty: generate one): ")?
            } else {
                None
            };
            let owner = owner_email.as_deref().map(|email| cli::OwnerRequest {
                email,
                name: &owner_name,
                password,
            });
            let issued = cli::bootstrap(&config, &store_name, managed_by.as_deref(), owner).await?;
            cli::print_issued(&issued, json);
            Ok(())
        }
        Command::Users {
            command:
                UsersCommand::ResetPassword {
                    email,
                    password_stdin,
                },
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let generated = cli::reset_password(&config, &email, password).await?;
            match generated {
                Some(password) => {
                    println!("password: {password}");
                    println!("Pass it on now: it is not stored and cannot be shown again.");
                }
                None => println!("password set"),
            }
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Create {
                    store_id,
                    name,
                    full_access,
                    roles,
                    permissions,
                    managed_by,
                    json,
                },
        } => {
            let issued = cli::create_key(
                &config,
                KeyRequest {
                    store_id,
                    name: &name,
                    full_access,
                    roles: &roles,
                    permissions: &permissions,
                    managed_by: managed_by.as_deref(),
                },
            )
            .await?;
            cli::print_issued(&issued, json);
            Ok(())
        }
        Command::Limits {
            command:
                LimitsCommand::Set {
                    store_id,
                    key_id,
                    per_minute,
                    per_hour,
                },
        } => {
            let target = match (store_id, key_id) {
                (Some(id), _) => LimitTarget::Store(id),
                (None, Some(key)) => LimitTarget::Key(key),
                (None, None) => anyhow::bail!("give --store-id or --key-id"),
            };
            cli::set_limits(&config, target, per_minute, per_hour).await?;
            println!("limits updated");
            Ok(())
        }
    }
}
