//! Newtypes for the engine's numbers: offsets, file positions, log ids.
//!
//! Owns: the vocabulary shared by every engine module. Knows nothing of files or the Kafka protocol.

use std::fmt;

/// A logical offset in a partition log: the position of a record in the sequence of all records
/// ever appended. Offsets are contiguous; each batch covers `base..=last`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub u64);

impl Offset {
    pub const ZERO: Offset = Offset(0);

    pub fn next(self) -> Offset {
        Offset(self.0 + 1)
    }

    pub fn plus(self, delta: u64) -> Offset {
        Offset(self.0 + delta)
    }
}

impl fmt::Debug for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A byte position inside one segment file.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct FilePosition(pub u64);

/// Identifies a log inside one [`crate::Shard`]. Chosen by the shard when the log is opened; the
/// caller maps its own names (topic-partition) to it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct LogId(pub u32);

/// Milliseconds since the Unix epoch. The engine never reads the clock itself: every call that
/// needs "now" takes it as an argument, so tests and the simulator control time.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct TimestampMs(pub i64);

/// A leader epoch, stamped into each batch header on append.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct LeaderEpoch(pub i32);
