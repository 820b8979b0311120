//! People's passwords: Argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane), hashed and
//! verified on threads of their own at a lower scheduling priority (nice 10), a bounded number
//! at once, so that a flood of sign-ins waits its turn instead of taking the CPU that serves
//! API requests.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// OWASP Password Storage Cheat Sheet: m=19456 KiB, t=2, p=1.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;
/// How long a hash waits for its turn before the request is told to come back (503).
const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

pub const MIN_LENGTH: usize = 10;
/// Argon2 takes any length; this bounds the work a request can ask for.
pub const MAX_LENGTH: usize = 200;

fn argon2() -> Argon2<'static> {
    let params = match Params::new(MEMORY_KIB, PASSES, LANES, None) {
        Ok(params) => params,
        Err(_) => unreachable!("the parameters are constants within argon2's bounds"),
    };
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// How much lower than the server's other threads the hashing threads run (`nice`).
const HASHING_NICENESS: i32 = 10;

/// The hashes in progress at once are at most this many (half the cores, at least one).
#[derive(Clone)]
pub struct Passwords {
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    workers: Arc<Workers>,
}

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads: as many as there are slots, started once, at a lower priority.
struct Workers {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
}

impl Workers {
    fn start(count: usize) -> Workers {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..count {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // every `Passwords` is gone
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "a password-hashing thread did not start");
            }
        }
        Workers {
            jobs: std::sync::Mutex::new(tx),
        }
    }

    fn submit(&self, job: Job) -> bool {
        self.jobs.lock().is_ok_and(|jobs| jobs.send(job).is_ok())
    }
}

/// Lowers this thread's scheduling priority (Linux: per thread); best effort.
fn lower_priority() {
    // SAFETY: setpriority with PRIO_PROCESS and this thread's id changes only this thread's
    // nice value; it takes no pointers.
    #[cfg(target_os = "linux")]
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, HASHING_NICENESS);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("too many sign-ins are being checked; retry shortly")]
    Busy,
    #[error("hashing failed: {0}")]
    Failed(String),
}

impl Default for Passwords {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Passwords::with_slots((cores / 2).max(1))
    }
}

impl Passwords {
    pub fn with_slots(slots: usize) -> Self {
        let slots = slots.max(1);
        Passwords {
            slots: Arc::new(Semaphore::new(slots)),
            queue_timeout: QUEUE_TIMEOUT,
            workers: Arc::new(Workers::start(slots)),
        }
    }

    /// A new PHC-format Argon2id hash of `password`, with a fresh salt.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let password = password.to_owned();
        self.run(move || hash_now(&password)).await?
    }

    /// Whether `password` matches `stored`. With no stored hash (an unknown account), a dummy
    /// hash is checked instead, so the answer takes as long as for a wrong password.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError> {
        let password = password.to_owned();
        let stored = stored.map(str::to_owned);
        self.run(move || {
            let known = stored.is_some();
            let hash = stored.unwrap_or_else(|| dummy_hash().to_owned());
            let matches = PasswordHash::new(&hash).is_ok_and(|parsed| {
                argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            });
            known && matches
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;
        metrics::counter!("printfarm_password_hashes_total").increment(1);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let submitted = self.workers.submit(Box::new(move || {
            let _permit = permit;
            let _ = tx.send(work());
        }));
        if !submitted {
            return Err(PasswordError::Failed(
                "the hashing threads are gone".to_owned(),
            ));
        }
        rx.await
            .map_err(|_| PasswordError::Failed("a hashing thread stopped".to_owned()))
    }
}

fn hash_now(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Failed(e.to_string()))
}

/// A hash of a random password nobody knows, made once, with the same parameters.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = uuid::Uuid::new_v4().to_string();
        hash_now(&random).unwrap_or_default()
    })
}

/// A generated password: 20 base62 characters (119 bits), for `bootstrap` and resets by the CLI.
pub fn generate() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let passwords = Passwords::with_slots(2);
        let hash = passwords.hash("correct horse battery").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(passwords
            .verify("correct horse battery", Some(&hash))
            .await
            .unwrap());
        assert!(!passwords.verify("wrong horse", Some(&hash)).await.unwrap());
        assert!(!passwords
            .verify("correct horse battery", None)
            .await
            .unwrap());
        assert!(!passwords
            .verify("x", Some("not a phc string"))
            .await
            .unwrap());
        let again = passwords.hash("correct horse battery").await.unwrap();
        assert_ne!(hash, again, "each hash has its own salt");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_runs_at_a_lower_priority_than_the_server() {
        let passwords = Passwords::with_slots(1);
        // SAFETY: getpriority reads this thread's nice value; it takes no pointers.
        let nice = passwords
            .run(|| unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::getpriority(libc::PRIO_PROCESS, tid)
            })
            .await
            .unwrap();
        let ours = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(nice, (ours + HASHING_NICENESS).min(19));
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_rather_than_waiting_forever() {
        let mut passwords = Passwords::with_slots(1);
        passwords.queue_timeout = Duration::from_millis(50);
        let held = passwords.slots.clone().acquire_owned().await.unwrap();
        let result = passwords.hash("some password").await;
        assert!(matches!(result, Err(PasswordError::Busy)));
        drop(held);
    }
}
