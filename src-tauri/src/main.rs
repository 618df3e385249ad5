// No console window on Windows release builds; the CLI still works from a terminal.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    vigil_app::cli::main()
}
