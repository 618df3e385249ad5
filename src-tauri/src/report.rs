//! `vigil report` (a clinician's PDF, or the range's raw readings as CSV) and
//! `vigil admissions` (to find the admission id). The store is opened as
//! `vigil export` opens it; the report is gathered by `vigil_core::report`
//! and laid out by `vigil_report`. The output is a new file, mode 0600 (it
//! holds the patient's identity), never overwritten; each run writes an
//! audit record (action `export`, with the admission id when there is one).
//! Messages name beds, admission ids and times only.

use crate::cli::{fail, Global, ReportArgs, ReportFormat};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use vigil_core::report::{self, Scope};

pub fn report(global: &Global, args: &ReportArgs) -> ExitCode {
    let scope = match (&args.admission, &args.bed, args.from, args.to) {
        (Some(id), _, _, _) => Scope::Admission(id.clone()),
        (None, Some(bed), Some(from), Some(to)) => {
            if to <= from {
                return fail("--to must be after --from");
            }
            Scope::Bed { bed: bed.clone(), from, to }
        }
        _ => return fail("give --admission <id>, or --bed <bed> --from <time> --to <time>"),
    };
    if args.out.exists() {
        return fail(&format!("{} already exists; choose a new file", args.out.display()));
    }
    let dir = match global.data_dir() {
        Ok(d) => d,
        Err(e) => return fail(&e.to_string()),
    };
    let site = match vigil_core::site::SiteConfig::load(&dir) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    let preset = match site.alarm_preset() {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    let (tz, tz_from) = site.time_zone();
    let (rt, store, user) = match crate::admin::open(global, crate::cli_auth::EXPORT) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let actor = user.actor().clone();
    let req = report::Request {
        scope,
        now: chrono::Utc::now(),
        tz,
        ward: "Vigil patient monitoring".into(),
        generated_by: actor.name.clone(),
        preset,
    };
    let built = rt.block_on(report::build(&store, &req));
    let (what, admission) = match (&built, &req.scope) {
        (Ok(b), _) => (
            format!("report {}, bed {}", format_name(args.format), b.bed),
            b.admission.as_ref().map(|a| a.0.clone()),
        ),
        (Err(_), Scope::Admission(id)) => (format!("report {}", format_name(args.format)), Some(id.clone())),
        (Err(_), Scope::Bed { bed, .. }) => (format!("report {}, bed {bed}", format_name(args.format)), None),
    };
    if let Err(e) = rt.block_on(user.finish_for(&store, admission.as_deref(), built.is_ok(), what)) {
        eprintln!("vigil: the audit record of this command could not be written: {e}");
    }
    rt.block_on(store.close());
    let built = match built {
        Ok(b) => b,
        Err(e) => return fail(&e.to_string()),
    };
    let result = match args.format {
        ReportFormat::Pdf => {
            let pdf = match vigil_report::render_pdf(&built.report) {
                Ok(p) => p,
                Err(e) => return fail(&format!("laying out the report: {e}")),
            };
            write_new(&args.out, |f| f.write_all(&pdf))
        }
        ReportFormat::Csv => write_new(&args.out, |f| {
            crate::admin::write_readings_csv(f, &built.readings).map_err(std::io::Error::other)
        }),
    };
    if let Err(e) = result {
        return fail(&format!("{}: {e}", args.out.display()));
    }
    let c = &built.report.completeness;
    eprintln!(
        "vigil report: {} ({} readings, {} chart(s), time zone {} from {tz_from}); {}",
        args.out.display(),
        built.readings.len(),
        built.report.charts.len(),
        tz.name(),
        c.summary()
    );
    ExitCode::SUCCESS
}

fn format_name(f: ReportFormat) -> &'static str {
    match f {
        ReportFormat::Pdf => "PDF",
        ReportFormat::Csv => "readings CSV",
    }
}

/// Creates `path` (never an existing file: a report is not written over
/// another), mode 0600, and writes it; a half-written file is removed.
pub(crate) fn write_new(path: &Path, write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = std::io::BufWriter::new(o.open(path)?);
    let r = write(&mut f).and_then(|_| f.flush()).and_then(|_| f.get_ref().sync_all());
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

/// `vigil admissions`: one line per admission, oldest first. Names and MRNs
/// only with `--with-names` (and then the audit record says so).
pub fn admissions(global: &Global, with_names: bool) -> ExitCode {
    let (rt, store, user) = match crate::admin::open(global, crate::cli_auth::EXPORT) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let list = rt.block_on(store.admissions());
    let detail = if with_names { "admissions with names" } else { "admissions" };
    crate::cli_auth::finish(&rt, &store, user, list.is_ok(), detail);
    rt.block_on(store.close());
    let list = match list {
        Ok(l) => l,
        Err(e) => return fail(&e.to_string()),
    };
    let mut out = std::io::stdout().lock();
    let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut lines = vec![if with_names {
        "id\tbed\tadmitted\tdischarged\tname\tmrn".to_string()
    } else {
        "id\tbed\tadmitted\tdischarged".to_string()
    }];
    for a in &list {
        let mut line = format!(
            "{}\t{}\t{}\t{}",
            a.id.0,
            a.bed,
            time(a.admitted_at),
            a.discharged_at.map(time).unwrap_or_else(|| "-".into())
        );
        if with_names {
            line.push_str(&format!("\t{}\t{}", a.patient.display_name, a.patient.mrn));
        }
        lines.push(line);
    }
    for l in lines {
        if writeln!(out, "{l}").is_err() {
            return ExitCode::FAILURE;
        }
    }
    eprintln!("vigil admissions: {}", list.len());
    ExitCode::SUCCESS
}
