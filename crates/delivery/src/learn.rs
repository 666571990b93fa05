//! The learning worker: tells rspamd what users taught by moving messages into and
//! out of Junk.
//!
//! IMAP never waits for rspamd: a COPY or MOVE only writes a training request into
//! the store, in its own transaction (see the store's `spam_training`). This worker
//! wakes on the change feed's `SpamTraining` event, sends each waiting content to the
//! controller's `/learnspam` or `/learnham` (with the `Password` header), and deletes
//! the request when rspamd has answered for good. While rspamd is down or failing
//! the request waits and is retried with a doubling delay, at most
//! [`MAX_ATTEMPTS`] times.
//!
//! rspamd's answers: 200 learned; 204 "contains less tokens than required" and
//! 404 "has been already learned" are final too (there is nothing left to learn);
//! 401/403 (a wrong `[spam] password`) and 5xx are retried; any other 4xx is given up.

use std::sync::Arc;
use std::time::Duration;

use mailroom_config::Config;
use mailroom_store::{Change, SpamClass, Store, StoreError, TrainingRequest};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::spam::error_chain;

/// Failed attempts after which a request is given up.
pub const MAX_ATTEMPTS: u32 = 12;
/// Longest wait between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// Requests read from the store at a time.
const BATCH: u32 = 32;
/// Longest answer body read from the controller (it is a short JSON object).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnResult {
    /// rspamd learned it (200), had already learned it (404), or found too little
    /// text to learn (204): the request is done.
    Done(&'static str),
    /// Try again later (rspamd unreachable, 5xx, refused password).
    Retry(String),
    /// rspamd refused it for good (another 4xx): the request is given up.
    Refused(String),
}

/// Sends training requests to rspamd's controller.
pub struct LearningWorker {
    store: Store,
    learn_url: String,
    password: Option<String>,
    client: reqwest::Client,
    retry_base: Duration,
}

impl LearningWorker {
    /// The worker `[spam]` asks for; None when `controller_url` is unset. From
    /// then on the store records training requests.
    pub fn from_config(store: Store, config: &Arc<Config>) -> Option<LearningWorker> {
        let base = config.spam.controller_url.as_deref()?;
        let client = match reqwest::Client::builder()
            .timeout(config.spam.timeout)
            .connect_timeout(config.spam.timeout)
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "cannot build the HTTP client for rspamd's controller; nothing will be learned");
                return None;
            }
        };
        // From here on COPY/MOVE record requests; the worker drains what was
        // recorded before it ran as well.
        store.enable_spam_training();
        Some(LearningWorker {
            store,
            learn_url: base.trim_end_matches('/').to_string(),
            password: config.spam.password.as_ref().map(|p| p.0.clone()),
            client,
            retry_base: Duration::from_secs(60),
        })
    }

    /// The first retry's delay (doubling with each further failure); one minute
    /// unless a test wants it shorter.
    pub fn with_retry_base(mut self, delay: Duration) -> Self {
        self.retry_base = delay.max(Duration::from_secs(1));
        self
    }

    /// Runs until `shutdown`, draining the training requests.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let mut feed = self.store.subscribe();
        tracing::info!(controller = %self.learn_url, "learning from moves into and out of Junk");
        loop {
            self.drain(&shutdown).await;
            let wait = match self.store.spam_training_next_attempt().await {
                Ok(Some(at)) => {
                    let secs = at - time_now();
                    Duration::from_secs(secs.clamp(1, MAX_RETRY_DELAY.as_secs() as i64) as u64)
                }
                Ok(None) => MAX_RETRY_DELAY,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the spam training queue");
                    Duration::from_secs(5)
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(wait) => {}
                () = next_request(&mut feed) => {}
            }
        }
    }

    /// Handles every request that is due.
    async fn drain(&self, shutdown: &CancellationToken) {
        // Bounded, so that a request the store cannot remove is not tried in a
        // tight loop; the rest waits for the next wake-up.
        for _ in 0..64 {
            let due = match self.store.spam_training_due(BATCH).await {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the spam training queue");
                    return;
                }
            };
            if due.is_empty() {
                return;
            }
            for request in due {
                if shutdown.is_cancelled() {
                    return;
                }
                self.handle(request).await;
            }
        }
    }

    async fn handle(&self, request: TrainingRequest) {
        let class = request.class.as_str();
        let raw = match self.store.content_raw(request.content_id).await {
            Ok(raw) => raw,
            Err(StoreError::NotFound { .. }) => {
                // Expunged before it could be learned: nothing to teach.
                self.finish(&request, "gone").await;
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read a message to learn");
                self.retry(&request, &error.to_string()).await;
                return;
            }
        };
        match self.learn(&request, raw).await {
            LearnResult::Done(how) => {
                tracing::info!(account = %request.address, class, result = how, "rspamd learned from a move");
                self.finish(&request, how).await;
            }
            LearnResult::Retry(why) => self.retry(&request, &why).await,
            LearnResult::Refused(why) => {
                tracing::warn!(account = %request.address, class, reason = %why, "rspamd refused to learn a message; given up");
                self.finish(&request, "refused").await;
            }
        }
    }

    /// One `/learnspam` or `/learnham` request.
    pub async fn learn(&self, request: &TrainingRequest, raw: Vec<u8>) -> LearnResult {
        let path = match request.class {
            SpamClass::Spam => "learnspam",
            SpamClass::Ham => "learnham",
        };
        let mut http = self
            .client
            .post(format!("{}/{path}", self.learn_url))
            .body(raw);
        if let Some(password) = &self.password {
            http = http.header("Password", password);
        }
        // rspamd keys per-user statistics (when enabled) on the recipient.
        if let Ok(value) = reqwest::header::HeaderValue::from_str(&request.address) {
            http = http.header("Deliver-To", value);
        }
        let mut response = match http.send().await {
            Ok(response) => response,
            Err(error) => return LearnResult::Retry(error_chain(&error)),
        };
        let status = response.status();
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                break;
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body);
        let why = || format!("HTTP {status}: {}", text.trim());
        match status.as_u16() {
            200 => LearnResult::Done("learned"),
            204 => LearnResult::Done("too_short"),
            // "has been already learned as spam, ignore it" (and 208 in newer rspamd).
            404 | 208 => LearnResult::Done("already_learned"),
            401 | 403 => LearnResult::Retry(format!(
                "{}; check [spam] password against the controller's password",
                why()
            )),
            400..=499 => LearnResult::Refused(why()),
            _ => LearnResult::Retry(why()),
        }
    }

    async fn finish(&self, request: &TrainingRequest, how: &'static str) {
        metrics::counter!("mailroom_spam_learned_total", "class" => request.class.as_str(), "result" => how)
            .increment(1);
        if let Err(error) = self.store.spam_training_done(request.id).await {
            tracing::warn!(%error, "cannot remove a finished spam training request");
        }
    }

    async fn retry(&self, request: &TrainingRequest, why: &str) {
        let attempts = request.attempts + 1;
        if attempts >= MAX_ATTEMPTS {
            tracing::warn!(account = %request.address, class = request.class.as_str(), attempts, reason = %why, "cannot reach rspamd to learn a message; given up");
            self.finish(request, "given_up").await;
            return;
        }
        let delay = retry_delay(self.retry_base, request.attempts);
        tracing::warn!(account = %request.address, class = request.class.as_str(), attempts, retry_in_s = delay.as_secs(), reason = %why, "cannot learn a message now; will retry");
        metrics::counter!("mailroom_spam_learned_total", "class" => request.class.as_str(), "result" => "retry")
            .increment(1);
        if let Err(error) = self
            .store
            .spam_training_retry(request.id, delay.as_secs() as i64)
            .await
        {
            tracing::warn!(%error, "cannot reschedule a spam training request");
        }
    }
}

/// `base` doubled per earlier failure, at most an hour.
pub fn retry_delay(base: Duration, failures: u32) -> Duration {
    base.saturating_mul(1u32 << failures.min(16))
        .min(MAX_RETRY_DELAY)
}

/// Waits for a `SpamTraining` event (or a lag, which may have hidden one).
async fn next_request(feed: &mut broadcast::Receiver<Change>) {
    loop {
        match feed.recv().await {
            Ok(Change::SpamTraining { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                return;
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_up_to_an_hour() {
        let base = Duration::from_secs(60);
        assert_eq!(retry_delay(base, 0), Duration::from_secs(60));
        assert_eq!(retry_delay(base, 1), Duration::from_secs(120));
        assert_eq!(retry_delay(base, 5), Duration::from_secs(1920));
        assert_eq!(retry_delay(base, 6), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(base, 40), MAX_RETRY_DELAY);
    }
}
