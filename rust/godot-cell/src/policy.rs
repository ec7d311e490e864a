//! The two flavours of cell: what they do on a conflict, and where they count shared borrows.

use crate::sync::AtomicUsize;

/// One atomic word on a cache line of its own, so that threads writing neighbouring words do not
/// slow each other down. 64 bytes: the line size of current x86-64 and Arm cores.
#[derive(Debug)]
#[repr(align(64))]
pub struct Line(AtomicUsize);

impl Line {
    fn new() -> Self {
        Self(AtomicUsize::new(0))
    }
}

/// The state word and the shared-borrow counts of one cell.
pub trait Words {
    /// How many shared-borrow counts there are; a thread uses the one its key selects.
    const STRIPES: usize;
    fn new() -> Self;
    fn state(&self) -> &AtomicUsize;
    fn readers(&self, stripe: usize) -> &AtomicUsize;
}

/// What a cell does on a conflict, and its words.
pub trait Policy {
    /// Whether a conflict with another thread waits (rather than fails).
    const BLOCKING: bool;
    type Words: Words;
}

/// Conflicts with other threads wait; shared borrows counted on 4 cache lines (2 under loom, so
/// that its 3-thread models also have two threads sharing one), written by different threads.
#[derive(Debug)]
pub struct Blocking;

/// Every conflict fails; the cell is used by one thread, so one unpadded count will do.
#[derive(Debug)]
pub struct Panicking;

const STRIPES: usize = if cfg!(loom) { 2 } else { 4 };

#[derive(Debug)]
pub struct Striped {
    state: Line,
    readers: [Line; STRIPES],
}

impl Words for Striped {
    const STRIPES: usize = STRIPES;

    fn new() -> Self {
        Self {
            state: Line::new(),
            readers: std::array::from_fn(|_| Line::new()),
        }
    }

    fn state(&self) -> &AtomicUsize {
        &self.state.0
    }

    fn readers(&self, stripe: usize) -> &AtomicUsize {
        &self.readers[stripe].0
    }
}

#[derive(Debug)]
pub struct Plain {
    state: AtomicUsize,
    readers: AtomicUsize,
}

impl Words for Plain {
    const STRIPES: usize = 1;

    fn new() -> Self {
        Self {
            state: AtomicUsize::new(0),
            readers: AtomicUsize::new(0),
        }
    }

    fn state(&self) -> &AtomicUsize {
        &self.state
    }

    fn readers(&self, _stripe: usize) -> &AtomicUsize {
        &self.readers
    }
}

impl Policy for Blocking {
    const BLOCKING: bool = true;
    type Words = Striped;
}

impl Policy for Panicking {
    const BLOCKING: bool = false;
    type Words = Plain;
}
