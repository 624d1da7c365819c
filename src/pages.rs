//! Which pages are pull requests: `https://github.com/OWNER/REPO/pull/N[/TAB]`
//! and the same shape on the hosts the user adds.

use reviewtime_core::protocol::{PrTab, PullRef};
use reviewtime_core::session::PrPage;

/// The pull request `url` shows, if it is one on github.com or a tracked origin.
pub fn parse_pr_url(url: &str, tracked_origins: &[String]) -> Option<PrPage> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let origin = format!("{scheme}://{authority}");
    let tracked = origin == "https://github.com" || tracked_origins.contains(&origin);
    if !tracked {
        return None;
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut parts = path.split('/');
    let owner = parts.next().filter(|s| valid_name(s))?;
    let repo = parts.next().filter(|s| valid_name(s))?;
    if parts.next()? != "pull" {
        return None;
    }
    let number: u64 = parts.next()?.parse().ok().filter(|n| *n > 0)?;
    let tab = match parts.next().unwrap_or("") {
        "" => Some(PrTab::Conversation),
        "commits" => Some(PrTab::Commits),
        "checks" => Some(PrTab::Checks),
        "files" => Some(PrTab::Files),
        _ => None,
    };
    Some(PrPage {
        pr: PullRef {
            host: authority.to_string(),
            owner: owner.to_string(),
            repo: repo.to_string(),
            number,
        },
        tab,
    })
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
        assert_eq!(p.tab, Some(PrTab::Files));
        assert_eq!(
            parse_pr_url("https://github.com/o/r/pull/1", &[]).and_then(|p| p.tab),
            Some(PrTab::Conversation)
        );
        assert_eq!(
            parse_pr_url("https://github.com/o/r/pull/1/commits", &[]).and_then(|p| p.tab),
            Some(PrTab::Commits)
        );
        assert_eq!(
            parse_pr_url("https://github.com/o/r/pull/1/checks", &[]).and_then(|p| p.tab),
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
