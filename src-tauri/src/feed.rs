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
//!
//! The screen shows one value per bed and code, so only that reaches it: the
//! newest reading per bed, code and stay (`fold_readings`). At 240x a pull
//! carried ~60 readings of each series, all serialized here and parsed by the
//! page for one shown value each (issue 16 soak: the debug core ~30 MiB
//! smaller; the web process's memory did not change with it).
//! The central station's feed (`vigil-feed`) still gets every reading.

use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::Notify;
use vigil_core::view::{ReadingView, WardUpdate};

/// Readings (folded: one per bed, code and stay) and device changes kept
/// while the screen has not fetched them; the oldest go first.
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
                if let Some(mut u) = i.waiting.take() {
                    drop(i);
                    fold_readings(&mut u.readings);
                    bound(&mut u.readings);
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
    // Folded when pulled, and here only once twice the bound has piled up, so
    // each reading costs O(1) however long the screen is busy.
    if into.readings.len() > 2 * MAX_WAITING {
        fold_readings(&mut into.readings);
        bound(&mut into.readings);
    }
    into.devices.extend(later.devices);
    bound(&mut into.devices);
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

/// Drops the oldest beyond `MAX_WAITING`.
fn bound<T>(items: &mut Vec<T>) {
    if items.len() > MAX_WAITING {
        let extra = items.len() - MAX_WAITING;
        items.drain(..extra);
    }
}

/// Keeps only the readings the screen would show: per bed, code and stay the
/// newest by `received_ms`, a later one winning a tie (as `ui/src/state.ts`
/// `putReading` applies them in order). Order is kept. Per stay, not per bed and
/// code: the screen drops a reading of a stay other than the bed's current one,
/// so a newer value of the stay just ended must not hide the new stay's.
fn fold_readings(readings: &mut Vec<ReadingView>) {
    if readings.len() < 2 {
        return;
    }
    let mut newest: HashMap<(&str, u32, Option<&str>), usize> = HashMap::new();
    for (i, r) in readings.iter().enumerate() {
        let key = (r.bed.as_str(), r.mdc, r.admission.as_deref());
        match newest.get_mut(&key) {
            Some(j) if readings[*j].received_ms > r.received_ms => {}
            Some(j) => *j = i,
            None => {
                newest.insert(key, i);
            }
        }
    }
    let mut keep = vec![false; readings.len()];
    for i in newest.into_values() {
        keep[i] = true;
    }
    let mut i = 0;
    readings.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

#[cfg(test)]
mod tests {
    use super::*;
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
        // Distinct codes: each is a value the screen shows, none folds away.
        for i in 0..20_000 {
            assert!(feed.push(s, update(i, vec![reading("bed-1", i as u32, i)])));
        }
        let u = feed.next(s).await.expect("a batch");
        assert_eq!(u.readings.len(), MAX_WAITING);
        assert_eq!(u.readings.last().map(|r| r.received_ms), Some(19_999));
    }

    #[tokio::test]
    async fn a_fast_ward_reaches_the_screen_as_its_newest_values_only() {
        // 240x: a minute of 1 Hz readings per series between two pulls.
        let feed = Feed::default();
        let s = feed.subscribe();
        for batch in 0..4 {
            let mut readings = Vec::new();
            for second in 0..15 {
                let t = (batch * 15 + second) * 1_000;
                for bed in ["bed-1", "bed-2"] {
                    readings.push(reading(bed, 147_842, t));
                    readings.push(reading(bed, 150_456, t));
                }
            }
            assert!(feed.push(s, update(batch, readings)));
        }
        let u = feed.next(s).await.expect("a batch");
        let got: Vec<_> = u.readings.iter().map(|r| (r.bed.as_str(), r.mdc, r.received_ms)).collect();
        assert_eq!(
            got,
            [
                ("bed-1", 147_842, 59_000),
                ("bed-1", 150_456, 59_000),
                ("bed-2", 147_842, 59_000),
                ("bed-2", 150_456, 59_000)
            ]
        );
    }

    #[test]
    fn an_older_reading_delivered_late_never_hides_the_newer_one() {
        let mut r = vec![reading("bed-1", 1, 2_000), reading("bed-1", 1, 1_000)];
        fold_readings(&mut r);
        assert_eq!(r.iter().map(|r| r.received_ms).collect::<Vec<_>>(), [2_000]);
    }

    #[test]
    fn the_new_stays_value_is_kept_beside_the_last_of_the_stay_that_ended() {
        // A discharge and a new admission within one batch: which stay the bed
        // has is the screen's to judge (it may not have the new bed list yet).
        let old = |t| ReadingView { admission: Some("stay-a".into()), ..reading("bed-1", 1, t) };
        let new = |t| ReadingView { admission: Some("stay-b".into()), ..reading("bed-1", 1, t) };
        let mut r = vec![old(1_000), old(2_000), new(3_000), new(4_000), old(2_500)];
        fold_readings(&mut r);
        let got: Vec<_> = r.iter().map(|r| (r.admission.as_deref(), r.received_ms)).collect();
        assert_eq!(got, [(Some("stay-b"), 4_000), (Some("stay-a"), 2_500)]);
    }

    /// The screen's rule (`ui/src/state.ts` `putReading`): a reading of another
    /// stay than the bed's current one is dropped; otherwise the newest (a later
    /// one on a tie) per bed and code is shown.
    fn screen(stays: &HashMap<String, Option<String>>, readings: &[ReadingView]) -> HashMap<(String, u32), ReadingView> {
        let mut shown: HashMap<(String, u32), ReadingView> = HashMap::new();
        for r in readings {
            if r.admission.is_some() && r.admission != stays.get(&r.bed).cloned().flatten() {
                continue;
            }
            let key = (r.bed.clone(), r.mdc);
            if shown.get(&key).is_none_or(|p| r.received_ms >= p.received_ms) {
                shown.insert(key, r.clone());
            }
        }
        shown
    }

    proptest::proptest! {
        /// Whatever the screen would show from every reading, it shows from the folded ones.
        #[test]
        fn folding_never_changes_what_the_screen_shows(
            raw in proptest::collection::vec((0..3usize, 0..3u32, 0..3usize, 0..50i64, 0..1000u32), 0..200),
            current in proptest::collection::vec(0..3usize, 3),
        ) {
            let stay = |s: usize| (s > 0).then(|| format!("stay-{s}"));
            let readings: Vec<ReadingView> = raw
                .iter()
                .map(|&(bed, mdc, s, t, v)| ReadingView {
                    value: Some(f64::from(v)),
                    admission: stay(s),
                    ..reading(&format!("bed-{bed}"), mdc, t)
                })
                .collect();
            let stays: HashMap<String, Option<String>> =
                current.iter().enumerate().map(|(b, &s)| (format!("bed-{b}"), stay(s))).collect();
            let mut folded = readings.clone();
            fold_readings(&mut folded);
            proptest::prop_assert_eq!(screen(&stays, &folded), screen(&stays, &readings));
            // And nothing is kept twice for one bed, code and stay.
            let mut keys: Vec<_> = folded.iter().map(|r| (r.bed.clone(), r.mdc, r.admission.clone())).collect();
            let n = keys.len();
            keys.sort();
            keys.dedup();
            proptest::prop_assert_eq!(keys.len(), n);
        }
    }
}
