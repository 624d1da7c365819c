//! Which pages are pull requests: `https://github.com/OWNER/REPO/pull/N[/VIEW]`
//! and the same shape on the hosts the user adds, by GitHub's own rules (as
//! refined-github's github-url-detection reads them): owner and repository
//! are case-insensitive (kept in lower case), the number is 1..=i64::MAX
//! written without sign or leading zeros, the Files view is `/files`,
//! `/files/SHA`, `/files/A..B`, `/changes`, `/changes/SHA`, `/changes/A..B`
//! and `/commits/SHA`; `/commits` is the commit list; `/conflicts` (the
//! conflict editor) is not a review. Origins are compared normalised: lower
//! case host, default port dropped.

use reviewtime_core::protocol::{PrTab, PullRef};
use reviewtime_core::session::PrPage;

/// The pull request `url` shows, if it is one on github.com or a tracked origin.
pub fn parse_pr_url(url: &str, tracked_origins: &[String]) -> Option<PrPage> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = normalise_authority(&scheme, authority)?;
    let origin = format!("{scheme}://{host}");
    let tracked = origin == "https://github.com"
        || tracked_origins
            .iter()
            .any(|o| normalise_origin_text(o).as_deref() == Some(origin.as_str()));
    if !tracked {
        return None;
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut parts = path.trim_start_matches('/').split('/');
    let owner = parts.next().filter(|s| valid_name(s))?;
    let repo = parts.next().filter(|s| valid_name(s))?;
    if parts.next()? != "pull" {
        return None;
    }
    let number = parse_number(parts.next()?)?;
    let rest: Vec<&str> = parts.filter(|p| !p.is_empty()).collect();
    let tab = match rest.as_slice() {
        [] => Some(PrTab::Conversation),
        ["commits"] => Some(PrTab::Commits),
        ["commits", _sha, ..] => Some(PrTab::Files),
        ["checks", ..] => Some(PrTab::Checks),
        ["files" | "changes", ..] => Some(PrTab::Files),
        ["conflicts", ..] => return None,
        _ => None,
    };
    Some(PrPage {
        pr: PullRef {
            host,
            owner: owner.to_ascii_lowercase(),
            repo: repo.to_ascii_lowercase(),
            number,
        },
        view: tab,
    })
}

/// A PR number as GitHub writes it: digits, no sign, no leading zero, 1..=i64::MAX.
fn parse_number(s: &str) -> Option<u64> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = s.parse().ok()?;
    (n <= i64::MAX as u64).then_some(n)
}

/// `host[:port]` in lower case without the scheme's default port; `None`
/// when it holds user info or is empty.
pub fn normalise_authority(scheme: &str, authority: &str) -> Option<String> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let lower = authority.to_ascii_lowercase();
    let default = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => "",
    };
    Some(match lower.strip_suffix(default) {
        Some(host) if !default.is_empty() && !host.is_empty() => host.to_string(),
        _ => lower,
    })
}

/// `scheme://host[:port]` normalised like [`normalise_authority`].
pub fn normalise_origin_text(origin: &str) -> Option<String> {
    let (scheme, authority) = origin.trim().trim_end_matches('/').split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    Some(format!(
        "{scheme}://{}",
        normalise_authority(&scheme, authority)?
    ))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    trait ExpectSome<T> {
        fn expect_some(self) -> T;
    }
    impl<T> ExpectSome<T> for Option<T> {
        fn expect_some(self) -> T {
            match self {
                Some(v) => v,
                None => panic!("expected a pull request"),
            }
        }
    }

    #[test]
    fn github_pull_requests_and_their_tabs() {
        let p = parse_pr_url(
            "https://github.com/rust-lang/rust/pull/12345/files?w=1#diff",
            &[],
        )
        .expect_some();
        assert_eq!(
            (
                p.pr.host.as_str(),
                p.pr.owner.as_str(),
                p.pr.repo.as_str(),
                p.pr.number
            ),
            ("github.com", "rust-lang", "rust", 12345)
        );
        assert_eq!(p.view, Some(PrTab::Files));
        assert_eq!(
            parse_pr_url("https://github.com/o/r/pull/1", &[]).and_then(|p| p.view),
            Some(PrTab::Conversation)
        );
        assert_eq!(
            parse_pr_url("https://github.com/o/r/pull/1/commits", &[]).and_then(|p| p.view),
            Some(PrTab::Commits)
        );
        assert_eq!(
            parse_pr_url("https://github.com/o/r/pull/1/checks", &[]).and_then(|p| p.view),
            Some(PrTab::Checks)
        );
    }

    #[test]
    fn other_pages_and_untracked_hosts_are_not_prs() {
        for url in [
            "https://github.com/o/r",
            "https://github.com/o/r/pulls",
            "https://github.com/o/r/pull/0",
            "https://github.com/o/r/pull/abc",
            "https://github.com/o/r/issues/5",
            "https://evil.example/o/r/pull/5",
            "http://github.com/o/r/pull/5",
            "not a url",
        ] {
            assert_eq!(parse_pr_url(url, &[]), None, "{url}");
        }
    }

    #[test]
    fn github_s_url_rules() {
        let view = |u: &str| parse_pr_url(u, &[]).map(|p| p.view);
        let files = Some(Some(PrTab::Files));
        for u in [
            "https://github.com/o/r/pull/5/files",
            "https://github.com/o/r/pull/5/files/abc123",
            "https://github.com/o/r/pull/5/files/abc..def",
            "https://github.com/o/r/pull/5/changes",
            "https://github.com/o/r/pull/5/changes/abc123",
            "https://github.com/o/r/pull/5/changes/abc..def",
            "https://github.com/o/r/pull/5/commits/0123abcd",
        ] {
            assert_eq!(view(u), files, "{u}");
        }
        assert_eq!(
            view("https://github.com/o/r/pull/5/commits"),
            Some(Some(PrTab::Commits))
        );
        for u in [
            "https://github.com/o/r/pull/5/conflicts",
            "https://github.com/o/r/pull/+5",
            "https://github.com/o/r/pull/007",
            "https://github.com/o/r/pull/-5",
            "https://github.com/o/r/pull/9223372036854775808",
            "https://user@github.com/o/r/pull/5",
        ] {
            assert_eq!(view(u), None, "{u}");
        }
        assert!(view("https://github.com/o/r/pull/9223372036854775807").is_some());
        let a = parse_pr_url("https://github.com/Octo/Widgets/pull/5", &[]).expect_some();
        let b =
            parse_pr_url("https://GitHub.com:443/octo/widgets/pull/5#diff-1", &[]).expect_some();
        assert_eq!(
            a.pr, b.pr,
            "owner, repository and host are case-insensitive"
        );
        assert_eq!(
            (a.pr.owner.as_str(), a.pr.repo.as_str()),
            ("octo", "widgets")
        );
    }

    #[test]
    fn enterprise_hosts_typed_any_way() {
        let tracked = vec!["https://GHE.Example.com:443".to_string()];
        let p = parse_pr_url("https://ghe.example.com/o/r/pull/3", &tracked).expect_some();
        assert_eq!(p.pr.host, "ghe.example.com");
        assert!(parse_pr_url("https://GHE.example.com:443/o/r/pull/3", &tracked).is_some());
    }

    #[test]
    fn tracked_enterprise_hosts_with_ports() {
        let tracked = vec!["http://127.0.0.1:4321".to_string()];
        let p = parse_pr_url("http://127.0.0.1:4321/octo/widgets/pull/7", &tracked).expect_some();
        assert_eq!(p.pr.host, "127.0.0.1:4321");
        assert_eq!(
            parse_pr_url("http://127.0.0.1:9999/octo/widgets/pull/7", &tracked),
            None
        );
    }
}
