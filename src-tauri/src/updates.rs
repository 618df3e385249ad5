//! Signed updates (issue 16) through the Tauri updater plugin.
//!
//! The plugin fetches the site's `latest.json`, downloads the artifact and verifies its
//! minisign signature against the public key in `tauri.conf.json`
//! (`plugins.updater.pubkey`, compiled into the app) before anything is written: a changed
//! byte fails in [`install`] with a signature error and nothing is installed. The private
//! key is never in the repository (release workflow secrets only, `docs/installing.md`).
//!
//! The webview gets none of the plugin's own commands (no `updater:` permission in
//! `capabilities/`): the screen can only ask through `update_check`/`update_install`, which
//! go through the core's rule (admin, confirmation while beds are monitored) and the audit
//! trail.

use std::path::Path;
use std::time::Duration;
use tauri::{AppHandle, Runtime};
use tauri_plugin_updater::{Update, UpdaterBuilder, UpdaterExt};

/// The plugin as the app registers it (its key from `plugins.updater` in the config).
pub fn plugin<R: Runtime>() -> tauri::plugin::TauriPlugin<R, tauri_plugin_updater::Config> {
    tauri_plugin_updater::Builder::new().build()
}

/// The site's update server (`updates.endpoint`, checked when site.json was read);
/// `None`: updates are off.
pub fn endpoint(site: &vigil_core::site::SiteConfig) -> Option<url::Url> {
    let e = site.updates.as_ref()?;
    vigil_core::update::check_endpoint(&e.endpoint).ok()
}

/// An updater for `endpoint`; `installed` replaces the running executable as the file an
/// install writes (tests: a throwaway file, never the test binary).
pub fn updater<R: Runtime>(
    app: &AppHandle<R>,
    endpoint: url::Url,
    installed: Option<&Path>,
) -> Result<UpdaterBuilder, tauri_plugin_updater::Error> {
    let mut b = app
        .updater_builder()
        .endpoints(vec![endpoint])?
        .timeout(Duration::from_secs(60));
    if let Some(p) = installed {
        b = b.executable_path(p);
    }
    Ok(b)
}

/// Asks the server: `Some` when it offers a newer version.
pub async fn check(b: UpdaterBuilder) -> Result<Option<Update>, tauri_plugin_updater::Error> {
    b.build()?.check().await
}

/// Downloads the artifact, has the plugin verify its signature, and only then installs it.
pub async fn install(update: &Update) -> Result<(), tauri_plugin_updater::Error> {
    update.download_and_install(|_, _| {}, || {}).await
}

/// A signature failure, as the audit trail and the screen name it.
pub fn describe(e: &tauri_plugin_updater::Error) -> String {
    use tauri_plugin_updater::Error as E;
    match e {
        E::Minisign(m) => {
            format!("refused: the update's signature does not verify ({m}); nothing was installed")
        }
        E::SignedVersionMismatch { .. } | E::MissingSignedVersion => {
            format!("refused: {e}; nothing was installed")
        }
        other => other.to_string(),
    }
}
