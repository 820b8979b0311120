//! The fair share's rules, on deliveries that are never sent.

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

fn delivery(to: &Endpoint) -> Claimed {
    Claimed {
        delivery: Uuid::new_v4(),
        event_id: Uuid::new_v4(),
        attempts: 1,
        body: bytes::Bytes::from_static(b"{}"),
        endpoint: to.clone(),
        leased_at: Instant::now(),
    }
}

fn shares() -> FairShare {
    FairShare::new(Duration::from_secs(30))
}

fn started(admission: Admission) -> Option<Share> {
    match admission {
        Admission::Start(_, share) => Some(share),
        _ => None,
    }
}

fn queued(admission: &Admission) -> bool {
    matches!(admission, Admission::Queued)
}

#[test]
fn an_endpoint_and_a_store_get_their_share_and_no_more() {
    let share = shares();
    let store = Uuid::new_v4();
    let hanging = endpoint(store);
    let held: Vec<Share> = (0..PER_ENDPOINT)
        .map(|_| started(share.admit(delivery(&hanging))).unwrap())
        .collect();
    assert!(queued(&share.admit(delivery(&hanging))));
    // The same store's other endpoints, up to the store's share.
    let mut more = Vec::new();
    while let Some(s) = started(share.admit(delivery(&endpoint(store)))) {
        more.push(s);
    }
    assert_eq!(held.len() + more.len(), PER_STORE);
    // Another store is not affected.
    assert!(started(share.admit(delivery(&endpoint(Uuid::new_v4())))).is_some());
    // Claims still take the store's deliveries: what does not fit waits here.
    let busy = share.busy();
    assert!(busy.endpoints.is_empty() && busy.stores.is_empty());
    drop(held);
    drop(more);
    assert_eq!(share.drain().len(), 2);
    let state = share.lock();
    assert!(state.endpoints.is_empty() && state.stores.is_empty());
    assert!(state.queued_endpoints.is_empty() && state.queued == 0);
}

#[test]
fn stores_with_many_sends_leave_the_reserved_slots_to_stores_with_few() {
    let share = shares();
    // Stores whose endpoints never answer, each filling its share, until they hold every
    // slot but the reserved.
    let fill = |store: Uuid| -> Vec<Share> {
        (0..PER_STORE / PER_ENDPOINT)
            .flat_map(|_| {
                let hanging = endpoint(store);
                (0..PER_ENDPOINT).map(move |_| delivery(&hanging))
            })
            .filter_map(|d| started(share.admit(d)))
            .collect()
    };
    let mut held: Vec<Share> = (0..(MAX_IN_FLIGHT - RESERVED) / PER_STORE)
        .flat_map(|_| fill(Uuid::new_v4()))
        .collect();
    assert_eq!(held.len(), MAX_IN_FLIGHT - RESERVED);
    // One more such store gets a few sends, then waits; so does every other store.
    let (late, other) = (Uuid::new_v4(), endpoint(Uuid::new_v4()));
    let late_held = fill(late);
    assert_eq!(late_held.len(), LIGHT);
    let few: Vec<Share> = (0..LIGHT)
        .map(|_| started(share.admit(delivery(&other))).unwrap())
        .collect();
    assert!(queued(&share.admit(delivery(&other))));
    // A heavy store's send that ends starts nothing of its own while the rest are taken,
    // though it is now under its store's share...
    let heavy = held.pop().unwrap();
    let store = heavy.store;
    assert!(queued(&share.admit(delivery(&endpoint(store)))));
    assert!(
        share.finish(heavy).start.is_none(),
        "{store} started another"
    );
    // ...while a light store's that ends starts its next at once.
    let mut few = few;
    assert!(share.finish(few.pop().unwrap()).start.is_some());
    drop(late_held);
}

#[test]
fn a_finished_send_starts_its_stores_oldest_waiting_delivery_that_fits() {
    let share = shares();
    let store = Uuid::new_v4();
    let (slow, other) = (endpoint(store), endpoint(store));
    let mut held: Vec<Share> = (0..PER_ENDPOINT)
        .map(|_| started(share.admit(delivery(&slow))).unwrap())
        .collect();
    // The store's share filled by another endpoint.
    for _ in PER_ENDPOINT..PER_STORE {
        held.push(started(share.admit(delivery(&endpoint(store)))).unwrap());
    }
    let (first_slow, to_other) = (delivery(&slow), delivery(&other));
    let (first_slow_id, to_other_id) = (first_slow.delivery, to_other.delivery);
    assert!(queued(&share.admit(first_slow)));
    assert!(queued(&share.admit(to_other)));
    // A send to a third endpoint ends: the slow endpoint is still full, so the other one's
    // delivery goes first although it came later.
    let next = share.finish(held.pop().unwrap());
    let (d, place) = next.start.expect("a waiting delivery starts");
    assert_eq!(d.delivery, to_other_id);
    assert!(!next.wake_claims && next.stale.is_empty());
    // A send to the slow endpoint ends: its own waiting delivery takes the place.
    drop(place);
    let next = share.finish(held.remove(0));
    assert_eq!(next.start.unwrap().0.delivery, first_slow_id);
    assert!(share.lock().queues.is_empty());
    assert_eq!(share.lock().queued, 0);
}

#[test]
fn a_full_queue_spills_to_the_table_and_is_refilled_when_it_runs_low() {
    let share = shares();
    let store = Uuid::new_v4();
    let endpoints: Vec<Endpoint> = (0..4).map(|_| endpoint(store)).collect();
    let mut held: VecDeque<Share> = VecDeque::new();
    for to in &endpoints {
        for _ in 0..PER_STORE / 4 {
            held.push_back(started(share.admit(delivery(to))).unwrap());
        }
    }
    for to in &endpoints {
        for _ in 0..QUEUED_PER_ENDPOINT {
            assert!(queued(&share.admit(delivery(to))));
        }
    }
    assert_eq!(share.lock().queued, QUEUED_PER_STORE);
    // The store's queue is full, and so is each endpoint's part of it.
    for to in [&endpoint(store), &endpoints[0]] {
        assert!(matches!(share.admit(delivery(to)), Admission::Spilled(_)));
    }
    let busy = share.busy();
    assert_eq!(busy.stores, vec![store]);
    assert_eq!(busy.endpoints.len(), endpoints.len());
    // Another store still starts and queues.
    let elsewhere = endpoint(Uuid::new_v4());
    let _theirs: Vec<Share> = (0..PER_ENDPOINT)
        .map(|_| started(share.admit(delivery(&elsewhere))).unwrap())
        .collect();
    assert!(queued(&share.admit(delivery(&elsewhere))));
    // Each finished send starts the next of its endpoint. The claims are woken only once
    // the store's queue is below half and so is a spilled endpoint's part of it, and once
    // for each mark.
    let mut wakes = Vec::new();
    for _ in 0..QUEUED_PER_STORE {
        let next = share.finish(held.pop_front().unwrap());
        if next.wake_claims {
            let state = share.lock();
            wakes.push((
                state.in_queue(store),
                state.claimable(store, endpoints[0].id),
            ));
        }
        held.push_back(next.start.expect("a waiting delivery starts").1);
    }
    assert!(!wakes.is_empty() && wakes.len() <= 2, "{wakes:?}");
    assert!(wakes.iter().all(|(in_queue, _)| *in_queue < STORE_LOW));
    assert!(share.lock().refill.is_empty());
    assert!(!share.lock().queues.contains_key(&store));
    let next = share.finish(held.pop_front().unwrap());
    assert!(next.start.is_none() && !next.wake_claims);
    // A claim that took fewer than it could of an endpoint leaves no mark; one that took as
    // many as it could does, and the next finished send wakes the claims.
    share.claimed(&[delivery(&endpoints[1])], false);
    assert!(!share.finish(held.pop_front().unwrap()).wake_claims);
    let full: Vec<Claimed> = (0..CLAIM_PER_ENDPOINT)
        .map(|_| delivery(&endpoints[1]))
        .collect();
    share.claimed(&full, false);
    assert!(share.finish(held.pop_front().unwrap()).wake_claims);
    share.claimed(&[delivery(&endpoints[2])], true);
    assert!(share.finish(held.pop_front().unwrap()).wake_claims);
}

#[test]
fn a_spilled_endpoint_is_refilled_once_its_own_part_of_the_queue_runs_low() {
    let share = shares();
    let to = endpoint(Uuid::new_v4());
    let mut held: VecDeque<Share> = (0..PER_ENDPOINT)
        .map(|_| started(share.admit(delivery(&to))).unwrap())
        .collect();
    for _ in 0..QUEUED_PER_ENDPOINT {
        assert!(queued(&share.admit(delivery(&to))));
    }
    assert!(matches!(share.admit(delivery(&to)), Admission::Spilled(_)));
    // The store's queue is below half at once, but a claim would skip the endpoint until
    // its own part is: only then are the claims woken.
    let mut woken_at = Vec::new();
    for sent in 1..=QUEUED_PER_ENDPOINT {
        let next = share.finish(held.pop_front().unwrap());
        if next.wake_claims {
            woken_at.push(QUEUED_PER_ENDPOINT - sent);
        }
        held.push_back(next.start.unwrap().1);
    }
    assert_eq!(woken_at, vec![ENDPOINT_LOW - 1]);
    assert_eq!(share.busy().per_endpoint, CLAIM_PER_ENDPOINT as i64);
}

#[test]
fn deliveries_that_waited_too_long_are_given_back_not_started_wherever_they_are() {
    let share = FairShare::new(Duration::from_secs(5));
    let store = Uuid::new_v4();
    let to = endpoint(store);
    let mut held: Vec<Share> = (0..PER_ENDPOINT)
        .map(|_| started(share.admit(delivery(&to))).unwrap())
        .collect();
    // Handed over after a wait: older than the one queued before it.
    let mut old = delivery(&to);
    old.leased_at = Instant::now().checked_sub(Duration::from_secs(10)).unwrap();
    let old_id = old.delivery;
    let fresh = delivery(&to);
    let fresh_id = fresh.delivery;
    assert!(queued(&share.admit(fresh)));
    assert!(queued(&share.admit(old)));
    let next = share.finish(held.pop().unwrap());
    assert_eq!(next.start.as_ref().unwrap().0.delivery, fresh_id);
    assert_eq!(
        next.stale.iter().map(|d| d.delivery).collect::<Vec<_>>(),
        vec![old_id]
    );
    // They go back to the table, from which a claim takes them again.
    assert!(next.wake_claims);
    assert_eq!(share.lock().queued, 0);
    // A store none of whose sends ends (they hang) is swept by the claims.
    let other = endpoint(Uuid::new_v4());
    let _hanging: Vec<Share> = (0..PER_ENDPOINT)
        .map(|_| started(share.admit(delivery(&other))).unwrap())
        .collect();
    let mut old = delivery(&other);
    old.leased_at = Instant::now().checked_sub(Duration::from_secs(10)).unwrap();
    assert!(queued(&share.admit(old)));
    assert!(queued(&share.admit(delivery(&other))));
    assert_eq!(share.take_stale().len(), 1);
    assert_eq!(share.lock().queued, 1);
}
