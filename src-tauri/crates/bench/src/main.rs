//! `./dev bench [store|alarms|ble|fhir]`: Vigil's benchmarks. Each prints its
//! figures beside a baseline measured in the same run, on the same machine.

mod alarms;
mod ble;
mod fhir;
mod store;

#[tokio::main]
async fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if !["all", "store", "alarms", "ble", "fhir"].contains(&which.as_str()) {
        eprintln!("usage: ./dev bench [store [--full]|alarms|ble|fhir]   (unknown benchmark {which:?})");
        std::process::exit(2);
    }
    let all = which == "all";
    if all || which == "store" {
        // --full: 1, 7 and 30 days of the ward (long); the default is quick.
        store::run(std::env::args().any(|a| a == "--full")).await;
        println!();
    }
    if all || which == "alarms" {
        alarms::run().await;
        println!();
    }
    if all || which == "ble" {
        ble::run().await;
        println!();
    }
    if all || which == "fhir" {
        fhir::run().await;
        println!();
    }
}
