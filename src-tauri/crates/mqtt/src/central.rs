//! The central station's broker wards (issue 17, site.json `central.mqtt`): a [`Mirror`] of
//! the site and what the central station page gets from it ([`BrokerWardsView`]). The shell
//! (`vigil central`) only starts this and hands [`CentralMirror::view`] to the page.
//!
//! The rules the page relies on are decided here: every configured ward is present whether
//! or not the broker has anything of it (a ward down since before the central station
//! started is as visible as one that went down: `unknown`, lost), and a ward's liveness is
//! the mirror's, so only a positively alive ward reads `online`.

use std::time::Duration;

use vigil_core::central::{BrokerLiveness, BrokerWardView, BrokerWardsView, CentralMqtt};
use vigil_core::view::WardSnapshot;

use crate::{Broker, Liveness, Mirror, MirrorConfig, MirrorWard, MqttError};

impl From<Liveness> for BrokerLiveness {
    fn from(l: Liveness) -> Self {
        match l {
            Liveness::Online => BrokerLiveness::Online,
            Liveness::Offline => BrokerLiveness::Offline,
            Liveness::Silent => BrokerLiveness::Silent,
            Liveness::Unknown => BrokerLiveness::Unknown,
            Liveness::NoBroker => BrokerLiveness::NoBroker,
        }
    }
}

impl From<MirrorWard> for BrokerWardView {
    fn from(w: MirrorWard) -> Self {
        BrokerWardView {
            ward: w.ward,
            liveness: w.liveness.into(),
            heard_ms: w.heard_ms,
            snapshot: w.snapshot,
        }
    }
}

/// The mirror of `central.mqtt`'s site, with the wards to show.
pub struct CentralMirror {
    mirror: Mirror,
    broker: String,
    site: String,
    wards: Option<Vec<String>>,
}

impl CentralMirror {
    /// Starts the mirror (needs a Tokio runtime). An error: the password variable named is
    /// not set, a TLS file does not load, the section does not check.
    pub fn start(cfg: &CentralMqtt) -> Result<CentralMirror, MqttError> {
        Self::start_with(cfg, None)
    }

    /// As [`CentralMirror::start`], with another silence timeout than the mirror's (tests).
    pub fn start_with(cfg: &CentralMqtt, silent_after: Option<Duration>) -> Result<CentralMirror, MqttError> {
        cfg.check().map_err(MqttError::Config)?;
        let mut mc = MirrorConfig::new(Broker::from_central(cfg)?, cfg.site.clone());
        if let Some(d) = silent_after {
            mc.silent_after = d;
        }
        Ok(CentralMirror {
            mirror: Mirror::start(mc)?,
            broker: cfg.broker.clone(),
            site: cfg.site.clone(),
            wards: cfg.wards.clone(),
        })
    }

    /// What the page shows now: the configured wards in their order (one the broker has
    /// nothing of: `unknown`, or `no_broker` while the mirror is not connected), or every
    /// ward of the site heard of, by name.
    pub fn view(&self) -> BrokerWardsView {
        let connected = self.mirror.connected();
        let wards = match &self.wards {
            Some(list) => list
                .iter()
                .map(|name| match self.mirror.ward(name) {
                    Some(w) => w.into(),
                    None => BrokerWardView {
                        ward: name.clone(),
                        liveness: if connected {
                            BrokerLiveness::Unknown
                        } else {
                            BrokerLiveness::NoBroker
                        },
                        heard_ms: None,
                        snapshot: empty_snapshot(),
                    },
                })
                .collect(),
            None => self.mirror.wards().into_iter().map(Into::into).collect(),
        };
        BrokerWardsView {
            broker: self.broker.clone(),
            site: self.site.clone(),
            connected,
            error: None,
            wards,
        }
    }

    /// The view when the mirror could not start: no ward read, and why.
    pub fn failed(cfg: &CentralMqtt, error: &MqttError) -> BrokerWardsView {
        BrokerWardsView {
            broker: cfg.broker.clone(),
            site: cfg.site.clone(),
            connected: false,
            error: Some(error.to_string()),
            wards: cfg
                .wards
                .iter()
                .flatten()
                .map(|name| BrokerWardView {
                    ward: name.clone(),
                    liveness: BrokerLiveness::NoBroker,
                    heard_ms: None,
                    snapshot: empty_snapshot(),
                })
                .collect(),
        }
    }

    pub fn mirror(&self) -> &Mirror {
        &self.mirror
    }

    pub async fn stop(self) {
        self.mirror.stop().await;
    }
}

fn empty_snapshot() -> WardSnapshot {
    WardSnapshot {
        now_ms: 0,
        beds: Vec::new(),
        devices: Vec::new(),
        latest: Vec::new(),
        alarms: Vec::new(),
        news2: Vec::new(),
    }
}
