//! A hierarchical bit set of occupied price levels.
//!
//! Layer 0 has one bit per level; each higher layer has one bit per word of
//! the layer below, set when that word is non-zero; the top layer is a single
//! word. Finding the best level, or the next occupied level after a given
//! one, looks at one word per layer (three layers cover 262 144 levels)
//! instead of scanning the ladder.

/// Bits per word.
const WORD_BITS: usize = 64;

#[derive(Clone, Debug)]
pub(crate) struct LevelSet {
    /// `layers[0]` is the bottom (one bit per level); the last is one word.
    layers: Vec<Vec<u64>>,
    len: usize,
}

impl LevelSet {
    /// An empty set over indices `0..len`.
    pub(crate) fn new(len: usize) -> LevelSet {
        assert!(len > 0, "a level set covers at least one level");
        let mut layers = Vec::new();
        let mut bits = len;
        loop {
            let words = bits.div_ceil(WORD_BITS);
            layers.push(vec![0_u64; words]);
            if words == 1 {
                break;
            }
            bits = words;
        }
        LevelSet { layers, len }
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, index: usize) -> bool {
        debug_assert!(index < self.len);
        self.layers[0][index / WORD_BITS] & bit(index) != 0
    }

    pub(crate) fn insert(&mut self, index: usize) {
        debug_assert!(index < self.len);
        let mut index = index;
        for layer in &mut self.layers {
            let word = &mut layer[index / WORD_BITS];
            let was_empty = *word == 0;
            *word |= bit(index);
            if !was_empty {
                return;
            }
            index /= WORD_BITS;
        }
    }

    pub(crate) fn remove(&mut self, index: usize) {
        debug_assert!(index < self.len);
        let mut index = index;
        for layer in &mut self.layers {
            let word = &mut layer[index / WORD_BITS];
            *word &= !bit(index);
            if *word != 0 {
                return;
            }
            index /= WORD_BITS;
        }
    }

    /// The lowest member.
    pub(crate) fn first(&self) -> Option<usize> {
        let top = self.layers.len() - 1;
        if self.layers[top][0] == 0 {
            return None;
        }
        let mut index = 0;
        for layer in self.layers.iter().rev() {
            index = index * WORD_BITS + lowest_bit(layer[index]);
        }
        Some(index)
    }

    /// The highest member.
    pub(crate) fn last(&self) -> Option<usize> {
        let top = self.layers.len() - 1;
        if self.layers[top][0] == 0 {
            return None;
        }
        let mut index = 0;
        for layer in self.layers.iter().rev() {
            index = index * WORD_BITS + highest_bit(layer[index]);
        }
        Some(index)
    }

    /// The lowest member above `index`.
    pub(crate) fn next_after(&self, index: usize) -> Option<usize> {
        self.next_in_layer(0, index)
    }

    /// The highest member below `index`.
    pub(crate) fn previous_before(&self, index: usize) -> Option<usize> {
        self.previous_in_layer(0, index)
    }

    fn next_in_layer(&self, layer: usize, index: usize) -> Option<usize> {
        let words = &self.layers[layer];
        let word_index = index / WORD_BITS;
        let shift = index % WORD_BITS;
        let above = if shift == WORD_BITS - 1 {
            0
        } else {
            words[word_index] & (u64::MAX << (shift + 1))
        };
        if above != 0 {
            return Some(word_index * WORD_BITS + lowest_bit(above));
        }
        if layer + 1 == self.layers.len() {
            return None;
        }
        let next_word = self.next_in_layer(layer + 1, word_index)?;
        // Invariant: a set bit in the layer above marks a non-zero word here.
        Some(next_word * WORD_BITS + lowest_bit(words[next_word]))
    }

    fn previous_in_layer(&self, layer: usize, index: usize) -> Option<usize> {
        let words = &self.layers[layer];
        let word_index = index / WORD_BITS;
        let shift = index % WORD_BITS;
        let below = words[word_index] & ((1_u64 << shift) - 1);
        if below != 0 {
            return Some(word_index * WORD_BITS + highest_bit(below));
        }
        if layer + 1 == self.layers.len() {
            return None;
        }
        let previous_word = self.previous_in_layer(layer + 1, word_index)?;
        Some(previous_word * WORD_BITS + highest_bit(words[previous_word]))
    }
}

fn bit(index: usize) -> u64 {
    1_u64 << (index % WORD_BITS)
}

fn lowest_bit(word: u64) -> usize {
    debug_assert!(word != 0);
    word.trailing_zeros() as usize
}

fn highest_bit(word: u64) -> usize {
    debug_assert!(word != 0);
    (WORD_BITS - 1) - word.leading_zeros() as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn empty_and_single() {
        let mut set = LevelSet::new(1);
        assert_eq!(set.first(), None);
        set.insert(0);
        assert_eq!((set.first(), set.last()), (Some(0), Some(0)));
        assert_eq!(set.next_after(0), None);
        assert_eq!(set.previous_before(0), None);
        set.remove(0);
        assert_eq!(set.last(), None);
    }

    #[test]
    fn three_layers_find_across_words() {
        let mut set = LevelSet::new(300_000);
        assert_eq!(set.layers.len(), 4);
        set.insert(5);
        set.insert(299_999);
        set.insert(70_000);
        assert_eq!(set.first(), Some(5));
        assert_eq!(set.last(), Some(299_999));
        assert_eq!(set.next_after(5), Some(70_000));
        assert_eq!(set.next_after(70_000), Some(299_999));
        assert_eq!(set.previous_before(70_000), Some(5));
        assert_eq!(set.previous_before(5), None);
        set.remove(70_000);
        assert_eq!(set.next_after(5), Some(299_999));
    }

    proptest! {
        #[test]
        fn matches_a_btree_set(len in 1_usize..5_000, ops in prop::collection::vec((any::<bool>(), any::<prop::sample::Index>()), 0..300)) {
            let mut set = LevelSet::new(len);
            let mut model = BTreeSet::new();
            for (insert, index) in ops {
                let index = index.index(len);
                if insert { set.insert(index); model.insert(index); } else { set.remove(index); model.remove(&index); }
                prop_assert_eq!(set.first(), model.first().copied());
                prop_assert_eq!(set.last(), model.last().copied());
                prop_assert_eq!(set.contains(index), model.contains(&index));
                prop_assert_eq!(set.next_after(index), model.range(index + 1..).next().copied());
                prop_assert_eq!(set.previous_before(index), model.range(..index).next_back().copied());
            }
        }
    }
}
