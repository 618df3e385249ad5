//! The spill file: readings the database cannot take yet, kept encrypted on
//! disk beside it so that a long store failure or a shutdown during one loses
//! nothing the disk can still hold.
//!
//! A spill file is `<store file name>.spill-<UTC time>-<random>` in the
//! store's directory: a header (magic, a random 16-byte file id and, since
//! schema 6, the id of the readings key it is sealed under, i64 LE), then
//! frames, each `len (u32 LE) ‖ nonce ‖ AES-256-GCM(lz4(JSON readings))`
//! under that readings key. A spill file keeps its key alive: a rotation
//! does not destroy a key a spill file still needs. The AAD binds a frame to its file id and its
//! position, so a frame that is altered, moved or copied into another file
//! fails to open. Frames are appended and synced one at a time; a crash in
//! the middle of one leaves a short last frame, which is reported, never
//! taken for data.
//!
//! Exactly once: [`Store::append_spilled`] writes a frame's readings and the
//! mark "frame n of file id applied" (in `meta`) in one transaction, and
//! skips frames already marked, so a crash between the commit and the file's
//! removal never stores a reading twice.

use crate::keyring::{Dek, Purpose};
use crate::{db, Store, StoreError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use vigil_model::Reading;

/// Version 1 (before schema 6): no key id, sealed under key 1.
const MAGIC_V1: &[u8; 8] = b"VGSPILL1";
const MAGIC: &[u8; 8] = b"VGSPILL2";
const AAD_SPILL: &[u8] = b"vigil/spill/v1";
/// A frame larger than this is not Vigil's (the writer's batches are far
/// smaller): reported as damage rather than allocated.
const MAX_FRAME: usize = 64 << 20;

/// An open spill file taking frames.
pub struct SpillWriter {
    file: std::fs::File,
    path: PathBuf,
    id: [u8; 16],
    frames: u64,
    readings: u64,
    store: Store,
    key: std::sync::Arc<Dek>,
}

/// What a spill file held, as read back.
#[derive(Debug)]
pub struct SpillContents {
    pub path: PathBuf,
    pub id: [u8; 16],
    /// (frame number, readings), in file order.
    pub frames: Vec<(u64, Vec<Reading>)>,
    /// Why reading stopped before the end of the file, if it did: the frames
    /// after that point could not be recovered.
    pub damage: Option<String>,
}

impl SpillWriter {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Readings written to this file so far.
    pub fn readings(&self) -> u64 {
        self.readings
    }

    /// Appends one frame and syncs it to the disk. On error nothing of the
    /// batch counts as kept (a short frame at the end is ignored when read).
    pub fn write(&mut self, batch: &[Reading]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_vec(batch).expect("readings serialise");
        let plain = lz4_flex::compress_prepend_size(&json);
        let (_, nonce, sealed) =
            self.store
                .keys
                .seal_counted(&self.key, &frame_aad(&self.id, self.frames), &plain)?;
        let mut buf = Vec::with_capacity(4 + nonce.len() + sealed.len());
        buf.extend_from_slice(&((nonce.len() + sealed.len()) as u32).to_le_bytes());
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(&sealed);
        self.file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| spill_io(&self.path, "writing", e))?;
        self.frames += 1;
        self.readings += batch.len() as u64;
        Ok(())
    }
}

fn frame_aad(id: &[u8; 16], frame: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_SPILL.len() + 24);
    aad.extend_from_slice(AAD_SPILL);
    aad.extend_from_slice(id);
    aad.extend_from_slice(&frame.to_le_bytes());
    aad
}

fn spill_io(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Spill(format!("{what} spill file {}: {e}", path.display()))
}

/// (file id, key id, header length) of a spill file's first bytes.
fn spill_header(bytes: &[u8]) -> Option<([u8; 16], i64, usize)> {
    let magic = bytes.get(..8)?;
    let id: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
    if magic == MAGIC_V1 {
        Some((id, Purpose::Readings.legacy_id(), 24))
    } else if magic == MAGIC {
        let key = i64::from_le_bytes(bytes.get(24..32)?.try_into().ok()?);
        Some((id, key, 32))
    } else {
        None
    }
}

fn meta_key(id: &[u8; 16]) -> String {
    format!("spill/{}", hex::encode(id))
}

impl Store {
    /// Starts a new spill file beside the store.
    pub fn start_spill(&self) -> Result<SpillWriter, StoreError> {
        let mut id = [0u8; 16];
        id.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let name = format!(
            "{}.spill-{}-{}",
            self.file_name(),
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
            &hex::encode(id)[..8]
        );
        let path = self.path.with_file_name(name);
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| spill_io(&path, "creating", e))?;
        let key = self.keys.spill_key();
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&id);
        header.extend_from_slice(&key.id.to_le_bytes());
        file.write_all(&header)
            .and_then(|_| file.sync_all())
            .map_err(|e| spill_io(&path, "writing", e))?;
        // The new name must survive a crash too.
        if let Some(dir) = path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(SpillWriter {
            file,
            path,
            id,
            frames: 0,
            readings: 0,
            store: self.clone(),
            key,
        })
    }

    fn file_name(&self) -> String {
        self.path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    }

    /// The data keys this store's spill files are sealed under, including
    /// files set aside as damaged (kept so what still opens can be read):
    /// a rotation must keep them.
    pub(crate) fn spill_key_ids(&self) -> Vec<i64> {
        let prefix = format!("{}.spill-", self.file_name());
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
            })
            .filter_map(|p| {
                let mut head = [0u8; 32];
                let mut f = std::fs::File::open(p).ok()?;
                let n = f.read(&mut head).ok()?;
                spill_header(&head[..n]).map(|h| h.1)
            })
            .collect()
    }

    /// This store's spill files, oldest first (names sort by creation time).
    pub fn spill_files(&self) -> Vec<PathBuf> {
        let prefix = format!("{}.spill-", self.file_name());
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    // Files set aside as damaged are kept, not applied again.
                    n.starts_with(&prefix) && !n.ends_with(".damaged")
                })
            })
            .collect();
        files.sort();
        files
    }

    /// Reads a spill file back, opening every frame. Stops at the first frame
    /// that is short (a crash while writing it) or fails authentication, and
    /// says so in `damage`. A file that is not a spill file, or whose frames
    /// this store's key cannot open, is an error.
    pub fn read_spill(&self, path: &Path) -> Result<SpillContents, StoreError> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| spill_io(path, "reading", e))?;
        let Some((id, key_id, mut at)) = spill_header(&bytes) else {
            return Err(StoreError::Spill(format!(
                "{} is not a Vigil spill file",
                path.display()
            )));
        };
        let mut frames = Vec::new();
        let mut damage = None;
        let nonce_len = 12;
        while at < bytes.len() {
            let n = frames.len() as u64;
            let Some(len) = bytes.get(at..at + 4) else {
                damage = Some(format!("frame {n} is cut short (a crash while writing it)"));
                break;
            };
            let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
            let Some(frame) = bytes
                .get(at + 4..at + 4 + len)
                .filter(|_| len <= MAX_FRAME && len > nonce_len)
            else {
                damage = Some(format!("frame {n} is cut short (a crash while writing it)"));
                break;
            };
            let (nonce, sealed) = frame.split_at(nonce_len);
            let readings = self
                .keys
                .open(Purpose::Readings, key_id, &frame_aad(&id, n), nonce, sealed)
                .ok()
                .and_then(|plain| lz4_flex::decompress_size_prepended(&plain).ok())
                .and_then(|json| serde_json::from_slice::<Vec<Reading>>(&json).ok());
            match readings {
                Some(r) => frames.push((n, r)),
                None if frames.is_empty() => {
                    return Err(StoreError::Spill(format!(
                        "{}: its first frame does not open with this store's key (written under another store's key, or altered)",
                        path.display()
                    )))
                }
                None => {
                    damage = Some(format!("frame {n} failed authentication: it was altered"));
                    break;
                }
            }
            at += 4 + len;
        }
        Ok(SpillContents {
            path: path.to_path_buf(),
            id,
            frames,
            damage,
        })
    }

    /// Appends one spilled frame's readings, unless that frame of that file
    /// was applied already (a crash after the commit). Returns whether it
    /// was written now.
    pub async fn append_spilled(
        &self,
        file: &[u8; 16],
        frame: u64,
        readings: &[Reading],
    ) -> Result<bool, StoreError> {
        let key = meta_key(file);
        let applied: Option<i64> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?1")
            .bind(&key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading a spill file's progress"))?;
        if applied.is_some_and(|a| a >= frame as i64) {
            return Ok(false);
        }
        self.append_marked(readings, Some((&key, frame as i64))).await?;
        Ok(true)
    }

    /// Removes a spill file whose frames are all in the store, then its mark.
    /// A damaged file is kept, renamed `<name>.damaged`, never deleted.
    pub async fn finish_spill(&self, contents: &SpillContents) -> Result<(), StoreError> {
        if contents.damage.is_some() {
            let mut aside = contents.path.clone().into_os_string();
            aside.push(".damaged");
            std::fs::rename(&contents.path, &aside)
                .map_err(|e| spill_io(&contents.path, "setting aside", e))?;
        } else {
            std::fs::remove_file(&contents.path).map_err(|e| spill_io(&contents.path, "removing", e))?;
        }
        sqlx::query("DELETE FROM meta WHERE key = ?1")
            .bind(meta_key(&contents.id))
            .execute(&self.pool)
            .await
            .map_err(db("clearing a spill file's progress"))?;
        Ok(())
    }
}
