//! The MQTT publisher (issue 17, `vigil-mqtt`) for the gateway and the app: where to from
//! `vigil gateway --mqtt <url> --mqtt-site <site> --mqtt-ward <ward>` or site.json `mqtt`
//! (TLS files and credentials only from site.json; the password from the variable it names).

use std::sync::Arc;
use vigil_core::site::SiteConfig;
use vigil_core::Vigil;
use vigil_mqtt::{Broker, Publisher, PublisherConfig};

/// The command line's choices (all optional: site.json fills what they leave out).
#[derive(Debug, Clone, Default)]
pub struct MqttFlags {
    pub url: Option<String>,
    pub site: Option<String>,
    pub ward: Option<String>,
}

/// What to publish where, or None when neither the flags nor site.json ask for it.
pub fn config(flags: &MqttFlags, site: &SiteConfig) -> Result<Option<PublisherConfig>, String> {
    let from_site = site.mqtt.as_ref();
    let Some(url) = flags.url.clone().or_else(|| from_site.map(|m| m.broker.clone())) else {
        if flags.site.is_some() || flags.ward.is_some() {
            return Err("--mqtt-site and --mqtt-ward need --mqtt <url> (or mqtt.broker in site.json)".into());
        }
        return Ok(None);
    };
    vigil_core::site::check_mqtt_broker(&url)?;
    let name = |flag: &Option<String>, from: Option<&String>, what: &str| {
        flag.clone()
            .or_else(|| from.cloned())
            .ok_or_else(|| format!("--mqtt needs --mqtt-{what} (or mqtt.{what} in site.json)"))
    };
    let site_name = name(&flags.site, from_site.map(|m| &m.site), "site")?;
    let ward = name(&flags.ward, from_site.map(|m| &m.ward), "ward")?;
    let mut broker = match from_site {
        Some(m) => Broker::from_site(m).map_err(|e| e.to_string())?,
        None => Broker::new(url.clone()),
    };
    broker.url = url;
    Ok(Some(PublisherConfig::new(broker, site_name, ward)))
}

/// Starts publishing when configured, with where to (broker and topic root, never a
/// credential) for the operator.
pub fn start(
    vigil: &Arc<Vigil>,
    flags: &MqttFlags,
    site: &SiteConfig,
) -> Result<Option<(Publisher, String)>, String> {
    let Some(cfg) = config(flags, site)? else {
        return Ok(None);
    };
    let (url, root) = (
        cfg.broker.url.clone(),
        format!("vigil/{}/{}/", cfg.site, cfg.ward),
    );
    let p = Publisher::start(vigil.clone(), cfg).map_err(|e| e.to_string())?;
    tracing::info!(broker = %url, topics = %root, "mqtt: publishing the ward");
    Ok(Some((p, format!("{url} under {root}"))))
}
