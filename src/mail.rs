//! Outgoing mail (invitations, password resets) over SMTP: `PF_SMTP_URL` in lettre's form —
//! `smtp://host:25` (plain), `smtp://user:pass@host:587?tls=required` (STARTTLS),
//! `smtps://host:465` (TLS) — from `PF_SMTP_FROM`.

use anyhow::Context;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How long one message may take to hand over, from connecting to the server's last answer:
/// room for a server that scans what it takes, within the API's request timeout (30 s by
/// default) for the invitation that waits for it.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish()
    }
}

/// Whether mail can be addressed to `address` (an `Errors::email` address can still fail this,
/// say `a<b@c`).
pub fn is_address(address: &str) -> bool {
    address.parse::<lettre::Address>().is_ok()
}

impl Mailer {
    pub fn new(url: &str, from: &str) -> anyhow::Result<Mailer> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .context("PF_SMTP_URL is not an SMTP URL (smtp://host:port, smtps://host:port)")?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        let from = from
            .parse()
            .with_context(|| format!("PF_SMTP_FROM is not a mailbox: {from:?}"))?;
        Ok(Mailer { transport, from })
    }

    /// Sends a plain-text message to `to`.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> anyhow::Result<()> {
        let to: Mailbox = to
            .parse()
            .with_context(|| format!("{to:?} is not a mailbox"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .body(body)
            .context("the message could not be built")?;
        // The transport's own timeout bounds only the connection (lettre's async transport sets
        // none on the conversation): a server that accepts and then stalls must not hold an
        // invitation's request, or a reset's task, for ever.
        tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message))
            .await
            .map_err(|_| anyhow::anyhow!("the SMTP server did not answer within {SEND_TIMEOUT:?}"))?
            .context("the SMTP server did not take the message")?;
        Ok(())
    }
}
