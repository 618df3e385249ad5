//! The smallest Tauri window this build can make: the same Tauri, WebKitGTK /
//! WebView2 and configuration as Vigil, one empty page, no Vigil core. The
//! soak benchmark (`./dev bench soak`) measures its memory beside the app's
//! in the same run, so "the app's own memory" is the difference.

fn main() {
    let mut context = tauri::generate_context!();
    // Not Vigil's main window (it would load the UI): one blank window instead.
    context.config_mut().app.windows.clear();
    tauri::Builder::default()
        .register_uri_scheme_protocol("blank", |_, _| {
            tauri::http::Response::builder()
                .header("Content-Type", "text/html")
                .body(b"<!doctype html><title>blank</title><body></body>".to_vec())
                .expect("a valid response")
        })
        .setup(|app| {
            // An empty document from a custom scheme (as Vigil's own UI is
            // served), not about:blank: WebKitGTK shows about:blank without
            // starting a web process, and every real page has one (the app's
            // WebKitWebProcess is part of what the soak measures).
            let url = tauri::WebviewUrl::External("blank://localhost/".parse().expect("a valid URL"));
            tauri::WebviewWindowBuilder::new(app, "blank", url).title("blank").inner_size(1280.0, 800.0).build()?;
            Ok(())
        })
        .run(context)
        .expect("the blank window runs");
}
