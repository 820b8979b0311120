//! A private PostgreSQL cluster for trying printfarm on one machine: created with the installed
//! PostgreSQL's own `initdb` in a data directory, started with `pg_ctl` on a Unix socket inside
//! that directory (no TCP port, so it never meets another PostgreSQL), and stopped by its last
//! user. `db::open` falls back to it when `DATABASE_URL` is not set and the local default server
//! cannot be used.
//!
//! Several processes may use one cluster (`serve`, and `bootstrap` beside it). Two lock files
//! beside the data directory keep them apart: every user holds `<dir>.users.lock` shared for
//! as long as it uses the cluster, and creating, starting or stopping it happens under
//! `<dir>.init.lock`, held exclusively. A user that leaves stops the cluster only if it can then
//! take the users' lock exclusively: nobody else is using it. A cluster left running by a
//! process that died is taken over by the next user, and stopped by the last.
//!
//! PostgreSQL refuses to run as root, so a root process runs the cluster as the `postgres`
//! system user that Debian's package creates, and keeps its data under `/var/lib/printfarm`.

use anyhow::{bail, Context};
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use tokio::process::Command;

/// What to run when the server binaries are missing.
pub const INSTALL_HINT: &str = "PostgreSQL's server programs (initdb, pg_ctl, postgres) are not \
     installed: install them with `sudo apt-get install postgresql` (Debian, Ubuntu), or set \
     DATABASE_URL to a PostgreSQL server";

/// The longest Unix socket path the kernel takes (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;
/// The socket's file name for PostgreSQL's default port, which the cluster keeps.
const SOCKET_NAME: &str = ".s.PGSQL.5432";
/// How long `pg_ctl` waits for the cluster to start or stop.
const PG_CTL_WAIT_SECS: &str = "60";
/// The cluster's own log, inside its data directory.
const LOG_FILE: &str = "printfarm-postgres.log";

/// The data directory used when `PF_EMBEDDED_DB_DIR` is not set: the user's data directory
/// (`$XDG_DATA_HOME`, else `~/.local/share`), or `/var/lib/printfarm` for root, whose home the
/// `postgres` user cannot enter.
pub fn default_data_dir(get: impl Fn(&str) -> Option<String>) -> PathBuf {
    if running_as_root() {
        return PathBuf::from("/var/lib/printfarm/postgres");
    }
    let base = get("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| get("HOME").map(|home| Path::new(&home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("printfarm/postgres")
}

/// A running embedded cluster.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    data_dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<SystemUser>,
    /// `<dir>.users.lock`, held shared while this user uses the cluster (`None` in unit tests).
    users: Option<File>,
}

/// The unprivileged user a root process runs PostgreSQL as.
#[derive(Debug, Clone, Copy)]
struct SystemUser {
    uid: u32,
    gid: u32,
}

impl EmbeddedPostgres {
    /// Creates the cluster in `data_dir` if it has none yet, and starts it unless it runs.
    pub async fn start(data_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(data_dir, &[]).await
    }

    /// `start`, with server settings for this run (`name=value`, as `postgres -c` takes them),
    /// e.g. a TCP listener with TLS.
    pub async fn start_with(data_dir: &Path, settings: &[(&str, &str)]) -> anyhow::Result<Self> {
        let data_dir = absolute(data_dir)?;
        check_socket_path(&data_dir)?;
        refuse_symlink(&data_dir)?;
        if let Some(parent) = data_dir.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let users = lock(&data_dir, "users", Lock::Shared).await?;
        let init = lock(&data_dir, "init", Lock::Exclusive).await?;
        let mut cluster = EmbeddedPostgres {
            bin_dir: find_bin_dir(&data_dir)?,
            run_as: if running_as_root() {
                Some(postgres_user().await?)
            } else {
                None
            },
            data_dir,
            users: Some(users),
        };
        cluster.init_if_new().await?;
        cluster.start_unless_running(settings).await?;
        drop(init);
        Ok(cluster)
    }

    /// The connection URL for one of its databases, over its socket.
    pub fn url(&self, database: &str) -> String {
        let socket_dir: String =
            url::form_urlencoded::byte_serialize(self.data_dir.to_string_lossy().as_bytes())
                .collect();
        format!("postgres://postgres@localhost/{database}?host={socket_dir}")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Leaves the cluster: stops it if nobody else uses it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _init = lock(&self.data_dir, "init", Lock::Exclusive).await?;
        let Some(users) = self.users.take() else {
            return Ok(());
        };
        // Let go of our share, then see whether anyone else holds one. A user arriving now
        // waits for `init` (ours) before it looks at the cluster, so cannot be stopped under.
        users.unlock()?;
        match users.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(()),
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        if !self.is_running().await? {
            return Ok(());
        }
        let output = self
            .pg_ctl(&["stop", "-m", "fast", "-w", "-t", PG_CTL_WAIT_SECS, "-s"])
            .await?;
        if !output.status.success() {
            bail!(
                "cannot stop the embedded PostgreSQL in {}: {}",
                self.data_dir.display(),
                stderr_text(&output)
            );
        }
        tracing::info!(data_dir = %self.data_dir.display(), "stopped the embedded PostgreSQL");
        Ok(())
    }

    /// Runs initdb into a sibling directory and moves it into place, so that a crash midway
    /// never leaves a half-made cluster where the data directory should be.
    async fn init_if_new(&self) -> anyhow::Result<()> {
        if self.data_dir.join("PG_VERSION").exists() {
            return Ok(());
        }
        if std::fs::read_dir(&self.data_dir).is_ok_and(|mut entries| entries.next().is_some()) {
            bail!(
                "{} is not empty and holds no PostgreSQL cluster: set PF_EMBEDDED_DB_DIR to \
                 another directory",
                self.data_dir.display()
            );
        }
        let mut building = self.data_dir.clone().into_os_string();
        building.push(".initdb");
        let building = PathBuf::from(building);
        let _ = std::fs::remove_dir_all(&building);
        std::fs::create_dir(&building)
            .with_context(|| format!("cannot create {}", building.display()))?;
        std::fs::set_permissions(&building, std::fs::Permissions::from_mode(0o700))?;
        if let Some(user) = self.run_as {
            std::os::unix::fs::chown(&building, Some(user.uid), Some(user.gid))
                .with_context(|| format!("cannot hand {} to postgres", building.display()))?;
        }
        tracing::info!(data_dir = %self.data_dir.display(), "creating the embedded PostgreSQL cluster");
        // The socket in the 0700 data directory is the only way in, and only for its owner:
        // trust there; TCP refused outright, should a listener ever be opened.
        let mut initdb = self.command("initdb");
        initdb
            .arg("-D")
            .arg(&building)
            .args(["-U", "postgres", "--auth-local=trust", "--auth-host=reject"])
            .args(["-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"]);
        let output = initdb.output().await.context("cannot run initdb")?;
        if !output.status.success() {
            let _ = std::fs::remove_dir_all(&building);
            bail!(
                "initdb failed for {}: {}",
                self.data_dir.display(),
                stderr_text(&output)
            );
        }
        let conf = building.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)?;
        text.push_str(
            "\n# printfarm's embedded cluster: a Unix socket only.\nlisten_addresses = ''\n",
        );
        std::fs::write(&conf, text)?;
        // Replaces the data directory if it exists empty (rename(2) allows that).
        std::fs::rename(&building, &self.data_dir).with_context(|| {
            format!("cannot move the new cluster to {}", self.data_dir.display())
        })?;
        Ok(())
    }

    async fn start_unless_running(&mut self, settings: &[(&str, &str)]) -> anyhow::Result<()> {
        if self.is_running().await? {
            tracing::info!(data_dir = %self.data_dir.display(), "the embedded PostgreSQL is already running");
            return Ok(());
        }
        let log = self.data_dir.join(LOG_FILE);
        // pg_ctl hands -o to a shell: each value goes in single quotes.
        // No TCP listener unless a caller's settings (which come later) ask for one, whatever
        // postgresql.conf says.
        let mut server_options = format!(
            "-k {} -c {}",
            shell_quote(&self.data_dir.to_string_lossy()),
            shell_quote("listen_addresses=")
        );
        for (name, value) in settings {
            server_options.push_str(&format!(" -c {}", shell_quote(&format!("{name}={value}"))));
        }
        let output = self
            .pg_ctl_with(|cmd| {
                cmd.args(["start", "-w", "-t", PG_CTL_WAIT_SECS, "-s", "-l"])
                    .arg(&log)
                    .arg("-o")
                    .arg(&server_options);
            })
            .await?;
        if !output.status.success() {
            let log_tail = std::fs::read_to_string(&log)
                .map(|text| last_lines(&text, 5))
                .unwrap_or_default();
            bail!(
                "cannot start the embedded PostgreSQL in {}: {} {}",
                self.data_dir.display(),
                stderr_text(&output),
                log_tail
            );
        }
        tracing::info!(data_dir = %self.data_dir.display(), "started the embedded PostgreSQL");
        Ok(())
    }

    /// `pg_ctl status`: 0 running, 3 not running (4: no data directory, an error here).
    async fn is_running(&self) -> anyhow::Result<bool> {
        let output = self.pg_ctl(&["status", "-s"]).await?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => bail!(
                "cannot read the state of the embedded PostgreSQL in {}: {}",
                self.data_dir.display(),
                stderr_text(&output)
            ),
        }
    }

    async fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.pg_ctl_with(|cmd| {
            cmd.args(args);
        })
        .await
    }

    async fn pg_ctl_with(&self, add_args: impl FnOnce(&mut Command)) -> anyhow::Result<Output> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D").arg(&self.data_dir);
        add_args(&mut cmd);
        cmd.output().await.context("cannot run pg_ctl")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        cmd.stdin(std::process::Stdio::null())
            // The child must not inherit a locale the cluster was not made with.
            .env("LC_ALL", "C.UTF-8")
            .kill_on_drop(false);
        if let Some(user) = self.run_as {
            cmd.uid(user.uid).gid(user.gid);
        }
        cmd
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.is_absolute() {
        Ok(dir.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(dir))
    }
}

fn check_socket_path(data_dir: &Path) -> anyhow::Result<()> {
    let socket = data_dir.join(SOCKET_NAME);
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        bail!(
            "the embedded PostgreSQL's socket path {} is longer than {MAX_SOCKET_PATH} bytes: \
             set PF_EMBEDDED_DB_DIR to a shorter directory",
            socket.display()
        );
    }
    Ok(())
}

/// Debian and Ubuntu keep the server programs out of `PATH`, under
/// `/usr/lib/postgresql/<major>/bin`: the version the cluster was made with (its `PG_VERSION`),
/// else the newest there, else `PATH`, else `/usr/local/pgsql/bin`.
fn find_bin_dir(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let has_programs = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|p| dir.join(p).is_file())
    };
    let made_with: Option<u32> = std::fs::read_to_string(data_dir.join("PG_VERSION"))
        .ok()
        .and_then(|v| v.trim().parse().ok());
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .collect();
    versioned.sort_by_key(|(major, _)| (Some(*major) == made_with, *major));
    versioned.reverse();
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    versioned
        .into_iter()
        .map(|(_, dir)| dir)
        .chain(on_path)
        .chain([PathBuf::from("/usr/local/pgsql/bin")])
        .find(|dir| has_programs(dir))
        .ok_or_else(|| anyhow::anyhow!(INSTALL_HINT))
}

#[derive(Clone, Copy)]
enum Lock {
    Shared,
    Exclusive,
}

/// Opens `<data_dir>.<name>.lock` and takes it, waiting off the async threads.
async fn lock(data_dir: &Path, name: &str, how: Lock) -> anyhow::Result<File> {
    let mut path = data_dir.as_os_str().to_owned();
    path.push(format!(".{name}.lock"));
    let path = PathBuf::from(path);
    tokio::task::spawn_blocking(move || -> anyhow::Result<File> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match how {
            Lock::Shared => file.lock_shared()?,
            Lock::Exclusive => file.lock()?,
        }
        Ok(file)
    })
    .await?
}

/// A data directory that is a symbolic link could point anywhere (another user's files, in a
/// shared temporary directory): refused.
fn refuse_symlink(data_dir: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(data_dir) {
        Ok(meta) if meta.file_type().is_symlink() => bail!(
            "{} is a symbolic link: set PF_EMBEDDED_DB_DIR to a real directory",
            data_dir.display()
        ),
        _ => Ok(()),
    }
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

async fn postgres_user() -> anyhow::Result<SystemUser> {
    let id = |flag: &'static str| async move {
        let output = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .await
            .ok()?;
        if !output.status.success() {
            return None;
        }
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse::<u32>()
            .ok()
    };
    match (id("-u").await, id("-g").await) {
        (Some(uid), Some(gid)) => Ok(SystemUser { uid, gid }),
        _ => bail!(
            "PostgreSQL does not run as root, and there is no `postgres` user to run it as: \
             run printfarm as another user, or create one (Debian's postgresql package does)"
        ),
    }
}

fn stderr_text(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let text = if text.trim().is_empty() { stdout } else { text };
    last_lines(text.trim(), 5)
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_data_dir_follows_xdg_then_home() {
        if running_as_root() {
            assert_eq!(
                default_data_dir(|_| None),
                PathBuf::from("/var/lib/printfarm/postgres")
            );
            return;
        }
        let xdg = |name: &str| match name {
            "XDG_DATA_HOME" => Some("/x/data".to_owned()),
            "HOME" => Some("/home/u".to_owned()),
            _ => None,
        };
        assert_eq!(
            default_data_dir(xdg),
            PathBuf::from("/x/data/printfarm/postgres")
        );
        let home = |name: &str| (name == "HOME").then(|| "/home/u".to_owned());
        assert_eq!(
            default_data_dir(home),
            PathBuf::from("/home/u/.local/share/printfarm/postgres")
        );
    }

    #[test]
    fn server_options_survive_the_shell_pg_ctl_hands_them_to() {
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn a_socket_path_too_long_for_the_kernel_is_refused_up_front() {
        let long = PathBuf::from(format!("/{}", "d".repeat(100)));
        let err = check_socket_path(&long).unwrap_err().to_string();
        assert!(err.contains("PF_EMBEDDED_DB_DIR"), "{err}");
        assert!(check_socket_path(Path::new("/var/lib/printfarm/postgres")).is_ok());
    }

    #[test]
    fn the_url_points_at_the_socket_directory() {
        let cluster = EmbeddedPostgres {
            data_dir: PathBuf::from("/tmp/pf data"),
            bin_dir: PathBuf::new(),
            run_as: None,
            users: None,
        };
        let url = cluster.url("printfarm");
        assert_eq!(
            url,
            "postgres://postgres@localhost/printfarm?host=%2Ftmp%2Fpf+data"
        );
        let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        assert_eq!(options.get_socket(), Some(&PathBuf::from("/tmp/pf data")));
        assert_eq!(options.get_database(), Some("printfarm"));
    }
}
