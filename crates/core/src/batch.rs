//! Cutting the outbox into requests that fit the server's limits.

/// Bytes of `{"activities":[]}`, the batch body without items.
pub const ENVELOPE_BYTES: usize = 17;

/// How many of `sizes` (serialised item sizes, in queue order) fit in one
/// batch of at most `max_items` items and `max_bytes` bytes of body.
/// Zero means the first item alone is too large to ever send.
pub fn cut(sizes: impl IntoIterator<Item = usize>, max_items: usize, max_bytes: usize) -> usize {
    let mut bytes = ENVELOPE_BYTES;
    let mut n = 0;
    for size in sizes {
        if n == max_items {
            break;
        }
        let added = size + usize::from(n > 0);
        if bytes + added > max_bytes {
            break;
        }
        bytes += added;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_by_count() {
        assert_eq!(cut(vec![10; 250], 100, 60 * 1024), 100);
        assert_eq!(cut(vec![10; 7], 100, 60 * 1024), 7);
        assert_eq!(cut(vec![10; 7], 3, 60 * 1024), 3);
    }

    #[test]
    fn cuts_by_bytes_exactly() {
        // 17 + 100 + (1 + 100) * 3 = 420 bytes for four items.
        assert_eq!(cut(vec![100; 10], 100, 420), 4);
        assert_eq!(cut(vec![100; 10], 100, 419), 3);
        // 60 KiB with 1000-byte items: 17 + 1000 + 1001 * 60 = 61077 > 61440? no: fits 61.
        assert_eq!(cut(vec![1000; 100], 100, 60 * 1024), 61);
    }

    #[test]
    fn an_item_too_large_for_any_batch_cuts_zero() {
        assert_eq!(cut(vec![70_000, 10], 100, 60 * 1024), 0);
        assert_eq!(cut(Vec::<usize>::new(), 100, 60 * 1024), 0);
    }
}
