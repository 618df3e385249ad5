//! Real bedside devices over Bluetooth LE: the assignments a nurse made
//! (remembered in the store) start a `BleSource` at start-up; a device added,
//! moved or removed later is attached to or detached from the running source
//! through its `BleControl`, so the other devices' links stay up. Its events
//! join the same pipeline as the simulated ward's, so nothing downstream
//! knows the difference.

use std::sync::Arc;
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;
use vigil_devices::ble::{Assignment, BleConfig, BleControl, BleError, BleSource};
use vigil_devices::{DeviceEvent, DeviceKind, DeviceSource};
use vigil_model::Clock;
use vigil_store::{DeviceAssignment, Store};

/// The BLE source: started from the store, changed one device at a time.
pub struct Bluetooth {
    store: Store,
    clock: Arc<dyn Clock>,
    events: mpsc::Sender<DeviceEvent>,
    cancel: CancellationToken,
    running: Mutex<Option<Running>>,
}

struct Running {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    control: BleControl,
}

/// The kind a nurse chose ("heart_rate_strap"), if Vigil can run it over
/// Bluetooth LE. Checked before an assignment is saved: a saved kind without
/// a GATT profile would keep the device from ever connecting.
pub fn kind_of(s: &str) -> Option<DeviceKind> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .ok()
        .filter(|k| vigil_devices::ble::supports(*k))
}

impl Bluetooth {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        events: mpsc::Sender<DeviceEvent>,
        cancel: CancellationToken,
    ) -> Self {
        Bluetooth {
            store,
            clock,
            events,
            cancel,
            running: Mutex::new(None),
        }
    }

    /// (Re)starts the source with the assignments in the store.
    pub async fn restart(&self) -> Result<(), String> {
        let mut running = self.running.lock().await;
        self.restart_locked(&mut running).await
    }

    async fn restart_locked(&self, running: &mut Option<Running>) -> Result<(), String> {
        let assignments: Vec<Assignment> = self
            .store
            .devices()
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .filter_map(|d: &DeviceAssignment| {
                kind_of(&d.kind).map(|k| Assignment::new(&d.address, &d.bed, k))
            })
            .collect();
        if let Some(r) = running.take() {
            r.cancel.cancel();
            let _ = r.task.await;
        }
        let source =
            BleSource::new(BleConfig::new(assignments, self.clock.clone())).map_err(|e| e.to_string())?;
        let control = source.control();
        let cancel = self.cancel.child_token();
        let tx = self.events.clone();
        let t = cancel.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = Box::new(source).run(tx, t).await {
                tracing::error!(error = %e, "Bluetooth source stopped");
            }
        });
        *running = Some(Running {
            cancel,
            task,
            control,
        });
        Ok(())
    }

    /// Attaches (or moves) one device on the running source, leaving the
    /// other links alone. Without a running source (it could not start, or
    /// stopped), starts one from the store instead, which already holds the
    /// assignment.
    pub async fn attach(&self, assignment: Assignment) -> Result<(), String> {
        let mut running = self.running.lock().await;
        if let Some(r) = running.as_ref().filter(|r| !r.task.is_finished()) {
            match r.control.attach(assignment).await {
                Err(BleError::Stopped) => {}
                other => return other.map_err(|e| e.to_string()),
            }
        }
        self.restart_locked(&mut running).await
    }

    /// Detaches one device from the running source: its link stops and the
    /// device is disconnected; the other links stay up. Without a running
    /// source, starts one from the store (which no longer holds the device).
    pub async fn detach(&self, address: &str) -> Result<(), String> {
        let mut running = self.running.lock().await;
        if let Some(r) = running.as_ref().filter(|r| !r.task.is_finished()) {
            match r.control.detach(address).await {
                Err(BleError::Stopped) => {}
                other => return other.map_err(|e| e.to_string()),
            }
        }
        self.restart_locked(&mut running).await
    }

    /// Waits for the source to stop (after the shared token is cancelled).
    pub async fn stopped(&self) {
        if let Some(r) = self.running.lock().await.take() {
            let _ = r.task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kinds_with_a_gatt_profile_can_be_assigned() {
        assert_eq!(kind_of("heart_rate_strap"), Some(DeviceKind::HeartRateStrap));
        assert_eq!(kind_of("glucose_meter"), Some(DeviceKind::GlucoseMeter));
        assert_eq!(kind_of("respiration_sensor"), None, "no BLE profile");
        assert_eq!(kind_of("toaster"), None);
    }
}
