//! The one rollback idiom of the suite: an ADD records each change it makes, and when a later
//! step fails it undoes them newest first, then returns the original error.
//!
//! ```
//! use cni_spec::Rollback;
//!
//! enum Undo { DeleteLink(u32), ReleaseLease }
//! let mut rb = Rollback::new();
//! rb.record(Undo::DeleteLink(7));
//! rb.record(Undo::ReleaseLease);
//! // a later step failed:
//! let failures = rb.unwind(|u| match u {
//!     Undo::ReleaseLease => Ok(()),
//!     Undo::DeleteLink(i) => Err(format!("delete link {i}: no such device")),
//! });
//! assert_eq!(failures, ["delete link 7: no such device"]);
//! ```
//!
//! Each plugin defines its own `Undo` enum (what its steps can undo) and one error variant that
//! carries the original error plus the cleanup failures ([`Rollback::unwind`]'s result), so the
//! error keeps its CNI code and says what was left behind.

use std::fmt::Display;

/// The changes an ADD made so far, in order.
#[derive(Debug)]
#[must_use = "a Rollback must be committed or unwound"]
pub struct Rollback<U> {
    done: Vec<U>,
}

impl<U> Default for Rollback<U> {
    fn default() -> Self {
        Rollback { done: Vec::new() }
    }
}

impl<U> Rollback<U> {
    /// Nothing recorded yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one change, to be undone if a later step fails.
    pub fn record(&mut self, undo: U) {
        self.done.push(undo);
    }

    /// How many changes are recorded.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// The ADD succeeded: keep every change.
    pub fn commit(self) {}

    /// Undoes every recorded change, newest first, continuing past failures; returns the
    /// failures' messages in the order they happened (empty when everything was undone).
    pub fn unwind<E: Display>(self, mut undo: impl FnMut(U) -> Result<(), E>) -> Vec<String> {
        self.done
            .into_iter()
            .rev()
            .filter_map(|u| undo(u).err().map(|e| e.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwinds_newest_first_and_keeps_going() {
        let mut rb = Rollback::new();
        for i in 1..=4 {
            rb.record(i);
        }
        assert_eq!(rb.len(), 4);
        let mut order = Vec::new();
        let failures = rb.unwind(|i| {
            order.push(i);
            if i % 2 == 0 {
                Err(format!("step {i}"))
            } else {
                Ok(())
            }
        });
        assert_eq!(order, [4, 3, 2, 1]);
        assert_eq!(failures, ["step 4", "step 2"]);
    }

    #[test]
    fn empty_and_committed() {
        let rb: Rollback<u8> = Rollback::new();
        assert!(rb.is_empty());
        assert!(rb.unwind(|_| Err::<(), _>("never")).is_empty());
        let mut rb = Rollback::new();
        rb.record(1u8);
        rb.commit();
    }
}
