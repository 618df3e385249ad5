#![allow(dead_code)]
//! A small scriptable FHIR server on loopback for faults Medplum cannot be made to show
//! (a refusal of every entry, one entry that always fails, redirects, `Retry-After: 0`).
//! Real HTTP/1.1 over a real socket, so the real client and syncer run against it.
//!
//! Batch Bundles get batch-responses with conditional-create semantics: an entry whose
//! identifier (or, for a Device, whose `ifNoneExist`) was stored before answers 200, a new
//! one 201. Tests script faults with [`Mock::on_request`] (the whole request) and
//! [`Mock::on_entry`] (one entry).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value as Json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A received request.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub body: Option<Json>,
    pub at: Instant,
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Json,
}

impl Resp {
    pub fn new(status: u16, body: Json) -> Resp {
        Resp {
            status,
            headers: vec![],
            body,
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.into(), v.into()));
        self
    }
}

pub fn outcome(code: &str, text: &str) -> Json {
    json!({ "resourceType": "OperationOutcome",
            "issue": [{ "severity": "error", "code": code, "diagnostics": text }] })
}

type OnRequest = Box<dyn Fn(&Req) -> Option<Resp> + Send + Sync>;
type OnEntry = Box<dyn Fn(&Json) -> Option<(u16, Json)> + Send + Sync>;

#[derive(Default)]
struct State {
    requests: Vec<Req>,
    /// Conditional-create key → resource id.
    stored: HashMap<String, u64>,
    /// Observation identifier value → entries answered 200/201 for it.
    accepted: HashMap<String, u32>,
    next_id: u64,
    on_request: Option<OnRequest>,
    on_entry: Option<OnEntry>,
}

#[derive(Clone)]
pub struct Mock {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

/// The first identifier value of a resource.
pub fn identifier(r: &Json) -> Option<String> {
    r["identifier"][0]["value"].as_str().map(str::to_string)
}

impl Mock {
    pub async fn start() -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut r = BufReader::new(r);
                    // Keep-alive: one request after another on this connection.
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = line.split_whitespace();
                        let method = parts.next().unwrap_or("").to_string();
                        let path = parts.next().unwrap_or("").to_string();
                        let mut len = 0usize;
                        loop {
                            let mut h = String::new();
                            if r.read_line(&mut h).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':') {
                                if k.eq_ignore_ascii_case("content-length") {
                                    len = v.trim().parse().unwrap_or(0);
                                }
                            }
                        }
                        let mut body = vec![0; len];
                        if r.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let req = Req {
                            method,
                            path,
                            body: serde_json::from_slice(&body).ok(),
                            at: Instant::now(),
                        };
                        let resp = handle(&st, req);
                        let body = resp.body.to_string();
                        let mut out = format!(
                            "HTTP/1.1 {} X\r\ncontent-type: application/fhir+json\r\ncontent-length: {}\r\n",
                            resp.status,
                            body.len()
                        );
                        for (k, v) in &resp.headers {
                            out.push_str(&format!("{k}: {v}\r\n"));
                        }
                        out.push_str("\r\n");
                        out.push_str(&body);
                        if w.write_all(out.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Mock { port, state }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/fhir/R4", self.port)
    }

    /// Answers a whole request (`None`: serve it normally).
    pub fn on_request(&self, f: impl Fn(&Req) -> Option<Resp> + Send + Sync + 'static) {
        self.state.lock().unwrap().on_request = Some(Box::new(f));
    }

    /// Answers one batch entry's resource with (status, OperationOutcome) (`None`: store it).
    pub fn on_entry(&self, f: impl Fn(&Json) -> Option<(u16, Json)> + Send + Sync + 'static) {
        self.state.lock().unwrap().on_entry = Some(Box::new(f));
    }

    pub fn clear_faults(&self) {
        let mut s = self.state.lock().unwrap();
        s.on_request = None;
        s.on_entry = None;
    }

    pub fn requests(&self) -> Vec<Req> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Observation entries answered 200/201, per identifier value.
    pub fn accepted(&self) -> HashMap<String, u32> {
        self.state.lock().unwrap().accepted.clone()
    }

    /// Observations stored (distinct identifiers).
    pub fn observations(&self) -> usize {
        self.state.lock().unwrap().accepted.len()
    }
}

fn handle(st: &Mutex<State>, req: Req) -> Resp {
    let mut s = st.lock().unwrap();
    s.requests.push(req.clone());
    if let Some(r) = s.on_request.as_ref().and_then(|f| f(&req)) {
        return r;
    }
    let is_batch =
        req.method == "POST" && req.body.as_ref().and_then(|b| b["resourceType"].as_str()) == Some("Bundle");
    if !is_batch {
        return Resp::new(404, outcome("not-found", "only batch Bundles here"));
    }
    let body = req.body.unwrap();
    let entries = body["entry"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for e in entries {
        let r = &e["resource"];
        let ty = r["resourceType"].as_str().unwrap_or("Basic").to_string();
        if let Some((status, oo)) = s.on_entry.as_ref().and_then(|f| f(r)) {
            out.push(json!({ "response": { "status": status.to_string(), "outcome": oo } }));
            continue;
        }
        let key = e["request"]["ifNoneExist"]
            .as_str()
            .map(|q| format!("{ty}?{q}"))
            .unwrap_or_else(|| format!("{ty}#{}", s.next_id));
        let (status, id) = match s.stored.get(&key) {
            Some(&id) => ("200 OK", id),
            None => {
                s.next_id += 1;
                let id = s.next_id;
                s.stored.insert(key, id);
                ("201 Created", id)
            }
        };
        if ty == "Observation" {
            if let Some(v) = identifier(r) {
                *s.accepted.entry(v).or_default() += 1;
            }
        }
        out.push(json!({ "response": { "status": status, "location": format!("{ty}/{id}/_history/1") } }));
    }
    Resp::new(
        200,
        json!({ "resourceType": "Bundle", "type": "batch-response", "entry": out }),
    )
}
