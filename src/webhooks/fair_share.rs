//! How the dispatcher's sends in flight are shared: at most `PER_ENDPOINT` to one endpoint and
//! `PER_STORE` for one store, so that an endpoint that accepts connections and never answers
//! (or a store with a thousand of them) holds only its share, and everyone else's deliveries
//! go out on time. What is over its share waits in the table, unclaimed.

use crate::db::deliveries::{Busy, Endpoint};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Sends in flight to one endpoint, at most.
pub const PER_ENDPOINT: usize = 16;
/// Sends in flight for one store, at most (a quarter of the dispatcher's).
pub const PER_STORE: usize = 64;

#[derive(Clone, Default)]
pub struct FairShare {
    counts: Arc<Mutex<Counts>>,
}

#[derive(Default)]
struct Counts {
    endpoints: HashMap<Uuid, usize>,
    stores: HashMap<Uuid, usize>,
}

/// One send's place in its endpoint's and store's share; dropping it frees the place.
pub struct Share {
    counts: Arc<Mutex<Counts>>,
    endpoint: Uuid,
    store: Uuid,
}

impl FairShare {
    /// A place for a send to `endpoint`, or `None` when it or its store has its share.
    pub fn admit(&self, endpoint: &Endpoint) -> Option<Share> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let to_endpoint = counts.endpoints.get(&endpoint.id).copied().unwrap_or(0);
        let for_store = counts.stores.get(&endpoint.store_id).copied().unwrap_or(0);
        if to_endpoint >= PER_ENDPOINT || for_store >= PER_STORE {
            return None;
        }
        *counts.endpoints.entry(endpoint.id).or_default() += 1;
        *counts.stores.entry(endpoint.store_id).or_default() += 1;
        Some(Share {
            counts: self.counts.clone(),
            endpoint: endpoint.id,
            store: endpoint.store_id,
        })
    }

    /// The endpoints and stores that have their share now: the next claim skips them.
    pub fn busy(&self) -> Busy {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let full = |map: &HashMap<Uuid, usize>, cap: usize| {
            map.iter()
                .filter(|(_, n)| **n >= cap)
                .map(|(id, _)| *id)
                .collect()
        };
        Busy {
            endpoints: full(&counts.endpoints, PER_ENDPOINT),
            stores: full(&counts.stores, PER_STORE),
            per_endpoint: PER_ENDPOINT as i64,
        }
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut guard = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let counts = &mut *guard;
        for (map, id) in [
            (&mut counts.endpoints, self.endpoint),
            (&mut counts.stores, self.store),
        ] {
            if let Some(n) = map.get_mut(&id) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(store: Uuid) -> Endpoint {
        Endpoint {
            id: Uuid::new_v4(),
            store_id: store,
            url: "https://example.com/".into(),
            secret: "s".into(),
            previous_secret: None,
            previous_secret_until: None,
        }
    }

    #[test]
    fn an_endpoint_and_a_store_get_their_share_and_no_more() {
        let share = FairShare::default();
        let store = Uuid::new_v4();
        let hanging = endpoint(store);
        let held: Vec<Share> = (0..PER_ENDPOINT)
            .map(|_| share.admit(&hanging).unwrap())
            .collect();
        assert!(share.admit(&hanging).is_none());
        assert_eq!(share.busy().endpoints, vec![hanging.id]);
        // The same store's other endpoints, up to the store's share.
        let mut more = Vec::new();
        while let Some(s) = share.admit(&endpoint(store)) {
            more.push(s);
        }
        assert_eq!(held.len() + more.len(), PER_STORE);
        assert_eq!(share.busy().stores, vec![store]);
        // Another store is not affected.
        assert!(share.admit(&endpoint(Uuid::new_v4())).is_some());
        drop(held);
        drop(more);
        let busy = share.busy();
        assert!(busy.endpoints.is_empty() && busy.stores.is_empty());
        assert!(share.counts.lock().unwrap().endpoints.is_empty());
    }
}
