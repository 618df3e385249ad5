//! Command-line interface: `vigil` (desktop app), `vigil gateway`,
//! `vigil replay`, `vigil decode`, `vigil key new`, and the store commands.

use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use vigil_core::config::{self, ConfigError};
use vigil_core::SimSettings;
use vigil_devices::sim::Scenario;
use vigil_model::{Clock, ScaledClock, SystemClock};
use vigil_store::KeySource;

fn scenario_help() -> String {
    let mut s = String::from("Simulated scenario to run:\n");
    for sc in Scenario::ALL {
        s.push_str(&format!("  {:<15} {}\n", sc.name(), sc.describe()));
    }
    s
}

/// What `--version` prints (on every subcommand): the release, the commit it
/// was built from and the build date (`src-tauri/build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("VIGIL_COMMIT"),
    ", built ",
    env!("VIGIL_BUILD_DATE"),
    ")"
);

#[derive(Parser, Debug)]
#[command(name = "vigil", version = VERSION, propagate_version = true, about = "Vigil: real-time bedside patient monitoring", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// Desktop app: run this simulated scenario (for demos and training).
    #[arg(long, value_name = "SCENARIO")]
    pub simulate: Option<Scenario>,
    /// Desktop app: run simulated time this many times faster.
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Global {
    /// `--data-dir`, or the user data directory.
    pub fn data_dir(&self) -> Result<PathBuf, ConfigError> {
        config::data_dir(self.data_dir.as_deref())
    }
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Where the encrypted store lives (default: the user data directory).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Site key file (64 hex characters, mode 0600) instead of VIGIL_PASSPHRASE.
    #[arg(long, global = true, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Keep the store key in this user's OS keychain (created there at first start). An
    /// explicit choice: Vigil never puts a key there on its own (a key the keychain already
    /// holds for this data directory is used without it).
    #[arg(long, global = true, conflicts_with = "key_file")]
    pub keychain: bool,
    /// Keep readings this many days, then delete them.
    #[arg(long, global = true, value_name = "DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub retention_days: u32,
    /// Beds at this workstation or gateway (default: `beds` in the site
    /// configuration, else 4). Simulated mode puts a set of devices on each.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=vigil_core::site::MAX_BEDS as i64))]
    pub beds: Option<u16>,
    /// The Vigil user running a store command (export, alarms, store, key rotate/log,
    /// fhir, user, audit); the password from VIGIL_USER_PASSWORD, else a prompt. Their
    /// role must allow the command (as on the screen).
    #[arg(long, global = true, value_name = "NAME", env = "VIGIL_USER")]
    pub user: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the monitoring pipeline with no window (a bedside gateway box).
    Gateway(GatewayArgs),
    /// Open the central station: live beds and alarms of the Vigils listed in site.json
    /// `central.feeds` (tokens from the variables named there). Monitors nothing itself:
    /// no devices, no simulated ward, no store.
    Central,
    /// Replay a script of device events through the real pipeline (decoders,
    /// alarms, encrypted store), on the script's clock, then exit.
    #[command(long_about = REPLAY_HELP)]
    Replay(ReplayArgs),
    /// Decode one GATT characteristic value and print it as JSON.
    Decode {
        /// Characteristic UUID: 16-bit hex ("2A37") or the full 128-bit form.
        uuid: String,
        /// Payload bytes as hex, with or without spaces ("16 3C 00 04").
        #[arg(required = true, num_args = 1..)]
        hex: Vec<String>,
    },
    /// Manage keys: create a site key file, rotate the store's key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Export readings as CSV (decrypted with the local key).
    Export(ExportArgs),
    /// A clinician's report of one admission, or of a bed over a range: PDF
    /// (trends, hourly flowsheet, alarms, NEWS2, devices, data completeness)
    /// or the raw readings as CSV. Written to a new 0600 file.
    Report(ReportArgs),
    /// Every admission, current and past (id, bed, admitted, discharged),
    /// to find the id for `vigil report --admission`.
    Admissions {
        /// Also print patient names and MRNs.
        #[arg(long)]
        with_names: bool,
    },
    /// The alarm log.
    Alarms {
        #[command(subcommand)]
        command: AlarmsCommand,
    },
    /// Inspect the encrypted store.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// FHIR upload: readings the server refused or that were parked.
    Fhir {
        #[command(subcommand)]
        command: FhirCommand,
    },
    /// The site configuration (for installers).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Users who sign in at the workstation (for installers; the first admin is made here).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The signed audit trail: who did what, to which admission, when, where.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain, every signature, the signed head and its copy outside
    /// the data directory; name the first edited, deleted, inserted, re-ordered or
    /// truncated record. Exit 0 only when the whole trail is intact.
    Verify,
    /// Export the trail for a hospital's SIEM: one JSON object per line, with its
    /// hash, signature and the trail's public key; opaque admission ids, no names
    /// or MRNs. Exits non-zero (after writing) if the trail is not intact.
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: AuditFormat,
        /// Start, RFC 3339 (default: the first record).
        #[arg(long, value_parser = parse_time)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// End (exclusive), RFC 3339 (default: the last record).
        #[arg(long, value_parser = parse_time)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// Write to this file (created 0600) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum AuditFormat {
    Jsonl,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user (creates the store if there is none yet), as an admin (--user). The
    /// new user's password comes from VIGIL_NEW_USER_PASSWORD, else a prompt; at least 12
    /// characters. On a store with no user at all: the first admin, without --user (its
    /// password may also come from VIGIL_USER_PASSWORD).
    Add {
        name: String,
        /// nurse, clinician, admin or viewer.
        #[arg(long)]
        role: String,
    },
    /// Disable a user: they can no longer sign in.
    Disable { name: String },
    /// List users: name, role, status, created.
    List,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Check a site configuration and print every effective setting with the file it came
    /// from: the installer's file (FILE, else $VIGIL_SITE_CONFIG, else the system-wide
    /// site.json) combined with the data directory's. Exits non-zero, saying why, if Vigil
    /// would refuse it.
    Check {
        /// A site.json to check as the installer's file.
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum FhirCommand {
    /// List dead letters (readings the FHIR server refused) and parked readings
    /// (set aside after failing again and again): id, time, kind, bed, MDC
    /// code. No values.
    DeadLetters,
    /// Put dead letters and parked readings back in the upload queue (once the
    /// cause is fixed on the server). Each reaches the server once. A running
    /// app or gateway picks them up at its next pass.
    Requeue(RequeueArgs),
}

#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct RequeueArgs {
    /// Every dead letter and parked reading.
    #[arg(long)]
    pub all: bool,
    /// Only these (ids from `vigil fhir dead-letters`).
    #[arg(long = "id", value_name = "N", num_args = 1..)]
    pub ids: Vec<i64>,
}

const REPLAY_HELP: &str = "\
Replay a script of device events through the same decoders, ward, alarm engine
and encrypted store as live devices, on a clock driven by the script's times,
then exit. Afterwards `vigil alarms export` and `vigil export` show what
happened. Replayed data is labelled SIMULATED (never taken for a patient's)
and is never uploaded to a FHIR server. Use a data directory of its own.

The script is CSV with this header; `#` lines are comments; times (ms after
the start) must not decrease:

  t_ms,bed,device,kind,event,characteristic,payload
  0,bed-1,oxi-1,oximeter,connect,,
  1000,bed-1,oxi-1,oximeter,notify,2A5F,00 61 00 48 00
  9000,bed-1,oxi-1,oximeter,disconnect,,

kind: hr-strap, oximeter, thermometer, bp-cuff, scale, glucose-meter.
event: connect, disconnect, notify (characteristic: 16-bit UUID; payload: hex
bytes, as `vigil decode` takes them), and for a bed (device and kind empty):
admit (payload adult, paediatric or neonatal), discharge, acknowledge (the
alarms the bed displays at that moment, user `replay`), pause (alarm audio) and
news2 (a nurse's NEWS2 entry, user `replay`; payload parameter=value:
consciousness=alert|new_confusion|voice|pain|unresponsive, air_or_oxygen=air|oxygen,
spo2_scale=scale1|scale2, respiration_rate=N, temperature=N or systolic=N).
Beds are those of this workstation (--beds); a bed with no admission uses the
adult limits. The whole script is checked first: a malformed line is an error
naming its line number, and nothing of the script is applied.

The clock starts at 2026-01-01T00:00:00Z (or --start), so an alarm's time
minus the start is its script time. Every whole second of script time runs
the once-a-second step (stale devices, alarm delays, NEWS2 every 30 s).";

/// `vigil replay`.
#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// The script (CSV, see above).
    pub script: PathBuf,
    /// Replay this many times faster than real time (1: real time).
    /// Default: as fast as possible.
    #[arg(long, value_parser = parse_speed)]
    pub speed: Option<f64>,
    /// Script time 0, RFC 3339 (default 2026-01-01T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    pub start: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// Only this bed (default: all beds).
    #[arg(long)]
    pub bed: Option<String>,
    /// Start, RFC 3339 (e.g. 2026-11-25T08:00:00Z).
    #[arg(long, value_parser = parse_time)]
    pub from: chrono::DateTime<chrono::Utc>,
    /// End, RFC 3339.
    #[arg(long, value_parser = parse_time)]
    pub to: chrono::DateTime<chrono::Utc>,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
}

/// `vigil report`.
#[derive(Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["admission", "bed"])))]
pub struct ReportArgs {
    /// The admission (id from `vigil admissions`): its whole stay.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub admission: Option<String>,
    /// A bed over --from .. --to, whoever was admitted ("No patient admitted" if nobody).
    #[arg(long, requires_all = ["from", "to"])]
    pub bed: Option<String>,
    /// Start, RFC 3339 (with --bed).
    #[arg(long, value_parser = parse_time)]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// End, RFC 3339 (with --bed).
    #[arg(long, value_parser = parse_time)]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// The file to write (must not exist yet).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "pdf")]
    pub format: ReportFormat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Pdf,
    Csv,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum ExportFormat {
    Csv,
}

#[derive(Subcommand, Debug)]
pub enum AlarmsCommand {
    /// Export the alarm log as CSV: one row per alarm condition.
    Export {
        #[arg(long)]
        bed: Option<String>,
        /// Start, RFC 3339 (default: the start of the log).
        #[arg(long, value_parser = parse_time)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// End, RFC 3339 (default: the end of the log).
        #[arg(long, value_parser = parse_time)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormat,
        /// One row per logged event instead (started, escalated, latched,
        /// acknowledged, re-armed, ended, audio paused/resumed, limit changed):
        /// at_utc,bed,id,event,kind,priority,parameter,user,message.
        #[arg(long)]
        events: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Open every chunk and sealed record; exit non-zero if any fails authentication.
    Verify,
    /// Copy every chunk, alarm-log record and admission that still opens and
    /// authenticates from a damaged store (e.g. vigil.db.corrupt-<time>, moved
    /// aside at start) into the current store, under the same key; report what
    /// could not be recovered. Exits non-zero only if nothing could be read.
    Salvage {
        /// The damaged database file.
        file: PathBuf,
    },
    /// Write a consistent copy of the store while Vigil runs (SQLite VACUUM
    /// INTO), then open and verify the copy. It stays encrypted: restoring it
    /// needs this site's passphrase or key file, which is not in the backup.
    Backup {
        /// The backup file to create (never overwritten).
        file: PathBuf,
    },
    /// Replace the store with a backup, after opening and verifying the backup
    /// with the site key. Refused while the app or a gateway runs on this data
    /// directory, and over a store holding newer data unless --force. The
    /// replaced store is moved aside (vigil.db.replaced-<time>), never deleted.
    Restore {
        /// The backup file (left unchanged).
        file: PathBuf,
        /// Replace a store that holds data the backup does not.
        #[arg(long)]
        force: bool,
    },
}

fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("expected an RFC 3339 time like 2026-11-25T08:00:00Z: {e}"))
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create a new random site key file (mode 0600); never overwrites.
    New { file: PathBuf },
    /// Rotate the store's key: new data keys for everything written from now on,
    /// older data keys re-wrapped under the new key while data still needs them and
    /// destroyed otherwise. Stop Vigil first. The new key comes from --new-key-file,
    /// --new-keychain (a new random key in the OS keychain) or VIGIL_NEW_PASSPHRASE.
    /// A keychain key rotated away from is removed from the keychain.
    Rotate {
        #[arg(long, value_name = "FILE", conflicts_with = "new_keychain")]
        new_key_file: Option<PathBuf>,
        #[arg(long)]
        new_keychain: bool,
    },
    /// Print the store's key log: every key created, rotated, replaced at its
    /// seal budget, re-wrapped or destroyed, with its UTC time (authenticated).
    Log,
}

#[derive(Args, Debug, Clone)]
pub struct GatewayArgs {
    /// Without it: Bluetooth LE devices when an adapter is present, else the
    /// simulated `ward` scenario (labelled SIMULATED).
    #[arg(long, value_name = "SCENARIO", long_help = scenario_help())]
    pub simulate: Option<Scenario>,
    /// Run simulated time this many times faster than real time.
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
    /// Seed for the simulated scenario (same seed, same data).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds between status lines on stderr.
    #[arg(long, default_value_t = 10)]
    pub status_every: u64,
    /// Serve the live feed (docs/feed.md) on HOST:PORT (port 0: any free one; printed at
    /// start). Token from VIGIL_FEED_TOKEN (or the site's feed.token_env); TLS from the
    /// site's feed.tls_cert/tls_key, else plain ws on loopback only.
    #[arg(long, value_name = "HOST:PORT")]
    pub feed: Option<String>,
    /// Publish the ward to this MQTT broker (docs/mqtt.md): mqtts://host[:port], or
    /// mqtt:// to a loopback address. Default: site.json `mqtt.broker` (TLS files and
    /// credentials come only from there).
    #[arg(long, value_name = "URL")]
    pub mqtt: Option<String>,
    /// Topic level `vigil/<SITE>/…` (default: site.json `mqtt.site`).
    #[arg(long, value_name = "SITE")]
    pub mqtt_site: Option<String>,
    /// Topic level `vigil/<site>/<WARD>/…` (default: site.json `mqtt.ward`).
    #[arg(long, value_name = "WARD")]
    pub mqtt_ward: Option<String>,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 100_000.0 => Ok(v),
        _ => Err("speed must be a number above 0 and at most 100000".into()),
    }
}

/// Beds when neither `--beds` nor the site configuration says.
pub const DEFAULT_BEDS: u16 = 4;

/// How many beds this workstation has: `--beds`, else the site
/// configuration's `beds`, else [`DEFAULT_BEDS`].
pub fn bed_count(beds: Option<u16>, site: &vigil_core::site::SiteConfig) -> usize {
    beds.or(site.beds).unwrap_or(DEFAULT_BEDS).into()
}

/// What is needed to start the core, shared by the app and the gateway.
#[derive(Debug, Clone)]
pub struct StartOptions {
    pub data_dir: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// `--keychain`: the operator chose the OS keychain for the store key.
    pub keychain: bool,
    pub sim: SimSettings,
    /// `--beds`, else the site configuration's `beds`, else [`DEFAULT_BEDS`].
    pub beds: Option<u16>,
    pub speed: f64,
    pub retention_days: u32,
    pub devices: vigil_core::DeviceMode,
}

impl StartOptions {
    pub fn data_dir(&self) -> Result<PathBuf, ConfigError> {
        config::data_dir(self.data_dir.as_deref())
    }

    pub fn core_config(&self, key: KeySource) -> Result<vigil_core::Config, ConfigError> {
        let data_dir = self.data_dir()?;
        let clock: Arc<dyn Clock> = if self.speed == 1.0 {
            Arc::new(SystemClock)
        } else {
            Arc::new(ScaledClock::new(chrono::Utc::now(), self.speed))
        };
        let site = vigil_core::site::SiteConfig::load(&data_dir)?;
        if let Some(src) = &site.source {
            tracing::info!(path = %src.display(), "site configuration");
        }
        let sim = SimSettings {
            beds: bed_count(self.beds, &site),
            ..self.sim.clone()
        };
        Ok(vigil_core::Config {
            data_dir: data_dir.clone(),
            key,
            clock,
            sim,
            retention: vigil_core::maintenance::Retention(chrono::Duration::days(self.retention_days.into())),
            low_disk_bytes: site.storage.low_disk_mb.saturating_mul(1024 * 1024),
            site_files: site.files.clone(),
            alarm_preset: site.alarm_preset()?,
            devices: self.devices,
            fhir: site.fhir.clone(),
            ble: site.ble.clone().unwrap_or_default(),
        })
    }
}

/// The one-shot commands' default log filter (VIGIL_LOG overrides): warnings, but not the
/// core's per-action lines, which a refusal's one `vigil: refused:` line already says.
const CLI_LOG: &str = "warn,vigil_core::auth=error";

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

pub fn main() -> ExitCode {
    crate::heap::tune();
    let cli = Cli::parse();
    match cli.command {
        None => {
            init_logging("info,tao=warn,wry=warn");
            crate::heap::start_trimming();
            let mut sim = SimSettings::default();
            let mut devices = vigil_core::DeviceMode::Auto;
            if let Some(sc) = cli.simulate {
                sim.scenario = sc;
                devices = vigil_core::DeviceMode::Simulated;
            }
            let start = StartOptions {
                data_dir: cli.global.data_dir,
                key_file: cli.global.key_file,
                keychain: cli.global.keychain,
                sim,
                beds: cli.global.beds,
                speed: cli.speed,
                retention_days: cli.global.retention_days,
                devices,
            };
            match crate::run_app(start, crate::Page::Monitor) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("{e:#}")),
            }
        }
        Some(Command::Central) => {
            init_logging("info,tao=warn,wry=warn");
            // Only the data directory (for its site.json) is used: no core is started.
            let start = StartOptions {
                data_dir: cli.global.data_dir,
                key_file: None,
                keychain: false,
                sim: SimSettings::default(),
                beds: None,
                speed: 1.0,
                retention_days: cli.global.retention_days,
                devices: vigil_core::DeviceMode::Simulated,
            };
            match crate::run_app(start, crate::Page::Central) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("{e:#}")),
            }
        }
        Some(Command::Gateway(args)) => {
            init_logging("info");
            crate::heap::start_trimming();
            crate::gateway::run(cli.global, args)
        }
        Some(Command::Replay(args)) => {
            init_logging(CLI_LOG);
            crate::replay::run(cli.global, args)
        }
        Some(Command::Decode { uuid, hex }) => decode(&uuid, &hex.join("")),
        Some(Command::Key {
            command: KeyCommand::New { file },
        }) => key_new(&file),
        Some(Command::Key {
            command:
                KeyCommand::Rotate {
                    new_key_file,
                    new_keychain,
                },
        }) => {
            init_logging(CLI_LOG);
            crate::admin::key_rotate(&cli.global, new_key_file.as_deref(), new_keychain)
        }
        Some(Command::Key {
            command: KeyCommand::Log,
        }) => {
            init_logging(CLI_LOG);
            crate::admin::key_log(&cli.global)
        }
        Some(Command::Alarms {
            command:
                AlarmsCommand::Export {
                    bed,
                    from,
                    to,
                    format: _,
                    events,
                },
        }) => {
            init_logging(CLI_LOG);
            // The whole log by default: a replay's alarms lie at its script's
            // instants (2026-01-01 unless --start), a scaled clock's ahead of now.
            let to = to.unwrap_or_else(|| chrono::Utc::now() + chrono::Duration::days(365 * 100));
            let from = from.unwrap_or(chrono::DateTime::UNIX_EPOCH);
            crate::admin::alarms_export(&cli.global, bed.as_deref(), from, to, events)
        }
        Some(Command::Report(args)) => {
            init_logging("warn");
            crate::report::report(&cli.global, &args)
        }
        Some(Command::Admissions { with_names }) => {
            init_logging("warn");
            crate::report::admissions(&cli.global, with_names)
        }
        Some(Command::Export(args)) => {
            init_logging(CLI_LOG);
            crate::admin::export(&cli.global, &args)
        }
        Some(Command::Store {
            command: StoreCommand::Verify,
        }) => {
            init_logging(CLI_LOG);
            crate::admin::verify(&cli.global)
        }
        Some(Command::Store {
            command: StoreCommand::Salvage { file },
        }) => {
            init_logging(CLI_LOG);
            crate::admin::salvage(&cli.global, &file)
        }
        Some(Command::Store {
            command: StoreCommand::Backup { file },
        }) => {
            init_logging(CLI_LOG);
            crate::admin::backup(&cli.global, &file)
        }
        Some(Command::Store {
            command: StoreCommand::Restore { file, force },
        }) => {
            init_logging(CLI_LOG);
            crate::admin::restore(&cli.global, &file, force)
        }
        Some(Command::Fhir {
            command: FhirCommand::DeadLetters,
        }) => {
            init_logging(CLI_LOG);
            crate::admin::fhir_dead_letters(&cli.global)
        }
        Some(Command::Fhir {
            command: FhirCommand::Requeue(args),
        }) => {
            init_logging(CLI_LOG);
            crate::admin::fhir_requeue(&cli.global, &args)
        }
        Some(Command::Config {
            command: ConfigCommand::Check { file },
        }) => {
            init_logging(CLI_LOG);
            crate::admin::config_check(&cli.global, file.as_deref())
        }
        Some(Command::User { command }) => {
            init_logging(CLI_LOG);
            match command {
                UserCommand::Add { name, role } => crate::admin::user_add(&cli.global, &name, &role),
                UserCommand::Disable { name } => crate::admin::user_disable(&cli.global, &name),
                UserCommand::List => crate::admin::user_list(&cli.global),
            }
        }
        Some(Command::Audit { command }) => {
            init_logging(CLI_LOG);
            match command {
                AuditCommand::Verify => crate::admin::audit_verify(&cli.global),
                AuditCommand::Export {
                    format: _,
                    from,
                    to,
                    out,
                } => crate::admin::audit_export(&cli.global, from, to, out.as_deref()),
            }
        }
    }
}

pub fn fail(msg: &str) -> ExitCode {
    eprintln!("vigil: {msg}");
    ExitCode::FAILURE
}

fn decode(uuid: &str, hex: &str) -> ExitCode {
    let result = vigil_gatt::Characteristic::from_uuid_str(uuid)
        .and_then(|ch| Ok((ch, vigil_gatt::parse_hex(hex)?)))
        .and_then(|(ch, bytes)| vigil_gatt::decode(ch, &bytes));
    match result {
        Ok(decoded) => {
            println!(
                "{}",
                serde_json::to_string(&decoded).expect("decoded values serialise")
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

fn key_new(file: &Path) -> ExitCode {
    match vigil_store::create_key_file(file) {
        Ok(()) => {
            eprintln!("vigil: created key file {} (mode 0600). Keep it off the data disk and back it up: without it the store cannot be read.", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}
