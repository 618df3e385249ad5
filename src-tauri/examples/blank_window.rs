//! The smallest Tauri window this build can make: the same Tauri, WebKitGTK /
//! WebView2 and configuration as Vigil, one blank page, no Vigil core. The
//! soak benchmark (`./dev bench soak`) measures its memory beside the app's
//! in the same run, so "the app's own memory" is the difference.

fn main() {
    let mut context = tauri::generate_context!();
    // Not Vigil's main window (it would load the UI): one blank window instead.
    context.config_mut().app.windows.clear();
    tauri::Builder::default()
        .setup(|app| {
            let url = tauri::WebviewUrl::External("about:blank".parse().expect("a valid URL"));
            tauri::WebviewWindowBuilder::new(app, "blank", url).title("blank").inner_size(1280.0, 800.0).build()?;
            Ok(())
        })
        .run(context)
        .expect("the blank window runs");
}
