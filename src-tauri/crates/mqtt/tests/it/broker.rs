//! A Mosquitto child process on a loopback port (ops reference, §MQTT).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Mosquitto {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Lines under the listener (TLS files).
    listener_extra: String,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Mosquitto {
    /// Anonymous, no persistence: a restart loses every retained message.
    pub fn start() -> Mosquitto {
        Self::with_listener("")
    }

    pub fn with_listener(extra: &str) -> Mosquitto {
        let mut m = Mosquitto {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            listener_extra: extra.to_string(),
        };
        m.run();
        m
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\n{}allow_anonymous true\npersistence false\nlog_dest stderr\n",
                self.port, self.listener_extra
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("mosquitto.log")).unwrap())
            .spawn()
            .expect("start mosquitto (Debian package mosquitto)");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < end,
                "mosquitto did not listen on {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// Kills the broker (by its pid) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The same port again, a new process: with `persistence false`, nothing retained.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `mosquitto_sub` until it has `count` messages (or `secs`): its stdout, one line each
/// with the format `fmt` (see mosquitto_sub(1) -F).
pub fn sub(port: u16, topic: &str, count: usize, fmt: &str, secs: u64) -> Vec<String> {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", topic])
        .args(["-C", &count.to_string(), "-W", &secs.to_string(), "-F", fmt])
        .output()
        .expect("run mosquitto_sub (Debian package mosquitto-clients)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// `mosquitto_pub` one retained QoS 1 message.
pub fn publish(port: u16, topic: &str, payload: &str) {
    let st = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-r",
            "-t",
            topic,
            "-m",
            payload,
        ])
        .status()
        .expect("run mosquitto_pub");
    assert!(st.success());
}
