//! The central station's list of feeds (issue 17): `site.json`
//! `"central": {"feeds": [{"name": "Ward 3", "url": "wss://ward3.example.org:7443/feed",
//! "token_env": "VIGIL_FEED_TOKEN_WARD3"}]}`.
//!
//! The central station page (`ui/central.html`) opens one WebSocket per feed
//! (docs: `/work/briefs/feed-protocol.md`, later `docs/feed.md`). The token lives only
//! in the environment variable the entry names, never in the file; the variable must be
//! one of Vigil's feed variables so a site file cannot send e.g. `VIGIL_PASSPHRASE` to a
//! server it names. A feed is `wss://`, or plain `ws://` to 127.0.0.1 only (development
//! and tests; the app's CSP allows exactly `ws://127.0.0.1:*` and `wss:`).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// `"central"` in `site.json`: the stations watched over their feeds, and/or a site's
/// wards read from an MQTT broker (`mqtt`). At least one of the two.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CentralSite {
    #[serde(default)]
    pub feeds: Vec<CentralFeed>,
    /// Wards read from the broker instead of connecting to each bed (docs/mqtt.md).
    #[serde(default)]
    pub mqtt: Option<CentralMqtt>,
}

/// `"central": {"mqtt": {"broker": "mqtts://broker.example.org", "site": "north",
/// "wards": ["icu-3"], "ca": …, "client_cert": …, "client_key": …, "username": …,
/// "password_env": "VIGIL_MQTT_CENTRAL"}}`: the connection settings are the top-level
/// `mqtt` section's, checked by the same rules ([`crate::site::check_mqtt_connection`]).
/// Read only: commands over MQTT are not supported (no sign-in travels with a message).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CentralMqtt {
    pub broker: String,
    /// The topic level `vigil/<site>/…` whose wards are shown.
    pub site: String,
    /// The wards to show (each a topic level); None: every ward of the site the broker has.
    #[serde(default)]
    pub wards: Option<Vec<String>>,
    #[serde(default)]
    pub ca: Option<std::path::PathBuf>,
    #[serde(default)]
    pub client_cert: Option<std::path::PathBuf>,
    #[serde(default)]
    pub client_key: Option<std::path::PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    /// The variable holding the password: `VIGIL_MQTT_<NAME>`.
    #[serde(default)]
    pub password_env: Option<String>,
}

/// More wards than a nurse can watch on one screen is a configuration mistake.
pub const MAX_MQTT_WARDS: usize = 64;

impl CentralMqtt {
    /// The section as untrusted input; the message names the field.
    pub fn check(&self) -> Result<(), String> {
        crate::site::check_mqtt_connection(
            "central.mqtt",
            &self.broker,
            self.client_cert.is_some(),
            self.client_key.is_some(),
            self.password_env.as_deref(),
        )
        // Name the section: the broker's own messages say only "mqtt broker …".
        .map_err(|e| if e.starts_with("central.mqtt") { e } else { format!("central.mqtt: {e}") })?;
        crate::site::check_topic_segment("site", &self.site).map_err(|e| format!("central.mqtt: {e}"))?;
        if let Some(wards) = &self.wards {
            if wards.is_empty() || wards.len() > MAX_MQTT_WARDS {
                return Err(format!(
                    "central.mqtt.wards: 1 to {MAX_MQTT_WARDS} wards (leave it out to show every ward of the site)"
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for w in wards {
                crate::site::check_topic_segment("ward", w).map_err(|e| format!("central.mqtt.wards: {e}"))?;
                if !seen.insert(w.as_str()) {
                    return Err(format!("central.mqtt.wards: {w:?} is listed twice"));
                }
            }
        }
        Ok(())
    }
}

/// One station the central station watches.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CentralFeed {
    /// Shown on every bed of the station ("Ward 3"), and in "FEED LOST — station Ward 3".
    pub name: String,
    /// `wss://host:port/feed`, or `ws://127.0.0.1:port/feed`.
    pub url: String,
    /// The environment variable holding the feed token (`VIGIL_FEED_TOKEN…`).
    pub token_env: String,
}

/// The prefix of the only environment variables a feed token may come from.
pub const FEED_TOKEN_ENV_PREFIX: &str = "VIGIL_FEED_TOKEN";

/// More stations than a nurse can watch on one screen is a configuration mistake.
pub const MAX_FEEDS: usize = 64;

impl CentralSite {
    /// Checks every entry; the message names the entry and what is wrong (no secrets).
    pub fn check(&self) -> Result<(), String> {
        if self.feeds.is_empty() && self.mqtt.is_none() {
            return Err("central: set feeds, mqtt, or both".into());
        }
        if let Some(m) = &self.mqtt {
            m.check()?;
        }
        if self.feeds.len() > MAX_FEEDS {
            return Err(format!("central.feeds: at most {MAX_FEEDS} feeds"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, f) in self.feeds.iter().enumerate() {
            let at = |m: String| format!("central.feeds[{i}]: {m}");
            let name = f.name.trim();
            if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
                return Err(at("name must be 1 to 64 printable characters".into()));
            }
            if !names.insert(name.to_string()) {
                return Err(at(format!("name {name:?} is used twice (each station is named on its beds)")));
            }
            check_url(&f.url).map_err(at)?;
            check_token_env(&f.token_env).map_err(at)?;
        }
        Ok(())
    }
}

/// `wss://` anywhere; `ws://` only to 127.0.0.1 (the feed server serves plain ws on
/// loopback only, and a token must never cross a network in the clear).
pub fn check_url(s: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(s).map_err(|e| format!("url is not a URL ({e})"))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err("url must not carry a user name or password (the token comes from token_env)".into());
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err("url must not have a ?query or #fragment".into());
    }
    match (u.scheme(), u.host()) {
        ("wss", Some(_)) => Ok(u),
        ("ws", Some(url::Host::Ipv4(a))) if a == std::net::Ipv4Addr::LOCALHOST => Ok(u),
        ("ws", _) => Err("url must use wss:// (plain ws:// only to 127.0.0.1, for tests)".into()),
        (s, _) => Err(format!("url must use wss://, not {s}")),
    }
}

fn check_token_env(name: &str) -> Result<(), String> {
    let ok = name.starts_with(FEED_TOKEN_ENV_PREFIX)
        && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "token_env must name a variable {FEED_TOKEN_ENV_PREFIX}… (capitals, digits, _), not {name:?}"
        ))
    }
}

/// A feed as the central station page gets it (`central_config`): the token read from
/// its variable now, or why there is none. Never logged.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct CentralFeedView {
    pub name: String,
    pub url: String,
    /// The token (RFC 6750 b64token minus `+/=`), None when the variable is unset or invalid.
    pub token: Option<String>,
    /// Why there is no token ("VIGIL_FEED_TOKEN_WARD3 is not set"); None when there is one.
    pub error: Option<String>,
}

/// Whether a ward read from the broker is alive, as far as the broker tells
/// (`vigil_mqtt::Liveness`). Anything but `online` is a lost ward at the central station.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum BrokerLiveness {
    /// Its status says online and it was heard recently.
    Online,
    /// Its status says offline: its last will (the broker lost it) or a clean stop.
    Offline,
    /// Online by its last status, but nothing heard for too long.
    Silent,
    /// Never heard its status (a configured ward the broker has nothing of, or values only).
    Unknown,
    /// The central station itself has no connection to the broker.
    NoBroker,
}

/// One ward read from the broker, as the central station page gets it.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct BrokerWardView {
    pub ward: String,
    pub liveness: BrokerLiveness,
    /// Epoch ms (this machine's clock) the ward was last heard live; None: never.
    pub heard_ms: Option<i64>,
    /// Its retained state: current when `online`, the last known (to grey) otherwise.
    pub snapshot: crate::view::WardSnapshot,
}

/// `central_mqtt`: the broker's wards (site.json `central.mqtt`), or why there are none.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct BrokerWardsView {
    /// The broker address (never a credential) and the site's topic level.
    pub broker: String,
    pub site: String,
    /// The mirror's own connection to the broker is up.
    pub connected: bool,
    /// The mirror could not start (a password variable not set, a TLS file that does not
    /// load): no ward is read, and the page says so.
    pub error: Option<String>,
    /// Configured wards first, in the configured order (each present even if the broker has
    /// nothing of it: as lost), then, when no list is configured, every ward heard of.
    pub wards: Vec<BrokerWardView>,
}

/// Token characters the browser can put in a `Sec-WebSocket-Protocol` value (`bearer.<token>`).
pub fn valid_token(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
}

impl CentralSite {
    /// Every feed with its token from the environment (`env` is `std::env::var` in the app).
    pub fn views(&self, env: impl Fn(&str) -> Option<String>) -> Vec<CentralFeedView> {
        self.feeds
            .iter()
            .map(|f| {
                let (token, error) = match env(&f.token_env) {
                    None => (None, Some(format!("{} is not set", f.token_env))),
                    Some(t) if !valid_token(&t) => {
                        (None, Some(format!("{} holds characters a feed token cannot have", f.token_env)))
                    }
                    Some(t) => (Some(t), None),
                };
                CentralFeedView {
                    name: f.name.trim().to_string(),
                    url: f.url.clone(),
                    token,
                    error,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(url: &str, env: &str) -> CentralSite {
        CentralSite {
            feeds: vec![CentralFeed {
                name: "Ward 3".into(),
                url: url.into(),
                token_env: env.into(),
            }],
            mqtt: None,
        }
    }

    #[test]
    fn tokens_cross_networks_only_over_tls() {
        assert!(site("wss://ward3.example.org:7443/feed", "VIGIL_FEED_TOKEN_WARD3").check().is_ok());
        assert!(site("ws://127.0.0.1:7000/feed", "VIGIL_FEED_TOKEN").check().is_ok());
        for bad in ["ws://10.0.0.5:7000/feed", "ws://localhost:7000/feed", "http://127.0.0.1/feed", "wss://u:p@h/feed"] {
            assert!(site(bad, "VIGIL_FEED_TOKEN").check().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_site_file_cannot_name_any_variable() {
        let e = site("wss://h/feed", "VIGIL_PASSPHRASE").check().unwrap_err();
        assert!(e.contains("token_env"), "{e}");
    }

    #[test]
    fn a_missing_or_unusable_token_is_said_per_feed() {
        let s = site("wss://h/feed", "VIGIL_FEED_TOKEN_WARD3");
        let v = s.views(|_| None);
        assert_eq!(v[0].token, None);
        assert_eq!(v[0].error.as_deref(), Some("VIGIL_FEED_TOKEN_WARD3 is not set"));
        let v = s.views(|_| Some("a b".into()));
        assert!(v[0].token.is_none() && v[0].error.is_some());
        let v = s.views(|_| Some("abc.DEF_~-1".into()));
        assert_eq!(v[0].token.as_deref(), Some("abc.DEF_~-1"));
    }
}
