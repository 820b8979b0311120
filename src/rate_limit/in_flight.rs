//! How many requests of one store are in progress at once. Each takes a database connection
//! most of the time, so a store whose requests are stuck (on a lock, a slow query) may hold at
//! most its share of the pool: the others, and the health checks, keep theirs. Requests over
//! the share wait their turn (within the request timeout); they hold nothing meanwhile.

use crate::ids::StoreId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct StoreInFlight {
    per_store: u32,
    stores: Mutex<HashMap<StoreId, Arc<Semaphore>>>,
}

/// A request's place, in the request's extensions: work that may outlive the request's own
/// future (the idempotency layer runs a handler on a task of its own, which a client hanging
/// up does not end) holds a clone, so the place is given back only when that work ends.
#[derive(Clone)]
pub struct HeldPlace(pub Arc<InFlight>);

/// A request's place; dropping it lets the store's next request in.
pub struct InFlight {
    _permit: OwnedSemaphorePermit,
    store: StoreId,
    owner: Arc<StoreInFlight>,
}

impl StoreInFlight {
    pub fn new(per_store: u32) -> Arc<StoreInFlight> {
        Arc::new(StoreInFlight {
            per_store: per_store.max(1),
            stores: Mutex::default(),
        })
    }

    /// Waits for a place among the store's requests in progress.
    pub async fn enter(self: &Arc<Self>, store: StoreId) -> InFlight {
        let semaphore = {
            let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
            stores
                .entry(store)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_store as usize)))
                .clone()
        };
        if semaphore.available_permits() == 0 {
            metrics::counter!("printfarm_store_requests_queued_total").increment(1);
        }
        // Never closed, so acquiring cannot fail.
        let permit = match semaphore.acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => unreachable!("the semaphore is never closed"),
        };
        InFlight {
            _permit: permit,
            store,
            owner: self.clone(),
        }
    }

    /// Stores with a request in progress or waiting (the map holds no others).
    pub fn tracked(&self) -> usize {
        self.stores.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut stores = self.owner.stores.lock().unwrap_or_else(|e| e.into_inner());
        // The permit is still held here (fields drop after this body): the store is idle when
        // no one else holds or waits for its semaphore and every other permit is free.
        if let Some(semaphore) = stores.get(&self.store) {
            let idle = Arc::strong_count(semaphore) == 2
                && semaphore.available_permits() + 1 == self.owner.per_store as usize;
            if idle {
                stores.remove(&self.store);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_store_over_its_share_waits_while_others_go_ahead() {
        let gate = StoreInFlight::new(2);
        let busy = StoreId(uuid::Uuid::new_v4());
        let other = StoreId(uuid::Uuid::new_v4());
        let first = gate.enter(busy).await;
        let _second = gate.enter(busy).await;
        let third = tokio::time::timeout(Duration::from_millis(50), gate.enter(busy)).await;
        assert!(third.is_err(), "a third request of one store went ahead");
        let _others = tokio::time::timeout(Duration::from_millis(50), gate.enter(other))
            .await
            .expect("another store waited");
        drop(first);
        let _third = tokio::time::timeout(Duration::from_millis(50), gate.enter(busy))
            .await
            .expect("a freed place was not taken");
    }

    #[tokio::test]
    async fn idle_stores_are_forgotten() {
        let gate = StoreInFlight::new(3);
        for _ in 0..100 {
            let a = gate.enter(StoreId(uuid::Uuid::new_v4())).await;
            drop(a);
        }
        assert_eq!(gate.tracked(), 0);
        let store = StoreId(uuid::Uuid::new_v4());
        let a = gate.enter(store).await;
        let b = gate.enter(store).await;
        drop(a);
        assert_eq!(gate.tracked(), 1);
        drop(b);
        assert_eq!(gate.tracked(), 0);
    }
}
