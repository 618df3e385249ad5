//! Each bed's clinical settings in the encrypted store, so a restart (even
//! `kill -9`) never silently reverts them: patient-specific limits and who
//! set them, nurse NEWS2 entries, the NEWS2 history and latched alarms.
//!
//! [`Alarming`] marks a bed when its settings change; [`save`] writes the
//! marked beds (operator commands call it before they answer, a background
//! task once a second for changes the pipeline makes, shutdown last).
//! [`restore`] puts them back at start. A bed whose saved settings belong to
//! another admission starts from its preset; one whose settings cannot be
//! opened (altered, corrupt) gets a latched technical alarm saying so.

use crate::alarming::{Alarming, Outcome, SavedBed};
use crate::ward::Ward;
use chrono::{DateTime, Utc};
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vigil_store::{Store, StoreError};

/// One save at a time. Without it an operator command's save could find
/// its bed already taken by the background saver's save still in flight,
/// and answer before that save has committed (a crash right then lost the
/// nurse's limit). Waiting here means: once `save` returns, every change
/// marked before it was called is committed or marked again.
static SAVING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Writes the settings of every bed marked since the last save. Beds whose
/// write fails stay marked (the next save retries them).
pub async fn save(
    alarming: &Mutex<Alarming>,
    ward: &Mutex<Ward>,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let _one_at_a_time = SAVING.lock().await;
    let dirty = alarming.lock().unwrap().take_dirty();
    let mut result = Ok(());
    let mut failed = Vec::new();
    for (bed, saved) in dirty {
        let admission = ward.lock().unwrap().admission_of(&bed);
        let json = serde_json::to_value(&saved).expect("settings serialise");
        if let Err(e) = store
            .save_bed_settings(&bed, admission.as_ref(), now, &json)
            .await
        {
            tracing::error!(bed = %bed, error = %e, "saving the bed's clinical settings failed; will retry");
            failed.push(bed);
            result = Err(e);
        }
    }
    alarming.lock().unwrap().mark_dirty(failed);
    result
}

/// Saves once a second until cancelled (shutdown saves last, after the
/// pipeline has drained).
pub async fn run(
    alarming: &Mutex<Alarming>,
    ward: &Mutex<Ward>,
    store: &Store,
    clock: &dyn vigil_model::Clock,
    cancel: CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = cancel.cancelled() => break,
        }
        let _ = save(alarming, ward, store, clock.now()).await;
    }
}

/// Puts back the saved settings of the ward's beds whose admission is
/// unchanged; returns the alarms to publish for beds that could not be restored.
pub async fn restore(
    alarming: &mut Alarming,
    ward: &Ward,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let mut out = Outcome::default();
    // The ward's beds name a row that no longer opens (its bed is sealed).
    let beds: Vec<String> = ward.beds().into_iter().map(|b| b.bed).collect();
    for row in store.bed_settings_of(&beds).await? {
        if !ward.has_bed(&row.bed) {
            continue;
        }
        let saved = row
            .settings
            .map_err(|e| e.to_string())
            // (serde's message could quote a value: not logged.)
            .and_then(|json| {
                serde_json::from_value::<SavedBed>(json)
                    .map_err(|_| "the saved settings do not parse".to_string())
            });
        match saved {
            // Settings of an earlier admission (or of an empty bed now
            // occupied) do not apply to this patient.
            Ok(_) if row.admission != ward.admission_of(&row.bed) => {}
            Ok(saved) => alarming.restore(&row.bed, saved),
            Err(e) => {
                tracing::error!(bed = %row.bed, error = %e, "the bed's saved clinical settings could not be restored");
                out.merge(alarming.settings_not_restored(&row.bed, now));
            }
        }
    }
    Ok(out)
}
