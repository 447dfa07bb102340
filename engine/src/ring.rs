//! A bounded, lock-free, single-producer/single-consumer ring: the hop
//! between the gateway, the engine thread and market data.
//!
//! # Algorithm
//!
//! Lamport's SPSC queue (L. Lamport, "Specifying Concurrent Program
//! Modules", ACM TOPLAS 5(2), 1983) with free-running indices and cached
//! copies of the other side's index, as in Erik Rigtorp's `SPSCQueue` and
//! Aeron's `OneToOneRingBuffer`:
//!
//! - `tail` counts the items ever pushed and is written only by the
//!   [`Producer`]; `head` counts the items ever popped and is written only
//!   by the [`Consumer`]. Both wrap at `usize::MAX`; the slot of index `i` is
//!   `i & (capacity - 1)`, so the capacity is a power of two.
//! - The two indices live on separate 128-byte lines (`#[repr(align(128))]`:
//!   two 64-byte lines, because adjacent-line prefetch on x86 pulls pairs),
//!   so a write by one side does not invalidate the line the other side is
//!   writing.
//! - Each side keeps a private copy of the other side's index and reloads
//!   it only when that copy says the ring is full (producer) or empty
//!   (consumer). In steady state a side touches the other's line once per
//!   lap, not once per item: that is what removes the cache-line
//!   ping-pong of a naive Lamport queue.
//! - Batching: [`Producer::push_batch`] and [`Consumer::drain`] move many
//!   items with one index publish (one release store) per batch.
//!
//! # Invariants
//!
//! 1. `0 <= tail - head <= capacity` (wrapping arithmetic) at every moment
//!    either side can observe.
//! 2. Slots `head .. tail` hold initialised values owned by the ring;
//!    every other slot is uninitialised (or moved out) and owned by nobody.
//! 3. Only the producer writes slots `tail .. head + capacity` and then
//!    publishes them with a release store of `tail`; the consumer reads
//!    slots only after an acquire load of `tail` covering them.
//! 4. Only the consumer moves values out of slots `head .. tail` and then
//!    frees them with a release store of `head`; the producer overwrites a
//!    slot only after an acquire load of `head` past it.
//! 5. A cached index is never ahead of the real one, so it can only make a
//!    side think the ring is fuller (producer) or emptier (consumer) than it
//!    is — never the reverse.
//!
//! Values still in the ring when both halves are gone are dropped with it.
//! This module is the one place in `engine` with `unsafe` code (the slots
//! are shared cells whose ownership the indices pass between threads); every
//! block states why it is sound.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// An index on a line of its own (two 64-byte lines, against the adjacent-
/// line prefetcher).
#[derive(Debug)]
#[repr(align(128))]
struct PaddedIndex(AtomicUsize);

/// What the two halves share.
struct Shared<T> {
    /// Items ever popped; written by the consumer only.
    head: PaddedIndex,
    /// Items ever pushed; written by the producer only.
    tail: PaddedIndex,
    /// `capacity` preallocated slots, `capacity` a power of two.
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    /// `capacity - 1`.
    mask: usize,
}

// SAFETY: the slots are only reached through one `Producer` and one
// `Consumer` (neither is `Clone`), each through `&mut self`, and invariants 3
// and 4 of the module docs give every slot exactly one owner at a time, with
// the hand-over ordered by release/acquire on `tail` and `head`. Values of `T`
// move between threads, hence `T: Send`; no `&T` is ever shared, so `T: Sync`
// is not needed.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, index: usize) -> *mut MaybeUninit<T> {
        self.slots[index & self.mask].get()
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // `&mut self`: both halves are gone, and `Arc`'s drop synchronised
        // with their last accesses, so plain reads of the indices are exact.
        let head = *self.head.0.get_mut();
        let tail = *self.tail.0.get_mut();
        debug_assert!(tail.wrapping_sub(head) <= self.capacity());
        let mut index = head;
        while index != tail {
            // SAFETY: invariant 2: slots `head .. tail` hold initialised
            // values that nobody else owns any more; each is dropped once.
            unsafe { (*self.slot(index)).assume_init_drop() };
            index = index.wrapping_add(1);
        }
    }
}

impl<T> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("capacity", &self.capacity())
            .field("head", &self.head.0.load(Ordering::Relaxed))
            .field("tail", &self.tail.0.load(Ordering::Relaxed))
            .finish()
    }
}

/// Make a ring of `capacity` preallocated slots and return its two halves.
///
/// # Panics
///
/// If `capacity` is not a power of two (0 is not).
///
/// # Examples
///
/// ```
/// let (mut producer, mut consumer) = engine::ring::<u64>(4);
/// assert_eq!(producer.try_push(7), Ok(()));
/// let mut seen = Vec::new();
/// assert_eq!(consumer.drain(16, |value| seen.push(value)), 1);
/// assert_eq!(seen, [7]);
/// ```
pub fn ring<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    assert!(
        capacity.is_power_of_two(),
        "ring capacity {capacity} is not a power of two"
    );
    let slots = (0..capacity)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect::<Box<[_]>>();
    let shared = Arc::new(Shared {
        head: PaddedIndex(AtomicUsize::new(0)),
        tail: PaddedIndex(AtomicUsize::new(0)),
        slots,
        mask: capacity - 1,
    });
    let producer = Producer {
        shared: Arc::clone(&shared),
        tail: 0,
        head_cached: 0,
    };
    let consumer = Consumer {
        shared,
        head: 0,
        tail_cached: 0,
    };
    (producer, consumer)
}

/// The writing half of a [`ring`]: `Send`, not `Clone`.
#[derive(Debug)]
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    /// The producer's own `tail` (the shared one is this, published).
    tail: usize,
    /// The consumer's `head` as last loaded (never ahead of the real one).
    head_cached: usize,
}

impl<T: Send> Producer<T> {
    /// The number of slots, fixed at construction.
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// Free slots, loading the consumer's index only if the cached copy says
    /// fewer than `wanted` are free.
    fn free_slots(&mut self, wanted: usize) -> usize {
        let capacity = self.shared.capacity();
        let mut free = capacity - self.tail.wrapping_sub(self.head_cached);
        if free < wanted {
            self.head_cached = self.shared.head.0.load(Ordering::Acquire);
            free = capacity - self.tail.wrapping_sub(self.head_cached);
        }
        debug_assert!(free <= capacity);
        free
    }

    /// Push `value`, or give it back if the ring is full (back-pressure as a
    /// value: the caller decides whether to spin, drop or stop reading).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut producer, _consumer) = engine::ring::<String>(1);
    /// assert_eq!(producer.try_push("a".to_owned()), Ok(()));
    /// assert_eq!(producer.try_push("b".to_owned()), Err("b".to_owned()));
    /// ```
    pub fn try_push(&mut self, value: T) -> Result<(), T> {
        if self.free_slots(1) == 0 {
            return Err(value);
        }
        // SAFETY: `free_slots` saw the consumer's `head` (acquire) at least
        // `tail - capacity + 1`, so slot `tail` is outside `head .. tail`:
        // invariant 2 makes it ours and uninitialised, and invariant 4 says
        // the consumer is done with it. Writing a `MaybeUninit` drops nothing.
        unsafe { (*self.shared.slot(self.tail)).write(value) };
        self.tail = self.tail.wrapping_add(1);
        self.shared.tail.0.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Push items from `items` until it ends or the ring is full, publishing
    /// them with one index store; returns how many were pushed. An item is
    /// taken from the iterator only when there is a slot for it, so none is
    /// lost: what is left stays in `items`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut producer, mut consumer) = engine::ring::<u32>(4);
    /// let mut items = 0..10;
    /// assert_eq!(producer.push_batch(&mut items), 4);
    /// assert_eq!(items.next(), Some(4));
    /// assert_eq!(consumer.drain(2, drop), 2);
    /// ```
    pub fn push_batch<I: Iterator<Item = T>>(&mut self, items: &mut I) -> usize {
        let free = self.free_slots(self.shared.capacity());
        let mut pushed = 0;
        while pushed < free {
            let Some(value) = items.next() else { break };
            let index = self.tail.wrapping_add(pushed);
            // SAFETY: as in `try_push`: `pushed < free`, so slot `index` is
            // outside `head .. tail` and ours. It is not yet published, so if
            // `items.next()` panics later the value leaks (never read, never
            // dropped twice) and the slot stays ours.
            unsafe { (*self.shared.slot(index)).write(value) };
            pushed += 1;
        }
        if pushed > 0 {
            self.tail = self.tail.wrapping_add(pushed);
            self.shared.tail.0.store(self.tail, Ordering::Release);
        }
        pushed
    }
}

/// The reading half of a [`ring`]: `Send`, not `Clone`.
#[derive(Debug)]
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    /// The consumer's own `head` (the shared one is this, published).
    head: usize,
    /// The producer's `tail` as last loaded (never ahead of the real one).
    tail_cached: usize,
}

/// Publishes the consumer's progress when a batch ends, also when the
/// callback of [`Consumer::drain`] panics, so a value moved out is never
/// dropped again by the ring.
struct HeadRelease<'a> {
    shared_head: &'a AtomicUsize,
    head: &'a mut usize,
    published: usize,
}

impl Drop for HeadRelease<'_> {
    fn drop(&mut self) {
        if *self.head != self.published {
            self.shared_head.store(*self.head, Ordering::Release);
        }
    }
}

impl<T: Send> Consumer<T> {
    /// The number of slots, fixed at construction.
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// Items ready to pop, loading the producer's index only if the cached
    /// copy says fewer than `wanted` are ready.
    fn ready_items(&mut self, wanted: usize) -> usize {
        let mut ready = self.tail_cached.wrapping_sub(self.head);
        if ready < wanted {
            self.tail_cached = self.shared.tail.0.load(Ordering::Acquire);
            ready = self.tail_cached.wrapping_sub(self.head);
        }
        debug_assert!(ready <= self.shared.capacity());
        ready
    }

    /// Whether nothing is ready to pop (loads the producer's index).
    pub fn is_empty(&mut self) -> bool {
        self.ready_items(1) == 0
    }

    /// Pop the oldest item, or `None` if the ring is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut producer, mut consumer) = engine::ring::<u8>(2);
    /// assert_eq!(consumer.try_pop(), None);
    /// producer.try_push(1).unwrap();
    /// assert_eq!(consumer.try_pop(), Some(1));
    /// ```
    pub fn try_pop(&mut self) -> Option<T> {
        if self.ready_items(1) == 0 {
            return None;
        }
        // SAFETY: `ready_items` saw the producer's `tail` (acquire) past
        // `head`, so slot `head` holds an initialised value (invariants 2
        // and 3) that only the consumer may move out; `head` is advanced
        // right after, so it is read once.
        let value = unsafe { (*self.shared.slot(self.head)).assume_init_read() };
        self.head = self.head.wrapping_add(1);
        self.shared.head.0.store(self.head, Ordering::Release);
        Some(value)
    }

    /// Pop up to `max` items, oldest first, handing each to `consume`, and
    /// free their slots with one index store; returns how many were popped
    /// (0 if the ring is empty). Items the producer publishes during the
    /// call are not waited for.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut producer, mut consumer) = engine::ring::<u32>(8);
    /// producer.push_batch(&mut (1..=5));
    /// let mut sum = 0;
    /// assert_eq!(consumer.drain(3, |value| sum += value), 3);
    /// assert_eq!(sum, 6);
    /// ```
    pub fn drain<F: FnMut(T)>(&mut self, max: usize, mut consume: F) -> usize {
        let count = self.ready_items(max).min(max);
        let published = self.head;
        let release = HeadRelease {
            shared_head: &self.shared.head.0,
            head: &mut self.head,
            published,
        };
        for _ in 0..count {
            let index = *release.head;
            // SAFETY: as in `try_pop`: `index` is in `head .. tail_cached`,
            // initialised and the consumer's to move out. `head` is advanced
            // before `consume` runs, so if it panics `HeadRelease` publishes
            // past this slot and the ring never drops the value again.
            let value = unsafe { (*self.shared.slot(index)).assume_init_read() };
            *release.head = index.wrapping_add(1);
            consume(value);
        }
        drop(release);
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn assert_send<T: Send>() {}

    #[test]
    fn halves_are_send() {
        assert_send::<Producer<String>>();
        assert_send::<Consumer<String>>();
        assert_eq!(std::mem::align_of::<PaddedIndex>(), 128);
    }

    #[test]
    #[should_panic(expected = "not a power of two")]
    fn capacity_must_be_a_power_of_two() {
        let _ = ring::<u8>(6);
    }

    #[test]
    fn fill_drain_and_wrap_on_one_thread() {
        let (mut producer, mut consumer) = ring::<u64>(8);
        assert_eq!(producer.capacity(), 8);
        assert_eq!(consumer.capacity(), 8);
        let mut next_in = 0u64;
        let mut next_out = 0u64;
        // Many laps, with fills and drains of every size, cross the wrap of
        // the slot index many times.
        for round in 0..200usize {
            let fill = round % 9;
            for _ in 0..fill {
                match producer.try_push(next_in) {
                    Ok(()) => next_in += 1,
                    Err(value) => {
                        assert_eq!(value, next_in);
                        break;
                    }
                }
            }
            let take = (round * 7) % 10;
            if round % 2 == 0 {
                for _ in 0..take {
                    let Some(value) = consumer.try_pop() else {
                        break;
                    };
                    assert_eq!(value, next_out);
                    next_out += 1;
                }
            } else {
                let popped = consumer.drain(take, |value| {
                    assert_eq!(value, next_out);
                    next_out += 1;
                });
                assert!(popped <= take);
            }
            assert!(next_in - next_out <= 8);
        }
        consumer.drain(usize::MAX, |value| {
            assert_eq!(value, next_out);
            next_out += 1;
        });
        assert_eq!(next_in, next_out);
        assert!(next_in > 100, "only {next_in} items went round");
        assert_eq!(consumer.try_pop(), None);
    }

    #[test]
    fn full_ring_returns_the_value() {
        let (mut producer, mut consumer) = ring::<String>(4);
        for index in 0..4 {
            assert_eq!(producer.try_push(index.to_string()), Ok(()));
        }
        assert_eq!(producer.try_push("x".to_owned()), Err("x".to_owned()));
        let mut rest = ["y".to_owned()].into_iter();
        assert_eq!(producer.push_batch(&mut rest), 0);
        assert_eq!(
            rest.next().as_deref(),
            Some("y"),
            "a full batch took an item"
        );
        assert_eq!(consumer.try_pop().as_deref(), Some("0"));
        assert_eq!(producer.try_push("4".to_owned()), Ok(()));
        let mut seen = Vec::new();
        assert_eq!(consumer.drain(10, |value| seen.push(value)), 4);
        assert_eq!(seen, ["1", "2", "3", "4"]);
    }

    #[test]
    fn push_batch_stops_at_the_end_of_the_items() {
        let (mut producer, mut consumer) = ring::<u32>(16);
        assert_eq!(producer.push_batch(&mut (0..5)), 5);
        assert_eq!(producer.push_batch(&mut (5..30)), 11);
        let mut seen = Vec::new();
        assert_eq!(consumer.drain(100, |value| seen.push(value)), 16);
        assert_eq!(seen, (0..16).collect::<Vec<_>>());
        assert_eq!(
            consumer.drain(100, |_| panic!("empty ring gave an item")),
            0
        );
    }

    /// Counts its drops.
    #[derive(Debug)]
    struct Counted<'a>(&'a AtomicUsize);

    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn leftover_items_are_dropped_once() {
        let drops = AtomicUsize::new(0);
        {
            let (mut producer, mut consumer) = ring(8);
            // Wrap first, so the leftovers straddle the end of the slots.
            for _ in 0..6 {
                producer.try_push(Counted(&drops)).unwrap();
            }
            assert_eq!(consumer.drain(5, drop), 5);
            assert_eq!(drops.load(Ordering::Relaxed), 5);
            for _ in 0..7 {
                producer.try_push(Counted(&drops)).unwrap();
            }
            assert!(producer.try_push(Counted(&drops)).is_err()); // dropped: 6
            assert_eq!(drops.load(Ordering::Relaxed), 6);
            drop(consumer);
            // The producer still holds the ring: nothing dropped yet.
            assert_eq!(drops.load(Ordering::Relaxed), 6);
        }
        assert_eq!(drops.load(Ordering::Relaxed), 6 + 8);
    }

    #[test]
    fn a_panicking_drain_callback_drops_nothing_twice() {
        let drops = AtomicUsize::new(0);
        let (mut producer, mut consumer) = ring(4);
        for _ in 0..4 {
            producer.try_push(Counted(&drops)).unwrap();
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut seen = 0;
            consumer.drain(4, |value| {
                seen += 1;
                drop(value);
                assert!(seen < 2, "stop");
            });
        }));
        assert!(result.is_err());
        assert_eq!(drops.load(Ordering::Relaxed), 2);
        // The consumer is still usable and sees the two left.
        assert_eq!(consumer.drain(4, drop), 2);
        assert_eq!(drops.load(Ordering::Relaxed), 4);
        drop((producer, consumer));
        assert_eq!(drops.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn zero_sized_items() {
        let (mut producer, mut consumer) = ring::<()>(2);
        assert_eq!(producer.push_batch(&mut std::iter::repeat(())), 2);
        assert_eq!(producer.try_push(()), Err(()));
        assert_eq!(consumer.drain(8, |()| {}), 2);
    }

    /// Sends `count` sequence numbers through a small ring between two
    /// threads and checks that every one arrives, once, in order.
    fn stress(count: u64, batch_pops: bool, batch_pushes: bool) {
        let (mut producer, mut consumer) = ring::<u64>(64);
        let sender = std::thread::spawn(move || {
            let mut next = 0u64;
            while next < count {
                let pushed = if batch_pushes {
                    let end = (next + 40).min(count);
                    producer.push_batch(&mut (next..end)) as u64
                } else {
                    u64::from(producer.try_push(next).is_ok())
                };
                next += pushed;
                // Yield rather than spin when full: tests share the cores.
                if pushed == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut expected = 0u64;
        while expected < count {
            let popped = if batch_pops {
                consumer.drain(37, |value| {
                    assert_eq!(value, expected);
                    expected += 1;
                })
            } else {
                match consumer.try_pop() {
                    Some(value) => {
                        assert_eq!(value, expected);
                        expected += 1;
                        1
                    }
                    None => 0,
                }
            };
            if popped == 0 {
                std::thread::yield_now();
            }
        }
        sender.join().unwrap();
        assert_eq!(consumer.try_pop(), None);
    }

    const STRESS_COUNT: u64 = if cfg!(miri) { 2_000 } else { 1_500_000 };

    #[test]
    fn two_threads_single_pops() {
        stress(STRESS_COUNT, false, false);
    }

    #[test]
    fn two_threads_batch_pops() {
        stress(STRESS_COUNT, true, false);
    }

    #[test]
    fn two_threads_batch_pushes_and_pops() {
        stress(STRESS_COUNT, true, true);
    }
}
