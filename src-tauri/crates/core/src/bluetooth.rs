//! Real bedside devices over Bluetooth LE: the assignments a nurse made
//! (remembered in the store) drive a `BleSource`, restarted whenever a device
//! is added, moved or removed. Its events join the same pipeline as the
//! simulated ward's, so nothing downstream knows the difference.

use std::sync::Arc;
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;
use vigil_devices::ble::{Assignment, BleConfig, BleSource};
use vigil_devices::{DeviceEvent, DeviceKind, DeviceSource};
use vigil_model::Clock;
use vigil_store::{DeviceAssignment, Store};

/// Restartable BLE source.
pub struct Bluetooth {
    store: Store,
    clock: Arc<dyn Clock>,
    events: mpsc::Sender<DeviceEvent>,
    cancel: CancellationToken,
    running: Mutex<Option<(CancellationToken, tokio::task::JoinHandle<()>)>>,
}

pub fn kind_of(s: &str) -> Option<DeviceKind> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
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
        let mut running = self.running.lock().await;
        if let Some((token, task)) = running.take() {
            token.cancel();
            let _ = task.await;
        }
        let source =
            BleSource::new(BleConfig::new(assignments, self.clock.clone())).map_err(|e| e.to_string())?;
        let token = self.cancel.child_token();
        let tx = self.events.clone();
        let t = token.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = Box::new(source).run(tx, t).await {
                tracing::error!(error = %e, "Bluetooth source stopped");
            }
        });
        *running = Some((token, task));
        Ok(())
    }

    /// Waits for the source to stop (after the shared token is cancelled).
    pub async fn stopped(&self) {
        if let Some((_, task)) = self.running.lock().await.take() {
            let _ = task.await;
        }
    }
}
