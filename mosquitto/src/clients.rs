//! The clients the broker has let in, by client id: each one's login, and which of its
//! connections are open. Pure bookkeeping, so that it can be tested without a broker.

use crate::access::Login;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One connection, as the broker knows it for as long as it is open (the address of its
/// connection record): a disconnect is counted only against the connection that logged in.
/// Mosquitto (from 2.0.13) reports a refused CONNECT's disconnect under the client id it asked
/// for; counted by id, that would mark the client already connected under the id as gone.
pub type Connection = usize;

/// One login of one client id.
pub type LoginRef = (String, u64);

/// A logged-in client: its login, and its open connections (a client that reconnects under the
/// same id takes the old connection over, which closes after the new login).
#[derive(Debug)]
pub struct Connected {
    pub username: String,
    pub login: Login,
    /// Which login this is, so an answer about an older one cannot end a newer.
    pub login_no: u64,
    connections: Vec<Connection>,
    /// Set when its last connection closed: it may then only publish (its will) until the
    /// grace is over, and is neither rechecked nor counted as connected.
    pub departed: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Clients {
    by_id: HashMap<String, Connected>,
    logins: u64,
}

impl Clients {
    pub fn get(&self, clientid: &str) -> Option<&Connected> {
        self.by_id.get(clientid)
    }

    /// The clients still connected.
    pub fn connected(&self) -> impl Iterator<Item = (&String, &Connected)> {
        self.by_id.iter().filter(|(_, c)| c.departed.is_none())
    }

    /// Whether a connected client holds `clientid` under another username.
    pub fn held_by_another(&self, clientid: &str, username: &str) -> bool {
        self.by_id
            .get(clientid)
            .is_some_and(|c| c.departed.is_none() && c.username != username)
    }

    /// How many ids other than `clientid` the username holds connected.
    pub fn other_ids_held(&self, clientid: &str, username: &str) -> usize {
        self.connected()
            .filter(|(id, c)| id.as_str() != clientid && c.username == username)
            .count()
    }

    /// A connection logged in: it is the client's current login, and one of its connections.
    pub fn log_in(
        &mut self,
        clientid: String,
        connection: Connection,
        username: &str,
        login: Login,
    ) {
        let mut connections = self
            .by_id
            .get(&clientid)
            .filter(|c| c.departed.is_none())
            .map_or_else(Vec::new, |c| c.connections.clone());
        connections.push(connection);
        self.logins += 1;
        self.by_id.insert(
            clientid,
            Connected {
                username: username.to_owned(),
                login,
                login_no: self.logins,
                connections,
                departed: None,
            },
        );
    }

    /// A connection closed. One that never logged in (a refused CONNECT) changes nothing.
    pub fn disconnect(&mut self, clientid: &str, connection: Connection) {
        let Some(c) = self.by_id.get_mut(clientid) else {
            return;
        };
        let before = c.connections.len();
        c.connections.retain(|open| *open != connection);
        if c.connections.len() < before && c.connections.is_empty() {
            c.departed = Some(Instant::now());
        }
    }

    /// Forgets the clients that left longer ago than `grace`.
    pub fn forget_departed(&mut self, grace: Duration) {
        self.by_id
            .retain(|_, c| c.departed.is_none_or(|at| at.elapsed() < grace));
    }

    /// Forgets the login, if it is still the client's current one; says whether it was.
    pub fn end(&mut self, (clientid, login_no): &LoginRef) -> bool {
        let current = self
            .by_id
            .get(clientid)
            .is_some_and(|c| c.login_no == *login_no);
        if current {
            self.by_id.remove(clientid);
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> Login {
        Login {
            result: "allow".into(),
            is_superuser: false,
            client_attrs: Default::default(),
            acl: Vec::new(),
            expire_at: None,
        }
    }

    fn is_connected(clients: &Clients, id: &str) -> bool {
        clients.get(id).is_some_and(|c| c.departed.is_none())
    }

    #[test]
    fn a_refused_connection_under_a_connected_id_leaves_the_client_connected() {
        let mut clients = Clients::default();
        clients.log_in("bambu".into(), 1, "printer:a", login());
        // Another CONNECT asked for the same id and was refused; the broker reports it gone.
        clients.disconnect("bambu", 2);
        assert!(is_connected(&clients, "bambu"));
        assert!(clients.held_by_another("bambu", "printer:b"));
        clients.disconnect("bambu", 1);
        assert!(!is_connected(&clients, "bambu"));
        assert!(!clients.held_by_another("bambu", "printer:b"));
        // Closing twice does not matter.
        clients.disconnect("bambu", 1);
        assert!(clients.get("bambu").unwrap().departed.is_some());
    }

    #[test]
    fn a_reconnect_takes_over_and_the_old_connection_closing_leaves_it_connected() {
        let mut clients = Clients::default();
        clients.log_in("mk4".into(), 1, "printer:a", login());
        let first = clients.get("mk4").unwrap().login_no;
        clients.log_in("mk4".into(), 2, "printer:a", login());
        clients.disconnect("mk4", 1);
        assert!(is_connected(&clients, "mk4"));
        // An answer about the first login does not end the second.
        assert!(!clients.end(&("mk4".into(), first)));
        assert!(is_connected(&clients, "mk4"));
        clients.disconnect("mk4", 2);
        assert!(!is_connected(&clients, "mk4"));
        clients.forget_departed(Duration::ZERO);
        assert!(clients.get("mk4").is_none());
    }

    #[test]
    fn a_login_after_leaving_starts_afresh() {
        let mut clients = Clients::default();
        clients.log_in("x".into(), 1, "printer:a", login());
        clients.disconnect("x", 1);
        clients.log_in("x".into(), 3, "printer:a", login());
        clients.disconnect("x", 1);
        assert!(is_connected(&clients, "x"));
        assert_eq!(clients.other_ids_held("y", "printer:a"), 1);
        assert_eq!(clients.other_ids_held("x", "printer:a"), 0);
    }
}
