//! The pairing-link rule against its table of vectors (tests/pairing-links.json),
//! which the end-to-end test of the options page and the dashboard reads too.

use reviewtime_protocol::Pairing;
use serde::Deserialize;

#[derive(Deserialize)]
struct Table {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    why: String,
    link: String,
    pairing: Option<Pairing>,
    sign_in: Option<String>,
}

fn table() -> Vec<Vector> {
    let table: Table = serde_json::from_str(include_str!("pairing-links.json"))
        .unwrap_or_else(|e| panic!("tests/pairing-links.json: {e}"));
    table.vectors
}

#[test]
fn every_vector_reads_as_the_table_says() {
    let vectors = table();
    assert!(vectors.len() >= 20);
    for v in vectors {
        assert_eq!(
            Pairing::parse_link(&v.link),
            v.pairing,
            "parse_link: {}",
            v.why
        );
        assert_eq!(
            Pairing::sign_in_token(&v.link),
            v.sign_in,
            "sign_in_token: {}",
            v.why
        );
    }
}

#[test]
fn every_pairing_in_the_table_signs_in_with_its_own_token_and_round_trips() {
    for v in table() {
        if let Some(p) = v.pairing {
            assert_eq!(v.sign_in.as_deref(), Some(p.token.as_str()), "{}", v.why);
            assert_eq!(Pairing::parse_link(&p.to_link()), Some(p), "{}", v.why);
        }
    }
}
