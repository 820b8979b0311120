//! Authentication and authorisation: the key format, digests, the verified-key cache, the
//! `Caller` every handler takes, permissions and roles, and the failed-auth guard.

pub mod caller;
pub mod digest;
pub mod failures;
pub mod issue;
pub mod key_cache;
pub mod key_format;
pub mod passwords;
pub mod permissions;
pub mod session;
pub mod usage;
pub mod verify;

pub use caller::Caller;
pub use permissions::{Permission, PermissionSet, Role, RoleId};
