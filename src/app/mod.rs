//! The application: `AppState`, router assembly, `run` (`printfarm serve`) and the background
//! workers.
//!
//! - `state`: `AppState`, built once and shared by every handler and worker.
//! - `router`: the routes from `http` behind the tower stack from `middleware` (the only module
//!   outside `src/http/` that may import the http layer; `scripts/check_layers.sh` checks).
//! - `serve`: `run`: connect, migrate, spawn the workers, serve, shut down.
//! - `connections`: the accept loop: header-read deadline, connection caps, drain deadline.
//! - `workers`: `AppState::spawn_workers`, the telemetry bridge's task and `run_upkeep`.

pub mod connections;
mod router;
mod serve;
mod state;
mod workers;

pub use router::{internal_router, router};
pub use serve::{pool_settings, run};
pub use state::{AppState, Inner};
pub use workers::run_upkeep;
