//! The recent-message cache: the last messages appended, in a ring of
//! bytes of fixed size, so the common re-reads (a re-login catching up, a
//! re-request of the last packets) need no file read. Both buffers are
//! allocated once, when the store opens, and never grow; the oldest
//! messages are evicted to make room.

#![forbid(unsafe_code)]

use std::borrow::Cow;

/// Bytes of one cache slot (a message's start in the ring and its origin).
pub(crate) const CACHE_SLOT_BYTES: usize = size_of::<Slot>();

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// Logical position of the message's first byte (ring offset = start
    /// modulo the ring's length).
    start: u64,
    origin: u64,
}

/// The last messages, by sequence.
#[derive(Debug)]
pub(crate) struct RecentCache {
    ring: Vec<u8>,
    slots: Vec<Slot>,
    /// Index in `slots` of the oldest message held.
    slot_head: usize,
    /// Messages held.
    held: usize,
    /// The sequence of the oldest message held (the next one appended when
    /// none is).
    first_sequence: u64,
    /// Logical position where the next message starts.
    end: u64,
}

impl RecentCache {
    /// A cache of `ring_bytes` message bytes and at most `slots_max`
    /// messages; the next message appended will be `next_sequence`.
    pub(crate) fn new(ring_bytes: usize, slots_max: usize, next_sequence: u64) -> RecentCache {
        RecentCache {
            ring: vec![0; ring_bytes],
            slots: vec![Slot::default(); slots_max],
            slot_head: 0,
            held: 0,
            first_sequence: next_sequence,
            end: 0,
        }
    }

    /// Bytes the cache holds on the heap (fixed at creation).
    pub(crate) fn resident_bytes(&self) -> usize {
        self.ring.capacity() + self.slots.capacity() * CACHE_SLOT_BYTES
    }

    /// Forgets everything; the next message appended is `next_sequence`.
    pub(crate) fn reset(&mut self, next_sequence: u64) {
        self.slot_head = 0;
        self.held = 0;
        self.first_sequence = next_sequence;
        self.end = 0;
    }

    /// Adds message `sequence` (the one after the newest held), evicting the
    /// oldest as needed. A message larger than the ring empties the cache.
    pub(crate) fn push(&mut self, sequence: u64, origin: u64, body: &[u8]) {
        debug_assert_eq!(sequence, self.first_sequence + self.held as u64);
        if body.len() > self.ring.len() || self.slots.is_empty() {
            self.reset(sequence + 1);
            return;
        }
        while self.held > 0
            && (self.held == self.slots.len()
                || self.end + body.len() as u64 - self.slot(0).start > self.ring.len() as u64)
        {
            self.evict_oldest();
        }
        let start = self.end;
        let at = (start % self.ring.len().max(1) as u64) as usize;
        let first_part = body.len().min(self.ring.len() - at);
        self.ring[at..at + first_part].copy_from_slice(&body[..first_part]);
        self.ring[..body.len() - first_part].copy_from_slice(&body[first_part..]);
        let index = self.slot_index(self.held);
        self.slots[index] = Slot { start, origin };
        self.held += 1;
        self.end += body.len() as u64;
    }

    /// Message `sequence` and its origin, if held: borrowed from the ring
    /// unless it wraps around its end.
    pub(crate) fn get(&self, sequence: u64) -> Option<(u64, Cow<'_, [u8]>)> {
        let position = usize::try_from(sequence.checked_sub(self.first_sequence)?).ok()?;
        if position >= self.held {
            return None;
        }
        let slot = self.slot(position);
        let end = if position + 1 < self.held {
            self.slot(position + 1).start
        } else {
            self.end
        };
        let length = (end - slot.start) as usize;
        let at = (slot.start % self.ring.len().max(1) as u64) as usize;
        if at + length <= self.ring.len() {
            return Some((slot.origin, Cow::Borrowed(&self.ring[at..at + length])));
        }
        let mut bytes = Vec::with_capacity(length);
        bytes.extend_from_slice(&self.ring[at..]);
        bytes.extend_from_slice(&self.ring[..length - (self.ring.len() - at)]);
        Some((slot.origin, Cow::Owned(bytes)))
    }

    /// Drops the messages after `sequence`.
    pub(crate) fn truncate_after(&mut self, sequence: u64) {
        let keep = sequence.saturating_sub(self.first_sequence - 1);
        if keep == 0 {
            self.reset(sequence + 1);
            return;
        }
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        if keep < self.held {
            self.end = self.slot(keep).start;
            self.held = keep;
        }
    }

    fn slot(&self, position: usize) -> Slot {
        self.slots[self.slot_index(position)]
    }

    /// Where the message `position` places after the oldest is in `slots`
    /// (`position` is at most `slots.len()`). A compare rather than a
    /// remainder: this runs several times per message appended and read,
    /// and a division showed in the I/O thread's profile.
    fn slot_index(&self, position: usize) -> usize {
        debug_assert!(position <= self.slots.len() && self.slot_head < self.slots.len());
        let index = self.slot_head + position;
        if index >= self.slots.len() {
            index - self.slots.len()
        } else {
            index
        }
    }

    fn evict_oldest(&mut self) {
        assert!(
            self.held > 0,
            "a message that fits the ring fits an empty one"
        );
        self.slot_head = self.slot_index(1);
        self.held -= 1;
        self.first_sequence += 1;
        if self.held == 0 {
            self.end = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(sequence: u64) -> Vec<u8> {
        (0..sequence % 23)
            .map(|byte| (byte + sequence) as u8)
            .collect()
    }

    #[test]
    fn keeps_the_newest_messages_within_its_bytes() {
        let mut cache = RecentCache::new(100, 8, 1);
        let resident = cache.resident_bytes();
        for sequence in 1..=500u64 {
            cache.push(sequence, sequence * 10, &message(sequence));
            let (origin, bytes) = cache.get(sequence).expect("the newest is held");
            assert_eq!((origin, &*bytes), (sequence * 10, &message(sequence)[..]));
            assert!(cache.held <= 8);
            assert!(cache.end - cache.slot(0).start <= 100);
            for older in sequence.saturating_sub(30)..sequence {
                if let Some((origin, bytes)) = cache.get(older) {
                    assert_eq!((origin, &*bytes), (older * 10, &message(older)[..]));
                }
            }
            assert_eq!(cache.resident_bytes(), resident);
        }
        assert!(cache.get(1).is_none());
        assert!(cache.get(501).is_none());
        cache.truncate_after(498);
        assert!(cache.get(499).is_none());
        assert_eq!(&*cache.get(498).expect("kept").1, &message(498)[..]);
        cache.push(499, 1, b"new");
        assert_eq!(&*cache.get(499).expect("pushed").1, b"new");
        cache.truncate_after(3);
        assert!(cache.get(499).is_none());
        cache.push(4, 1, &[7; 101]);
        assert!(cache.get(4).is_none());
        cache.push(5, 2, b"x");
        assert_eq!(&*cache.get(5).expect("pushed").1, b"x");
    }

    #[test]
    fn an_empty_cache_holds_nothing() {
        let mut cache = RecentCache::new(0, 0, 1);
        cache.push(1, 1, b"");
        cache.push(2, 1, b"abc");
        assert!(cache.get(2).is_none());
        assert_eq!(cache.resident_bytes(), 0);
    }
}
