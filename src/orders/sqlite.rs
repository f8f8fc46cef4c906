//! Orders in SQLite, embedded: a file, nothing to start. Each connection
//! knows which file it opened (device and inode), and is used only while
//! that is still the file at the path: a file deleted or replaced while
//! the server runs (`rm`, `cargo clean` of a database in `target/`) would
//! otherwise take the orders into an unlinked inode while the server said
//! they were written.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use r2d2::ManageConnection;
use rusqlite::{Connection, OpenFlags};

use super::Order;
use super::store::{BUYERS, COUNT, DB_WAIT, INSERT, SCHEMA, Store, pool_of};

/// Pages the log (the `-wal` file) may hold before they are copied into
/// the database: 40 MB, not SQLite's 4 MB. A batch of random buyers
/// rewrites pages of the index all over; copied ten times less often, a
/// page rewritten meanwhile is copied once: a backlog drains a fifth to a
/// third faster.
const WAL_PAGES: u32 = 10_000;

/// Orders in the SQLite file at `path`.
pub struct Sqlite {
    pub path: PathBuf,
    pool: r2d2::Pool<SqliteFile>,
}

/// Opens connections to the file at a path, each with the file's identity.
struct SqliteFile {
    path: PathBuf,
}

/// A connection, and the file it opened: its device and inode.
pub struct FileConnection {
    con: Connection,
    file: (u64, u64),
}

/// The device and inode of the file at `path`, if there is one.
fn identity(path: &Path) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// `path` made absolute, the way a sale records it: a relative path means
/// another file to a server started in another folder.
pub fn absolute(path: &str) -> Result<PathBuf, String> {
    let refuse = |why: &str| {
        Err(format!(
            "--orders sqlite:{path}: {why}; give the path of a file, as in \
             sqlite:seckill-orders.sqlite"
        ))
    };
    if path.is_empty() {
        return refuse("no path given");
    }
    // SQLite keeps these in memory: the orders would vanish with the process.
    if path == ":memory:" || path.starts_with("file:") {
        return refuse("an in-memory database or a URI is gone when seckill stops");
    }
    let path = Path::new(path);
    let (Some(name), parent) = (path.file_name(), path.parent()) else {
        return refuse("that names no file");
    };
    let folder = match parent.filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => parent.to_path_buf(),
        None => PathBuf::from("."),
    };
    let folder = std::fs::canonicalize(&folder).map_err(|err| {
        format!(
            "--orders sqlite:{}: the folder {} cannot be used ({err}); create it \
             (mkdir -p {}) or give another path",
            path.display(),
            folder.display(),
            folder.display()
        )
    })?;
    Ok(folder.join(name))
}

impl Sqlite {
    /// The file at `path`, created with its table if missing. Said now: a
    /// path that names a folder, or a file that cannot be written.
    pub fn open(path: &str) -> Result<Sqlite, String> {
        let path = absolute(path)?;
        let shown = format!("--orders sqlite:{}", path.display());
        if path.is_dir() {
            return Err(format!(
                "{shown}: that is a folder; give a file's path in it"
            ));
        }
        let manager = SqliteFile { path: path.clone() };
        if let Err(err) = manager.connect() {
            // Locked by another program: an outage, not a mistake.
            if err.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) {
                tracing::warn!("{shown}: {err}; orders wait in the stream until it can be written");
            } else {
                return Err(format!("{shown}: cannot write there: {err}"));
            }
        }
        Ok(Sqlite {
            path,
            pool: pool_of(manager),
        })
    }

    fn connection(&self) -> Result<r2d2::PooledConnection<SqliteFile>, String> {
        self.pool.get().map_err(|err| err.to_string())
    }
}

impl ManageConnection for SqliteFile {
    type Connection = FileConnection;
    type Error = rusqlite::Error;

    /// Opens the file (creating it if missing), in WAL mode so that the
    /// audit reads while the writer writes, with its table.
    fn connect(&self) -> Result<FileConnection, rusqlite::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let con = Connection::open_with_flags(&self.path, flags)?;
        con.busy_timeout(DB_WAIT)?;
        con.pragma_update(None, "journal_mode", "WAL")?;
        con.pragma_update(None, "wal_autocheckpoint", WAL_PAGES)?;
        con.execute(SCHEMA, [])?;
        let file = identity(&self.path).ok_or(rusqlite::Error::InvalidPath(self.path.clone()))?;
        Ok(FileConnection { con, file })
    }

    /// Still the file at the path?
    fn is_valid(&self, con: &mut FileConnection) -> Result<(), rusqlite::Error> {
        match identity(&self.path) {
            Some(file) if file == con.file => Ok(()),
            _ => Err(rusqlite::Error::InvalidPath(self.path.clone())),
        }
    }

    fn has_broken(&self, con: &mut FileConnection) -> bool {
        identity(&self.path) != Some(con.file)
    }
}

impl Store for Sqlite {
    fn write(&self, orders: &[Order]) -> Result<u64, String> {
        let text = |err: rusqlite::Error| err.to_string();
        let mut pooled = self.connection()?;
        let file = pooled.file;
        let tx = pooled.con.transaction().map_err(text)?;
        // A table dropped by hand comes back.
        tx.execute(SCHEMA, []).map_err(text)?;
        let mut new = 0;
        {
            let mut insert = tx.prepare_cached(INSERT).map_err(text)?;
            for o in orders {
                let row = (&o.sale, &o.user, o.left, &o.seller, &o.entry);
                new += insert.execute(row).map_err(text)? as u64;
            }
        }
        tx.commit().map_err(text)?;
        // Removed or replaced while the batch was written: it went nowhere
        // anyone can read, so it is written again, to the file now there.
        if identity(&self.path) != Some(file) {
            return Err(format!(
                "{} was removed or replaced while orders were written to it; writing them \
                 again to the file there now",
                self.path.display()
            ));
        }
        Ok(new)
    }

    fn count(&self, sale: &str) -> Result<u64, String> {
        let pooled = self.connection()?;
        let count: i64 = pooled
            .con
            .query_row(COUNT, [sale], |row| row.get(0))
            .map_err(|err| err.to_string())?;
        Ok(count as u64)
    }

    fn buyers(&self, sale: &str) -> Result<Vec<(String, String)>, String> {
        let text = |err: rusqlite::Error| err.to_string();
        let pooled = self.connection()?;
        let mut query = pooled.con.prepare(BUYERS).map_err(text)?;
        let rows = query
            .query_map([sale], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(text)?;
        rows.collect::<Result<_, _>>().map_err(text)
    }
}
