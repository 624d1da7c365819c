//! What a request's outcome means for the items it carried: an explicit table
//! (reqwest-retry's Transient / Fatal, extended with our other cases).

/// How an HTTP status is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx: delivered, if the body parses.
    Success,
    /// 408, 429, 5xx: try again later with backoff.
    Transient,
    /// 401, 403: pause everything until the user signs in again.
    Auth,
    /// 413: split the batch.
    TooLarge,
    /// Any other status: it will never succeed; dead-letter it.
    Permanent,
}

/// The classification table.
pub fn classify_status(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        408 | 429 | 500..=599 => StatusClass::Transient,
        401 | 403 => StatusClass::Auth,
        413 => StatusClass::TooLarge,
        _ => StatusClass::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        use StatusClass::*;
        let cases = [
            (200, Success),
            (201, Success),
            (204, Success),
            (301, Permanent),
            (400, Permanent),
            (401, Auth),
            (403, Auth),
            (404, Permanent),
            (408, Transient),
            (409, Permanent),
            (413, TooLarge),
            (422, Permanent),
            (429, Transient),
            (500, Transient),
            (502, Transient),
            (503, Transient),
            (599, Transient),
            (100, Permanent),
        ];
        for (status, want) in cases {
            assert_eq!(classify_status(status), want, "{status}");
        }
    }
}
