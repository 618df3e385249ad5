//! One assigned device's link: connect, set up, stream, and reconnect.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use btleplug::api::{CentralEvent, CentralState, CharPropFlags, Characteristic, Peripheral as _, WriteType};
use btleplug::platform::Peripheral;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use uuid::Uuid;
use vigil_model::{DeviceId, LinkState};

use super::backoff::Backoff;
use super::central::{lookup, Out, Shared, Stop, POLL};
use super::profile::{self, Profile};
use super::{device_id, security, Assignment, BleError};
use crate::{DeviceEvent, DeviceKind};

/// Why a connection attempt or session ended early.
enum Fail {
    Stop(Stop),
    Ble(BleError),
}

impl From<Stop> for Fail {
    fn from(s: Stop) -> Self {
        Fail::Stop(s)
    }
}

impl From<BleError> for Fail {
    fn from(e: BleError) -> Self {
        Fail::Ble(e)
    }
}

impl From<btleplug::Error> for Fail {
    fn from(e: btleplug::Error) -> Self {
        Fail::Ble(e.into())
    }
}

pub(crate) struct Link {
    shared: Arc<Shared>,
    /// This link's own way out: its `cancel` is a child of the source's, so
    /// the link can be stopped alone (a device detached) or with the rest.
    out: Out,
    address: String,
    id: DeviceId,
    kind: DeviceKind,
    profile: Profile,
    /// The last state sent, so that only changes are reported.
    state: Option<LinkState>,
    /// When the current (or last) link came up.
    up_since: Option<Instant>,
}

impl Link {
    pub fn new(shared: Arc<Shared>, out: Out, a: Assignment, initial: Option<LinkState>) -> Self {
        let profile = profile::profile(a.kind).expect("BleSource::new checked every kind has a profile");
        Link {
            shared,
            out,
            id: device_id(&a.address),
            address: a.address,
            kind: a.kind,
            profile,
            state: initial,
            up_since: None,
        }
    }

    pub async fn run(mut self) -> Result<(), Stop> {
        let cfg = &self.shared.cfg;
        let mut backoff = Backoff::new(cfg.backoff_min, cfg.backoff_max);
        let stable_after = cfg.backoff_max;
        let mut powered = self.shared.powered.clone();
        loop {
            if !*powered.borrow_and_update() {
                self.set(LinkState::AdapterOff).await?;
                while !*powered.borrow_and_update() {
                    self.cancellable(power_change(&mut powered)).await?;
                }
                // The adapter is back: don't make devices wait out a long
                // backoff earned while it was off.
                backoff.reset();
            }
            self.set(LinkState::Connecting).await?;
            match self.attempt(&mut backoff).await {
                Ok(()) => tracing::info!(device = %self.id, "link lost"),
                Err(Fail::Stop(stop)) => return Err(stop),
                Err(Fail::Ble(e)) => tracing::warn!(device = %self.id, error = %e, "connection failed"),
            }
            // A link that stayed up a while earned a quick reconnect even if
            // it never sent (spot-check devices are quiet for hours).
            if self.up_since.take().is_some_and(|t| t.elapsed() >= stable_after) {
                backoff.reset();
            }
            let down = if *powered.borrow() {
                LinkState::Disconnected
            } else {
                LinkState::AdapterOff
            };
            self.set(down).await?;
            let delay = backoff.next_delay();
            tracing::debug!(device = %self.id, delay_ms = delay.as_millis() as u64, "reconnecting after delay");
            tokio::select! {
                _ = self.out.sleep(delay) => {}
                // Any power change cuts the wait short; the loop head sorts it out.
                _ = power_change(&mut powered) => {}
            }
            if self.out.cancel.is_cancelled() {
                return Err(Stop::Cancelled);
            }
        }
    }

    /// One connection, from finding the device to losing it. `Ok` means the
    /// link was up and went down.
    async fn attempt(&mut self, backoff: &mut Backoff) -> Result<(), Fail> {
        let p = self.find().await?;
        // A fresh subscription: events about an earlier connection (its
        // disconnect) must not end this one.
        let mut events = self.shared.events.subscribe();
        let connect_timeout = self.shared.cfg.connect_timeout;
        if let Err(e) = self.timed(connect_timeout, "connect", p.connect()).await {
            // A connect that timed out may still be pending in the stack:
            // cancel it, so the next attempt starts from scratch.
            let _ = tokio::time::timeout(Duration::from_secs(3), p.disconnect()).await;
            return Err(e);
        }
        let result = self.session(&p, &mut events, backoff).await;
        let link_down = matches!(result, Ok(()));
        if !link_down {
            // Setup failed or we are stopping: leave the device free (it stops
            // advertising while connected) and start clean next time.
            let _ = tokio::time::timeout(Duration::from_secs(3), p.disconnect()).await;
        }
        result
    }

    /// Finds the peripheral, scanning only while the platform does not know it.
    async fn find(&self) -> Result<Peripheral, Fail> {
        let adapter = &self.shared.adapter;
        if let Some(p) = lookup(adapter, &self.address).await? {
            return Ok(p);
        }
        self.shared.scanner.want(&self.address).await;
        let deadline = tokio::time::Instant::now() + self.shared.cfg.find_timeout;
        let found = async {
            loop {
                if let Some(p) = lookup(adapter, &self.address).await? {
                    return Ok(p);
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(Fail::Ble(BleError::NotFound(self.address.clone())));
                }
                self.out.sleep(POLL).await?;
            }
        }
        .await;
        self.shared.scanner.release(&self.address).await;
        found
    }

    async fn session(
        &mut self,
        p: &Peripheral,
        events: &mut tokio::sync::broadcast::Receiver<CentralEvent>,
        backoff: &mut Backoff,
    ) -> Result<(), Fail> {
        let gatt = self.shared.cfg.gatt_timeout;
        self.timed(gatt, "service discovery", p.discover_services())
            .await?;
        self.set(LinkState::Connected).await?;
        self.up_since = Some(Instant::now());
        // Link security first: the core decides from it (and the site's
        // policy) whether this link's data may be taken at all.
        let bonded = self.cancellable(security::bonded(p)).await?;
        let at = self.out.clock.now();
        self.out
            .send(DeviceEvent::Security {
                device: self.id.clone(),
                bonded,
                at,
            })
            .await?;
        let chars: Vec<Characteristic> = p.characteristics().into_iter().collect();

        // Device information and battery first (reads): the pipeline learns
        // who the device is before its first value.
        for uuid16 in profile::DEVICE_INFO.into_iter().chain([profile::BATTERY_LEVEL]) {
            let Some(c) = find_char(&chars, uuid16, CharPropFlags::READ) else {
                continue;
            };
            match self.timed(gatt, "read", p.read(c)).await {
                Ok(bytes) => self.payload(&c.uuid, bytes).await?,
                Err(Fail::Stop(s)) => return Err(s.into()),
                // Optional information: a failed read is logged, not fatal.
                Err(Fail::Ble(e)) => {
                    tracing::debug!(device = %self.id, char = %c.uuid, error = %e, "read failed")
                }
            }
        }

        // The device's clock, before any stored record is asked for: the core
        // needs the clock offset to place records on the gateway's clock.
        self.read_current_time(p, &chars).await?;

        // Open the notification stream only now: on BlueZ a read also shows
        // up on it (bluetoothd signals the refreshed value), and the reads
        // were already sent above. Only subscribed characteristics are
        // forwarded from it, for the same reason.
        let mut notes = p.notifications().await?;
        let notify = CharPropFlags::NOTIFY | CharPropFlags::INDICATE;
        let mut subscribed: HashSet<Uuid> = HashSet::new();
        for &uuid16 in self.profile.measurements {
            if let Some(c) = find_char(&chars, uuid16, notify) {
                self.timed(gatt, "subscribe", p.subscribe(c)).await?;
                subscribed.insert(c.uuid);
            }
        }
        if subscribed.is_empty() {
            return Err(BleError::Missing {
                device: self.address.clone(),
                what: "the measurement characteristics of its profile".into(),
            }
            .into());
        }
        if let Some(c) = find_char(&chars, profile::BATTERY_LEVEL, notify) {
            match self.timed(gatt, "subscribe", p.subscribe(c)).await {
                Ok(()) => {
                    subscribed.insert(c.uuid);
                }
                Err(Fail::Stop(s)) => return Err(s.into()),
                Err(Fail::Ble(e)) => {
                    tracing::debug!(device = %self.id, error = %e, "battery notifications unavailable")
                }
            }
        }
        if self.profile.racp {
            self.request_stored_records(p, &chars, &mut subscribed).await?;
        }

        let mut check = tokio::time::interval(self.shared.cfg.link_check_every);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        check.tick().await;
        let mut receiving = false;
        let cancel = self.out.cancel.clone();
        loop {
            // Biased: a notification queued before the disconnect event was
            // sent before the link went down, so it is still forwarded.
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Stop::Cancelled.into()),
                note = notes.next() => match note {
                    Some(n) if subscribed.contains(&n.uuid) => {
                        self.notification(n.uuid, n.value, &mut receiving, backoff).await?;
                    }
                    Some(n) => self.unsubscribed(n.uuid).await?,
                    // Not expected (btleplug streams outlive links), but an
                    // ended stream can deliver nothing more: reconnect.
                    None => return Ok(()),
                },
                event = events.recv() => match event {
                    Ok(CentralEvent::DeviceDisconnected(id)) if id == p.id() => return Ok(()),
                    Ok(CentralEvent::StateUpdate(CentralState::PoweredOff)) => return Ok(()),
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        if !matches!(p.is_connected().await, Ok(true)) {
                            return Ok(());
                        }
                    }
                    Err(RecvError::Closed) => return Ok(()),
                },
                _ = check.tick() => {
                    if !matches!(p.is_connected().await, Ok(true)) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Reads Current Time (CTS 1.1 §3.1, 0x2A2B in service 0x1805) where the
    /// device offers it readable, and forwards it like the DIS reads. It is
    /// stamped with the middle of the read (the device answers somewhere in
    /// between), so the core's clock offset is not biased by the read's
    /// round trip. Optional: a failed read is logged, not fatal.
    async fn read_current_time(&self, p: &Peripheral, chars: &[Characteristic]) -> Result<(), Fail> {
        let Some(c) = chars.iter().find(|c| {
            profile::short(&c.uuid) == Some(profile::CURRENT_TIME)
                && profile::short(&c.service_uuid) == Some(profile::CURRENT_TIME_SERVICE)
                && c.properties.contains(CharPropFlags::READ)
        }) else {
            return Ok(());
        };
        let clock = &self.out.clock;
        let before = clock.now();
        match self.timed(self.shared.cfg.gatt_timeout, "read", p.read(c)).await {
            Ok(bytes) => {
                let after = clock.now();
                let at = before + (after - before) / 2;
                self.payload_at(&c.uuid, bytes, at).await?;
            }
            Err(Fail::Stop(s)) => return Err(s.into()),
            Err(Fail::Ble(e)) => {
                tracing::debug!(device = %self.id, error = %e, "current time read failed")
            }
        }
        Ok(())
    }

    /// Glucose: enable RACP indications and ask for every stored record
    /// (GLS 1.0 §3.3.2.8). The records then arrive as Glucose Measurement
    /// notifications; all are forwarded, duplicates included (see the module
    /// docs: de-duplication by sequence number is the core's job).
    async fn request_stored_records(
        &self,
        p: &Peripheral,
        chars: &[Characteristic],
        subscribed: &mut HashSet<Uuid>,
    ) -> Result<(), Fail> {
        let gatt = self.shared.cfg.gatt_timeout;
        let Some(racp) = chars
            .iter()
            .find(|c| profile::short(&c.uuid) == Some(profile::RACP))
        else {
            tracing::warn!(device = %self.id, "glucose meter without a Record Access Control Point");
            return Ok(());
        };
        let result = async {
            self.timed(gatt, "subscribe", p.subscribe(racp)).await?;
            subscribed.insert(racp.uuid);
            let write = p.write(racp, &profile::RACP_REPORT_ALL, WriteType::WithResponse);
            self.timed(gatt, "write RACP", write).await
        }
        .await;
        match result {
            Err(Fail::Ble(e)) => {
                // Live measurements still work without the download.
                tracing::warn!(device = %self.id, error = %e, "stored-record request failed");
                Ok(())
            }
            other => other,
        }
    }

    async fn notification(
        &mut self,
        uuid: Uuid,
        bytes: Vec<u8>,
        receiving: &mut bool,
        backoff: &mut Backoff,
    ) -> Result<(), Stop> {
        let short = profile::short(&uuid);
        if short == Some(profile::RACP) {
            // RACP response: [0x06, operator, request op code, response code].
            let code = match bytes.as_slice() {
                [0x06, _, _, code] => Some(*code),
                _ => None,
            };
            tracing::info!(device = %self.id, response_code = ?code, "stored-record transfer finished");
            return Ok(());
        }
        let is_measurement = short.is_some_and(|s| self.profile.measurements.contains(&s));
        if is_measurement && !*receiving {
            // "Receiving" is a promise that values are arriving: made on the
            // first live measurement that carries one, not on a malformed
            // payload (the core's watchdog only ages data it has seen), nor
            // on a stored record (a glucose record may be days old: the core
            // decides from its age whether it is fresh). Either kind of value
            // earns a quick reconnect.
            let decoded = vigil_gatt::Characteristic::from_uuid_str(&uuid.to_string())
                .ok()
                .and_then(|ch| vigil_gatt::decode(ch, &bytes).ok())
                .filter(|d| !d.measurements.is_empty());
            if let Some(d) = decoded {
                backoff.reset();
                if d.sequence.is_none() {
                    *receiving = true;
                    self.set(LinkState::Receiving).await?;
                }
            }
        }
        self.payload(&uuid, bytes).await
    }

    /// A value of a characteristic this link did not subscribe to. One its
    /// kind may send is the echo of a read or write (BlueZ signals refreshed
    /// values on the same stream): ignored, as it was already forwarded. Any
    /// other (an "HR strap" notifying SpO2) is refused and reported, never
    /// forwarded as a payload: only the assigned kind's profile is accepted.
    async fn unsubscribed(&self, uuid: Uuid) -> Result<(), Stop> {
        let allowed = vigil_gatt::Characteristic::from_uuid_str(&uuid.to_string())
            .is_ok_and(|ch| crate::accepts(self.kind, ch));
        // GATT's own Service Changed (0x2A05) is the stack's business, not a value.
        if allowed || profile::short(&uuid) == Some(profile::SERVICE_CHANGED) {
            return Ok(());
        }
        tracing::debug!(device = %self.id, char = %uuid, "value outside the assigned profile refused");
        let at = self.out.clock.now();
        self.out
            .send(DeviceEvent::Refused {
                device: self.id.clone(),
                characteristic: uuid.to_string(),
                at,
            })
            .await
    }

    /// Forwards a value as a payload of its characteristic, undecoded.
    async fn payload(&self, uuid: &Uuid, bytes: Vec<u8>) -> Result<(), Stop> {
        let received = self.out.clock.now();
        self.payload_at(uuid, bytes, received).await
    }

    /// [`Self::payload`] stamped with `received`.
    async fn payload_at(&self, uuid: &Uuid, bytes: Vec<u8>, received: DateTime<Utc>) -> Result<(), Stop> {
        let Ok(characteristic) = vigil_gatt::Characteristic::from_uuid_str(&uuid.to_string()) else {
            tracing::debug!(device = %self.id, char = %uuid, "value of an unknown characteristic ignored");
            return Ok(());
        };
        self.out
            .send(DeviceEvent::Payload {
                device: self.id.clone(),
                characteristic,
                bytes,
                received,
            })
            .await
    }

    async fn set(&mut self, state: LinkState) -> Result<(), Stop> {
        if self.state == Some(state) {
            return Ok(());
        }
        self.state = Some(state);
        let at = self.out.clock.now();
        tracing::debug!(device = %self.id, ?state, "link state");
        self.out
            .send(DeviceEvent::Link {
                device: self.id.clone(),
                state,
                at,
            })
            .await
    }

    async fn cancellable<T>(&self, fut: impl Future<Output = T>) -> Result<T, Stop> {
        tokio::select! {
            _ = self.out.cancel.cancelled() => Err(Stop::Cancelled),
            v = fut => Ok(v),
        }
    }

    /// A btleplug operation with a deadline, abandoned on cancel.
    async fn timed<T>(
        &self,
        limit: Duration,
        what: &'static str,
        fut: impl Future<Output = btleplug::Result<T>>,
    ) -> Result<T, Fail> {
        match self.cancellable(tokio::time::timeout(limit, fut)).await? {
            Ok(r) => Ok(r?),
            Err(_) => Err(BleError::Timeout(what).into()),
        }
    }
}

/// The characteristic with this 16-bit UUID that has one of `flags`.
fn find_char(chars: &[Characteristic], uuid16: u16, flags: CharPropFlags) -> Option<&Characteristic> {
    chars
        .iter()
        .find(|c| profile::short(&c.uuid) == Some(uuid16) && c.properties.intersects(flags))
}

/// Resolves on the next power change; never, if the adapter watcher is gone
/// (the source is stopping then).
async fn power_change(rx: &mut watch::Receiver<bool>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}
