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

/// `"central"` in `site.json`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CentralSite {
    pub feeds: Vec<CentralFeed>,
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
