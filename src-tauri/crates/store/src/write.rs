//! The store's one write connection.
//!
//! Every write transaction ([`Store::begin_write`](crate::Store)) runs on a
//! connection the store keeps rather than one borrowed from the pool: sqlx
//! pings a pooled connection each time it goes back (a round trip to the
//! connection's thread), and for the writer's 0.5 s flush such hand-offs,
//! not SQLite, are most of the CPU. Writers also queue here, in order,
//! instead of polling SQLite's busy timeout against each other.
//!
//! A [`WriteTx`] dropped without [`WriteTx::commit`] (an error, a cancelled
//! future) is rolled back before the next write starts. A connection whose
//! rollback or `BEGIN` fails (SQLite may already have rolled back after a
//! full disk or an I/O error) is closed and replaced: a write must never
//! leave the store wedged inside a transaction.

use crate::Script;
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, SqliteConnection, SqlitePool};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Clone, Default)]
pub(crate) struct WriteConn(Arc<Mutex<Slot>>);

#[derive(Default)]
struct Slot {
    conn: Option<SqliteConnection>,
    /// The connection may be inside a transaction nobody will end (a write
    /// abandoned part-way): roll back before the next write.
    dirty: bool,
    closed: bool,
}

impl Slot {
    async fn rollback(&mut self) {
        self.dirty = false;
        let Some(conn) = self.conn.as_mut() else { return };
        if let Err(e) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
            tracing::warn!(error = %e, "rolling back a failed write failed; replacing the write connection");
            self.replace().await;
        }
    }

    /// Closes the connection; the next write opens a fresh one.
    async fn replace(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }
}

impl WriteConn {
    /// Waits for the write connection; `BEGIN` goes out with the caller's
    /// first statements ([`WriteTx::run_first`]), one round trip less (the
    /// writer's 0.5 s flush).
    pub(crate) async fn begin_deferred(&self, pool: &SqlitePool) -> Result<WriteTx, sqlx::Error> {
        let mut slot = self.0.clone().lock_owned().await;
        if slot.closed {
            return Err(sqlx::Error::PoolClosed);
        }
        if slot.dirty {
            slot.rollback().await;
        }
        if slot.conn.is_none() {
            // Taken out of the pool for good (the pool may open another).
            slot.conn = Some(pool.acquire().await?.detach());
        }
        Ok(WriteTx {
            slot: Some(slot),
            sent: false,
            begun: false,
            done: false,
        })
    }

    /// Rolls back anything abandoned and closes the connection; later
    /// writes fail as on a closed pool.
    pub(crate) async fn close(&self) {
        let mut slot = self.0.lock().await;
        if slot.dirty {
            slot.rollback().await;
        }
        slot.replace().await;
        slot.closed = true;
    }
}

/// A write transaction on the store's write connection; rolled back unless
/// committed. Derefs to the connection, like sqlx's `Transaction`, once
/// `BEGIN` has gone out.
pub(crate) struct WriteTx {
    slot: Option<OwnedMutexGuard<Slot>>,
    /// A statement may have reached the connection (so drop rolls back):
    /// set before the first one is sent, since a cancelled future can leave
    /// it running there.
    sent: bool,
    begun: bool,
    done: bool,
}

impl WriteTx {
    fn conn(&mut self) -> &mut SqliteConnection {
        // Both are Some from `begin_deferred` until drop.
        self.slot.as_mut().and_then(|s| s.conn.as_mut()).expect("write connection")
    }

    /// Sends `BEGIN IMMEDIATE` if it has not gone out yet.
    pub(crate) async fn ensure_begun(&mut self) -> Result<(), sqlx::Error> {
        if !self.begun {
            self.sent = true;
            sqlx::query("BEGIN IMMEDIATE").execute(self.conn()).await?;
            self.begun = true;
        }
        Ok(())
    }

    /// Runs `script`, preceded by `BEGIN IMMEDIATE` if that has not gone
    /// out yet: the transaction starts in the same round trip.
    pub(crate) async fn run_first(&mut self, script: Script<'_>) -> Result<Vec<SqliteRow>, sqlx::Error> {
        let script = if self.begun { script } else { script.after("BEGIN IMMEDIATE") };
        self.sent = true;
        let rows = script.run(self.conn()).await?;
        self.begun = true;
        Ok(rows)
    }

    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        self.ensure_begun().await?;
        sqlx::query("COMMIT").execute(self.conn()).await?;
        self.done = true;
        Ok(())
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.slot.as_ref().and_then(|s| s.conn.as_ref()).expect("write connection")
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        // A statement sent before BEGIN would run (and commit) on its own.
        assert!(self.begun, "a statement on the write connection before BEGIN");
        self.conn()
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.done || !self.sent {
            return;
        }
        let Some(mut slot) = self.slot.take() else { return };
        // Marked first: if the task below never runs (the runtime is
        // shutting down), the next `begin` rolls back instead.
        slot.dirty = true;
        // The guard goes with the rollback: no write starts before it ends.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move { slot.rollback().await });
            }
            Err(_) => drop(slot),
        }
    }
}
