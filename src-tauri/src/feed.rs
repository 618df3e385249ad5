//! Live updates for the screen, pulled by the screen rather than pushed into it.
//!
//! Why (issue 16 soak): a Tauri `Channel` delivers each message by evaluating a
//! new script in the webview (`webview.eval` with the JSON inlined, below 8 KiB),
//! and WebKitGTK's web process keeps memory in proportion to the script source
//! it is handed: at 240x (hundreds of alarm-driven updates a second) the
//! WebKitWebProcess passed 1 GB within 30 s while the page's DOM and state
//! stayed constant. An `invoke` answer travels as the body of the IPC
//! custom-protocol request instead, with no script per message. So the core
//! merges batches here and the screen long-polls `ward_next` for them: one
//! request in flight, answered as soon as a batch is waiting (alarms still go
//! out at once), and what piles up while the screen is busy is merged, not queued.

use std::sync::Mutex;
use tokio::sync::Notify;
use vigil_core::view::WardUpdate;

/// Readings/device changes kept while the screen has not fetched them. The
/// screen shows only the newest per bed and code, so the oldest go first.
const MAX_WAITING: usize = 8192;

#[derive(Default)]
pub struct Feed {
    inner: Mutex<Inner>,
    ready: Notify,
}

#[derive(Default)]
struct Inner {
    /// The current subscriber; a reloaded page subscribes again and replaces it.
    subscription: u64,
    waiting: Option<WardUpdate>,
}

impl Feed {
    /// A new subscriber: the previous one (a page since reloaded) gets no more.
    pub fn subscribe(&self) -> u64 {
        let mut i = self.inner.lock().expect("feed lock");
        i.subscription += 1;
        i.waiting = None;
        drop(i);
        // A pull of the old subscriber still waiting ends now.
        self.ready.notify_waiters();
        self.inner.lock().expect("feed lock").subscription
    }

    /// Adds a batch for `subscription`; false once it has been replaced (its stream ends).
    pub fn push(&self, subscription: u64, u: WardUpdate) -> bool {
        let mut i = self.inner.lock().expect("feed lock");
        if i.subscription != subscription {
            return false;
        }
        match &mut i.waiting {
            Some(w) => merge(w, u),
            None => i.waiting = Some(u),
        }
        drop(i);
        self.ready.notify_one();
        true
    }

    /// The changes since the last pull, waiting for some; None once `subscription` was replaced.
    pub async fn next(&self, subscription: u64) -> Option<WardUpdate> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut i = self.inner.lock().expect("feed lock");
                if i.subscription != subscription {
                    return None;
                }
                if let Some(u) = i.waiting.take() {
                    return Some(u);
                }
            }
            notified.await;
        }
    }
}

/// `later` applied on top of `into`, as the screen would apply the two in order.
fn merge(into: &mut WardUpdate, later: WardUpdate) {
    into.now_ms = later.now_ms;
    into.readings.extend(later.readings);
    into.devices.extend(later.devices);
    if into.readings.len() > MAX_WAITING {
        let extra = into.readings.len() - MAX_WAITING;
        into.readings.drain(..extra);
    }
    if into.devices.len() > MAX_WAITING {
        let extra = into.devices.len() - MAX_WAITING;
        into.devices.drain(..extra);
    }
    if later.beds.is_some() {
        into.beds = later.beds;
    }
    // Alarm and NEWS2 entries are a bed's full state: the later one replaces it.
    for a in later.alarms {
        into.alarms.retain(|x| x.bed != a.bed);
        into.alarms.push(a);
    }
    for n in later.news2 {
        into.news2.retain(|x| x.bed != n.bed);
        into.news2.push(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::view::ReadingView;
    use vigil_model::{Quality, Source};

    fn reading(bed: &str, mdc: u32, received_ms: i64) -> ReadingView {
        ReadingView {
            bed: bed.into(),
            device: format!("sim-{bed}"),
            mdc,
            value: Some(1.0),
            special: None,
            unit: "bpm".into(),
            received_ms,
            device_time: None,
            stale_after_ms: 10_000,
            source: Source::Simulated,
            quality: Quality::Valid,
            flags: vec![],
            admission: None,
        }
    }

    fn update(now_ms: i64, readings: Vec<ReadingView>) -> WardUpdate {
        WardUpdate {
            now_ms,
            readings,
            ..WardUpdate::default()
        }
    }

    #[tokio::test]
    async fn the_screen_gets_every_change_made_while_it_was_busy_in_one_pull() {
        let feed = Feed::default();
        let s = feed.subscribe();
        assert!(feed.push(s, update(1_000, vec![reading("bed-1", 1, 900)])));
        assert!(feed.push(s, update(1_250, vec![reading("bed-2", 1, 1_200)])));
        let u = feed.next(s).await.expect("a batch");
        // The newer clock, both readings in the order they happened.
        assert_eq!(u.now_ms, 1_250);
        assert_eq!(
            u.readings.iter().map(|r| r.bed.as_str()).collect::<Vec<_>>(),
            ["bed-1", "bed-2"]
        );
    }

    #[tokio::test]
    async fn a_waiting_pull_is_answered_as_soon_as_a_batch_arrives() {
        let feed = std::sync::Arc::new(Feed::default());
        let s = feed.subscribe();
        let waiting = tokio::spawn({
            let feed = feed.clone();
            async move { feed.next(s).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(feed.push(s, update(5, vec![])));
        let u = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("answered")
            .expect("task");
        assert_eq!(u.map(|u| u.now_ms), Some(5));
    }

    #[tokio::test]
    async fn a_reloaded_page_replaces_the_old_subscription_and_its_stream_ends() {
        let feed = Feed::default();
        let old = feed.subscribe();
        assert!(feed.push(old, update(1, vec![])));
        let new = feed.subscribe();
        // The old stream stops (push false), its pulls end; the new page starts clean.
        assert!(!feed.push(old, update(2, vec![])));
        assert_eq!(feed.next(old).await, None);
        assert!(feed.push(new, update(3, vec![])));
        assert_eq!(feed.next(new).await.map(|u| u.now_ms), Some(3));
    }

    #[tokio::test]
    async fn what_waits_for_a_stalled_screen_stays_bounded_and_keeps_the_newest() {
        let feed = Feed::default();
        let s = feed.subscribe();
        for i in 0..20_000 {
            assert!(feed.push(s, update(i, vec![reading("bed-1", 1, i)])));
        }
        let u = feed.next(s).await.expect("a batch");
        assert_eq!(u.readings.len(), MAX_WAITING);
        assert_eq!(u.readings.last().map(|r| r.received_ms), Some(19_999));
    }
}
