fn main() {
    // Capabilities live under src-tauri/ while the manifest is at the root.
    tauri_build::try_build(
        tauri_build::Attributes::new().capabilities_path_pattern("./src-tauri/capabilities/**/*"),
    )
    .expect("tauri build script failed");
}
