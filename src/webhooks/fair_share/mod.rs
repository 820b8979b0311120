//! How the dispatcher's sends in flight are shared: at most `PER_ENDPOINT` to one endpoint and
//! `PER_STORE` for one store, so that an endpoint that accepts connections and never answers
//! (or a store with a thousand of them) holds only its share, and everyone else's deliveries
//! go out on time.
//!
//! A delivery over its share waits here, in its store's queue, and goes out as soon as a send of
//! its store ends and it fits: the task of the send that ended sends it next (once it has a slot
//! again: it gives its own back first, so that others waiting for one go before it). Waiting
//! here rather than in the table keeps a store's order and costs no statement. What overflows the
//! queue (`QUEUED_PER_STORE`, `QUEUED_PER_ENDPOINT`, `QUEUED`) or waits too long goes back to
//! the table; the queue is then refilled from there by the dispatcher's claims, which it wakes
//! when it runs low: below half for the store and for the endpoint whose deliveries went back.

use super::send::Claimed;
use crate::db::deliveries::{Busy, Endpoint};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Sends in flight in all, at most (the dispatcher's send slots).
pub const MAX_IN_FLIGHT: usize = 256;
/// Of those, the ones only a store with fewer than `LIGHT` sends in flight may take: stores
/// with more (stores whose endpoints never answer, say) hold at most the rest together, and a
/// store with a few deliveries finds a slot at once unless many stores hang at once (three at
/// their share and sixteen more at `LIGHT` fill every slot; then the send timeout bounds the
/// wait).
const RESERVED: usize = 64;
/// A store with fewer sends than this in flight may take a reserved slot.
const LIGHT: usize = 4;
/// Sends in flight to one endpoint, at most.
pub const PER_ENDPOINT: usize = 16;
/// Sends in flight for one store, at most (a quarter of the dispatcher's).
pub const PER_STORE: usize = 64;
/// Deliveries waiting for their share in one store's queue, at most.
pub const QUEUED_PER_STORE: usize = 1_024;
/// Deliveries to one endpoint waiting in its store's queue, at most: an endpoint that never
/// answers does not fill its store's queue.
pub const QUEUED_PER_ENDPOINT: usize = 256;
/// Deliveries waiting in every queue together, at most (their bodies are held in memory).
pub const QUEUED: usize = 4_096;
/// Claims skip a store with this many queued, and refill it once it has fewer.
const STORE_LOW: usize = QUEUED_PER_STORE / 2;
/// Claims skip an endpoint with this many queued, and refill it once it has fewer.
const ENDPOINT_LOW: usize = QUEUED_PER_ENDPOINT / 2;
/// Deliveries one claim takes for one endpoint, at most.
const CLAIM_PER_ENDPOINT: usize = QUEUED_PER_ENDPOINT / 4;

#[derive(Clone)]
pub struct FairShare {
    state: Arc<Mutex<State>>,
    /// A queued delivery that has waited this long is given back to the table rather than
    /// started.
    max_wait: Duration,
}

#[derive(Default)]
struct State {
    endpoints: HashMap<Uuid, usize>,
    stores: HashMap<Uuid, usize>,
    /// Sends in flight in all.
    in_flight: usize,
    /// Per store, the deliveries waiting for a share, in the order they came.
    queues: HashMap<Uuid, VecDeque<Claimed>>,
    /// Per endpoint, how many of those are its.
    queued_endpoints: HashMap<Uuid, usize>,
    queued: usize,
    /// Per store, the endpoints whose due deliveries the table may still hold (some overflowed
    /// or went back, or a claim took as many as it could): refilled from there when their
    /// queues run low.
    refill: HashMap<Uuid, HashSet<Uuid>>,
}

/// One send's place in its endpoint's and store's share; dropping it frees the place.
pub struct Share {
    state: Option<Arc<Mutex<State>>>,
    endpoint: Uuid,
    store: Uuid,
}

/// What became of a delivery offered to [`FairShare::admit`].
pub enum Admission {
    /// Within its shares: send it now.
    Start(Claimed, Share),
    /// Waiting in its store's queue; a send of its store that ends will start it.
    Queued,
    /// Over its share with its queue full: give it back to the table.
    Spilled(Claimed),
}

/// What [`FairShare::finish`] found for the send slot it freed.
pub struct Next {
    /// The oldest queued delivery of the same store that now fits, with its place.
    pub start: Option<(Claimed, Share)>,
    /// Queued deliveries of the store that waited too long: to be given back to the table.
    pub stale: Vec<Claimed>,
    /// The store's queue runs low and the table may hold more of its deliveries: the
    /// dispatcher should claim.
    pub wake_claims: bool,
}

impl State {
    fn fits(&self, endpoint: &Endpoint) -> bool {
        fits(&self.endpoints, &self.stores, self.in_flight, endpoint)
    }

    fn take(&mut self, endpoint: &Endpoint) {
        *self.endpoints.entry(endpoint.id).or_default() += 1;
        *self.stores.entry(endpoint.store_id).or_default() += 1;
        self.in_flight += 1;
    }

    fn free_place(&mut self, endpoint: Uuid, store: Uuid) {
        decrement(&mut self.endpoints, endpoint);
        decrement(&mut self.stores, store);
        self.in_flight -= 1;
    }

    /// Counts `delivery` out of the queues (it has been taken from its store's).
    fn dequeued(&mut self, delivery: &Claimed) {
        self.queued -= 1;
        decrement(&mut self.queued_endpoints, delivery.endpoint.id);
    }

    fn in_queue(&self, store: Uuid) -> usize {
        self.queues.get(&store).map_or(0, VecDeque::len)
    }

    /// The table may hold more of this endpoint's due deliveries.
    fn mark_refill(&mut self, endpoint: &Endpoint) {
        self.refill
            .entry(endpoint.store_id)
            .or_default()
            .insert(endpoint.id);
    }

    /// Whether a claim now would take `endpoint`'s deliveries (it skips what `busy` names).
    fn claimable(&self, store: Uuid, endpoint: Uuid) -> bool {
        self.in_queue(store) < STORE_LOW
            && self.queued_endpoints.get(&endpoint).copied().unwrap_or(0) < ENDPOINT_LOW
    }

    /// Whether a claim should run for `store`: one of its endpoints marked for refill is
    /// claimable now (and is no longer marked: the claim marks it again if it finds more).
    fn wants_refill(&mut self, store: Uuid) -> bool {
        let Some(marked) = self.refill.remove(&store) else {
            return false;
        };
        let (ready, waiting): (HashSet<Uuid>, HashSet<Uuid>) = marked
            .into_iter()
            .partition(|endpoint| self.claimable(store, *endpoint));
        if !waiting.is_empty() {
            self.refill.insert(store, waiting);
        }
        !ready.is_empty()
    }

    /// Takes out of `store`'s queue what has waited longer than `max_wait`, marking their
    /// endpoints for refill (they go back to the table).
    fn take_stale(&mut self, store: Uuid, now: Instant, max_wait: Duration) -> Vec<Claimed> {
        let waited_too_long = |d: &Claimed| now.saturating_duration_since(d.leased_at) > max_wait;
        let Some(queue) = self.queues.get_mut(&store) else {
            return Vec::new();
        };
        if !queue.iter().any(waited_too_long) {
            return Vec::new();
        }
        let (stale, kept): (Vec<Claimed>, Vec<Claimed>) =
            queue.drain(..).partition(|d| waited_too_long(d));
        queue.extend(kept);
        if queue.is_empty() {
            self.queues.remove(&store);
        }
        for delivery in &stale {
            self.dequeued(delivery);
            self.mark_refill(&delivery.endpoint);
        }
        stale
    }
}

/// Whether a send to `endpoint` is within its endpoint's and its store's share, given the sends
/// in flight per endpoint, per store and in all: a store with `LIGHT` or more in flight only
/// while the unreserved slots are not all taken.
fn fits(
    endpoints: &HashMap<Uuid, usize>,
    stores: &HashMap<Uuid, usize>,
    in_flight: usize,
    endpoint: &Endpoint,
) -> bool {
    let of_store = stores.get(&endpoint.store_id).copied().unwrap_or(0);
    endpoints.get(&endpoint.id).copied().unwrap_or(0) < PER_ENDPOINT
        && of_store < PER_STORE
        && (of_store < LIGHT || in_flight < MAX_IN_FLIGHT - RESERVED)
}

fn decrement(counts: &mut HashMap<Uuid, usize>, id: Uuid) {
    if let Some(n) = counts.get_mut(&id) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&id);
        }
    }
}

impl FairShare {
    pub fn new(max_wait: Duration) -> Self {
        FairShare {
            state: Arc::default(),
            max_wait,
        }
    }

    fn share(&self, endpoint: &Endpoint) -> Share {
        Share {
            state: Some(self.state.clone()),
            endpoint: endpoint.id,
            store: endpoint.store_id,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for `delivery` within its endpoint's and store's shares, else a place in its
    /// store's queue, else (the queue is full) it is spilled.
    pub fn admit(&self, delivery: Claimed) -> Admission {
        let mut state = self.lock();
        let endpoint = &delivery.endpoint;
        if state.fits(endpoint) {
            state.take(endpoint);
            let share = self.share(endpoint);
            return Admission::Start(delivery, share);
        }
        let (store, endpoint) = (endpoint.store_id, endpoint.id);
        let in_queue = state.queues.get(&store).map_or(0, VecDeque::len);
        let to_endpoint = state.queued_endpoints.get(&endpoint).copied().unwrap_or(0);
        if in_queue >= QUEUED_PER_STORE
            || to_endpoint >= QUEUED_PER_ENDPOINT
            || state.queued >= QUEUED
        {
            state.mark_refill(&delivery.endpoint);
            return Admission::Spilled(delivery);
        }
        state.queued += 1;
        *state.queued_endpoints.entry(endpoint).or_default() += 1;
        state.queues.entry(store).or_default().push_back(delivery);
        Admission::Queued
    }

    /// A claim took `claimed` (`filled`: as many as it asked for). The table may hold more of
    /// the endpoints it took as many of as it could, or of all of them when it was filled.
    pub fn claimed(&self, claimed: &[Claimed], filled: bool) {
        let mut per_endpoint: HashMap<Uuid, (usize, &Endpoint)> = HashMap::new();
        for delivery in claimed {
            per_endpoint
                .entry(delivery.endpoint.id)
                .or_insert((0, &delivery.endpoint))
                .0 += 1;
        }
        let mut state = self.lock();
        for (n, endpoint) in per_endpoint.into_values() {
            if filled || n >= CLAIM_PER_ENDPOINT {
                state.mark_refill(endpoint);
            }
        }
    }

    /// Takes out of every queue what has waited too long (a store whose sends all hang has no
    /// send ending to do it): the deliveries to give back to the table.
    pub fn take_stale(&self) -> Vec<Claimed> {
        let mut state = self.lock();
        let now = Instant::now();
        let stores: Vec<Uuid> = state.queues.keys().copied().collect();
        stores
            .into_iter()
            .flat_map(|store| state.take_stale(store, now, self.max_wait))
            .collect()
    }

    /// Frees `share` and finds what its send slot goes to next: the oldest queued delivery of
    /// its store that fits now. Each delivery is queued only while it does not fit, so one freed
    /// place starts at most one.
    pub fn finish(&self, mut share: Share) -> Next {
        share.state = None;
        let store = share.store;
        let mut guard = self.lock();
        let state = &mut *guard;
        state.free_place(share.endpoint, store);
        let stale = state.take_stale(store, Instant::now(), self.max_wait);
        let mut started = None;
        if let Some(queue) = state.queues.get_mut(&store) {
            let (endpoints, stores, in_flight) = (&state.endpoints, &state.stores, state.in_flight);
            let found = queue
                .iter()
                .position(|d| fits(endpoints, stores, in_flight, &d.endpoint));
            started = found.and_then(|at| queue.remove(at));
            if queue.is_empty() {
                state.queues.remove(&store);
            }
        }
        let start = started.map(|delivery| {
            state.dequeued(&delivery);
            state.take(&delivery.endpoint);
            let place = self.share(&delivery.endpoint);
            (delivery, place)
        });
        Next {
            start,
            stale,
            wake_claims: state.wants_refill(store),
        }
    }

    /// Empties every queue (the dispatcher is stopping): the deliveries to give back.
    pub fn drain(&self) -> Vec<Claimed> {
        let mut state = self.lock();
        state.queued = 0;
        state.queued_endpoints.clear();
        state.refill.clear();
        state.queues.drain().flat_map(|(_, q)| q).collect()
    }

    /// The endpoints and stores that have enough waiting here already: the next claim skips
    /// them, and takes at most a quarter of an endpoint's queue of the others.
    pub fn busy(&self) -> Busy {
        let state = self.lock();
        let full = |map: &HashMap<Uuid, usize>, cap: usize| {
            map.iter()
                .filter(|(_, n)| **n >= cap)
                .map(|(id, _)| *id)
                .collect()
        };
        let stores = state
            .queues
            .iter()
            .filter(|(_, queue)| queue.len() >= STORE_LOW)
            .map(|(store, _)| *store)
            .collect();
        Busy {
            endpoints: full(&state.queued_endpoints, ENDPOINT_LOW),
            stores,
            per_endpoint: CLAIM_PER_ENDPOINT as i64,
        }
    }
}

impl Drop for Share {
    /// A share dropped without [`FairShare::finish`] (its send was abandoned) still frees its
    /// place; its store's queue is served by the store's other sends, or given back at shutdown.
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            state.free_place(self.endpoint, self.store);
        }
    }
}

#[cfg(test)]
mod tests;
