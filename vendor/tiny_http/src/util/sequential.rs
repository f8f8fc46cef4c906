use std::io::Result as IoResult;
use std::io::{BufRead, Error as IoError, ErrorKind, Read, Write};

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use std::mem;

pub struct SequentialReaderBuilder<R>
where
    R: Read + Send,
{
    inner: SequentialReaderBuilderInner<R>,
}

enum SequentialReaderBuilderInner<R>
where
    R: Read + Send,
{
    First(R),
    NotFirst(Take<R>),
}

pub struct SequentialReader<R>
where
    R: Read + Send,
{
    inner: SequentialReaderInner<R>,
    next: Option<Give<R>>,
}

enum SequentialReaderInner<R>
where
    R: Read + Send,
{
    MyTurn(R),
    Waiting(Take<R>),
    Empty,
}

pub struct SequentialWriterBuilder<W>
where
    W: Write + Send,
{
    writer: Arc<Mutex<W>>,
    next_trigger: Option<Take<()>>,
}

pub struct SequentialWriter<W>
where
    W: Write + Send,
{
    trigger: Option<Take<()>>,
    writer: Arc<Mutex<W>>,
    on_finish: Option<Give<()>>,
}

impl<R: Read + Send> SequentialReaderBuilder<R> {
    pub fn new(reader: R) -> SequentialReaderBuilder<R> {
        SequentialReaderBuilder {
            inner: SequentialReaderBuilderInner::First(reader),
        }
    }
}

impl<W: Write + Send> SequentialWriterBuilder<W> {
    pub fn new(writer: W) -> SequentialWriterBuilder<W> {
        SequentialWriterBuilder {
            writer: Arc::new(Mutex::new(writer)),
            next_trigger: None,
        }
    }
}

impl<R: Read + Send> Iterator for SequentialReaderBuilder<R> {
    type Item = SequentialReader<R>;

    fn next(&mut self) -> Option<SequentialReader<R>> {
        let (tx, rx) = handoff();
        let tx = Some(tx);

        let inner = mem::replace(&mut self.inner, SequentialReaderBuilderInner::NotFirst(rx));

        match inner {
            SequentialReaderBuilderInner::First(reader) => Some(SequentialReader {
                inner: SequentialReaderInner::MyTurn(reader),
                next: tx,
            }),

            SequentialReaderBuilderInner::NotFirst(previous) => Some(SequentialReader {
                inner: SequentialReaderInner::Waiting(previous),
                next: tx,
            }),
        }
    }
}

impl<W: Write + Send> Iterator for SequentialWriterBuilder<W> {
    type Item = SequentialWriter<W>;
    fn next(&mut self) -> Option<SequentialWriter<W>> {
        let (tx, rx) = handoff();
        let tx = Some(tx);
        let mut next_next_trigger = Some(rx);
        ::std::mem::swap(&mut next_next_trigger, &mut self.next_trigger);

        Some(SequentialWriter {
            trigger: next_next_trigger,
            writer: self.writer.clone(),
            on_finish: tx,
        })
    }
}

impl<R: Read + Send> SequentialReader<R> {
    /// seckill patch: waits until the readers before this one are done, so a
    /// connection can time its next read from then, not from before.
    pub(crate) fn wait_turn(&mut self) -> IoResult<()> {
        if let SequentialReaderInner::Waiting(ref recv) = self.inner {
            // seckill patch: an error, not a panic, if the turn never comes.
            let reader = recv.take().ok_or_else(gone)?;
            self.inner = SequentialReaderInner::MyTurn(reader);
        }
        Ok(())
    }
}

fn gone() -> IoError {
    IoError::new(
        ErrorKind::BrokenPipe,
        "the connection's previous request is gone",
    )
}

impl<R: Read + Send> Read for SequentialReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        self.wait_turn()?;
        match self.inner {
            SequentialReaderInner::MyTurn(ref mut reader) => reader.read(buf),
            _ => Err(gone()),
        }
    }
}

// seckill patch: buffered reads, so that a head is read a slice at a time.
impl<R: BufRead + Send> BufRead for SequentialReader<R> {
    fn fill_buf(&mut self) -> IoResult<&[u8]> {
        self.wait_turn()?;
        match self.inner {
            SequentialReaderInner::MyTurn(ref mut reader) => reader.fill_buf(),
            _ => Err(gone()),
        }
    }

    fn consume(&mut self, amount: usize) {
        if let SequentialReaderInner::MyTurn(ref mut reader) = self.inner {
            reader.consume(amount);
        }
    }
}

impl<W: Write + Send> SequentialWriter<W> {
    /// Waits until the writers before this one are done. seckill patch: the
    /// unwraps here and below became errors and poison-proof locks.
    fn my_turn(&mut self) -> IoResult<MutexGuard<'_, W>> {
        if let Some(v) = self.trigger.as_ref() {
            v.take().ok_or_else(gone)?;
        }
        self.trigger = None;
        Ok(self.writer.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<W: Write + Send> Write for SequentialWriter<W> {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        self.my_turn()?.write(buf)
    }

    fn flush(&mut self) -> IoResult<()> {
        self.my_turn()?.flush()
    }
}

impl<R> Drop for SequentialReader<R>
where
    R: Read + Send,
{
    fn drop(&mut self) {
        let inner = mem::replace(&mut self.inner, SequentialReaderInner::Empty);

        match inner {
            SequentialReaderInner::MyTurn(reader) => {
                if let Some(next) = self.next.take() {
                    next.give(reader);
                }
            }
            SequentialReaderInner::Waiting(recv) => {
                if let (Some(reader), Some(next)) = (recv.take(), self.next.take()) {
                    next.give(reader);
                }
            }
            SequentialReaderInner::Empty => (),
        }
    }
}

impl<W> Drop for SequentialWriter<W>
where
    W: Write + Send,
{
    fn drop(&mut self) {
        if let Some(next) = self.on_finish.take() {
            next.give(());
        }
    }
}

/// seckill patch: a one-shot handoff from one request's reader or writer to
/// the next request's. std's channel, twice a request, allocated a block of
/// 31 slots each time: with it, a `/healthz` request took 16 % more
/// instructions (callgrind).
fn handoff<T>() -> (Give<T>, Take<T>) {
    let shared = Arc::new(Handoff {
        slot: Mutex::new((Slot::Empty, false)),
        ready: Condvar::new(),
    });
    (Give(Arc::clone(&shared)), Take(shared))
}

/// seckill patch: the slot, and whether the taker waits on `ready`: std's
/// `notify_one` is a system call even with no one to wake, three a request.
struct Handoff<T> {
    slot: Mutex<(Slot<T>, bool)>,
    ready: Condvar,
}

enum Slot<T> {
    Empty,
    Full(T),
    /// Given and taken, or the giver was dropped without giving.
    Done,
}

/// The giving end; dropped without giving, the taker gets None.
struct Give<T>(Arc<Handoff<T>>);

/// The taking end.
struct Take<T>(Arc<Handoff<T>>);

impl<T> Give<T> {
    fn give(self, value: T) {
        let mut slot = lock(&self.0.slot);
        slot.0 = Slot::Full(value);
        if slot.1 {
            self.0.ready.notify_one();
        }
    }
}

impl<T> Drop for Give<T> {
    fn drop(&mut self) {
        let mut slot = lock(&self.0.slot);
        if matches!(slot.0, Slot::Empty) {
            slot.0 = Slot::Done;
            if slot.1 {
                self.0.ready.notify_one();
            }
        }
    }
}

impl<T> Take<T> {
    /// Waits for the value; None if the giver went without giving, or it
    /// was taken already.
    fn take(&self) -> Option<T> {
        let mut slot = lock(&self.0.slot);
        while matches!(slot.0, Slot::Empty) {
            slot.1 = true;
            slot = self
                .0
                .ready
                .wait(slot)
                .unwrap_or_else(PoisonError::into_inner);
        }
        slot.1 = false;
        match mem::replace(&mut slot.0, Slot::Done) {
            Slot::Full(value) => Some(value),
            _ => None,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
