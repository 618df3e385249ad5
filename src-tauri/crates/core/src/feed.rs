//! The live feed's messages (schema [`SCHEMA`], `docs/feed.md`): what a central station or an
//! integration engine receives over WebSocket (`vigil-feed`) and what it may send back.
//! The payloads are the screen's own view types ([`WardSnapshot`], [`WardUpdate`]); the
//! envelope adds a per-connection sequence number so a client can tell a gap. TypeScript
//! types are generated into `ui/src/generated` like the screen's.

use crate::auth::SessionView;
use crate::view::{WardSnapshot, WardUpdate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use ts_rs::TS;

/// The feed's schema version, in every snapshot. Raised when a message changes in a way
/// an existing client would misread (a field removed or its meaning changed).
pub const SCHEMA: u32 = 1;

/// Suffix of the acting user's name for commands from a central station: the bedside
/// shows "acknowledged at central by <user>", the alarm log and audit trail record it.
pub const CENTRAL_ORIGIN: &str = "central";

/// Which station the feed comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct StationInfo {
    /// The site's feed name, else the host name.
    pub name: String,
    /// Vigil's version.
    pub version: String,
}

/// Server → client. Every message carries `seq`: per connection, 1 for the first, +1 for
/// each next one; a client that sees a gap sends `resync`. Serialised only: its payloads
/// are the screen's view types (clients parse JSON, the UI through the generated types).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum FeedMessage {
    /// Everything about the subscribed beds: first after connecting, after `subscribe`
    /// and `resync`, and in place of updates a slow client could not take.
    Snapshot {
        seq: u64,
        schema: u32,
        station: StationInfo,
        ward: WardSnapshot,
    },
    /// Changes since the last message: every 250 ms (a heartbeat even if empty, so
    /// silence means a lost feed), alarm changes at once.
    Update { seq: u64, update: WardUpdate },
    /// The answer to a command (or to a message that could not be read).
    Result {
        seq: u64,
        /// The command's `id`; null when the message could not be read.
        request: Option<String>,
        ok: bool,
        /// Why not, readable by a person (never patient data).
        error: Option<String>,
        /// `acknowledge`: how many alarms were acknowledged.
        acknowledged: Option<u32>,
        /// `sign_in`: the connection's session.
        session: Option<SessionView>,
    },
}

impl FeedMessage {
    pub fn seq(&self) -> u64 {
        match self {
            FeedMessage::Snapshot { seq, .. }
            | FeedMessage::Update { seq, .. }
            | FeedMessage::Result { seq, .. } => *seq,
        }
    }
}

/// Client → server.
#[derive(Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum FeedCommand {
    /// Choose beds (empty: all); answered by a snapshot of them.
    Subscribe {
        #[serde(default)]
        beds: Vec<String>,
    },
    /// Send a fresh snapshot (after a `seq` gap).
    Resync,
    /// Sign a user in for this connection only (never the bedside workstation's session).
    SignIn {
        id: String,
        user: String,
        password: String,
    },
    SignOut {
        id: String,
    },
    /// Acknowledge the alarms with these ids at `bed` (the ones the central station showed).
    Acknowledge {
        id: String,
        bed: String,
        alarms: Vec<u64>,
    },
    /// Pause alarm audio at `bed` (time-limited, IEC 60601-1-8 §6.8).
    PauseAudio {
        id: String,
        bed: String,
    },
}

// No derived Debug: a sign-in carries a password.
impl std::fmt::Debug for FeedCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl FeedCommand {
    /// The command's type, as in its JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            FeedCommand::Subscribe { .. } => "subscribe",
            FeedCommand::Resync => "resync",
            FeedCommand::SignIn { .. } => "sign_in",
            FeedCommand::SignOut { .. } => "sign_out",
            FeedCommand::Acknowledge { .. } => "acknowledge",
            FeedCommand::PauseAudio { .. } => "pause_audio",
        }
    }

    /// The client's id of the command (answered in `result.request`).
    pub fn id(&self) -> Option<&str> {
        match self {
            FeedCommand::Subscribe { .. } | FeedCommand::Resync => None,
            FeedCommand::SignIn { id, .. }
            | FeedCommand::SignOut { id }
            | FeedCommand::Acknowledge { id, .. }
            | FeedCommand::PauseAudio { id, .. } => Some(id),
        }
    }
}

/// The beds a client chose: all, or a set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BedFilter(Option<BTreeSet<String>>);

impl BedFilter {
    /// Every bed.
    pub fn all() -> BedFilter {
        BedFilter(None)
    }

    /// These beds; an empty list means every bed.
    pub fn beds<I: IntoIterator<Item = S>, S: Into<String>>(beds: I) -> BedFilter {
        let set: BTreeSet<String> = beds.into_iter().map(Into::into).collect();
        BedFilter((!set.is_empty()).then_some(set))
    }

    /// From a query string's `beds=bed-1,bed-3` value (absent or empty: every bed).
    pub fn from_query(query: Option<&str>) -> BedFilter {
        let beds = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter_map(|kv| kv.strip_prefix("beds="))
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(String::from);
        BedFilter::beds(beds)
    }

    pub fn wants(&self, bed: &str) -> bool {
        self.0.as_ref().is_none_or(|s| s.contains(bed))
    }

    /// The snapshot with only the chosen beds.
    pub fn snapshot(&self, mut s: WardSnapshot) -> WardSnapshot {
        if self.0.is_some() {
            s.beds.retain(|b| self.wants(&b.bed));
            s.devices.retain(|d| self.wants(&d.bed));
            s.latest.retain(|r| self.wants(&r.bed));
            s.alarms.retain(|a| self.wants(&a.bed));
            s.news2.retain(|n| self.wants(&n.bed));
        }
        s
    }

    /// The update with only the chosen beds (the heartbeat's `now_ms` always).
    pub fn update(&self, mut u: WardUpdate) -> WardUpdate {
        if self.0.is_some() {
            if let Some(beds) = u.beds.as_mut() {
                beds.retain(|b| self.wants(&b.bed));
            }
            u.devices.retain(|d| self.wants(&d.bed));
            u.readings.retain(|r| self.wants(&r.bed));
            u.alarms.retain(|a| self.wants(&a.bed));
            u.news2.retain(|n| self.wants(&n.bed));
        }
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_read_as_documented() {
        let c: FeedCommand =
            serde_json::from_str(r#"{"type":"acknowledge","id":"c1","bed":"bed-1","alarms":[12,13]}"#)
                .unwrap();
        assert_eq!(
            c,
            FeedCommand::Acknowledge {
                id: "c1".into(),
                bed: "bed-1".into(),
                alarms: vec![12, 13]
            }
        );
        let c: FeedCommand = serde_json::from_str(r#"{"type":"subscribe"}"#).unwrap();
        assert_eq!(c, FeedCommand::Subscribe { beds: vec![] });
        assert!(serde_json::from_str::<FeedCommand>(r#"{"type":"resync"}"#).is_ok());
        assert!(serde_json::from_str::<FeedCommand>(r#"{"type":"discharge","bed":"bed-1"}"#).is_err());
        // A password never reaches a log through Debug.
        let c: FeedCommand = serde_json::from_str(
            r#"{"type":"sign_in","id":"c0","user":"nurse.kim","password":"secret-words-here"}"#,
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn bed_query_chooses_beds() {
        let f = BedFilter::from_query(Some("beds=bed-1,bed-3"));
        assert!(f.wants("bed-1") && f.wants("bed-3") && !f.wants("bed-2"));
        assert_eq!(BedFilter::from_query(None), BedFilter::all());
        assert_eq!(BedFilter::from_query(Some("beds=")), BedFilter::all());
    }

    #[test]
    fn envelope_is_tagged_with_seq() {
        let m = FeedMessage::Update {
            seq: 7,
            update: WardUpdate::default(),
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["type"], "update");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["update"]["now_ms"], 0);
    }
}
